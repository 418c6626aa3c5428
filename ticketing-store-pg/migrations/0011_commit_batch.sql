-- Many commits in one round trip and one transaction.
--
-- A commit holds its event's row (the change log's gap-free sequence) from its first
-- statement until its transaction's WAL flush, so an event's commits one at a time cost a
-- flush each, in turn: at a sale's peak that, not the commit's own work, is the limit.
-- In one transaction, a batch's commits share one flush and one round trip.
--
-- Every event the batch names is locked first, in id order, as reserve batches do, so two
-- batches (or a batch and a reserve batch) can never wait on each other in a cycle; then
-- each commit runs ticketing_commit exactly as a call of its own would, in batch order, so
-- a repeat of an earlier commit of the batch replays its outcome. A refusal is an answer,
-- not an exception, so it cannot undo the others. Answers come back in batch order.
CREATE FUNCTION ticketing_commit_batch(p_now bigint, p_ids text[], p_tokens bytea[], p_reqs jsonb,
                                       p_orders text[], p_retention_ms bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_answers jsonb[] := '{}';
    i integer;
BEGIN
    -- A scalar subquery per id (one primary-key probe each), never a join the planner could
    -- turn into a scan of the reservations while the schema has no statistics.
    PERFORM 1 FROM events
    WHERE id = ANY (ARRAY(SELECT (SELECT r.event_id FROM reservations r WHERE r.id = w.id)
                          FROM unnest(p_ids) AS w (id)))
    ORDER BY id FOR UPDATE;
    FOR i IN 1 .. COALESCE(cardinality(p_ids), 0) LOOP
        v_answers := v_answers || ticketing_commit(p_now, p_ids[i], p_tokens[i], p_reqs->(i - 1), p_orders[i],
                                                   p_retention_ms);
    END LOOP;
    RETURN to_jsonb(v_answers);
END
$$;
