-- Refund, transfer, check-in, block, pool resizes, the sweeper step, and finalization before
-- reads. Same rules as 0002: the event row is locked first; answers are jsonb documents.

CREATE INDEX reservations_lapse ON reservations (expires_at) WHERE status = 0;

-- Items a holder has in live reservations of an event (lapsed ones do not count).
CREATE FUNCTION ticketing_held_items(p_event text, p_holder text, p_now bigint) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT COALESCE(sum(cardinality(seat_idx)
                        + COALESCE((SELECT sum(q) FROM unnest(pool_qty) q), 0)), 0)::bigint
    FROM reservations
    WHERE event_id = p_event AND holder = p_holder AND status = 0 AND expires_at > p_now
$$;

CREATE FUNCTION ticketing_refund(p_now bigint, p_order text, p_tickets text[])
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_now bigint;
    o orders;
    v_to text;
    v_missing text;
    v_status smallint;
    v_chosen text[];
    v_seats text[];
    v_pool_ids text[];
    v_pool_qty integer[];
BEGIN
    SELECT * INTO o FROM orders WHERE id = p_order;
    IF NOT FOUND THEN
        RETURN ticketing_error('not_found', jsonb_build_object('entity', 'order', 'id', p_order));
    END IF;
    PERFORM 1 FROM events WHERE id = o.event_id FOR UPDATE;
    -- The server's time is read once the event is locked, so it never runs behind a change
    -- already made by the transaction we waited for.
    v_now := ticketing_now(p_now);
    SELECT policy->>'refund_to' INTO v_to FROM events WHERE id = o.event_id;
    IF p_tickets IS NOT NULL THEN
        SELECT w.id INTO v_missing FROM unnest(p_tickets) WITH ORDINALITY AS w (id, ord)
        WHERE NOT EXISTS (SELECT 1 FROM tickets t WHERE t.order_id = o.id AND t.id = w.id)
        ORDER BY w.ord LIMIT 1;
        IF v_missing IS NOT NULL THEN
            RETURN ticketing_error('not_found', jsonb_build_object('entity', 'ticket', 'id', v_missing));
        END IF;
        SELECT t.status INTO v_status FROM unnest(p_tickets) WITH ORDINALITY AS w (id, ord)
        JOIN tickets t ON t.id = w.id WHERE t.status <> 0 ORDER BY w.ord LIMIT 1;
    ELSE
        IF NOT EXISTS (SELECT 1 FROM tickets WHERE order_id = o.id AND status = 0) THEN
            SELECT status INTO v_status FROM tickets WHERE order_id = o.id ORDER BY position LIMIT 1;
        END IF;
    END IF;
    IF v_status IS NOT NULL THEN
        RETURN ticketing_error('conflict', jsonb_build_object('reason',
            CASE v_status WHEN 1 THEN 'ticket_checked_in' ELSE 'ticket_refunded' END));
    END IF;
    v_chosen := ARRAY(SELECT id FROM tickets
                      WHERE order_id = o.id AND status = 0
                        AND (p_tickets IS NULL OR id = ANY (p_tickets))
                      ORDER BY position FOR UPDATE);
    UPDATE tickets SET status = 2 WHERE id = ANY (v_chosen);
    -- Seats in layout order, as the in-memory store logs them.
    v_seats := ARRAY(SELECT item_id FROM tickets WHERE id = ANY (v_chosen) AND item_kind = 's' ORDER BY item_idx);
    UPDATE seats s SET status = CASE WHEN v_to = 'blocked' THEN 3 ELSE 0 END
    FROM tickets t
    WHERE t.id = ANY (v_chosen) AND t.item_kind = 's' AND s.event_id = o.event_id AND s.idx = t.item_idx;
    SELECT array_agg(item_id ORDER BY first), array_agg(n ORDER BY first) INTO v_pool_ids, v_pool_qty
    FROM (SELECT item_id, count(*)::integer AS n, min(position) AS first FROM tickets
          WHERE id = ANY (v_chosen) AND item_kind = 'p' GROUP BY item_id) g;
    UPDATE pools p SET sold = p.sold - g.n,
                       blocked = p.blocked + CASE WHEN v_to = 'blocked' THEN g.n ELSE 0 END
    FROM (SELECT item_idx, count(*)::integer AS n FROM tickets
          WHERE id = ANY (v_chosen) AND item_kind = 'p' GROUP BY item_idx) g
    WHERE p.event_id = o.event_id AND p.idx = g.item_idx;
    PERFORM ticketing_log(o.event_id, v_now, jsonb_build_object(
        'type', 'refunded', 'order', o.id, 'tickets', to_jsonb(v_chosen),
        'seats', to_jsonb(COALESCE(v_seats, '{}')),
        'ga', ticketing_ga_json(COALESCE(v_pool_ids, '{}'), COALESCE(v_pool_qty, '{}')),
        'to', v_to));
    RETURN jsonb_build_object('ok', jsonb_build_object(
        'order', o.id, 'tickets', to_jsonb(v_chosen), 'to', v_to, 'refunded_at', v_now));
