-- Reserve batches decide requests with a client reservation id or best available set-based
-- too.
--
-- Why: at a flash sale every reserve carries a client reservation id (so that a retry is
-- idempotent) and 15-40% ask for best available. ticketing_reserve_batch (0008) sent only
-- requests with neither to the set-based run (0006); every other request ran
-- ticketing_reserve on its own, some twenty statements and ~1.5 ms under the event's row
-- lock, which every change of the event takes (the change log's gap-free sequence). So at a
-- flash sale nearly every request ran alone: 292 reserves/s through Coalescing, the event
-- row busy 95% of the time, where the run does 3,300-5,600/s.
--
-- Now a batch of one event without a waitlist is one run, whatever its requests ask for:
--
-- - Client reservation ids. One statement reads the record of every client id of the run,
--   with the reservation a recorded success names as it reads now. Each request then sees
--   the record the requests before it would have left: an earlier call's, or one an earlier
--   request of the run made (kept in the run's arrays until the end), and answers what
--   ticketing_reserve answers: idempotency_mismatch naming the first differing field in the
--   same order; a success as the reservation reads now (one the run made reads as its own
--   answer: same row, same instant); a refusal as recorded. A request without a live record
--   is decided like any other and its outcome recorded, and one upsert writes the run's new
--   records at the end, replacing expired ones as ticketing_reserve's ON CONFLICT does. It
--   writes one row per client id, the last outcome: what calls one after the other leave
--   when a record is not live for the second (a retention of zero).
-- - Best available. The run writes nothing before its end, so seats its accepted requests
--   took still read as free. The picker (0009) takes exclusions: given the request's named
--   seats and every seat the run took so far, it walks exactly the candidates a call after
--   the others would walk and picks the same seats, and ticketing_seat_candidates counts
--   sold_out's `remaining` with the same exclusions. Exact, so the run never has to write
--   what it accepted before a best-available request: each costs one picker call, which
--   stops at the answer (it steps over the run's earlier picks, which lead the layout order).
-- - Lapsed holds are finalized where a request alone would first do it: when the first
--   request of the run passes the ttl, unknown seat and pool, and sale window checks (0006
--   finalized at the start of every open run, so a run of requests that all failed those
--   checks logged expiries that calls one by one did not). Pools and holders' counts are
--   read then, and the run's seats' statuses read again if it freed any.
--
-- Events with a waitlist still run each request on its own (ticketing_reserve settles
-- them and serves the waitlist), and so do batches of several events. Locks are taken as
-- before: the batch locks its events in id order, and the run writes only rows of its
-- locked event (its records in key order).
--
-- Found while measuring runs of 256 requests (auto_explain, on examples/pg_bench.rs's
-- 50,000-seat event) and fixed below: the picker's section and category walks could not use
-- their indexes (a collation; up to 7 ms a pick), the reservation document started an
-- executor for its GA part even without GA units (some 40 us a reservation), the run
-- matched inserted rows to requests by comparing every pair (30 ms), and its lookups were
-- JIT-compiled (10-20 ms). The run now takes some 40-70 ms for 256 requests with client ids
-- and one in five for best available, on a shared 2-core machine.

DROP FUNCTION ticketing_reserve_run(bigint, events, jsonb, integer[], text[], bytea[], jsonb[]);

-- Migration 0009's picker, with the section and category compared in the default
-- collation, which is the collation of seats_free_section and seats_free_category.
--
-- Every caller passes the event's id from events.id, which is COLLATE "C", and a plpgsql
-- function takes the collation of its arguments for all its text parameters, so p_section
-- and p_category were "C" too, and no index in the default collation could serve
-- `ticketing_if_free(c.status, c.section) = p_section`: the section walk read every free
-- seat of the event in layout order up to the section's (20,000 of 50,000 for the 25th
-- section of examples/pg_bench.rs, 5 ms a pick). Equality is the same in every
-- deterministic collation, so the picks are the same.
CREATE OR REPLACE FUNCTION ticketing_pick_seats(p_event text, p_count integer, p_adjacent boolean, p_section text,
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
            WHERE c.event_id = p_event AND ticketing_if_free(c.status, c.section) = p_section COLLATE "default"
              AND (p_category IS NULL OR c.category = p_category) AND c.idx <> ALL (p_excluded)
              AND (NOT p_adjacent OR p_count = (SELECT count(*) FROM ticketing_seat_run(
                    p_event, c.section, c.row_name, c.number, p_count, p_category, p_excluded)))
            ORDER BY ticketing_if_free(c.status, c.idx);
    ELSIF p_category IS NOT NULL THEN
        OPEN v_walk NO SCROLL FOR
            SELECT c.idx, c.section, c.row_name, c.number FROM seats c
            WHERE c.event_id = p_event AND ticketing_if_free(c.status, c.category) = p_category COLLATE "default"
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

-- Migration 0009's count, with the same collations as the picker.
CREATE OR REPLACE FUNCTION ticketing_seat_candidates(p_event text, p_section text, p_category text,
                                                     p_excluded integer[])
RETURNS integer
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_custom_plan
AS $$
BEGIN
    RETURN (SELECT count(*) FROM seats c
            WHERE c.event_id = p_event AND ticketing_if_free(c.status, c.idx) IS NOT NULL
              AND (p_section IS NULL OR ticketing_if_free(c.status, c.section) = p_section COLLATE "default")
              AND (p_category IS NULL OR ticketing_if_free(c.status, c.category) = p_category COLLATE "default")
              AND c.idx <> ALL (p_excluded));
END
$$;

-- Migration 0002's document, calling ticketing_ga_json only for a reservation with GA
-- units: it aggregates over an unnest, so the planner cannot inline it, and each call
-- starts an executor of its own, some 40 us, the most of a set-based reserve's insert of
-- a request for seats only (ticketing_ga_json of nothing is '[]' as well).
CREATE OR REPLACE FUNCTION ticketing_reservation_json(r reservations, p_now bigint) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', r.id,
        'event', r.event_id,
        'holder', r.holder,
        'status', CASE
            WHEN r.status = 0 AND r.expires_at <= p_now THEN 'expired'
            WHEN r.status = 0 THEN 'active'
            WHEN r.status = 1 THEN 'committed'
            WHEN r.status = 2 THEN 'cancelled'
            ELSE 'expired' END,
        'seats', to_jsonb(r.seat_ids),
        'ga', CASE WHEN cardinality(r.pool_ids) = 0 THEN '[]'::jsonb
                   ELSE ticketing_ga_json(r.pool_ids, r.pool_qty) END,
        'created_at', r.created_at,
        'expires_at', r.expires_at,
        'client_reservation_id', r.client_reservation_id,
        'order', r.order_id)
$$;

-- The whole batch p_reqs of one event (locked by the caller, no waitlist), with the checks of
-- ticketing_reserve and then ticketing_reserve_fresh in their order, decided one request
-- after the other against the event's state read once, each accepted request's items
-- counted as taken for the next; then every accepted reservation, seat, pool, change and
-- record is written with one statement each. Answers in request order.
--
-- The statements join small arrays to the tables: index probes, never a scan of the event
-- (the planner may pick one while a new schema has no statistics), hence the planner
-- settings. They hold for the picker it calls too, whose plans are index walks anyway.
-- jit off: the planner costs the lookups of a 256-request batch past jit_above_cost (it
-- guesses 100 seats per request) and compiled them, 10 to 20 ms a run for statements that
-- take well under one.
CREATE FUNCTION ticketing_reserve_run(p_now bigint, ev events, p_reqs jsonb, p_ids text[], p_tokens bytea[],
                                      p_retention_ms bigint)
RETURNS jsonb[]
LANGUAGE plpgsql
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off SET jit = off
AS $$
DECLARE
    v_count integer := jsonb_array_length(p_reqs);
    v_answers jsonb[] := array_fill(NULL::jsonb, ARRAY[v_count]);
    v_policy jsonb := ev.policy;
    v_ttl_default bigint := (v_policy->>'reservation_ttl_seconds')::bigint;
    v_ttl_max bigint := (v_policy->>'reservation_ttl_seconds_max')::bigint;
    v_rsv_max integer := (v_policy->>'holder_reservations_max')::integer;
    v_items_max bigint := (v_policy->>'holder_seats_max')::bigint;
    v_window jsonb;
    -- Whether lapsed holds are finalized and pools and holders read (see the header).
    v_settled boolean := false;
    -- Every seat the batch names, by request, then as requested.
    s_pos integer[]; s_id text[]; s_idx integer[]; s_status smallint[];
    -- Every GA entry the batch names, in the same order.
    g_pos integer[]; g_id text[]; g_idx integer[]; g_qty integer[];
    -- The event's pools and their free units, decreasing as the run takes them.
    q_idx integer[]; q_free integer[];
    -- Holders of the batch with their live reservations and items (held and owned).
    h_name text[]; h_live integer[]; h_items bigint[];
    -- The client ids of the batch and the record each has as the run goes: made_at NULL
    -- when there is none; c_pos, the request of this run that made it (NULL: an earlier
    -- call's, then c_doc is the reservation a success names, as it reads now).
    c_id text[]; c_made bigint[]; c_request jsonb[]; c_outcome jsonb[]; c_doc jsonb[]; c_pos integer[];
    -- Seats taken by accepted requests of this run (named and picked).
    v_taken_now integer[] := '{}';
    -- Seats best available picked for accepted requests, in run order.
    b_idx integer[] := '{}'; b_id text[];
    -- Accepted requests: position, id, token, client id, holder, expiry, and their slices of
    -- s_*, g_* and b_*. Statements read these aligned arrays through unnest: an element
    -- of a text array read by subscript in a statement costs a walk from its start.
    a_pos integer[] := '{}'; a_id text[] := '{}'; a_token bytea[] := '{}'; a_client text[] := '{}';
    a_holder text[] := '{}'; a_expires bigint[] := '{}';
    a_sf integer[] := '{}'; a_sl integer[] := '{}'; a_gf integer[] := '{}'; a_gl integer[] := '{}';
    a_bf integer[] := '{}'; a_bl integer[] := '{}';
    -- Requests replaying a success of this run, and the request whose answer they repeat.
    v_replay integer[] := '{}'; v_replayed integer[] := '{}';
    i integer;
    v_req jsonb;
    v_holder text;
    v_client text;
    v_field text;
    v_ttl bigint;
    v_best jsonb;
    v_best_count integer;
    v_excluded integer[];
    v_picks integer[];
    si integer := 1; gi integer := 1;
    v_sf integer; v_sl integer; v_gf integer; v_gl integer;
    c integer;
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
    END IF;

    SELECT array_agg(w.pos ORDER BY w.pos, w.ord), array_agg(w.id ORDER BY w.pos, w.ord),
           array_agg(w.found[1] ORDER BY w.pos, w.ord), array_agg(w.found[2]::smallint ORDER BY w.pos, w.ord)
    INTO s_pos, s_id, s_idx, s_status
    FROM (SELECT p.pos, e.id, e.ord,
                 (SELECT ARRAY[s.idx, s.status] FROM seats s WHERE s.event_id = ev.id AND s.seat_id = e.id) AS found
          FROM generate_series(1, v_count) AS p (pos),
               jsonb_array_elements_text(p_reqs->(p.pos - 1)->'seats') WITH ORDINALITY AS e (id, ord)) w;
    SELECT array_agg(w.pos ORDER BY w.pos, w.ord), array_agg(w.g->>'pool' ORDER BY w.pos, w.ord),
           array_agg(w.idx ORDER BY w.pos, w.ord), array_agg((w.g->>'quantity')::integer ORDER BY w.pos, w.ord)
    INTO g_pos, g_id, g_idx, g_qty
    FROM (SELECT p.pos, e.g, e.ord,
                 (SELECT q.idx FROM pools q WHERE q.event_id = ev.id AND q.pool_id = e.g->>'pool') AS idx
          FROM generate_series(1, v_count) AS p (pos),
               jsonb_array_elements(p_reqs->(p.pos - 1)->'ga') WITH ORDINALITY AS e (g, ord)) w;
    -- The records of the batch's client ids, one index probe each (and one for the
    -- reservation a success names): scalar subqueries, because as a join the planner read
    -- every record of the event (no statistics). OFFSET 0 keeps each probe made once, not
    -- once per field read from it.
    SELECT array_agg(w.id ORDER BY w.id), array_agg((w.rec).made_at ORDER BY w.id),
           array_agg((w.rec).request ORDER BY w.id), array_agg((w.rec).outcome ORDER BY w.id),
           array_agg((SELECT ticketing_reservation_json(r, p_now) FROM reservations r
                      WHERE r.id = (w.rec).outcome->>'ok') ORDER BY w.id)
    INTO c_id, c_made, c_request, c_outcome, c_doc
    FROM (SELECT d.id,
                 (SELECT rr FROM reserve_records rr
                  WHERE rr.event_id = ev.id AND rr.client_reservation_id = d.id) AS rec
          FROM (SELECT DISTINCT p_reqs->(p.pos - 1)->>'client_reservation_id' AS id
                FROM generate_series(1, v_count) AS p (pos)) d
          WHERE d.id IS NOT NULL
          OFFSET 0) w;
    IF c_id IS NOT NULL THEN
        c_pos := array_fill(NULL::integer, ARRAY[cardinality(c_id)]);
    END IF;

    FOR i IN 1 .. v_count LOOP
        v_req := p_reqs->(i - 1);
        v_holder := v_req->>'holder';
        v_client := v_req->>'client_reservation_id';
        v_sf := si;
        WHILE si <= COALESCE(cardinality(s_pos), 0) AND s_pos[si] = i LOOP si := si + 1; END LOOP;
        v_sl := si - 1;
        v_gf := gi;
        WHILE gi <= COALESCE(cardinality(g_pos), 0) AND g_pos[gi] = i LOOP gi := gi + 1; END LOOP;
        v_gl := gi - 1;
        -- A live record answers, as in ticketing_reserve.
        IF v_client IS NOT NULL THEN
            c := array_position(c_id, v_client);
            IF c_made[c] IS NOT NULL AND p_now - c_made[c] < p_retention_ms THEN
                v_field := CASE
                    WHEN c_request[c]->'holder' IS DISTINCT FROM v_req->'holder' THEN 'holder'
                    WHEN c_request[c]->'seats' IS DISTINCT FROM v_req->'seats' THEN 'seat_ids'
                    WHEN c_request[c]->'ga' IS DISTINCT FROM v_req->'ga' THEN 'ga'
                    WHEN c_request[c]->'best_available' IS DISTINCT FROM v_req->'best_available' THEN 'best_available'
                    WHEN c_request[c]->'ttl_seconds' IS DISTINCT FROM v_req->'ttl_seconds' THEN 'ttl_seconds'
                END;
                IF v_field IS NOT NULL THEN
                    v_answers[i] := ticketing_error('idempotency_mismatch', jsonb_build_object('field', v_field));
                ELSIF NOT c_outcome[c] ? 'ok' THEN
                    v_answers[i] := c_outcome[c];
                ELSIF c_pos[c] IS NULL THEN
                    v_answers[i] := jsonb_build_object('ok', c_doc[c]);
                ELSE
                    -- Made by this run: its answer exists once the reservations are written.
                    v_replay := v_replay || i;
                    v_replayed := v_replayed || c_pos[c];
                END IF;
                CONTINUE;
            END IF;
        END IF;

        -- ticketing_reserve_fresh's checks, in its order.
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
        IF v_error IS NULL AND NOT v_settled THEN
            -- Lapsed holds are free: finalize them where this request alone would, then read
            -- what the decisions need.
            IF ticketing_finalize_lapsed(ev.id, p_now) > 0 AND s_idx IS NOT NULL THEN
                s_status := ARRAY(SELECT (SELECT s.status FROM seats s WHERE s.event_id = ev.id AND s.idx = w.idx)
                                  FROM unnest(s_idx) WITH ORDINALITY AS w (idx, ord) ORDER BY w.ord);
            END IF;
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
                      FROM (SELECT DISTINCT p_reqs->(p.pos - 1)->>'holder' AS holder
                            FROM generate_series(1, v_count) AS p (pos)) d) w;
            END IF;
            v_settled := true;
        END IF;
        v_best := v_req->'best_available';
        v_best_count := COALESCE((v_best->>'count')::integer, 0);
        IF v_error IS NULL AND h_name IS NOT NULL THEN
            h := array_position(h_name, v_holder);
            v_requested := (v_sl - v_sf + 1) + COALESCE((SELECT sum(x) FROM unnest(g_qty[v_gf:v_gl]) x), 0)
                + v_best_count;
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
        v_picks := '{}';
        IF v_error IS NULL AND jsonb_typeof(v_best) = 'object' THEN
            -- The seats this run took are free in the table but not for this request: a
            -- call after the others would find them held.
            v_excluded := COALESCE(s_idx[v_sf:v_sl], '{}') || v_taken_now;
            v_picks := ticketing_pick_seats(ev.id, v_best_count, COALESCE((v_best->>'adjacent')::boolean, false),
                                            v_best->>'section', v_best->>'category', v_excluded);
            IF v_picks IS NULL THEN
                v_error := ticketing_error('sold_out', jsonb_build_object('pool', NULL, 'remaining',
                    ticketing_seat_candidates(ev.id, v_best->>'section', v_best->>'category', v_excluded)));
            END IF;
        END IF;
        IF v_client IS NOT NULL THEN
            -- The record ticketing_reserve would write now; the upsert below writes it.
            c_made[c] := p_now;
            c_request[c] := v_req;
            c_outcome[c] := COALESCE(v_error, jsonb_build_object('ok', p_ids[i]));
            c_pos[c] := i;
        END IF;
        IF v_error IS NOT NULL THEN
            v_answers[i] := v_error;
            CONTINUE;
        END IF;
        v_taken_now := v_taken_now || s_idx[v_sf:v_sl] || v_picks;
        FOR k IN v_gf .. v_gl LOOP
            q := array_position(q_idx, g_idx[k]);
            q_free[q] := q_free[q] - g_qty[k];
        END LOOP;
        IF h_name IS NOT NULL THEN
            h_live[h] := h_live[h] + 1;
            h_items[h] := h_items[h] + v_requested;
        END IF;
        a_pos := a_pos || i;
        a_id := a_id || p_ids[i];
        a_token := a_token || p_tokens[i];
        a_client := a_client || v_client;
        a_holder := a_holder || v_holder;
        a_expires := a_expires || (p_now + v_ttl * 1000);
        a_sf := a_sf || v_sf; a_sl := a_sl || v_sl;
        a_gf := a_gf || v_gf; a_gl := a_gl || v_gl;
        a_bf := a_bf || (cardinality(b_idx) + 1);
        b_idx := b_idx || v_picks;
        a_bl := a_bl || cardinality(b_idx);
    END LOOP;

    IF cardinality(a_pos) > 0 THEN
        IF cardinality(b_idx) > 0 THEN
            b_id := ARRAY(SELECT (SELECT s.seat_id FROM seats s WHERE s.event_id = ev.id AND s.idx = w.idx)
                          FROM unnest(b_idx) WITH ORDINALITY AS w (idx, ord) ORDER BY w.ord);
        END IF;
        -- A reservation's seats: the named ones as requested, then the picked ones, as
        -- ticketing_reserve_fresh lists them.
        -- The answers are the rows as inserted, matched to their requests by id: both sides
        -- sorted by id, not joined (a nested loop, as the planner settings leave it, would
        -- compare every pair).
        WITH made AS (
            INSERT INTO reservations (id, event_id, holder, status, seat_ids, seat_idx, pool_ids, pool_idx,
                                      pool_qty, created_at, expires_at, token_hash, client_reservation_id)
            SELECT a.id, ev.id, a.holder, 0,
                   COALESCE(s_id[a.sf:a.sl] || b_id[a.bf:a.bl], '{}'),
                   COALESCE(s_idx[a.sf:a.sl] || b_idx[a.bf:a.bl], '{}'),
                   COALESCE(g_id[a.gf:a.gl], '{}'), COALESCE(g_idx[a.gf:a.gl], '{}'), COALESCE(g_qty[a.gf:a.gl], '{}'),
                   p_now, a.expires, sha256(a.token), a.client
            FROM unnest(a_id, a_token, a_client, a_holder, a_expires, a_sf, a_sl, a_gf, a_gl, a_bf, a_bl)
                 AS a (id, token, client, holder, expires, sf, sl, gf, gl, bf, bl)
            RETURNING id, ticketing_reservation_json(reservations, p_now) AS doc
        )
        SELECT array_agg(jsonb_build_object('ok', made.doc) ORDER BY made.id) INTO v_docs FROM made;
        v_done := ARRAY(SELECT a.pos FROM unnest(a_pos, a_id) AS a (pos, id) ORDER BY a.id COLLATE "C");
        FOR k IN 1 .. cardinality(v_done) LOOP
            v_answers[v_done[k]] := v_docs[k];
        END LOOP;
        UPDATE seats s SET status = 1, reservation_id = t.id, hold_expires_at = t.expires
        FROM (SELECT a.id, a.expires, x.idx
              FROM unnest(a_id, a_expires, a_sf, a_sl, a_bf, a_bl) AS a (id, expires, sf, sl, bf, bl),
                   unnest(s_idx[a.sf:a.sl] || b_idx[a.bf:a.bl]) AS x (idx)) t
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
            'type', 'reserved', 'reservation', a.id, 'holder', a.holder,
            'seats', to_jsonb(COALESCE(s_id[a.sf:a.sl] || b_id[a.bf:a.bl], '{}')),
            'ga', CASE WHEN a.gf > a.gl THEN '[]'::jsonb
                       ELSE ticketing_ga_json(g_id[a.gf:a.gl], g_qty[a.gf:a.gl]) END,
            'expires_at', a.expires)
        FROM unnest(a_id, a_holder, a_expires, a_sf, a_sl, a_gf, a_gl, a_bf, a_bl) WITH ORDINALITY
             AS a (id, holder, expires, sf, sl, gf, gl, bf, bl, ord);
    END IF;
    -- The records this run made, in key order; an expired one is replaced.
    IF c_id IS NOT NULL THEN
        INSERT INTO reserve_records (event_id, client_reservation_id, made_at, request, outcome)
        SELECT ev.id, w.id, p_now, w.request, w.outcome
        FROM unnest(c_id, c_pos, c_request, c_outcome) AS w (id, pos, request, outcome)
        WHERE w.pos IS NOT NULL
        ORDER BY w.id
        ON CONFLICT (event_id, client_reservation_id) DO UPDATE
            SET made_at = EXCLUDED.made_at, request = EXCLUDED.request, outcome = EXCLUDED.outcome;
    END IF;
    FOR k IN 1 .. cardinality(v_replay) LOOP
        v_answers[v_replay[k]] := v_answers[v_replayed[k]];
    END LOOP;
    RETURN v_answers;
