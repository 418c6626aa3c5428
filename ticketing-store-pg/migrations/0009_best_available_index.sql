-- Best available from indexes: picking N seats reads about N free seats, not every seat.
--
-- Until now reserve's best-available query (migration 0008) read every free seat of the
-- event and sorted them twice in window functions to find runs of adjacent numbers: 131 ms
-- per call on a 50,000-seat event during the flash-sale load generator, inside a reserve
-- batch that holds the event's row lock, so every commit and cancel of the event queued
-- behind it. The waitlist's ticketing_best_seats (0008) repeated the same query.
--
-- Now:
-- - Four indexes hold the free seats (status 0) of an event in layout order, of a section
--   or a category in layout order, and of a row in number order. A lapsed hold keeps status
--   1 until it is finalized, and every caller of the picker finalizes lapsed holds first (as
--   before), so status 0 is exactly "free" where it matters.
-- - One picker, ticketing_pick_seats, walks the candidates in layout order on the index that
--   matches the request's filters and stops at the answer: the first `count` candidates, or
--   the first candidate that starts a run of `count` consecutive numbers among the
--   candidates of its row. The reference model's definition (ticketing-core's testkit
--   model.rs, best_available), step for step; 0008's query answered the same.
-- - Reserve and the waitlist's serve step both pick through it; ticketing_seat_candidates
--   counts the candidates for sold_out's `remaining`, on the same indexes.
--
-- Why the keys are ticketing_if_free(status, column), NULL unless the seat is free, rather
-- than partial indexes (`WHERE status = 0`) or `status` as a key column: the statements of
-- earlier migrations must keep their plans, and both alternatives took them away while the
-- table had no statistics (every fresh schema, and servers without autovacuum), as
-- examples/pg_bench.rs showed:
-- - The planner takes a partial index's size from its last VACUUM or ANALYZE, so one built
--   on an empty table looks empty and free to scan; and commit's `UPDATE seats ... WHERE
--   event_id = $1 AND idx = ANY ('{}')` (no seat released: every commit) proves any index
--   predicate, an `= ANY` of nothing being false. It read the event's free seats through a
--   partial index, 13 ms a commit, and reserve + commit ran at a third to a half its rate.
-- - With (event_id, status, ...) keys, ticketing_release's `WHERE event_id = $1 AND idx =
--   ANY ($2) AND reservation_id = $3 AND status = 1` took one of them and read every held
--   seat of the event for each cancel.
-- No statement of an earlier migration names ticketing_if_free, so these indexes offer it
-- only event_id, where the primary key offers as much or more.
--
-- Costs, written down so nobody is surprised:
-- - An index on `status` makes every seat update non-HOT: each status change adds an entry
--   to each of the seats' six indexes. In examples/pg_bench.rs single-seat reserves and
--   reserve + commit stay within the run's noise; a set-based reserve batch spends about a
--   tenth more CPU per seat.
-- - An adjacent request checks one short range of seats_free_row per candidate before the
--   first run in layout order. When free seats are many but no run fits (every other seat
--   sold, say), it checks them all: about twice what 0008's query cost, which it paid on
--   every request.
-- - CREATE INDEX (not CONCURRENTLY: migrations run in one transaction under a lock) blocks
--   writes to seats while it builds; on a large existing table, migrate off-peak.

-- p_value when the seat is free (status 0), else NULL: the key of the indexes below, so that
-- only the statements that name it use them. Plain SQL and IMMUTABLE: the planner inlines it
-- into index definitions and queries alike, which then match.
CREATE FUNCTION ticketing_if_free(p_status smallint, p_value anyelement) RETURNS anyelement
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p_status = 0 THEN p_value END
$$;

-- The free seats of an event in layout order: best available without filters, the count.
CREATE INDEX seats_free ON seats (event_id, ticketing_if_free(status, idx));
-- The free seats of a section in layout order.
CREATE INDEX seats_free_section
ON seats (event_id, ticketing_if_free(status, section), ticketing_if_free(status, idx));
-- The free seats of a category in layout order (a category asked for without a section).
CREATE INDEX seats_free_category
ON seats (event_id, ticketing_if_free(status, category), ticketing_if_free(status, idx));
-- A row's free seats by number: whether a candidate starts a run, and the run. The row is
-- one key, ARRAY[event, section, row] (in "C": equality is the same in every deterministic
-- collation), so that no other index shares a column with this lookup: keyed by the three
-- columns, it shared (event_id, section) with seats_free_section, and without statistics
-- the planner costed both at one row, took that one, and read the section's free seats for
-- each candidate of the walk.
CREATE INDEX seats_free_row
ON seats (ticketing_if_free(status, ARRAY[event_id, section, row_name] COLLATE "C"), number);

-- The candidates of one row numbered p_number .. p_number + p_count - 1: the run of p_count
-- adjacent seats that starts at p_number when there are p_count of them (numbers are unique
-- in a row). Plain SQL and STABLE, so the planner inlines it into its callers: a range of
-- seats_free_row, no function call per candidate.
CREATE FUNCTION ticketing_seat_run(p_event text, p_section text, p_row text, p_number bigint, p_count integer,
                                   p_category text, p_excluded integer[])
RETURNS TABLE (idx integer, number bigint)
LANGUAGE sql STABLE AS $$
    SELECT s.idx, s.number FROM seats s
    WHERE ticketing_if_free(s.status, ARRAY[s.event_id, s.section, s.row_name] COLLATE "C")
          = ARRAY[p_event, p_section, p_row]
      AND s.number >= p_number AND s.number < p_number + p_count
      AND (p_category IS NULL OR s.category = p_category) AND s.idx <> ALL (p_excluded)
$$;

-- Best available seats of the (locked, settled) event: candidates are its free seats, not
-- in p_excluded (the request's named seats), of p_section and of p_category when given.
-- Answers the first p_count candidates in layout order, or with p_adjacent the first
-- candidate in layout order that starts a run of p_count candidates (ticketing_seat_run),
-- that run in number order; NULL when the candidates cannot satisfy the request.
--
-- The walk is a cursor in layout order on the index that matches the filters, and stops at
-- the answer. There is one walk per filter combination because plans are cached: a single
-- `p_section IS NULL OR ...` would be planned once for every value, and could not use the
-- section's index. An adjacent request checks runs inside the scan (a range of
-- seats_free_row per candidate), so only a start leaves the executor.
--
-- The planner costs a walk as if it read every candidate, each with its run check, which
-- misleads it twice: past jit_above_cost it compiles the walk (25 ms, the walk takes well
-- under 1 ms), and it prefers planning each call anew to the cached plan, which is the same
-- plan. Each branch has one right plan (its index, in order), so: jit off, generic plans.
CREATE FUNCTION ticketing_pick_seats(p_event text, p_count integer, p_adjacent boolean, p_section text,
                                     p_category text, p_excluded integer[])
RETURNS integer[]
LANGUAGE plpgsql STABLE
SET jit = off
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_walk refcursor;
    v_cand record;
    v_picks integer[] := '{}';
BEGIN
    IF p_count < 1 THEN
        RETURN v_picks;
    END IF;
    IF p_section IS NOT NULL THEN
        OPEN v_walk NO SCROLL FOR
            SELECT c.idx, c.section, c.row_name, c.number FROM seats c
            WHERE c.event_id = p_event AND ticketing_if_free(c.status, c.section) = p_section
              AND (p_category IS NULL OR c.category = p_category) AND c.idx <> ALL (p_excluded)
              AND (NOT p_adjacent OR p_count = (SELECT count(*) FROM ticketing_seat_run(
                    p_event, c.section, c.row_name, c.number, p_count, p_category, p_excluded)))
            ORDER BY ticketing_if_free(c.status, c.idx);
    ELSIF p_category IS NOT NULL THEN
        OPEN v_walk NO SCROLL FOR
            SELECT c.idx, c.section, c.row_name, c.number FROM seats c
            WHERE c.event_id = p_event AND ticketing_if_free(c.status, c.category) = p_category
              AND c.idx <> ALL (p_excluded)
              AND (NOT p_adjacent OR p_count = (SELECT count(*) FROM ticketing_seat_run(
                    p_event, c.section, c.row_name, c.number, p_count, p_category, p_excluded)))
            ORDER BY ticketing_if_free(c.status, c.idx);
    ELSE
        OPEN v_walk NO SCROLL FOR
            SELECT c.idx, c.section, c.row_name, c.number FROM seats c
            WHERE c.event_id = p_event AND ticketing_if_free(c.status, c.idx) IS NOT NULL
              AND c.idx <> ALL (p_excluded)
              AND (NOT p_adjacent OR p_count = (SELECT count(*) FROM ticketing_seat_run(
                    p_event, c.section, c.row_name, c.number, p_count, p_category, p_excluded)))
            ORDER BY ticketing_if_free(c.status, c.idx);
    END IF;
    LOOP
        FETCH v_walk INTO v_cand;
        EXIT WHEN NOT FOUND;
        IF p_adjacent THEN
            v_picks := ARRAY(SELECT r.idx FROM ticketing_seat_run(p_event, v_cand.section, v_cand.row_name,
                                                                  v_cand.number, p_count, p_category, p_excluded) r
                             ORDER BY r.number);
        ELSE
            v_picks := v_picks || v_cand.idx;
        END IF;
        IF cardinality(v_picks) = p_count THEN
            CLOSE v_walk;
            RETURN v_picks;
        END IF;
    END LOOP;
    CLOSE v_walk;
    RETURN NULL;
END
$$;

-- How many candidates ticketing_pick_seats had (sold_out's `remaining`), counted on the
-- free-seat indexes. Only a refused request pays it, so it is planned for its values (the
-- section's index when it names one) rather than once for all.
CREATE FUNCTION ticketing_seat_candidates(p_event text, p_section text, p_category text, p_excluded integer[])
RETURNS integer
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_custom_plan
AS $$
BEGIN
    RETURN (SELECT count(*) FROM seats c
            WHERE c.event_id = p_event AND ticketing_if_free(c.status, c.idx) IS NOT NULL
              AND (p_section IS NULL OR ticketing_if_free(c.status, c.section) = p_section)
              AND (p_category IS NULL OR ticketing_if_free(c.status, c.category) = p_category)
              AND c.idx <> ALL (p_excluded));
END
$$;

-- The waitlist's picker (0008), kept for its callers: now the one picker above.
CREATE OR REPLACE FUNCTION ticketing_best_seats(p_event text, p_count integer, p_adjacent boolean, p_section text)
RETURNS integer[]
LANGUAGE sql STABLE AS $$
    SELECT ticketing_pick_seats(p_event, p_count, p_adjacent, p_section, NULL, '{}')
$$;

-- Migration 0008's, but for best available: the picker, and the count when it refuses.
CREATE OR REPLACE FUNCTION ticketing_reserve_fresh(p_now bigint, p_req jsonb, p_id text, p_token bytea, ev events)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_policy jsonb := ev.policy;
    v_ttl bigint := COALESCE((p_req->>'ttl_seconds')::bigint, (v_policy->>'reservation_ttl_seconds')::bigint);
    v_holder text := p_req->>'holder';
    v_seat_ids text[] := ARRAY(SELECT jsonb_array_elements_text(p_req->'seats'));
    v_seat_idx integer[];
    v_pool_ids text[] := ARRAY(SELECT g->>'pool' FROM jsonb_array_elements(p_req->'ga') g);
    v_pool_qty integer[] := ARRAY(SELECT (g->>'quantity')::integer FROM jsonb_array_elements(p_req->'ga') g);
    v_pool_idx integer[];
    v_missing text;
    v_taken text[];
    v_best jsonb := p_req->'best_available';
    v_best_count integer := COALESCE((v_best->>'count')::integer, 0);
    v_picks integer[] := '{}';
    v_live integer;
    v_items bigint;
    v_requested bigint;
    v_free bigint;
    p record;
    r reservations;
BEGIN
    IF v_ttl > (v_policy->>'reservation_ttl_seconds_max')::bigint THEN
        RETURN ticketing_error('invalid_request', jsonb_build_object('field', 'ttl_seconds',
            'reason', format('this event allows at most %s seconds', v_policy->>'reservation_ttl_seconds_max')));
    END IF;
    -- Unknown seats, then pools, first in request order. Every seat lookup below is a scalar
    -- subquery on a whole unique key, one index probe per seat: as a join, the planner may
    -- read every seat of the event instead (it does while the table has no statistics).
    v_seat_idx := ARRAY(SELECT (SELECT s.idx FROM seats s WHERE s.event_id = ev.id AND s.seat_id = w.id)
                        FROM unnest(v_seat_ids) WITH ORDINALITY AS w (id, ord) ORDER BY w.ord);
    SELECT v_seat_ids[w.ord] INTO v_missing FROM unnest(v_seat_idx) WITH ORDINALITY AS w (idx, ord)
    WHERE w.idx IS NULL ORDER BY w.ord LIMIT 1;
    IF v_missing IS NOT NULL THEN
        RETURN ticketing_error('not_found', jsonb_build_object('entity', 'seat', 'id', v_missing));
    END IF;
    SELECT w.id INTO v_missing FROM unnest(v_pool_ids) WITH ORDINALITY AS w (id, ord)
    WHERE NOT EXISTS (SELECT 1 FROM pools q WHERE q.event_id = ev.id AND q.pool_id = w.id)
    ORDER BY w.ord LIMIT 1;
    IF v_missing IS NOT NULL THEN
        RETURN ticketing_error('not_found', jsonb_build_object('entity', 'pool', 'id', v_missing));
    END IF;
    IF ev.sale_opens_at IS NOT NULL AND p_now < ev.sale_opens_at THEN
        RETURN ticketing_error('not_on_sale', jsonb_build_object('opens_at', ev.sale_opens_at, 'closed_at', NULL));
    END IF;
    IF ev.sale_closes_at IS NOT NULL AND p_now >= ev.sale_closes_at THEN
        RETURN ticketing_error('not_on_sale', jsonb_build_object('opens_at', NULL, 'closed_at', ev.sale_closes_at));
    END IF;
    -- Lapsed holds are free: finalize them before deciding.
    PERFORM ticketing_finalize_lapsed(ev.id, p_now);
    IF v_policy->>'holder_reservations_max' IS NOT NULL THEN
        SELECT count(*) INTO v_live FROM reservations
        WHERE event_id = ev.id AND holder = v_holder AND status = 0;
        IF ev.waiting > 0 THEN
            v_live := v_live + (SELECT entries FROM ticketing_waiting_claims(ev.id, v_holder));
        END IF;
        IF v_live + 1 > (v_policy->>'holder_reservations_max')::integer THEN
            RETURN ticketing_error('limit_exceeded', jsonb_build_object('limit', 'reservations',
                'max', (v_policy->>'holder_reservations_max')::integer));
        END IF;
    END IF;
    IF v_policy->>'holder_seats_max' IS NOT NULL THEN
        SELECT COALESCE(sum(cardinality(seat_idx) + COALESCE((SELECT sum(q) FROM unnest(pool_qty) q), 0)), 0)
        INTO v_items FROM reservations
        WHERE event_id = ev.id AND holder = v_holder AND status = 0;
        v_items := v_items + ticketing_owned_items(ev.id, v_holder);
        IF ev.waiting > 0 THEN
            v_items := v_items + (SELECT items FROM ticketing_waiting_claims(ev.id, v_holder));
        END IF;
        v_requested := cardinality(v_seat_ids)
            + COALESCE((SELECT sum(q) FROM unnest(v_pool_qty) q), 0) + v_best_count;
        IF v_items + v_requested > (v_policy->>'holder_seats_max')::bigint THEN
            RETURN ticketing_error('limit_exceeded', jsonb_build_object('limit', 'seats',
                'max', (v_policy->>'holder_seats_max')::integer));
        END IF;
    END IF;
    v_taken := ARRAY(SELECT w.id FROM unnest(v_seat_ids, v_seat_idx) WITH ORDINALITY AS w (id, idx, ord)
                     WHERE (SELECT s.status FROM seats s WHERE s.event_id = ev.id AND s.idx = w.idx) <> 0
                     ORDER BY w.ord);
    IF cardinality(v_taken) > 0 THEN
        RETURN ticketing_error('seat_unavailable', jsonb_build_object('seats', to_jsonb(v_taken)));
    END IF;
    v_pool_idx := ARRAY(SELECT q.idx FROM unnest(v_pool_ids) WITH ORDINALITY AS w (id, ord)
                        JOIN pools q ON q.event_id = ev.id AND q.pool_id = w.id ORDER BY w.ord);
    FOR p IN SELECT w.idx, w.qty, q.pool_id, q.capacity - q.held - q.sold - q.blocked AS free
             FROM unnest(v_pool_idx, v_pool_qty) WITH ORDINALITY AS w (idx, qty, ord)
             JOIN pools q ON q.event_id = ev.id AND q.idx = w.idx ORDER BY w.ord
    LOOP
        v_free := GREATEST(p.free, 0);
        IF p.qty > v_free THEN
            RETURN ticketing_error('sold_out', jsonb_build_object('pool', p.pool_id, 'remaining', v_free));
        END IF;
    END LOOP;
    IF v_best IS NOT NULL AND jsonb_typeof(v_best) = 'object' THEN
        v_picks := ticketing_pick_seats(ev.id, v_best_count, COALESCE((v_best->>'adjacent')::boolean, false),
                                        v_best->>'section', v_best->>'category', v_seat_idx);
        IF v_picks IS NULL THEN
            RETURN ticketing_error('sold_out', jsonb_build_object('pool', NULL, 'remaining',
                ticketing_seat_candidates(ev.id, v_best->>'section', v_best->>'category', v_seat_idx)));
        END IF;
        v_seat_idx := v_seat_idx || v_picks;
        v_seat_ids := v_seat_ids || ARRAY(
            SELECT (SELECT s.seat_id FROM seats s WHERE s.event_id = ev.id AND s.idx = w.idx)
            FROM unnest(v_picks) WITH ORDINALITY AS w (idx, ord) ORDER BY w.ord);
    END IF;
    INSERT INTO reservations (id, event_id, holder, status, seat_ids, seat_idx, pool_ids, pool_idx,
                              pool_qty, created_at, expires_at, token_hash, client_reservation_id)
    VALUES (p_id, ev.id, v_holder, 0, v_seat_ids, v_seat_idx, v_pool_ids, v_pool_idx, v_pool_qty,
            p_now, p_now + v_ttl * 1000, sha256(p_token), p_req->>'client_reservation_id')
    RETURNING * INTO r;
    UPDATE seats SET status = 1, reservation_id = r.id, hold_expires_at = r.expires_at
    WHERE event_id = ev.id AND idx = ANY (v_seat_idx);
    UPDATE pools q SET held = q.held + w.qty
    FROM unnest(v_pool_idx, v_pool_qty) AS w (idx, qty)
    WHERE q.event_id = ev.id AND q.idx = w.idx;
    PERFORM ticketing_log(ev.id, p_now, jsonb_build_object(
        'type', 'reserved', 'reservation', r.id, 'holder', r.holder,
        'seats', to_jsonb(r.seat_ids), 'ga', ticketing_ga_json(r.pool_ids, r.pool_qty),
        'expires_at', r.expires_at));
    RETURN jsonb_build_object('ok', ticketing_reservation_json(r, p_now));
END
$$;
