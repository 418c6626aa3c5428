-- Set-based commit batches.
--
-- Migration 0011 runs a batch's commits one after the other in one transaction: one flush,
-- but still some fifteen statements a commit (~1.7 ms of the event's row each, measured with
-- track_functions in a flash sale). The common commit - every item of a live hold, a first
-- use of its idempotency key, an event without a waitlist - needs none of the checks that
-- make commits differ, so consecutive such commits of a batch form a run written with one
-- statement per table for the whole run, as 0006 does for reserves. Any other commit (a
-- partial one, a repeat of a key, a lapsed hold, a wrong token, an unknown reservation, an
-- event with a waitlist, a reservation or key the current run already has) first writes the
-- run so far, then runs ticketing_commit exactly as a call of its own would: answers are
-- those of the commits one after the other.
--
-- A run's time is read before its commits are checked (after the locks, and again after each
-- commit run on its own): its commits happen at that instant.

-- Writes a run of full commits (positions p_run into the batch; their reservations, already
-- checked live, locked and not repeated) and sets their answers.
CREATE FUNCTION ticketing_commit_run(p_now bigint, p_run integer[], p_ids text[], p_reqs jsonb, p_orders text[],
                                     INOUT p_answers jsonb[])
LANGUAGE plpgsql
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
AS $$
DECLARE
    v_rsv text[] := ARRAY(SELECT p_ids[p] FROM unnest(p_run) AS p);
    v_done integer[];
    v_docs jsonb[];
    k integer;
