-- Commit runs whose seats are found by primary key on a schema without statistics.
--
-- 0012's run sold its seats with a join from the run's reservations to seats on (event_id,
-- idx). In a fresh schema (no statistics yet) the planner probed seats by event id alone on
-- one of 0009's free-seat indexes and filtered every seat of the event for each reservation
-- (auto_explain: 10 million rows, 4.9 s for a run of 200 commits, in pg_bench's reserve +
-- commit case). The same function, the seats now updated per event with `idx = ANY`; the
-- rest is unchanged.

CREATE OR REPLACE FUNCTION ticketing_commit_run(p_now bigint, p_run integer[], p_ids text[], p_reqs jsonb, p_orders text[],
                                     INOUT p_answers jsonb[])
LANGUAGE plpgsql
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
AS $$
DECLARE
    v_rsv text[] := ARRAY(SELECT p_ids[p] FROM unnest(p_run) AS p);
    v_done integer[];
    v_docs jsonb[];
    v_event text;
    v_seats integer[];
    k integer;
BEGIN
    -- Every held seat sold, per event (a run almost always has one): the event a constant and
    -- the seats an array, so the seats are primary-key probes whatever the planner knows.
    FOR v_event, v_seats IN
        SELECT r.event_id, array_agg(x.idx)
        FROM unnest(v_rsv) AS w (id)
        JOIN reservations r ON r.id = w.id,
             unnest(r.seat_idx) AS x (idx)
        GROUP BY r.event_id
    LOOP
        UPDATE seats SET status = 2, reservation_id = NULL, hold_expires_at = NULL
        WHERE event_id = v_event AND idx = ANY (v_seats);
    END LOOP;
    -- Every held unit moved from held to sold.
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
