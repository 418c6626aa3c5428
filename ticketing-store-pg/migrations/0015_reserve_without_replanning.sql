-- A plain reserve without the planning it did on every call.
--
-- Profiled with pg_stat_statements (track = all, track_planning = on) while pgbench ran the
-- store's single-seat reserve at 8 clients: of ~440 us per call, the shared path's first
-- statement took 133 us, half of it planning. ticketing_ga_lapsed was a SQL function its
-- planner could not inline (it has a FROM clause), so each call parsed and planned its body
-- again - a SQL function keeps its plan only for the statement that calls it. Now:
--
-- - ticketing_ga_lapsed is plpgsql, whose plans are kept for the session, and the shared
--   path asks it only when the event has a lapsed hold at all (the first entry of the lapse
--   index, read in the same statement as everything else): most calls have none.
-- - A single-seat reserve refused because its seat is taken answers from its UPDATE, which
--   found the seat not free in the statement's snapshot, instead of reading the seat again
--   with a query planned anew on each call (a flash sale refuses most requests).
-- - The client id check is skipped without a statement when there is no client id.
-- - ticketing_ga_json, which every reserve with GA units calls twice (its change and its
--   answer), was a SQL function aggregating over an unnest: planned on every call too. It
--   is plpgsql now, its loop made of simple expressions.
-- - A striped pool's common case, taking units from a stripe with room that nobody holds,
--   is one statement instead of two.
--
-- pgbench on the store's statement, synchronous_commit off (so the two cores are the
-- limit), interleaved runs: a single-seat reserve at 8 clients ~3,600 -> ~5,300 calls/s; a
-- GA unit from a pool striped 32 ways at 32 clients ~1,770 -> ~2,280.

CREATE OR REPLACE FUNCTION ticketing_ga_lapsed(p_event text, p_now bigint) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
    -- The lapses in index order, the first thousand at most: lapses pile up only without a
    -- sweeper (a generic plan of a plain range test read every live hold).
    RETURN EXISTS (SELECT 1 FROM (SELECT x.pool_idx FROM reservations x
                                  WHERE x.event_id = p_event AND x.status = 0 AND x.expires_at <= p_now
                                  ORDER BY x.expires_at LIMIT 1000) l
                   WHERE cardinality(l.pool_idx) > 0);
END
$$;

-- Migration 0014's, but for the three points above.
CREATE OR REPLACE FUNCTION ticketing_reserve_shared(p_now bigint, p_req jsonb, p_id text, p_token bytea)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    -- Few statements on purpose: at a reserve's size, each costs about as much as a write.
    ev record;
    v_now bigint;
    v_ttl bigint;
    v_holder text := p_req->>'holder';
    v_client text := p_req->>'client_reservation_id';
    v_count integer;
    v_items bigint;
    v_taken text[];
    v_answer jsonb;
    p record;
