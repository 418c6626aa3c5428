-- Set-based reserve batches, and the holder index keyed by holder first.

-- Holder first: a lookup by event alone (an event's lapsed holds) can then only use
-- reservations_due. Keyed by event first, in a schema without statistics yet, the planner
-- chose this index for it and filtered every live hold of the event on every reserve.
DROP INDEX reservations_holder;
CREATE INDEX reservations_holder ON reservations (holder, event_id) WHERE status = 0;

-- One run of a batch, on its one event (locked by the caller): the requests at p_positions
-- (1-based into p_reqs), each naming seats and GA units only (no best available, no client
-- reservation id). They are decided one after the other, with the same checks in the same
-- order as ticketing_reserve_fresh, but against the event's state read once for the whole
-- run (seats, pools, holders' counts), each accepted request's items counted as taken for
-- the next; then every accepted reservation, seat, pool and change is written with one
-- statement each. Per request that is a few array operations instead of some twenty
-- statements: what lets a batch be an order of magnitude cheaper than its requests one by
-- one. Answers are set in p_answers at the requests' positions.
--
-- The statements join small arrays to the seats table: index probes, never a scan of the
-- event (the planner may pick one while a new schema has no statistics), hence the
-- planner settings.
CREATE FUNCTION ticketing_reserve_run(p_now bigint, ev events, p_reqs jsonb, p_positions integer[],
                                      p_ids text[], p_tokens bytea[], INOUT p_answers jsonb[])
LANGUAGE plpgsql
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
AS $$
DECLARE
    v_policy jsonb := ev.policy;
    v_ttl_default bigint := (v_policy->>'reservation_ttl_seconds')::bigint;
    v_ttl_max bigint := (v_policy->>'reservation_ttl_seconds_max')::bigint;
    v_rsv_max integer := (v_policy->>'holder_reservations_max')::integer;
    v_items_max bigint := (v_policy->>'holder_seats_max')::bigint;
    v_window jsonb;
    -- Every seat the run names, by request in run order, then as requested.
    s_pos integer[]; s_id text[]; s_idx integer[]; s_status smallint[];
    -- Every GA entry the run names, in the same order.
    g_pos integer[]; g_id text[]; g_idx integer[]; g_qty integer[];
    -- The event's pools and their free units, decreasing as the run takes them.
    q_idx integer[]; q_free integer[];
    -- Holders of the run with their live reservations and items (held and owned).
    h_name text[]; h_live integer[]; h_items bigint[];
    -- Seats taken by accepted requests of this run.
    v_taken_now integer[] := '{}';
    -- Accepted requests: position, holder, expiry, and their slices of s_* and g_*.
    a_pos integer[] := '{}'; a_holder text[] := '{}'; a_expires bigint[] := '{}';
    a_sf integer[] := '{}'; a_sl integer[] := '{}'; a_gf integer[] := '{}'; a_gl integer[] := '{}';
    v_pos integer;
    v_req jsonb;
    v_holder text;
    v_ttl bigint;
    si integer := 1; gi integer := 1;
    v_sf integer; v_sl integer; v_gf integer; v_gl integer;
    k integer;
    h integer;
    q integer;
    v_requested bigint;
    v_taken text[];
    v_error jsonb;
    v_seq bigint;
    v_done integer[];
    v_docs jsonb[];
BEGIN
    IF ev.sale_opens_at IS NOT NULL AND p_now < ev.sale_opens_at THEN
        v_window := ticketing_error('not_on_sale', jsonb_build_object('opens_at', ev.sale_opens_at, 'closed_at', NULL));
    ELSIF ev.sale_closes_at IS NOT NULL AND p_now >= ev.sale_closes_at THEN
        v_window := ticketing_error('not_on_sale', jsonb_build_object('opens_at', NULL, 'closed_at', ev.sale_closes_at));
    ELSE
        -- Lapsed holds are free: finalize them before deciding (each request alone would).
        PERFORM ticketing_finalize_lapsed(ev.id, p_now);
    END IF;

    SELECT array_agg(w.pos ORDER BY w.pos_ord, w.ord), array_agg(w.id ORDER BY w.pos_ord, w.ord),
           array_agg(w.found[1] ORDER BY w.pos_ord, w.ord), array_agg(w.found[2]::smallint ORDER BY w.pos_ord, w.ord)
    INTO s_pos, s_id, s_idx, s_status
    FROM (SELECT p.pos, p.pos_ord, e.id, e.ord,
                 (SELECT ARRAY[s.idx, s.status] FROM seats s WHERE s.event_id = ev.id AND s.seat_id = e.id) AS found
          FROM unnest(p_positions) WITH ORDINALITY AS p (pos, pos_ord),
               jsonb_array_elements_text(p_reqs->(p.pos - 1)->'seats') WITH ORDINALITY AS e (id, ord)) w;
    SELECT array_agg(w.pos ORDER BY w.pos_ord, w.ord), array_agg(w.g->>'pool' ORDER BY w.pos_ord, w.ord),
           array_agg(w.idx ORDER BY w.pos_ord, w.ord), array_agg((w.g->>'quantity')::integer ORDER BY w.pos_ord, w.ord)
    INTO g_pos, g_id, g_idx, g_qty
    FROM (SELECT p.pos, p.pos_ord, e.g, e.ord,
                 (SELECT q.idx FROM pools q WHERE q.event_id = ev.id AND q.pool_id = e.g->>'pool') AS idx
          FROM unnest(p_positions) WITH ORDINALITY AS p (pos, pos_ord),
               jsonb_array_elements(p_reqs->(p.pos - 1)->'ga') WITH ORDINALITY AS e (g, ord)) w;
    IF g_pos IS NOT NULL THEN
        SELECT array_agg(q.idx), array_agg(GREATEST(q.capacity - q.held - q.sold - q.blocked, 0))
        INTO q_idx, q_free
        FROM pools q WHERE q.event_id = ev.id;
    END IF;
    IF v_rsv_max IS NOT NULL OR v_items_max IS NOT NULL THEN
        SELECT array_agg(w.holder), array_agg(w.live), array_agg(w.items + ticketing_owned_items(ev.id, w.holder))
        INTO h_name, h_live, h_items
        FROM (SELECT d.holder,
                     (SELECT count(*) FROM reservations r
                      WHERE r.holder = d.holder AND r.event_id = ev.id AND r.status = 0)::integer AS live,
                     (SELECT COALESCE(sum(cardinality(r.seat_idx)
                                          + COALESCE((SELECT sum(x) FROM unnest(r.pool_qty) x), 0)), 0)
                      FROM reservations r
                      WHERE r.holder = d.holder AND r.event_id = ev.id AND r.status = 0)::bigint AS items
              FROM (SELECT DISTINCT p_reqs->(p.pos - 1)->>'holder' AS holder FROM unnest(p_positions) AS p (pos)) d) w;
    END IF;

    FOREACH v_pos IN ARRAY p_positions LOOP
        v_req := p_reqs->(v_pos - 1);
        v_holder := v_req->>'holder';
        v_sf := si;
        WHILE si <= COALESCE(cardinality(s_pos), 0) AND s_pos[si] = v_pos LOOP si := si + 1; END LOOP;
        v_sl := si - 1;
        v_gf := gi;
        WHILE gi <= COALESCE(cardinality(g_pos), 0) AND g_pos[gi] = v_pos LOOP gi := gi + 1; END LOOP;
        v_gl := gi - 1;
        v_error := NULL;
        v_ttl := COALESCE((v_req->>'ttl_seconds')::bigint, v_ttl_default);
        IF v_ttl > v_ttl_max THEN
            v_error := ticketing_error('invalid_request', jsonb_build_object('field', 'ttl_seconds',
                'reason', format('this event allows at most %s seconds', v_ttl_max)));
        END IF;
        IF v_error IS NULL THEN
            FOR k IN v_sf .. v_sl LOOP
                IF s_idx[k] IS NULL THEN
                    v_error := ticketing_error('not_found', jsonb_build_object('entity', 'seat', 'id', s_id[k]));
                    EXIT;
                END IF;
            END LOOP;
        END IF;
        IF v_error IS NULL THEN
            FOR k IN v_gf .. v_gl LOOP
                IF g_idx[k] IS NULL THEN
                    v_error := ticketing_error('not_found', jsonb_build_object('entity', 'pool', 'id', g_id[k]));
                    EXIT;
                END IF;
            END LOOP;
        END IF;
        v_error := COALESCE(v_error, v_window);
        IF v_error IS NULL AND h_name IS NOT NULL THEN
            h := array_position(h_name, v_holder);
            v_requested := (v_sl - v_sf + 1) + COALESCE((SELECT sum(x) FROM unnest(g_qty[v_gf:v_gl]) x), 0);
            IF v_rsv_max IS NOT NULL AND h_live[h] + 1 > v_rsv_max THEN
                v_error := ticketing_error('limit_exceeded', jsonb_build_object('limit', 'reservations', 'max', v_rsv_max));
            ELSIF v_items_max IS NOT NULL AND h_items[h] + v_requested > v_items_max THEN
                v_error := ticketing_error('limit_exceeded', jsonb_build_object('limit', 'seats', 'max', v_items_max));
            END IF;
        END IF;
        IF v_error IS NULL THEN
            v_taken := '{}';
            FOR k IN v_sf .. v_sl LOOP
                IF s_status[k] <> 0 OR s_idx[k] = ANY (v_taken_now) THEN
                    v_taken := v_taken || s_id[k];
                END IF;
            END LOOP;
            IF cardinality(v_taken) > 0 THEN
                v_error := ticketing_error('seat_unavailable', jsonb_build_object('seats', to_jsonb(v_taken)));
            END IF;
        END IF;
        IF v_error IS NULL THEN
            FOR k IN v_gf .. v_gl LOOP
                q := array_position(q_idx, g_idx[k]);
                IF g_qty[k] > q_free[q] THEN
                    v_error := ticketing_error('sold_out', jsonb_build_object('pool', g_id[k], 'remaining', q_free[q]));
                    EXIT;
                END IF;
            END LOOP;
        END IF;
        IF v_error IS NOT NULL THEN
            p_answers[v_pos] := v_error;
            CONTINUE;
        END IF;
        v_taken_now := v_taken_now || s_idx[v_sf:v_sl];
        FOR k IN v_gf .. v_gl LOOP
            q := array_position(q_idx, g_idx[k]);
            q_free[q] := q_free[q] - g_qty[k];
        END LOOP;
        IF h_name IS NOT NULL THEN
            h_live[h] := h_live[h] + 1;
            h_items[h] := h_items[h] + v_requested;
        END IF;
        a_pos := a_pos || v_pos;
        a_holder := a_holder || v_holder;
        a_expires := a_expires || (p_now + v_ttl * 1000);
        a_sf := a_sf || v_sf; a_sl := a_sl || v_sl;
        a_gf := a_gf || v_gf; a_gl := a_gl || v_gl;
    END LOOP;

    IF cardinality(a_pos) = 0 THEN
        RETURN;
    END IF;
    WITH made AS (
        INSERT INTO reservations (id, event_id, holder, status, seat_ids, seat_idx, pool_ids, pool_idx,
                                  pool_qty, created_at, expires_at, token_hash, client_reservation_id)
        SELECT p_ids[a.pos], ev.id, a.holder, 0, COALESCE(s_id[a.sf:a.sl], '{}'), COALESCE(s_idx[a.sf:a.sl], '{}'),
               COALESCE(g_id[a.gf:a.gl], '{}'), COALESCE(g_idx[a.gf:a.gl], '{}'), COALESCE(g_qty[a.gf:a.gl], '{}'),
               p_now, a.expires, sha256(p_tokens[a.pos]), NULL
        FROM unnest(a_pos, a_holder, a_expires, a_sf, a_sl, a_gf, a_gl) AS a (pos, holder, expires, sf, sl, gf, gl)
        RETURNING id, ticketing_reservation_json(reservations, p_now) AS doc
    )
    SELECT array_agg(a.pos), array_agg(jsonb_build_object('ok', made.doc))
    INTO v_done, v_docs
    FROM made JOIN unnest(a_pos) AS a (pos) ON made.id = p_ids[a.pos];
    FOR k IN 1 .. cardinality(v_done) LOOP
        p_answers[v_done[k]] := v_docs[k];
    END LOOP;
    UPDATE seats s SET status = 1, reservation_id = p_ids[t.pos], hold_expires_at = t.expires
    FROM (SELECT a.pos, a.expires, x.idx
          FROM unnest(a_pos, a_expires, a_sf, a_sl) AS a (pos, expires, sf, sl),
               unnest(s_idx[a.sf:a.sl]) AS x (idx)) t
    WHERE s.event_id = ev.id AND s.idx = t.idx;
    IF g_pos IS NOT NULL THEN
        UPDATE pools q SET held = q.held + t.qty
        FROM (SELECT x.idx, sum(x.qty)::integer AS qty
              FROM unnest(a_gf, a_gl) AS a (gf, gl),
                   unnest(g_idx[a.gf:a.gl], g_qty[a.gf:a.gl]) AS x (idx, qty)
              GROUP BY x.idx) t
        WHERE q.event_id = ev.id AND q.idx = t.idx;
    END IF;
    -- The same change document ticketing_reserve_fresh logs, one per accepted request, in
    -- request order, numbered from the event's next sequence number.
    UPDATE events SET next_seq = next_seq + cardinality(a_pos) WHERE id = ev.id
    RETURNING next_seq - cardinality(a_pos) INTO v_seq;
    INSERT INTO changes (event_id, seq, at, kind)
    SELECT ev.id, v_seq + a.ord - 1, p_now, jsonb_build_object(
        'type', 'reserved', 'reservation', p_ids[a.pos], 'holder', a.holder,
        'seats', to_jsonb(COALESCE(s_id[a.sf:a.sl], '{}')),
        'ga', ticketing_ga_json(COALESCE(g_id[a.gf:a.gl], '{}'), COALESCE(g_qty[a.gf:a.gl], '{}')),
        'expires_at', a.expires)
    FROM unnest(a_pos, a_holder, a_expires, a_sf, a_sl, a_gf, a_gl) WITH ORDINALITY
         AS a (pos, holder, expires, sf, sl, gf, gl, ord);
END
$$;

-- Many independent reservations in one round trip. Every event the batch names is locked
-- first, in id order, so two batches can never wait on each other in a cycle. On a batch of
-- one event (what Coalescing sends), consecutive requests for named seats and GA units run
-- set-based (ticketing_reserve_run); a request for best available or with a client
-- reservation id runs on its own (ticketing_reserve) after the requests before it are
-- written, so each sees the ones before it exactly as one call after the other would.
-- A refusal is an answer, not an exception, so it cannot undo the others. Answers come back
-- in request order.
CREATE OR REPLACE FUNCTION ticketing_reserve_batch(p_now bigint, p_reqs jsonb, p_ids text[], p_tokens bytea[],
                                                   p_retention_ms bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_count integer := jsonb_array_length(p_reqs);
    v_answers jsonb[] := array_fill(NULL::jsonb, ARRAY[v_count]);
    v_now bigint := ticketing_now(p_now);
    v_events text[];
    ev events;
    v_run integer[] := '{}';
    v_req jsonb;
    i integer;
BEGIN
    v_events := ARRAY(SELECT DISTINCT r->>'event' FROM jsonb_array_elements(p_reqs) AS r ORDER BY 1);
    PERFORM 1 FROM events WHERE id = ANY (v_events) ORDER BY id FOR UPDATE;
    IF cardinality(v_events) = 1 THEN
        SELECT * INTO ev FROM events WHERE id = v_events[1];
    END IF;
    FOR i IN 1 .. v_count LOOP
        v_req := p_reqs->(i - 1);
        IF ev.id IS NOT NULL AND v_req->>'client_reservation_id' IS NULL
           AND jsonb_typeof(v_req->'best_available') IS DISTINCT FROM 'object' THEN
            v_run := v_run || i;
            CONTINUE;
        END IF;
        IF cardinality(v_run) > 0 THEN
            v_answers := ticketing_reserve_run(v_now, ev, p_reqs, v_run, p_ids, p_tokens, v_answers);
            v_run := '{}';
        END IF;
        v_answers[i] := ticketing_reserve(v_now, v_req, p_ids[i], p_tokens[i], p_retention_ms);
    END LOOP;
    IF cardinality(v_run) > 0 THEN
        v_answers := ticketing_reserve_run(v_now, ev, p_reqs, v_run, p_ids, p_tokens, v_answers);
    END IF;
    RETURN to_jsonb(v_answers);
END
$$;

-- The availability snapshot in one round trip: lapsed holds finalized first (so the snapshot
-- and the log agree), then seats (layout order), pools and the last sequence number read by
-- one statement, one snapshot. No row when the event does not exist.
CREATE FUNCTION ticketing_availability(p_now bigint, p_event text)
RETURNS TABLE (seq bigint, seats smallint[], pool_ids text[], capacities integer[], helds integer[],
               solds integer[], blockeds integer[])
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ticketing_finalize_for_read(p_now, p_event);
    RETURN QUERY
    SELECT e.next_seq - 1,
           COALESCE((SELECT array_agg(s.status ORDER BY s.idx) FROM seats s WHERE s.event_id = e.id), '{}'),
           COALESCE((SELECT array_agg(p.pool_id ORDER BY p.idx) FROM pools p WHERE p.event_id = e.id), '{}'),
           COALESCE((SELECT array_agg(p.capacity ORDER BY p.idx) FROM pools p WHERE p.event_id = e.id), '{}'),
           COALESCE((SELECT array_agg(p.held ORDER BY p.idx) FROM pools p WHERE p.event_id = e.id), '{}'),
           COALESCE((SELECT array_agg(p.sold ORDER BY p.idx) FROM pools p WHERE p.event_id = e.id), '{}'),
           COALESCE((SELECT array_agg(p.blocked ORDER BY p.idx) FROM pools p WHERE p.event_id = e.id), '{}')
    FROM events e WHERE e.id = p_event;
END
$$;
