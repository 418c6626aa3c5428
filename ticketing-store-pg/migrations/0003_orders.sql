-- Orders and tickets, commit idempotency, and the functions that commit, extend and cancel.
-- Same rules as 0002: the event row is locked first; answers are jsonb documents.

CREATE TABLE orders (
    id           text   COLLATE "C" PRIMARY KEY,
    event_id     text   COLLATE "C" NOT NULL REFERENCES events (id),
    reservation  text   COLLATE "C" NOT NULL REFERENCES reservations (id),
    holder       text   NOT NULL,
    payment_id   text,
    created_at   bigint NOT NULL
);

-- `status`: 0 valid, 1 checked in, 2 refunded. `item_kind`: 's' seat, 'p' pool unit.
CREATE TABLE tickets (
    id           text     COLLATE "C" PRIMARY KEY,
    order_id     text     COLLATE "C" NOT NULL REFERENCES orders (id),
    position     integer  NOT NULL,
    event_id     text     COLLATE "C" NOT NULL REFERENCES events (id),
    holder       text     NOT NULL,
    item_kind    "char"   NOT NULL CHECK (item_kind IN ('s', 'p')),
    item_id      text     NOT NULL,
    item_idx     integer  NOT NULL,
    code         text     NOT NULL UNIQUE,
    status       smallint NOT NULL DEFAULT 0 CHECK (status BETWEEN 0 AND 2),
    UNIQUE (order_id, position)
);
-- Holder limits count owned items.
CREATE INDEX tickets_holder ON tickets (event_id, holder) WHERE status <> 2;

CREATE TABLE commit_records (
    event_id         text   COLLATE "C" NOT NULL REFERENCES events (id),
    idempotency_key  text   NOT NULL,
    made_at          bigint NOT NULL,
    request          jsonb  NOT NULL,
    -- {"ok": order id} or {"error": …}
    outcome          jsonb  NOT NULL,
    PRIMARY KEY (event_id, idempotency_key)
);

CREATE OR REPLACE FUNCTION ticketing_owned_items(p_event text, p_holder text) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT count(*) FROM tickets WHERE event_id = p_event AND holder = p_holder AND status <> 2
$$;

-- A ticket as ticketing_core::Ticket deserializes it.
CREATE FUNCTION ticketing_ticket_json(t tickets) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object(
        'id', t.id, 'order', t.order_id, 'event', t.event_id, 'holder', t.holder,
        'item', CASE WHEN t.item_kind = 's' THEN jsonb_build_object('seat', t.item_id)
                     ELSE jsonb_build_object('pool', t.item_id) END,
        'code', t.code,
        'status', CASE t.status WHEN 0 THEN 'valid' WHEN 1 THEN 'checked_in' ELSE 'refunded' END)
$$;

-- An order with its tickets as they are now.
CREATE FUNCTION ticketing_order_json(p_order text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', o.id, 'event', o.event_id, 'reservation', o.reservation, 'holder', o.holder,
        'payment_id', o.payment_id, 'created_at', o.created_at,
        'tickets', COALESCE((SELECT jsonb_agg(ticketing_ticket_json(t) ORDER BY t.position)
                             FROM tickets t WHERE t.order_id = o.id), '[]'))
    FROM orders o WHERE o.id = p_order
$$;