BEGIN
    IF p_req->'best_available' IS NOT NULL AND jsonb_typeof(p_req->'best_available') <> 'null' THEN
        RETURN NULL;
    END IF;
    -- The event and every seat and pool looked up by its unique key (one index probe each,
    -- as the exclusive path: unknown ones are its not_found).
    SELECT e.id, e.policy, e.sale_opens_at, e.sale_closes_at,
           ARRAY(SELECT w.id FROM jsonb_array_elements_text(p_req->'seats') WITH ORDINALITY AS w (id, ord)
                 ORDER BY w.ord) AS seat_ids,
           ARRAY(SELECT (SELECT s.idx FROM seats s WHERE s.event_id = e.id AND s.seat_id = w.id)
                 FROM jsonb_array_elements_text(p_req->'seats') WITH ORDINALITY AS w (id, ord)
                 ORDER BY w.ord) AS seat_idx,
           ARRAY(SELECT g->>'pool' FROM jsonb_array_elements(p_req->'ga') WITH ORDINALITY AS w (g, ord)
                 ORDER BY w.ord) AS pool_ids,
           ARRAY(SELECT (SELECT q.idx FROM pools q WHERE q.event_id = e.id AND q.pool_id = g->>'pool')
                 FROM jsonb_array_elements(p_req->'ga') WITH ORDINALITY AS w (g, ord)
                 ORDER BY w.ord) AS pool_idx,
           ARRAY(SELECT (g->>'quantity')::integer FROM jsonb_array_elements(p_req->'ga') WITH ORDINALITY AS w (g, ord)
                 ORDER BY w.ord) AS pool_qty,
           (SELECT x.expires_at FROM reservations x WHERE x.event_id = e.id AND x.status = 0
            ORDER BY x.expires_at LIMIT 1) <= ticketing_now(p_now) AS lapsed
    INTO ev
    FROM events e WHERE e.id = p_req->>'event';
    IF ev.id IS NULL OR ticketing_has_waitlist(ev.policy)
       OR array_position(ev.seat_idx, NULL) IS NOT NULL OR array_position(ev.pool_idx, NULL) IS NOT NULL THEN
        RETURN NULL;
    END IF;
    -- Lapsed holds with GA units are finalized under the exclusive lock: releasing their
    -- units holds their pools' rows, which reserves beside this one may be waiting for while
    -- they hold seats this one would then wait for. Looked for only when a hold has lapsed
    -- (the index's first entry, above): most calls have none.
    IF ev.lapsed THEN
        IF ticketing_ga_lapsed(ev.id, ticketing_now(p_now)) THEN
            RETURN NULL;
        END IF;
    END IF;
    v_ttl := COALESCE((p_req->>'ttl_seconds')::bigint, (ev.policy->>'reservation_ttl_seconds')::bigint);
    IF v_ttl > (ev.policy->>'reservation_ttl_seconds_max')::bigint THEN
        RETURN NULL;
    END IF;
    -- A repeated client reservation id: the exclusive path answers from its record. (One
    -- recorded from now on makes this reserve's own record insert fail: see there.)
    IF v_client IS NOT NULL THEN
        IF EXISTS (SELECT 1 FROM reserve_records c WHERE c.event_id = ev.id AND c.client_reservation_id = v_client) THEN
            RETURN NULL;
        END IF;
    END IF;
    -- From here on only a GA request returns NULL (its caller runs it in a subtransaction);
    -- anything else answers or raises.
    PERFORM pg_advisory_xact_lock_shared(ticketing_event_lock_key(ev.id));
    -- Read once the lock is held, as the exclusive path reads it once the event is locked.
    v_now := ticketing_now(p_now);
    -- From here on every refusal is the exclusive path's answer in its order (the checks
    -- before it passed, nothing is written yet), so it is answered here: a flash sale
    -- refuses most requests, and through the exclusive lock each would wait for every
    -- reserve in flight.
    IF ev.sale_opens_at IS NOT NULL AND v_now < ev.sale_opens_at THEN
        RETURN ticketing_reserve_refused(ev.id, v_client, v_now, p_req, ticketing_error('not_on_sale',
            jsonb_build_object('opens_at', ev.sale_opens_at, 'closed_at', NULL)));
    END IF;
    IF ev.sale_closes_at IS NOT NULL AND v_now >= ev.sale_closes_at THEN
        RETURN ticketing_reserve_refused(ev.id, v_client, v_now, p_req, ticketing_error('not_on_sale',
            jsonb_build_object('opens_at', NULL, 'closed_at', ev.sale_closes_at)));
    END IF;
    -- Lapsed holds are free: finalized (and logged) first, as the exclusive path does. The
    -- earliest lapse is read off the index's first entry: the cached generic plans of
    -- EXISTS (... expires_at <= v_now) and of min(expires_at) read every live reservation
    -- of the event (seen: 3.6 to 7 ms a call at 5,000 to 18,000 of them). Finalizing logs
    -- with sequence numbers, so it takes the event's row (after the shared lock, as every
    -- operation that may run beside these takes it first: no cycle), until commit.
    -- Only seat holds lapse here (see above), unless one with GA units lapsed since the first
    -- look: a GA request then falls back; a seats-only one finalizes it (a deadlock it may so
    -- run into is retried).
    IF (SELECT x.expires_at FROM reservations x WHERE x.event_id = ev.id AND x.status = 0
        ORDER BY x.expires_at LIMIT 1) <= v_now THEN
        IF cardinality(ev.pool_idx) > 0 AND ticketing_ga_lapsed(ev.id, v_now) THEN
            RETURN NULL;
        END IF;
        PERFORM 1 FROM events WHERE id = ev.id FOR UPDATE;
        PERFORM ticketing_finalize_lapsed(ev.id, v_now);
    END IF;
    IF ev.policy->>'holder_reservations_max' IS NOT NULL OR ev.policy->>'holder_seats_max' IS NOT NULL THEN
        -- A holder's reserves run one at a time, so racing ones cannot pass its limits
        -- together (transfers, the other way to gain items, take the exclusive lock).
        PERFORM pg_advisory_xact_lock(hashtext(current_schema() || '.' || ev.id), hashtext(v_holder));
        SELECT count(*), COALESCE(sum(cardinality(x.seat_idx)
                                      + COALESCE((SELECT sum(q) FROM unnest(x.pool_qty) q), 0)), 0)
        INTO v_count, v_items
        FROM reservations x WHERE x.event_id = ev.id AND x.holder = v_holder AND x.status = 0;
        IF v_count + 1 > COALESCE((ev.policy->>'holder_reservations_max')::integer, v_count + 1) THEN
            RETURN ticketing_reserve_refused(ev.id, v_client, v_now, p_req, ticketing_error('limit_exceeded',
                jsonb_build_object('limit', 'reservations', 'max', (ev.policy->>'holder_reservations_max')::integer)));
        END IF;
        IF ev.policy->>'holder_seats_max' IS NOT NULL
           AND v_items + ticketing_owned_items(ev.id, v_holder) + cardinality(ev.seat_ids)
               + COALESCE((SELECT sum(q) FROM unnest(ev.pool_qty) q), 0)
               > (ev.policy->>'holder_seats_max')::bigint THEN
            RETURN ticketing_reserve_refused(ev.id, v_client, v_now, p_req, ticketing_error('limit_exceeded',
                jsonb_build_object('limit', 'seats', 'max', (ev.policy->>'holder_seats_max')::integer)));
        END IF;
    END IF;
    -- Seats: taken only if every one is free; several are locked in index order first, so
    -- racing reserves of overlapping seats cannot deadlock.
    IF cardinality(ev.seat_idx) = 1 THEN
        UPDATE seats SET status = 1, reservation_id = p_id, hold_expires_at = v_now + v_ttl * 1000
        WHERE event_id = ev.id AND idx = ev.seat_idx[1] AND status = 0;
        GET DIAGNOSTICS v_count = ROW_COUNT;
    ELSIF cardinality(ev.seat_idx) > 1 THEN
        SELECT count(*) INTO v_count FROM (
            SELECT 1 FROM seats s WHERE s.event_id = ev.id AND s.idx = ANY (ev.seat_idx) AND s.status = 0
            ORDER BY s.idx FOR UPDATE) AS free;
        IF v_count = cardinality(ev.seat_idx) THEN
            UPDATE seats SET status = 1, reservation_id = p_id, hold_expires_at = v_now + v_ttl * 1000
            WHERE event_id = ev.id AND idx = ANY (ev.seat_idx);
        END IF;
    END IF;
    IF cardinality(ev.seat_idx) > 0 AND v_count < cardinality(ev.seat_idx) THEN
        -- The seats held, sold or blocked now, in request order (none lapsed, see above),
        -- as the exclusive path answers.
        IF cardinality(ev.seat_idx) = 1 THEN
            -- Its one UPDATE found it taken in the statement's snapshot, as a read would.
            v_taken := ev.seat_ids;
        ELSE
            v_taken := ARRAY(SELECT w.id FROM unnest(ev.seat_ids, ev.seat_idx) WITH ORDINALITY AS w (id, idx, ord)
                             WHERE (SELECT s.status FROM seats s WHERE s.event_id = ev.id AND s.idx = w.idx) <> 0
                             ORDER BY w.ord);
        END IF;
        IF cardinality(v_taken) = 0 THEN
            -- Freed between the two reads: the caller retries the whole call.
            RAISE EXCEPTION 'a seat was freed while being reserved' USING ERRCODE = '40001';
        END IF;
        RETURN ticketing_reserve_refused(ev.id, v_client, v_now, p_req,
            ticketing_error('seat_unavailable', jsonb_build_object('seats', to_jsonb(v_taken))));
    END IF;
    -- GA: single-row pools first (their rows are waited for), then striped ones (never waited
    -- for while a stripe is held), each in pool order.
    IF cardinality(ev.pool_idx) > 0 THEN
        FOR p IN SELECT w.idx, w.qty, q.stripes FROM unnest(ev.pool_idx, ev.pool_qty) AS w (idx, qty)
                 JOIN pools q ON q.event_id = ev.id AND q.idx = w.idx
                 ORDER BY q.stripes > 1, w.idx
        LOOP
            IF p.stripes > 1 THEN
                -- The hash widened first: abs() of the smallest integer is out of range.
                IF NOT ticketing_take_striped(ev.id, p.idx, p.stripes, p.qty,
                                              (abs(hashtext(p_id)::bigint) % p.stripes)::integer,
                                              cardinality(ev.pool_idx) = 1) THEN
                    RETURN NULL;
                END IF;
            ELSE
                UPDATE pools SET held = held + p.qty
                WHERE event_id = ev.id AND idx = p.idx AND capacity - held - sold - blocked - striped >= p.qty;
                IF NOT FOUND THEN
                    RETURN NULL;
                END IF;
            END IF;
        END LOOP;
    END IF;
    -- The reservation, its change (numbered later) and its record, in one statement.
    WITH made AS (
        INSERT INTO reservations (id, event_id, holder, status, seat_ids, seat_idx, pool_ids, pool_idx,
                                  pool_qty, created_at, expires_at, token_hash, client_reservation_id)
        VALUES (p_id, ev.id, v_holder, 0, ev.seat_ids, ev.seat_idx, ev.pool_ids, ev.pool_idx, ev.pool_qty,
                v_now, v_now + v_ttl * 1000, sha256(p_token), v_client)
        RETURNING *
    ), logged AS (
        INSERT INTO pending_changes (event_id, at, kind)
        SELECT made.event_id, v_now, jsonb_build_object(
            'type', 'reserved', 'reservation', made.id, 'holder', made.holder,
            'seats', to_jsonb(made.seat_ids),
            'ga', CASE WHEN cardinality(made.pool_ids) = 0 THEN '[]'::jsonb
                       ELSE ticketing_ga_json(made.pool_ids, made.pool_qty) END,
            'expires_at', made.expires_at)
        FROM made
    ), recorded AS (
        INSERT INTO reserve_records (event_id, client_reservation_id, made_at, request, outcome)
        SELECT made.event_id, v_client, v_now, p_req, jsonb_build_object('ok', made.id)
        FROM made WHERE v_client IS NOT NULL
        ON CONFLICT DO NOTHING
        RETURNING 1
    )
    SELECT jsonb_build_object('ok', ticketing_reservation_json(made::reservations, v_now)),
           (SELECT count(*) FROM recorded)
    INTO v_answer, v_count
    FROM made;
    IF v_client IS NOT NULL AND v_count = 0 THEN
        PERFORM ticketing_client_id_raced();
    END IF;
    RETURN v_answer;