BEGIN
    -- Every held seat sold, every held unit moved from held to sold.
    UPDATE seats s SET status = 2, reservation_id = NULL, hold_expires_at = NULL
    FROM (SELECT r.event_id, x.idx
          FROM unnest(v_rsv) AS w (id)
          JOIN reservations r ON r.id = w.id,
               unnest(r.seat_idx) AS x (idx)) t
    WHERE s.event_id = t.event_id AND s.idx = t.idx;
    UPDATE pools q SET held = q.held - t.qty, sold = q.sold + t.qty
    FROM (SELECT r.event_id, x.idx, sum(x.qty)::integer AS qty
          FROM unnest(v_rsv) AS w (id)
          JOIN reservations r ON r.id = w.id,
               unnest(r.pool_idx, r.pool_qty) AS x (idx, qty)
          GROUP BY r.event_id, x.idx) t
    WHERE q.event_id = t.event_id AND q.idx = t.idx;
    INSERT INTO orders (id, event_id, reservation, holder, payment_id, created_at)
    SELECT p_orders[a.pos], r.event_id, r.id, r.holder, p_reqs->(a.pos - 1)->>'payment_id', p_now
    FROM unnest(p_run) AS a (pos)
    JOIN reservations r ON r.id = p_ids[a.pos];
    -- Tickets in the reservation's order: its seats, then its GA units.
    INSERT INTO tickets (id, order_id, position, event_id, holder, item_kind, item_id, item_idx, code)
    SELECT 'tkt_' || replace(gen_random_uuid()::text, '-', ''), items.order_id, items.position, items.event_id,
           items.holder, items.kind, items.item_id, items.idx, upper(replace(gen_random_uuid()::text, '-', ''))
    FROM (
        SELECT all_items.order_id, all_items.event_id, all_items.holder, all_items.kind, all_items.item_id,
               all_items.idx,
               row_number() OVER (PARTITION BY all_items.order_id
                                  ORDER BY all_items.part, all_items.ord, all_items.unit) AS position
        FROM (
            SELECT p_orders[a.pos] AS order_id, r.event_id, r.holder, 1 AS part, s.ord, 1 AS unit,
                   's'::"char" AS kind, s.id AS item_id, s.idx
            FROM unnest(p_run) AS a (pos)
            JOIN reservations r ON r.id = p_ids[a.pos],
                 unnest(r.seat_ids, r.seat_idx) WITH ORDINALITY AS s (id, idx, ord)
            UNION ALL
            SELECT p_orders[a.pos], r.event_id, r.holder, 2, g.ord, u.unit, 'p'::"char", g.id, g.idx
            FROM unnest(p_run) AS a (pos)
            JOIN reservations r ON r.id = p_ids[a.pos],
                 unnest(r.pool_ids, r.pool_idx, r.pool_qty) WITH ORDINALITY AS g (id, idx, qty, ord),
                 generate_series(1, g.qty) AS u (unit)
        ) all_items
    ) items;
    -- The change ticketing_commit_fresh logs for a full commit, one per commit, numbered per
    -- event in batch order from the event's next sequence number.
    WITH counts AS (
        SELECT r.event_id, count(*)::bigint AS n
        FROM unnest(v_rsv) AS w (id) JOIN reservations r ON r.id = w.id
        GROUP BY r.event_id
    ), firsts AS (
        UPDATE events e SET next_seq = e.next_seq + counts.n
        FROM counts WHERE e.id = counts.event_id
        RETURNING e.id, e.next_seq - counts.n AS first
    )
    INSERT INTO changes (event_id, seq, at, kind)
    SELECT r.event_id,
           firsts.first + row_number() OVER (PARTITION BY r.event_id ORDER BY a.ord) - 1,
           p_now,
           jsonb_build_object(
               'type', 'committed', 'reservation', r.id, 'order', p_orders[a.pos],
               'seats', to_jsonb(r.seat_ids), 'ga', ticketing_ga_json(r.pool_ids, r.pool_qty),
               'released_seats', '[]'::jsonb, 'released_ga', '[]'::jsonb, 'after_expiry', false)
    FROM unnest(p_run) WITH ORDINALITY AS a (pos, ord)
    JOIN reservations r ON r.id = p_ids[a.pos]
    JOIN firsts ON firsts.id = r.event_id;
    -- The idempotency records, as ticketing_commit writes them (an expired record is replaced).
    INSERT INTO commit_records (event_id, idempotency_key, made_at, request, outcome)
    SELECT r.event_id, p_reqs->(a.pos - 1)->>'idempotency_key', p_now,
           jsonb_build_object('reservation_id', r.id, 'payment_id', p_reqs->(a.pos - 1)->'payment_id',
                              'seats', p_reqs->(a.pos - 1)->'seats', 'ga', p_reqs->(a.pos - 1)->'ga'),
           jsonb_build_object('ok', p_orders[a.pos])
    FROM unnest(p_run) AS a (pos)
    JOIN reservations r ON r.id = p_ids[a.pos]
    ON CONFLICT (event_id, idempotency_key) DO UPDATE
        SET made_at = EXCLUDED.made_at, request = EXCLUDED.request, outcome = EXCLUDED.outcome;
    UPDATE reservations r SET status = 1, order_id = p_orders[a.pos]
    FROM unnest(p_run) AS a (pos)
    WHERE r.id = p_ids[a.pos];
    SELECT array_agg(a.pos), array_agg(jsonb_build_object('ok', ticketing_order_json(p_orders[a.pos])))
    INTO v_done, v_docs
    FROM unnest(p_run) AS a (pos);
    FOR k IN 1 .. cardinality(v_done) LOOP
        p_answers[v_done[k]] := v_docs[k];
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION ticketing_commit_batch(p_now bigint, p_ids text[], p_tokens bytea[], p_reqs jsonb,
                                                  p_orders text[], p_retention_ms bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_count integer := COALESCE(cardinality(p_ids), 0);
    v_answers jsonb[] := array_fill(NULL::jsonb, ARRAY[v_count]);
    v_now bigint;
    v_run integer[] := '{}';
    -- The run's reservations and (event, idempotency key) pairs: a commit naming one again
    -- must see the run written.
    v_run_rsv text[] := '{}';
    v_run_keys text[] := '{}';
    v_no_waitlist text[];
    v_req jsonb;
    v_key text;
    r reservations;
    v_fast boolean;
    i integer;
BEGIN
    -- As 0011: every event the batch names locked first, in id order.
    PERFORM 1 FROM events
    WHERE id = ANY (ARRAY(SELECT (SELECT x.event_id FROM reservations x WHERE x.id = w.id)
                          FROM unnest(p_ids) AS w (id)))
    ORDER BY id FOR UPDATE;
    v_now := ticketing_now(p_now);
    v_no_waitlist := ARRAY(SELECT e.id FROM events e
                           WHERE e.id = ANY (ARRAY(SELECT (SELECT x.event_id FROM reservations x WHERE x.id = w.id)
                                                   FROM unnest(p_ids) AS w (id)))
                             AND NOT ticketing_has_waitlist(e.policy));
    FOR i IN 1 .. v_count LOOP
        v_req := p_reqs->(i - 1);
        SELECT * INTO r FROM reservations WHERE id = p_ids[i] FOR UPDATE;
        v_fast := FOUND;
        IF v_fast THEN
            v_key := r.event_id || E'\x1f' || (v_req->>'idempotency_key');
            v_fast := r.token_hash = sha256(p_tokens[i]) AND r.status = 0 AND r.expires_at > v_now
                AND r.event_id = ANY (v_no_waitlist)
                AND jsonb_typeof(v_req->'seats') IS DISTINCT FROM 'array'
                AND jsonb_typeof(v_req->'ga') IS DISTINCT FROM 'array'
                AND NOT r.id = ANY (v_run_rsv) AND NOT v_key = ANY (v_run_keys)
                AND NOT EXISTS (SELECT 1 FROM commit_records c
                                WHERE c.event_id = r.event_id AND c.idempotency_key = v_req->>'idempotency_key'
                                  AND v_now - c.made_at < p_retention_ms);
        END IF;
        IF v_fast THEN
            v_run := v_run || i;
            v_run_rsv := v_run_rsv || r.id;
            v_run_keys := v_run_keys || v_key;
            CONTINUE;
        END IF;
        IF cardinality(v_run) > 0 THEN
            v_answers := ticketing_commit_run(v_now, v_run, p_ids, p_reqs, p_orders, v_answers);
            v_run := '{}';
            v_run_rsv := '{}';
            v_run_keys := '{}';
        END IF;
        v_answers[i] := ticketing_commit(p_now, p_ids[i], p_tokens[i], v_req, p_orders[i], p_retention_ms);
        -- Later runs never log a time before this commit's.
        v_now := ticketing_now(p_now);
    END LOOP;
    IF cardinality(v_run) > 0 THEN
        v_answers := ticketing_commit_run(v_now, v_run, p_ids, p_reqs, p_orders, v_answers);
    END IF;
    RETURN to_jsonb(v_answers);
END
$$;
