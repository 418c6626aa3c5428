-- Reservations, their idempotency records, and the functions that reserve, read, extend
-- and cancel them. Every mutating function locks the event row first: the change log's
-- gap-free sequence needs one writer per event at a time anyway, and a single lock order
-- (event, then anything of it) cannot deadlock. Batching (reserve_batch) amortizes it.
--
-- Functions answer one jsonb document: {"ok": …} with the value as serde reads it, or
-- {"error": {"code": …, …}} with the error's data.

CREATE TABLE reservations (
    id                    text     COLLATE "C" PRIMARY KEY,
    event_id              text     COLLATE "C" NOT NULL REFERENCES events (id),
    holder                text     NOT NULL,
    -- 0 active, 1 committed, 2 cancelled, 3 expired (finalized).
    status                smallint NOT NULL CHECK (status BETWEEN 0 AND 3),
    seat_ids              text[]   NOT NULL,
    seat_idx              integer[] NOT NULL,
    pool_ids              text[]   NOT NULL,
    pool_idx              integer[] NOT NULL,
    pool_qty              integer[] NOT NULL,
    created_at            bigint   NOT NULL,
    expires_at            bigint   NOT NULL,
    token_hash            bytea    NOT NULL,
    client_reservation_id text,
    order_id              text
);

-- The sweeper's queue and the lazy finalization: active holds by lapse time.
CREATE INDEX reservations_due ON reservations (event_id, expires_at) WHERE status = 0;
-- Holder limits count a holder's live reservations.
CREATE INDEX reservations_holder ON reservations (event_id, holder) WHERE status = 0;

CREATE TABLE reserve_records (
    event_id              text   COLLATE "C" NOT NULL REFERENCES events (id),
    client_reservation_id text   NOT NULL,
    made_at               bigint NOT NULL,
    request               jsonb  NOT NULL,
    -- {"ok": reservation id} or {"error": …}
    outcome               jsonb  NOT NULL,
    PRIMARY KEY (event_id, client_reservation_id)
);

CREATE FUNCTION ticketing_now(p_now bigint) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT COALESCE(p_now, (extract(epoch from clock_timestamp()) * 1000)::bigint)
$$;

CREATE FUNCTION ticketing_error(p_code text, p_data jsonb DEFAULT '{}') RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('error', p_data || jsonb_build_object('code', p_code))
$$;

-- Appends a change to the (locked) event's log.
CREATE FUNCTION ticketing_log(p_event text, p_now bigint, p_kind jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_seq bigint;
BEGIN
    UPDATE events SET next_seq = next_seq + 1 WHERE id = p_event RETURNING next_seq - 1 INTO v_seq;
    INSERT INTO changes (event_id, seq, at, kind) VALUES (p_event, v_seq, p_now, p_kind);
END
$$;

-- The GA part of a reservation as serde reads it: [{"pool": …, "quantity": …}].
CREATE FUNCTION ticketing_ga_json(p_pool_ids text[], p_qty integer[]) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT COALESCE(jsonb_agg(jsonb_build_object('pool', pool, 'quantity', qty) ORDER BY ord), '[]')
    FROM unnest(p_pool_ids, p_qty) WITH ORDINALITY AS g (pool, qty, ord)
$$;

-- A reservation as ticketing_core::Reservation deserializes it, as it reads at p_now.
CREATE FUNCTION ticketing_reservation_json(r reservations, p_now bigint) RETURNS jsonb
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
        'ga', ticketing_ga_json(r.pool_ids, r.pool_qty),
        'created_at', r.created_at,
        'expires_at', r.expires_at,
        'client_reservation_id', r.client_reservation_id,
        'order', r.order_id)
$$;

-- Frees a reservation's items (status already changed by the caller).
CREATE FUNCTION ticketing_release(r reservations) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE seats SET status = 0, reservation_id = NULL, hold_expires_at = NULL
    WHERE event_id = r.event_id AND idx = ANY (r.seat_idx) AND reservation_id = r.id AND status = 1;
    UPDATE pools p SET held = p.held - g.qty
    FROM unnest(r.pool_idx, r.pool_qty) AS g (idx, qty)
    WHERE p.event_id = r.event_id AND p.idx = g.idx;
END
$$;