END
$$;

-- Migration 0002's answer, the same JSON.
CREATE OR REPLACE FUNCTION ticketing_ga_json(p_pool_ids text[], p_qty integer[]) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_items jsonb := '[]';
BEGIN
    FOR i IN 1 .. COALESCE(GREATEST(cardinality(p_pool_ids), cardinality(p_qty)), 0) LOOP
        v_items := v_items || jsonb_build_array(jsonb_build_object('pool', p_pool_ids[i], 'quantity', p_qty[i]));
    END LOOP;
    RETURN v_items;
END
$$;

-- Migration 0014's (see there), with the common case in one statement.
CREATE OR REPLACE FUNCTION ticketing_take_striped(p_event text, p_pool_idx integer, p_stripes integer, p_qty integer,
                                       p_start integer, p_may_wait boolean)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_stripe smallint;
    v_room boolean;
    v_chunk integer;
BEGIN
    -- The common case, one statement: the stripe is locked by the subquery (which rechecks
    -- its room on the row's latest version) and then taken from.
    UPDATE pool_stripes s SET taken = s.taken + p_qty
    WHERE s.event_id = p_event AND s.pool_idx = p_pool_idx
      AND s.stripe = (SELECT c.stripe FROM pool_stripes c
                      WHERE c.event_id = p_event AND c.pool_idx = p_pool_idx AND c.quota - c.taken >= p_qty
                      ORDER BY (c.stripe + p_stripes - p_start) % p_stripes
                      LIMIT 1 FOR UPDATE SKIP LOCKED);
    IF FOUND THEN
        RETURN true;
    END IF;
    -- Every stripe with room is in use: queue for this reserve's own stripe.
    SELECT quota - taken >= p_qty INTO v_room FROM pool_stripes
    WHERE event_id = p_event AND pool_idx = p_pool_idx AND stripe = p_start
    FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    v_stripe := p_start;
    IF NOT v_room THEN
        -- A chunk of an eighth of the pool's capacity per stripe (at least the request,
        -- at most what is free): refills are rare, and the last units still reach every
        -- stripe.
        IF p_may_wait THEN
            SELECT LEAST(capacity - held - sold - blocked - striped, GREATEST(p_qty, capacity / (8 * p_stripes)))
            INTO v_chunk
            FROM pools WHERE event_id = p_event AND idx = p_pool_idx FOR NO KEY UPDATE;
        ELSE
            SELECT LEAST(capacity - held - sold - blocked - striped, GREATEST(p_qty, capacity / (8 * p_stripes)))
            INTO v_chunk
            FROM pools WHERE event_id = p_event AND idx = p_pool_idx FOR NO KEY UPDATE SKIP LOCKED;
        END IF;
        IF v_chunk IS NULL OR v_chunk < p_qty THEN
            RETURN false;
        END IF;
        UPDATE pools SET striped = striped + v_chunk WHERE event_id = p_event AND idx = p_pool_idx;
        UPDATE pool_stripes SET quota = quota + v_chunk
        WHERE event_id = p_event AND pool_idx = p_pool_idx AND stripe = v_stripe;
    END IF;
    UPDATE pool_stripes SET taken = taken + p_qty
    WHERE event_id = p_event AND pool_idx = p_pool_idx AND stripe = v_stripe;
    RETURN true;
END
$$;