-- The reservation, locked with its event, after the not-found and token checks; NULL with
-- the error in p_error otherwise.
CREATE FUNCTION ticketing_authorized(p_id text, p_token bytea, OUT r reservations, OUT error jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    v_event text;
BEGIN
    SELECT event_id INTO v_event FROM reservations WHERE id = p_id;
    IF NOT FOUND THEN
        error := ticketing_error('not_found', jsonb_build_object('entity', 'reservation', 'id', p_id));
        RETURN;
    END IF;
    PERFORM 1 FROM events WHERE id = v_event FOR UPDATE;
    SELECT * INTO r FROM reservations WHERE id = p_id FOR UPDATE;
    IF r.token_hash <> sha256(p_token) THEN
        r := NULL;
        error := ticketing_error('invalid_token');
    END IF;
END
$$;

CREATE FUNCTION ticketing_commit_fresh(p_now bigint, r reservations, p_req jsonb, p_order text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_policy jsonb := (SELECT policy FROM events WHERE id = r.event_id);
    v_seats jsonb := p_req->'seats';
    v_ga jsonb := p_req->'ga';
    v_chosen_idx integer[];
    v_chosen_ids text[];
    v_released_idx integer[];
    v_released_ids text[];
    v_chosen_pool_ids text[] := '{}';
    v_chosen_pool_idx integer[] := '{}';
    v_chosen_qty integer[] := '{}';
    v_released_pool_ids text[] := '{}';
    v_released_qty integer[] := '{}';
    v_after_expiry boolean;
    v_ok boolean;
    v_qty integer;
    i integer;
BEGIN
    IF r.status IN (1, 2) THEN
        RETURN ticketing_error('reservation_not_active', jsonb_build_object('status',
            CASE r.status WHEN 1 THEN 'committed' ELSE 'cancelled' END));
    END IF;
    IF jsonb_typeof(v_seats) = 'array' AND EXISTS (
        SELECT 1 FROM jsonb_array_elements_text(v_seats) s WHERE NOT (s = ANY (r.seat_ids))) THEN
        RETURN ticketing_error('invalid_request', jsonb_build_object('field', 'seat_ids',
            'reason', 'a seat is not in the reservation'));
    END IF;
    IF jsonb_typeof(v_ga) = 'array' AND EXISTS (
        SELECT 1 FROM jsonb_array_elements(v_ga) g
        WHERE (g->>'quantity')::integer > COALESCE((
            SELECT q FROM unnest(r.pool_ids, r.pool_qty) AS h (pool, q) WHERE h.pool = g->>'pool'), 0)) THEN
        RETURN ticketing_error('invalid_request', jsonb_build_object('field', 'ga',
            'reason', 'more units than the reservation holds'));
    END IF;
    -- Chosen seats in the reservation's order; the rest are released.
    FOR i IN 1 .. COALESCE(cardinality(r.seat_ids), 0) LOOP
        IF jsonb_typeof(v_seats) <> 'array' OR v_seats ? r.seat_ids[i] THEN
            v_chosen_idx := v_chosen_idx || r.seat_idx[i];
            v_chosen_ids := v_chosen_ids || r.seat_ids[i];
        ELSE
            v_released_idx := v_released_idx || r.seat_idx[i];
            v_released_ids := v_released_ids || r.seat_ids[i];
        END IF;
    END LOOP;
    FOR i IN 1 .. COALESCE(cardinality(r.pool_ids), 0) LOOP
        IF jsonb_typeof(v_ga) <> 'array' THEN
            v_qty := r.pool_qty[i];
        ELSE
            v_qty := COALESCE((SELECT (g->>'quantity')::integer FROM jsonb_array_elements(v_ga) g
                               WHERE g->>'pool' = r.pool_ids[i]), 0);
        END IF;
        IF v_qty > 0 THEN
            v_chosen_pool_ids := v_chosen_pool_ids || r.pool_ids[i];
            v_chosen_pool_idx := v_chosen_pool_idx || r.pool_idx[i];
            v_chosen_qty := v_chosen_qty || v_qty;
        END IF;
        IF r.pool_qty[i] - v_qty > 0 THEN
            v_released_pool_ids := v_released_pool_ids || r.pool_ids[i];
            v_released_qty := v_released_qty || (r.pool_qty[i] - v_qty);
        END IF;
    END LOOP;
    IF COALESCE(cardinality(v_chosen_idx), 0) = 0 AND cardinality(v_chosen_qty) = 0 THEN
        RETURN ticketing_error('invalid_request', jsonb_build_object('field', 'seat_ids',
            'reason', 'a commit must buy at least one item; cancel instead'));
    END IF;
    -- Status 3 (finalized as expired) counts whatever the caller's clock says: a caller whose
    -- time was read before another transaction finalized the hold must not see it live.
    IF r.status = 3 OR r.expires_at <= p_now THEN
        -- Lapsed: finalize every lapsed hold of the event (this one included), then see
        -- whether the late-commit rule lets the chosen items be sold from free inventory.
        PERFORM ticketing_finalize_lapsed(r.event_id, p_now);
        v_ok := v_policy->>'late_commit' = 'if_still_available'
            AND NOT EXISTS (SELECT 1 FROM seats WHERE event_id = r.event_id
                            AND idx = ANY (COALESCE(v_chosen_idx, '{}')) AND status <> 0)
            AND NOT EXISTS (SELECT 1 FROM unnest(v_chosen_pool_idx, v_chosen_qty) AS c (idx, q)
                            JOIN pools p ON p.event_id = r.event_id AND p.idx = c.idx
                            WHERE p.capacity - p.held - p.sold - p.blocked < c.q);
        IF NOT v_ok THEN
            RETURN ticketing_error('reservation_expired', jsonb_build_object('expired_at', r.expires_at));
        END IF;
        v_after_expiry := true;
        UPDATE seats SET status = 2 WHERE event_id = r.event_id AND idx = ANY (COALESCE(v_chosen_idx, '{}'));
        UPDATE pools p SET sold = p.sold + c.q FROM unnest(v_chosen_pool_idx, v_chosen_qty) AS c (idx, q)
        WHERE p.event_id = r.event_id AND p.idx = c.idx;
        v_released_ids := '{}';
        v_released_pool_ids := '{}';
        v_released_qty := '{}';
    ELSE
        v_after_expiry := false;
        UPDATE seats SET status = 2, reservation_id = NULL, hold_expires_at = NULL
        WHERE event_id = r.event_id AND idx = ANY (COALESCE(v_chosen_idx, '{}'));
        UPDATE seats SET status = 0, reservation_id = NULL, hold_expires_at = NULL
        WHERE event_id = r.event_id AND idx = ANY (COALESCE(v_released_idx, '{}'));
        UPDATE pools p SET held = p.held - h.q FROM unnest(r.pool_idx, r.pool_qty) AS h (idx, q)
        WHERE p.event_id = r.event_id AND p.idx = h.idx;
        UPDATE pools p SET sold = p.sold + c.q FROM unnest(v_chosen_pool_idx, v_chosen_qty) AS c (idx, q)
        WHERE p.event_id = r.event_id AND p.idx = c.idx;
    END IF;
    UPDATE reservations SET status = 1, order_id = p_order WHERE id = r.id;
    INSERT INTO orders (id, event_id, reservation, holder, payment_id, created_at)
    VALUES (p_order, r.event_id, r.id, r.holder, p_req->>'payment_id', p_now);
    INSERT INTO tickets (id, order_id, position, event_id, holder, item_kind, item_id, item_idx, code)
    SELECT 'tkt_' || replace(gen_random_uuid()::text, '-', ''), p_order, items.position, r.event_id,
           r.holder, items.kind, items.item_id, items.idx,
           upper(replace(gen_random_uuid()::text, '-', ''))
    FROM (
        SELECT row_number() OVER (ORDER BY part, ord, unit) AS position, kind, item_id, idx
        FROM (
            SELECT 1 AS part, s.ord, 1 AS unit, 's'::"char" AS kind, s.id AS item_id, s.idx
            FROM unnest(COALESCE(v_chosen_ids, '{}'), COALESCE(v_chosen_idx, '{}')) WITH ORDINALITY AS s (id, idx, ord)
            UNION ALL
            SELECT 2, g.ord, u.unit, 'p'::"char", g.id, g.idx
            FROM unnest(v_chosen_pool_ids, v_chosen_pool_idx, v_chosen_qty) WITH ORDINALITY AS g (id, idx, q, ord),
                 generate_series(1, g.q) AS u (unit)
        ) all_items
    ) items;
    PERFORM ticketing_log(r.event_id, p_now, jsonb_build_object(
        'type', 'committed', 'reservation', r.id, 'order', p_order,
        'seats', to_jsonb(COALESCE(v_chosen_ids, '{}')),
        'ga', ticketing_ga_json(v_chosen_pool_ids, v_chosen_qty),
        'released_seats', to_jsonb(COALESCE(v_released_ids, '{}')),
        'released_ga', ticketing_ga_json(v_released_pool_ids, v_released_qty),
        'after_expiry', v_after_expiry));
    RETURN jsonb_build_object('ok', ticketing_order_json(p_order));
END
$$;

CREATE FUNCTION ticketing_commit(p_now bigint, p_id text, p_token bytea, p_req jsonb, p_order text,
                                 p_retention_ms bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_now bigint;
    auth record;
    rec commit_records;
    v_key text := p_req->>'idempotency_key';
    v_payload jsonb := jsonb_build_object('reservation_id', p_id, 'payment_id', p_req->'payment_id',
                                          'seats', p_req->'seats', 'ga', p_req->'ga');
    v_field text;
    v_result jsonb;
BEGIN
    SELECT * INTO auth FROM ticketing_authorized(p_id, p_token);
    IF auth.error IS NOT NULL THEN
        RETURN auth.error;
    END IF;
    -- The server's time is read once the event is locked, so it never runs behind a change
    -- already made by the transaction we waited for.
    v_now := ticketing_now(p_now);
    SELECT * INTO rec FROM commit_records
    WHERE event_id = (auth.r).event_id AND idempotency_key = v_key;
    IF FOUND AND v_now - rec.made_at < p_retention_ms THEN
        v_field := CASE
            WHEN rec.request->'reservation_id' IS DISTINCT FROM v_payload->'reservation_id' THEN 'reservation_id'
            WHEN rec.request->'payment_id' IS DISTINCT FROM v_payload->'payment_id' THEN 'payment_id'
            WHEN rec.request->'seats' IS DISTINCT FROM v_payload->'seats' THEN 'seat_ids'
            WHEN rec.request->'ga' IS DISTINCT FROM v_payload->'ga' THEN 'ga'
        END;
        IF v_field IS NOT NULL THEN
            RETURN ticketing_error('idempotency_mismatch', jsonb_build_object('field', v_field));
        END IF;
        IF rec.outcome ? 'ok' THEN
            RETURN jsonb_build_object('ok', ticketing_order_json(rec.outcome->>'ok'));
        END IF;
        RETURN rec.outcome;
    END IF;
    v_result := ticketing_commit_fresh(v_now, auth.r, p_req, p_order);
    INSERT INTO commit_records (event_id, idempotency_key, made_at, request, outcome)
    VALUES ((auth.r).event_id, v_key, v_now, v_payload,
            CASE WHEN v_result ? 'ok' THEN jsonb_build_object('ok', v_result->'ok'->>'id') ELSE v_result END)
    ON CONFLICT (event_id, idempotency_key) DO UPDATE
        SET made_at = EXCLUDED.made_at, request = EXCLUDED.request, outcome = EXCLUDED.outcome;
    RETURN v_result;
END
$$;

CREATE FUNCTION ticketing_extend(p_now bigint, p_id text, p_token bytea, p_ttl bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_now bigint;
    auth record;
    r reservations;
    v_max bigint;
BEGIN
    SELECT * INTO auth FROM ticketing_authorized(p_id, p_token);
    IF auth.error IS NOT NULL THEN
        RETURN auth.error;
    END IF;
    -- The server's time is read once the event is locked, so it never runs behind a change
    -- already made by the transaction we waited for.
    v_now := ticketing_now(p_now);
    r := auth.r;
    IF r.status IN (1, 2) THEN
        RETURN ticketing_error('reservation_not_active', jsonb_build_object('status',
            CASE r.status WHEN 1 THEN 'committed' ELSE 'cancelled' END));
    END IF;
    IF r.status = 3 OR r.expires_at <= v_now THEN
        RETURN ticketing_error('reservation_expired', jsonb_build_object('expired_at', r.expires_at));
    END IF;
    SELECT (policy->>'reservation_ttl_seconds_max')::bigint INTO v_max FROM events WHERE id = r.event_id;
    IF v_now + p_ttl * 1000 > r.created_at + v_max * 1000 THEN
        RETURN ticketing_error('invalid_request', jsonb_build_object('field', 'ttl_seconds',
            'reason', 'past the longest hold the event allows'));
    END IF;
    UPDATE reservations SET expires_at = v_now + p_ttl * 1000 WHERE id = r.id RETURNING * INTO r;
    UPDATE seats SET hold_expires_at = r.expires_at
    WHERE event_id = r.event_id AND idx = ANY (r.seat_idx) AND reservation_id = r.id;
    PERFORM ticketing_log(r.event_id, v_now, jsonb_build_object(
        'type', 'extended', 'reservation', r.id, 'expires_at', r.expires_at));
    RETURN jsonb_build_object('ok', ticketing_reservation_json(r, v_now));
END
$$;

CREATE FUNCTION ticketing_cancel(p_now bigint, p_id text, p_token bytea)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_now bigint;
    auth record;
    r reservations;
BEGIN
    SELECT * INTO auth FROM ticketing_authorized(p_id, p_token);
    IF auth.error IS NOT NULL THEN
        RETURN auth.error;
    END IF;
    -- The server's time is read once the event is locked, so it never runs behind a change
    -- already made by the transaction we waited for.
    v_now := ticketing_now(p_now);
    r := auth.r;
    IF r.status = 2 THEN
        RETURN jsonb_build_object('ok', NULL);
    END IF;
    IF r.status = 1 THEN
        RETURN ticketing_error('reservation_not_active', jsonb_build_object('status', 'committed'));
    END IF;
    IF r.status = 3 OR r.expires_at <= v_now THEN
        RETURN ticketing_error('reservation_expired', jsonb_build_object('expired_at', r.expires_at));
    END IF;
    UPDATE reservations SET status = 2 WHERE id = r.id;
    PERFORM ticketing_release(r);
    PERFORM ticketing_log(r.event_id, v_now, jsonb_build_object(
        'type', 'cancelled', 'reservation', r.id,
        'seats', to_jsonb(r.seat_ids), 'ga', ticketing_ga_json(r.pool_ids, r.pool_qty)));
    RETURN jsonb_build_object('ok', NULL);
END
$$;