END
$$;

-- Many independent reservations in one round trip. Every event the batch names is locked
-- first, in id order, so two batches can never wait on each other in a cycle. A batch of one
-- event without a waitlist (what Coalescing sends) is one set-based run; otherwise each
-- request runs on its own (ticketing_reserve; it settles an event with a waitlist first). A
-- refusal is an answer, not an exception, so it cannot undo the others. Answers come back in
-- request order.
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
    i integer;
BEGIN
    v_events := ARRAY(SELECT DISTINCT r->>'event' FROM jsonb_array_elements(p_reqs) AS r ORDER BY 1);
    PERFORM 1 FROM events WHERE id = ANY (v_events) ORDER BY id FOR UPDATE;
    IF cardinality(v_events) = 1 THEN
        -- Waiting entries count toward holder limits, which the run does not read.
        SELECT * INTO ev FROM events
        WHERE id = v_events[1] AND NOT ticketing_has_waitlist(policy) AND waiting = 0;
    END IF;
    IF ev.id IS NOT NULL THEN
        RETURN to_jsonb(ticketing_reserve_run(v_now, ev, p_reqs, p_ids, p_tokens, p_retention_ms));
    END IF;
    FOR i IN 1 .. v_count LOOP
        v_answers[i] := ticketing_reserve(v_now, p_reqs->(i - 1), p_ids[i], p_tokens[i], p_retention_ms);
    END LOOP;
    RETURN to_jsonb(v_answers);
END
$$;