END
$$;

CREATE FUNCTION ticketing_transfer(p_now bigint, p_ticket text, p_to text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_now bigint;
    t tickets;
    v_max integer;
BEGIN
    SELECT * INTO t FROM tickets WHERE id = p_ticket;
    IF NOT FOUND THEN
        RETURN ticketing_error('not_found', jsonb_build_object('entity', 'ticket', 'id', p_ticket));
    END IF;
    PERFORM 1 FROM events WHERE id = t.event_id FOR UPDATE;
    -- The server's time is read once the event is locked, so it never runs behind a change
    -- already made by the transaction we waited for.
    v_now := ticketing_now(p_now);
    SELECT * INTO t FROM tickets WHERE id = p_ticket FOR UPDATE;
    IF t.holder = p_to THEN
        RETURN ticketing_error('invalid_request', jsonb_build_object('field', 'to',
            'reason', 'the ticket already belongs to this holder'));
    END IF;
    IF t.status <> 0 THEN
        RETURN ticketing_error('conflict', jsonb_build_object('reason',
            CASE t.status WHEN 1 THEN 'ticket_checked_in' ELSE 'ticket_refunded' END));
    END IF;
    SELECT (policy->>'holder_seats_max')::integer INTO v_max FROM events WHERE id = t.event_id;
    IF v_max IS NOT NULL AND ticketing_held_items(t.event_id, p_to, v_now)
                             + ticketing_owned_items(t.event_id, p_to) + 1 > v_max THEN
        RETURN ticketing_error('limit_exceeded', jsonb_build_object('limit', 'seats', 'max', v_max));
    END IF;
    UPDATE tickets SET holder = p_to, code = upper(replace(gen_random_uuid()::text, '-', ''))
    WHERE id = t.id;
    PERFORM ticketing_log(t.event_id, v_now, jsonb_build_object(
        'type', 'transferred', 'ticket', t.id, 'from', t.holder, 'to', p_to));
    SELECT * INTO t FROM tickets WHERE id = p_ticket;
    RETURN jsonb_build_object('ok', ticketing_ticket_json(t));
END
$$;

CREATE FUNCTION ticketing_check_in(p_now bigint, p_code text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_now bigint;
    t tickets;
BEGIN
    SELECT * INTO t FROM tickets WHERE code = p_code;
    IF NOT FOUND THEN
        RETURN ticketing_error('not_found', jsonb_build_object('entity', 'ticket', 'id', p_code));
    END IF;
    PERFORM 1 FROM events WHERE id = t.event_id FOR UPDATE;
    -- The server's time is read once the event is locked, so it never runs behind a change
    -- already made by the transaction we waited for.
    v_now := ticketing_now(p_now);
    SELECT * INTO t FROM tickets WHERE id = t.id FOR UPDATE;
    IF t.code <> p_code THEN
        -- Transferred while we waited: the old code no longer admits.
        RETURN ticketing_error('not_found', jsonb_build_object('entity', 'ticket', 'id', p_code));
    END IF;
    IF t.status <> 0 THEN
        RETURN ticketing_error('conflict', jsonb_build_object('reason',
            CASE t.status WHEN 1 THEN 'ticket_checked_in' ELSE 'ticket_refunded' END));
    END IF;
    UPDATE tickets SET status = 1 WHERE id = t.id RETURNING * INTO t;
    PERFORM ticketing_log(t.event_id, v_now, jsonb_build_object('type', 'checked_in', 'ticket', t.id));
    RETURN jsonb_build_object('ok', ticketing_ticket_json(t));
END
$$;

CREATE FUNCTION ticketing_block(p_now bigint, p_event text, p_seats text[], p_blocked boolean)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_now bigint;
    v_missing text;
    v_taken text[];
    v_changed text[];
    v_idx integer[];
    v_changed_idx integer[];
BEGIN
    PERFORM 1 FROM events WHERE id = p_event FOR UPDATE;
    IF NOT FOUND THEN
        RETURN ticketing_error('not_found', jsonb_build_object('entity', 'event', 'id', p_event));
    END IF;
    -- The server's time is read once the event is locked, so it never runs behind a change
    -- already made by the transaction we waited for.
    v_now := ticketing_now(p_now);
    -- One probe of the unique (event_id, seat_id) key per seat (see ticketing_reserve_fresh).
    v_idx := ARRAY(SELECT (SELECT s.idx FROM seats s WHERE s.event_id = p_event AND s.seat_id = w.id)
                   FROM unnest(p_seats) WITH ORDINALITY AS w (id, ord) ORDER BY w.ord);
    SELECT p_seats[w.ord] INTO v_missing FROM unnest(v_idx) WITH ORDINALITY AS w (idx, ord)
    WHERE w.idx IS NULL ORDER BY w.ord LIMIT 1;
    IF v_missing IS NOT NULL THEN
        RETURN ticketing_error('not_found', jsonb_build_object('entity', 'seat', 'id', v_missing));
    END IF;
    IF p_blocked THEN
        PERFORM ticketing_finalize_lapsed(p_event, v_now);
        v_taken := ARRAY(SELECT w.id FROM unnest(p_seats, v_idx) WITH ORDINALITY AS w (id, idx, ord)
                         WHERE (SELECT s.status FROM seats s WHERE s.event_id = p_event AND s.idx = w.idx) IN (1, 2)
                         ORDER BY w.ord);
        IF cardinality(v_taken) > 0 THEN
            RETURN ticketing_error('seat_unavailable', jsonb_build_object('seats', to_jsonb(v_taken)));
        END IF;
        SELECT array_agg(w.id ORDER BY w.ord), array_agg(w.idx ORDER BY w.ord) INTO v_changed, v_changed_idx
        FROM unnest(p_seats, v_idx) WITH ORDINALITY AS w (id, idx, ord)
        WHERE (SELECT s.status FROM seats s WHERE s.event_id = p_event AND s.idx = w.idx) = 0;
        UPDATE seats SET status = 3 WHERE event_id = p_event AND idx = ANY (v_changed_idx);
        IF cardinality(v_changed) > 0 THEN
            PERFORM ticketing_log(p_event, v_now, jsonb_build_object('type', 'seats_blocked', 'seats', to_jsonb(v_changed)));
        END IF;
    ELSE
        SELECT array_agg(w.id ORDER BY w.ord), array_agg(w.idx ORDER BY w.ord) INTO v_changed, v_changed_idx
        FROM unnest(p_seats, v_idx) WITH ORDINALITY AS w (id, idx, ord)
        WHERE (SELECT s.status FROM seats s WHERE s.event_id = p_event AND s.idx = w.idx) = 3;
        UPDATE seats SET status = 0 WHERE event_id = p_event AND idx = ANY (v_changed_idx);
        IF cardinality(v_changed) > 0 THEN
            PERFORM ticketing_log(p_event, v_now, jsonb_build_object('type', 'seats_unblocked', 'seats', to_jsonb(v_changed)));
        END IF;
    END IF;
    RETURN jsonb_build_object('ok', NULL);
END
$$;

-- Sets a pool's capacity (p_capacity) or blocked count (p_blocked_count).
CREATE FUNCTION ticketing_set_pool(p_now bigint, p_event text, p_pool text, p_value integer, p_capacity boolean)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_now bigint;
    p pools;
    v_used integer;
BEGIN
    PERFORM 1 FROM events WHERE id = p_event FOR UPDATE;
    IF NOT FOUND THEN
        RETURN ticketing_error('not_found', jsonb_build_object('entity', 'event', 'id', p_event));
    END IF;
    -- The server's time is read once the event is locked, so it never runs behind a change
    -- already made by the transaction we waited for.
    v_now := ticketing_now(p_now);
    IF NOT EXISTS (SELECT 1 FROM pools WHERE event_id = p_event AND pool_id = p_pool) THEN
        RETURN ticketing_error('not_found', jsonb_build_object('entity', 'pool', 'id', p_pool));
    END IF;
    PERFORM ticketing_finalize_lapsed(p_event, v_now);
    SELECT * INTO p FROM pools WHERE event_id = p_event AND pool_id = p_pool;
    v_used := p.held + p.sold + p.blocked;
    IF (p_capacity AND p.held + p.sold + p.blocked > p_value)
       OR (NOT p_capacity AND p.held + p.sold + p_value > p.capacity) THEN
        RETURN ticketing_error('conflict', jsonb_build_object('reason', 'capacity_below_usage', 'used', v_used));
    END IF;
    IF p_capacity AND p.capacity <> p_value THEN
        UPDATE pools SET capacity = p_value WHERE event_id = p_event AND idx = p.idx;
        PERFORM ticketing_log(p_event, v_now, jsonb_build_object('type', 'pool_resized', 'pool', p_pool, 'capacity', p_value));
    ELSIF NOT p_capacity AND p.blocked <> p_value THEN
        UPDATE pools SET blocked = p_value WHERE event_id = p_event AND idx = p.idx;
        PERFORM ticketing_log(p_event, v_now, jsonb_build_object('type', 'pool_blocked', 'pool', p_pool, 'blocked', p_value));
    END IF;
    RETURN jsonb_build_object('ok', NULL);
END
$$;

-- Finalizes up to p_limit lapsed reservations, events with the earliest lapses first; an
-- event busy in another transaction is skipped (that transaction finalizes its own lapsed
-- holds). Then forgets idempotency records past the retention. Returns how many expired.
CREATE FUNCTION ticketing_expire_due(p_now bigint, p_limit integer, p_retention_ms bigint)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_now bigint := ticketing_now(p_now);
    v_count integer := 0;
    v_event text;
    v_take integer;
BEGIN
    -- The `p_limit` earliest lapses of all events; each event's share of them is its own
    -- earliest lapses, which ticketing_finalize_lapsed takes in the same order.
    FOR v_event, v_take IN
        SELECT event_id, count(*)::integer FROM (
            SELECT event_id, expires_at FROM reservations
            WHERE status = 0 AND expires_at <= v_now
            ORDER BY expires_at, id LIMIT p_limit) due
        GROUP BY event_id ORDER BY min(expires_at)
    LOOP
        PERFORM 1 FROM events WHERE id = v_event FOR UPDATE SKIP LOCKED;
        IF FOUND THEN
            v_count := v_count + ticketing_finalize_lapsed(v_event, v_now, v_take);
        END IF;
    END LOOP;
    DELETE FROM reserve_records WHERE made_at <= v_now - p_retention_ms;
    DELETE FROM commit_records WHERE made_at <= v_now - p_retention_ms;
    RETURN v_count;
END
$$;

-- Deletes each event's changes older than its last p_keep (the store's change retention;
-- NULL keeps everything); returns how many. Writers only append at next_seq, so this waits
-- for nobody; a reader behind the cut gets changes_pruned and re-reads the snapshot.
CREATE FUNCTION ticketing_prune_changes(p_keep bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    e record;
    v_deleted bigint := 0;
    v_rows bigint;
BEGIN
    IF p_keep IS NULL THEN
        RETURN 0;
    END IF;
    FOR e IN SELECT id, next_seq FROM events LOOP
        DELETE FROM changes WHERE event_id = e.id AND seq < e.next_seq - p_keep;
        GET DIAGNOSTICS v_rows = ROW_COUNT;
        v_deleted := v_deleted + v_rows;
    END LOOP;
    RETURN v_deleted;
END
$$;

-- Before a snapshot: finalizes the event's lapsed holds so the snapshot and the log agree
-- that they are free. Locks the event only when there is something to finalize.
CREATE FUNCTION ticketing_finalize_for_read(p_now bigint, p_event text)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_now bigint := ticketing_now(p_now);
BEGIN
    IF EXISTS (SELECT 1 FROM reservations WHERE event_id = p_event AND status = 0 AND expires_at <= v_now) THEN
        PERFORM 1 FROM events WHERE id = p_event FOR UPDATE;
        PERFORM ticketing_finalize_lapsed(p_event, v_now);
    END IF;
END
$$;
