-- Many independent reservations in one round trip. Every event the batch names is locked
-- first, in id order, so two batches can never wait on each other in a cycle; then each
-- request runs on its own (a refusal is an answer, not an exception, so it cannot undo the
-- others). Answers come back in request order.
CREATE FUNCTION ticketing_reserve_batch(p_now bigint, p_reqs jsonb, p_ids text[], p_tokens bytea[],
                                        p_retention_ms bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_answers jsonb := '[]';
    i integer;
BEGIN
    PERFORM 1 FROM events
    WHERE id IN (SELECT DISTINCT r->>'event' FROM jsonb_array_elements(p_reqs) AS r)
    ORDER BY id FOR UPDATE;
    FOR i IN 0 .. jsonb_array_length(p_reqs) - 1 LOOP
        v_answers := v_answers || jsonb_build_array(
            ticketing_reserve(p_now, p_reqs->i, p_ids[i + 1], p_tokens[i + 1], p_retention_ms));
    END LOOP;
    RETURN v_answers;
END
$$;