-- Finalizes every lapsed active reservation of the (locked) event, earliest first.
CREATE FUNCTION ticketing_finalize_lapsed(p_event text, p_now bigint, p_limit integer DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    r reservations;
    v_count integer := 0;
BEGIN
    FOR r IN
        SELECT * FROM reservations
        WHERE event_id = p_event AND status = 0 AND expires_at <= p_now
        ORDER BY expires_at, id
        LIMIT p_limit
        FOR UPDATE
    LOOP
        UPDATE reservations SET status = 3 WHERE id = r.id;
        PERFORM ticketing_release(r);
        PERFORM ticketing_log(p_event, p_now, jsonb_build_object(
            'type', 'expired', 'reservation', r.id,
            'seats', to_jsonb(r.seat_ids), 'ga', ticketing_ga_json(r.pool_ids, r.pool_qty)));
        v_count := v_count + 1;
    END LOOP;
    RETURN v_count;
END
$$;

-- Reserve, after validation (done by the caller). p_req is ticketing_core::ReserveRequest as
-- serde writes it. The event row is locked for the whole call.
CREATE FUNCTION ticketing_reserve_fresh(p_now bigint, p_req jsonb, p_id text, p_token bytea, ev events)
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
    v_candidates integer;
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
        IF COALESCE((v_best->>'adjacent')::boolean, false) THEN
            -- The first candidate (layout order) starting `count` candidates of its row with
            -- consecutive numbers, found in one pass (linear in the candidates, not quadratic):
            -- candidates of one row with consecutive numbers share `number - rank` (an island),
            -- and a candidate starts a run when its island reaches `count - 1` numbers past it.
            WITH cand AS (
                SELECT c.idx, c.section, c.row_name, c.number
                FROM seats c
                WHERE c.event_id = ev.id AND c.status = 0 AND NOT (c.idx = ANY (v_seat_idx))
                  AND (v_best->>'section' IS NULL OR c.section = v_best->>'section')
                  AND (v_best->>'category' IS NULL OR c.category = v_best->>'category')
            ), islands AS (
                SELECT idx, section, row_name, number,
                       number - row_number() OVER (PARTITION BY section, row_name ORDER BY number) AS island
                FROM cand
            ), runs AS (
                SELECT idx, section, row_name, number,
                       max(number) OVER (PARTITION BY section, row_name, island) AS run_end
                FROM islands
            ), start AS (
                SELECT section, row_name, number FROM runs
                WHERE run_end - number + 1 >= v_best_count
                ORDER BY idx LIMIT 1
            )
            SELECT ARRAY(SELECT c.idx FROM cand c, start
                         WHERE c.section = start.section AND c.row_name = start.row_name
                           AND c.number >= start.number AND c.number < start.number + v_best_count
                         ORDER BY c.number)
            INTO v_picks;
        ELSE
            v_picks := ARRAY(SELECT c.idx FROM seats c
                             WHERE c.event_id = ev.id AND c.status = 0 AND NOT (c.idx = ANY (v_seat_idx))
                               AND (v_best->>'section' IS NULL OR c.section = v_best->>'section')
                               AND (v_best->>'category' IS NULL OR c.category = v_best->>'category')
                             ORDER BY c.idx LIMIT v_best_count);
        END IF;
        IF COALESCE(cardinality(v_picks), 0) < v_best_count THEN
            SELECT count(*) INTO v_candidates FROM seats c
            WHERE c.event_id = ev.id AND c.status = 0 AND NOT (c.idx = ANY (v_seat_idx))
              AND (v_best->>'section' IS NULL OR c.section = v_best->>'section')
              AND (v_best->>'category' IS NULL OR c.category = v_best->>'category');
            RETURN ticketing_error('sold_out', jsonb_build_object('pool', NULL, 'remaining', v_candidates));
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

-- Items a holder owns in an event (valid or checked-in tickets). Orders come with commit;
-- until then nobody owns anything.
CREATE FUNCTION ticketing_owned_items(p_event text, p_holder text) RETURNS bigint
LANGUAGE sql STABLE AS $$ SELECT 0::bigint $$;

-- Reserve with idempotency: the same client reservation id within the retention returns the
-- first outcome (a success as the reservation now); another payload is a mismatch.
CREATE FUNCTION ticketing_reserve(p_now bigint, p_req jsonb, p_id text, p_token bytea, p_retention_ms bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_now bigint;
    ev events;
    rec reserve_records;
    v_client text := p_req->>'client_reservation_id';
    v_field text;
    v_result jsonb;
    r reservations;
BEGIN
    SELECT * INTO ev FROM events WHERE id = p_req->>'event' FOR UPDATE;
    IF NOT FOUND THEN
        RETURN ticketing_error('not_found', jsonb_build_object('entity', 'event', 'id', p_req->>'event'));
    END IF;
    v_now := ticketing_now(p_now);
    IF v_client IS NOT NULL THEN
        SELECT * INTO rec FROM reserve_records
        WHERE event_id = ev.id AND client_reservation_id = v_client;
        IF FOUND AND v_now - rec.made_at < p_retention_ms THEN
            v_field := CASE
                WHEN rec.request->'holder' IS DISTINCT FROM p_req->'holder' THEN 'holder'
                WHEN rec.request->'seats' IS DISTINCT FROM p_req->'seats' THEN 'seat_ids'
                WHEN rec.request->'ga' IS DISTINCT FROM p_req->'ga' THEN 'ga'
                WHEN rec.request->'best_available' IS DISTINCT FROM p_req->'best_available' THEN 'best_available'
                WHEN rec.request->'ttl_seconds' IS DISTINCT FROM p_req->'ttl_seconds' THEN 'ttl_seconds'
            END;
            IF v_field IS NOT NULL THEN
                RETURN ticketing_error('idempotency_mismatch', jsonb_build_object('field', v_field));
            END IF;
            IF rec.outcome ? 'ok' THEN
                SELECT * INTO r FROM reservations WHERE id = rec.outcome->>'ok';
                RETURN jsonb_build_object('ok', ticketing_reservation_json(r, v_now));
            END IF;
            RETURN rec.outcome;
        END IF;
    END IF;
    v_result := ticketing_reserve_fresh(v_now, p_req, p_id, p_token, ev);
    IF v_client IS NOT NULL THEN
        INSERT INTO reserve_records (event_id, client_reservation_id, made_at, request, outcome)
        VALUES (ev.id, v_client, v_now, p_req,
                CASE WHEN v_result ? 'ok' THEN jsonb_build_object('ok', v_result->'ok'->>'id') ELSE v_result END)
        ON CONFLICT (event_id, client_reservation_id) DO UPDATE
            SET made_at = EXCLUDED.made_at, request = EXCLUDED.request, outcome = EXCLUDED.outcome;
    END IF;
    RETURN v_result;
END
$$;
