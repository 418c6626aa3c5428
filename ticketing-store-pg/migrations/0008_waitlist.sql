-- The waitlist (ticketing_core::waitlist): entries per event, and the serve step that offers
-- freed inventory to them in the transaction that freed it, so no racing buyer can take it
-- first (every writer of an event holds the event's row lock).
--
-- Serving, and where it runs:
--
-- - events.waiting counts the event's waiting entries. ticketing_log reads it from the row
--   it already updates (no extra statement), and a change that frees inventory (cancelled,
--   refunded, seats_unblocked, pool_resized, pool_blocked, a committed that released items)
--   serves the waitlist right after it is logged, while waiting > 0: every release path,
--   present or future, serves because it logs.
-- - ticketing_finalize_lapsed serves once it has finalized every lapsed reservation of the
--   event (expire_due may finalize part of them; the rest wait for the next step).
-- - On an event with a waitlist every operation settles first: it finalizes the lapsed
--   reservations (and so serves what they free) before it decides anything, as the
--   in-memory store and the reference model do; the functions below that are copies of
--   earlier ones differ from them only there, and in counting waiting entries toward holder
--   limits. An event without a waitlist pays one boolean read from the event row it locks.
-- - An offer is an ordinary reservation whose token_hash is the entry's (the entry keeps
--   the SHA-256 of the token's digest, as reservations do), with no client id.
--
-- Serve is first matching entry: waiting entries in join order, each offered when free
-- inventory satisfies it in full (best available seats, as ticketing_reserve_fresh picks
-- them), taking its items before the next is looked at.

ALTER TABLE events ADD COLUMN waiting integer NOT NULL DEFAULT 0 CHECK (waiting >= 0);

CREATE TABLE waitlist_entries (
    id             text     COLLATE "C" PRIMARY KEY,
    event_id       text     COLLATE "C" NOT NULL REFERENCES events (id),
    -- Join order.
    serial         bigint   GENERATED ALWAYS AS IDENTITY,
    holder         text     NOT NULL,
    quantity       integer  NOT NULL CHECK (quantity > 0),
    adjacent       boolean  NOT NULL,
    section        text,
    pool_id        text,
    pool_idx       integer,
    joined_at      bigint   NOT NULL,
    token_hash     bytea    NOT NULL,
    -- 0 waiting, 1 offered (reservation_id), 2 left.
    state          smallint NOT NULL DEFAULT 0 CHECK (state BETWEEN 0 AND 2),
    reservation_id text     COLLATE "C",
    CHECK ((state = 1) = (reservation_id IS NOT NULL))
);
-- The queue of each event, head first.
CREATE INDEX waitlist_queue ON waitlist_entries (event_id, serial) WHERE state = 0;
-- A holder's latest entry (the open one), and their waiting claims for limits.
CREATE INDEX waitlist_holder ON waitlist_entries (event_id, holder, serial);

CREATE FUNCTION ticketing_has_waitlist(p_policy jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT COALESCE((p_policy->>'waitlist')::boolean, false)
$$;

-- A holder's waiting entries and their quantities: they count toward the holder's limits
-- as live reservations would.
CREATE FUNCTION ticketing_waiting_claims(p_event text, p_holder text, OUT entries integer, OUT items bigint)
LANGUAGE sql STABLE AS $$
    SELECT count(*)::integer, COALESCE(sum(quantity), 0)::bigint FROM waitlist_entries
    WHERE event_id = p_event AND holder = p_holder AND state = 0
$$;

-- Items a holder has in live reservations of an event, and in waiting entries.
CREATE OR REPLACE FUNCTION ticketing_held_items(p_event text, p_holder text, p_now bigint) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT COALESCE(sum(cardinality(seat_idx)
                        + COALESCE((SELECT sum(q) FROM unnest(pool_qty) q), 0)), 0)::bigint
           + (SELECT items FROM ticketing_waiting_claims(p_event, p_holder))
    FROM reservations
    WHERE event_id = p_event AND holder = p_holder AND status = 0 AND expires_at > p_now
$$;

-- Whether a change frees inventory (and so serves the waitlist).
CREATE FUNCTION ticketing_change_frees(p_kind jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_kind->>'type'
        WHEN 'cancelled' THEN true
        WHEN 'refunded' THEN p_kind->>'to' = 'sale'
        WHEN 'seats_unblocked' THEN true
        WHEN 'pool_resized' THEN true
        WHEN 'pool_blocked' THEN true
        WHEN 'committed' THEN p_kind->'released_seats' <> '[]' OR p_kind->'released_ga' <> '[]'
        ELSE false END
$$;

-- Appends a change to the (locked) event's log; a change that frees inventory serves the
-- waitlist in the same transaction, right after it.
CREATE OR REPLACE FUNCTION ticketing_log(p_event text, p_now bigint, p_kind jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_seq bigint;
    v_waiting integer;
BEGIN
    UPDATE events SET next_seq = next_seq + 1 WHERE id = p_event
    RETURNING next_seq - 1, waiting INTO v_seq, v_waiting;
    INSERT INTO changes (event_id, seq, at, kind) VALUES (p_event, v_seq, p_now, p_kind);
    IF v_waiting > 0 AND ticketing_change_frees(p_kind) THEN
        PERFORM ticketing_waitlist_serve(p_event, p_now, NULL);
    END IF;
END
$$;

-- Finalizes every lapsed active reservation of the (locked) event, earliest first (up to
-- p_limit); once none is left lapsed, serves what they freed.
CREATE OR REPLACE FUNCTION ticketing_finalize_lapsed(p_event text, p_now bigint, p_limit integer DEFAULT NULL)
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
    IF v_count > 0 AND (SELECT waiting FROM events WHERE id = p_event) > 0
       AND (p_limit IS NULL OR v_count < p_limit OR NOT EXISTS (
            SELECT 1 FROM reservations WHERE event_id = p_event AND status = 0 AND expires_at <= p_now)) THEN
        PERFORM ticketing_waitlist_serve(p_event, p_now, NULL);
    END IF;
    RETURN v_count;
END
$$;

-- Best available seats of the (locked) event, as ticketing_reserve_fresh picks them: the
-- first free ones in layout order (of p_section), or with p_adjacent the first run of
-- p_count consecutive numbers in one row. NULL when free seats cannot satisfy it.
CREATE FUNCTION ticketing_best_seats(p_event text, p_count integer, p_adjacent boolean, p_section text)
RETURNS integer[]
LANGUAGE plpgsql AS $$
DECLARE
    v_picks integer[];
BEGIN
    IF p_adjacent THEN
        WITH cand AS (
            SELECT c.idx, c.section, c.row_name, c.number
            FROM seats c
            WHERE c.event_id = p_event AND c.status = 0
              AND (p_section IS NULL OR c.section = p_section)
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
            WHERE run_end - number + 1 >= p_count
            ORDER BY idx LIMIT 1
        )
        SELECT ARRAY(SELECT c.idx FROM cand c, start
                     WHERE c.section = start.section AND c.row_name = start.row_name
                       AND c.number >= start.number AND c.number < start.number + p_count
                     ORDER BY c.number)
        INTO v_picks;
    ELSE
        v_picks := ARRAY(SELECT c.idx FROM seats c
                         WHERE c.event_id = p_event AND c.status = 0
                           AND (p_section IS NULL OR c.section = p_section)
                         ORDER BY c.idx LIMIT p_count);
    END IF;
    IF COALESCE(cardinality(v_picks), 0) < p_count THEN
        RETURN NULL;
    END IF;
    RETURN v_picks;
END
$$;

-- An entry as ticketing_core::WaitlistEntry deserializes it.
CREATE FUNCTION ticketing_waitlist_entry_json(e waitlist_entries) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', e.id,
        'request', jsonb_build_object('event', e.event_id, 'holder', e.holder, 'quantity', e.quantity,
                                      'adjacent', e.adjacent, 'section', e.section, 'pool', e.pool_id),
        'joined_at', e.joined_at)
    || CASE e.state
        WHEN 0 THEN jsonb_build_object('state', 'waiting', 'position', 1 + (
            SELECT count(*) FROM waitlist_entries w
            WHERE w.event_id = e.event_id AND w.state = 0 AND w.serial < e.serial))
        WHEN 1 THEN jsonb_build_object('state', 'offered', 'reservation', e.reservation_id)
        ELSE jsonb_build_object('state', 'left') END
$$;

-- The serve step on the (locked) event: offers free inventory to every waiting entry that
-- joined at or after p_first (NULL: all) and that it satisfies in full, in join order.
-- Returns how many offers it made.
CREATE FUNCTION ticketing_waitlist_serve(p_event text, p_now bigint, p_first bigint)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_free_seats integer;
    v_free_units integer[];
    v_ttl bigint;
    v_count integer := 0;
    e waitlist_entries;
    v_picks integer[];
    v_seat_ids text[];
    v_pool_ids text[];
    v_pool_idx integer[];
    v_pool_qty integer[];
    r reservations;
BEGIN
    SELECT count(*) INTO v_free_seats FROM seats WHERE event_id = p_event AND status = 0;
    v_free_units := ARRAY(SELECT GREATEST(capacity - held - sold - blocked, 0) FROM pools
                          WHERE event_id = p_event ORDER BY idx);
    IF v_free_seats = 0 AND NOT (0 < ANY (v_free_units)) THEN
        RETURN 0;
    END IF;
    SELECT (policy->>'waitlist_offer_ttl_seconds')::bigint INTO v_ttl FROM events WHERE id = p_event;
    -- Free inventory only shrinks while serving: entries it cannot satisfy now are skipped
    -- by the scan itself.
    FOR e IN
        SELECT * FROM waitlist_entries
        WHERE event_id = p_event AND state = 0 AND serial >= COALESCE(p_first, 0)
          AND quantity <= CASE WHEN pool_idx IS NULL THEN v_free_seats ELSE v_free_units[pool_idx + 1] END
        ORDER BY serial
        FOR UPDATE
    LOOP
        IF e.pool_idx IS NOT NULL THEN
            IF v_free_units[e.pool_idx + 1] < e.quantity THEN
                CONTINUE;
            END IF;
            v_free_units[e.pool_idx + 1] := v_free_units[e.pool_idx + 1] - e.quantity;
            v_picks := '{}';
            v_pool_ids := ARRAY[e.pool_id];
            v_pool_idx := ARRAY[e.pool_idx];
            v_pool_qty := ARRAY[e.quantity];
        ELSE
            IF v_free_seats < e.quantity THEN
                CONTINUE;
            END IF;
            v_picks := ticketing_best_seats(p_event, e.quantity, e.adjacent, e.section);
            IF v_picks IS NULL THEN
                CONTINUE;
            END IF;
            v_free_seats := v_free_seats - e.quantity;
            v_pool_ids := '{}';
            v_pool_idx := '{}';
            v_pool_qty := '{}';
        END IF;
        v_seat_ids := ARRAY(
            SELECT (SELECT s.seat_id FROM seats s WHERE s.event_id = p_event AND s.idx = w.idx)
            FROM unnest(v_picks) WITH ORDINALITY AS w (idx, ord) ORDER BY w.ord);
        INSERT INTO reservations (id, event_id, holder, status, seat_ids, seat_idx, pool_ids, pool_idx,
                                  pool_qty, created_at, expires_at, token_hash, client_reservation_id)
        VALUES ('rsv_' || replace(gen_random_uuid()::text, '-', ''), p_event, e.holder, 0, v_seat_ids,
                v_picks, v_pool_ids, v_pool_idx, v_pool_qty, p_now, p_now + v_ttl * 1000, e.token_hash, NULL)
        RETURNING * INTO r;
        UPDATE seats SET status = 1, reservation_id = r.id, hold_expires_at = r.expires_at
        WHERE event_id = p_event AND idx = ANY (v_picks);
        UPDATE pools SET held = held + e.quantity WHERE event_id = p_event AND idx = e.pool_idx;
        UPDATE waitlist_entries SET state = 1, reservation_id = r.id WHERE id = e.id;
        UPDATE events SET waiting = waiting - 1 WHERE id = p_event;
        PERFORM ticketing_log(p_event, p_now, jsonb_build_object(
            'type', 'offer_made', 'reservation', r.id, 'holder', r.holder, 'entry', e.id,
            'seats', to_jsonb(r.seat_ids), 'ga', ticketing_ga_json(r.pool_ids, r.pool_qty),
            'expires_at', r.expires_at));
        v_count := v_count + 1;
    END LOOP;
    RETURN v_count;
END
$$;

-- The event of a waitlist call, locked (p_lock) or not, after the not-found checks; NULL
-- with the error in p_error otherwise.
CREATE FUNCTION ticketing_waitlist_event(p_event text, p_lock boolean, OUT ev events, OUT error jsonb)
LANGUAGE plpgsql AS $$
BEGIN
    IF p_lock THEN
        SELECT * INTO ev FROM events WHERE id = p_event FOR UPDATE;
    ELSE
        SELECT * INTO ev FROM events WHERE id = p_event;
    END IF;
    IF NOT FOUND THEN
        ev := NULL;
        error := ticketing_error('not_found', jsonb_build_object('entity', 'event', 'id', p_event));
    ELSIF NOT ticketing_has_waitlist(ev.policy) THEN
        ev := NULL;
        error := ticketing_error('not_found', jsonb_build_object('entity', 'waitlist', 'id', p_event));
    END IF;
END
$$;

-- Whether the layout could ever satisfy a seat request: NULL, or the invalid_request error.
CREATE FUNCTION ticketing_waitlist_layout_error(ev events, p_quantity integer, p_adjacent boolean,
                                                p_section text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_seats bigint;
    v_run bigint;
BEGIN
    IF ev.seat_count = 0 THEN
        RETURN ticketing_error('invalid_request', jsonb_build_object('field', 'pool',
            'reason', 'the event has no seats: name a GA pool'));
    END IF;
    WITH s AS (
        SELECT section, row_name, number FROM seats
        WHERE event_id = ev.id AND (p_section IS NULL OR section = p_section)
    ), islands AS (
        SELECT section, row_name,
               number - row_number() OVER (PARTITION BY section, row_name ORDER BY number) AS island
        FROM s
    )
    SELECT (SELECT count(*) FROM s),
           COALESCE((SELECT max(n) FROM (SELECT count(*) AS n FROM islands
                                         GROUP BY section, row_name, island) runs), 0)
    INTO v_seats, v_run;
    IF v_seats = 0 THEN
        RETURN ticketing_error('invalid_request', jsonb_build_object('field', 'section',
            'reason', format('no seat is in section ''%s''', p_section)));
    END IF;
    IF p_quantity > v_seats THEN
        RETURN ticketing_error('invalid_request', jsonb_build_object('field', 'quantity',
            'reason', format('there are only %s such seats', v_seats)));
    END IF;
    IF p_adjacent AND p_quantity > v_run THEN
        RETURN ticketing_error('invalid_request', jsonb_build_object('field', 'quantity',
            'reason', format('at most %s such seats are adjacent in one row', v_run)));
    END IF;
    RETURN NULL;
END
$$;

-- Joins the waitlist (p_req: ticketing_core::WaitlistRequest as serde writes it, checked by
-- the caller), or answers the holder's open entry. p_id and p_token (the token's digest)
-- are the new entry's; p_entries_max bounds the waiting entries.
CREATE FUNCTION ticketing_waitlist_join(p_now bigint, p_req jsonb, p_id text, p_token bytea,
                                        p_entries_max integer)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    w record;
    ev events;
    v_now bigint;
    v_holder text := p_req->>'holder';
    v_quantity integer := (p_req->>'quantity')::integer;
    v_adjacent boolean := COALESCE((p_req->>'adjacent')::boolean, false);
    v_section text := p_req->>'section';
    v_pool text := p_req->>'pool';
    v_pool_idx integer;
    v_error jsonb;
    v_max bigint;
    v_claims integer;
    e waitlist_entries;
BEGIN
    SELECT * INTO w FROM ticketing_waitlist_event(p_req->>'event', true);
    IF w.error IS NOT NULL THEN
        RETURN w.error;
    END IF;
    ev := w.ev;
    v_now := ticketing_now(p_now);
    PERFORM ticketing_finalize_lapsed(ev.id, v_now);
    -- The holder's latest entry is open while it waits or its offer is live.
    SELECT * INTO e FROM waitlist_entries
    WHERE event_id = ev.id AND holder = v_holder ORDER BY serial DESC LIMIT 1;
    IF FOUND AND (e.state = 0 OR (e.state = 1 AND EXISTS (
            SELECT 1 FROM reservations r
            WHERE r.id = e.reservation_id AND r.status = 0 AND r.expires_at > v_now))) THEN
        IF e.quantity = v_quantity AND e.adjacent = v_adjacent
           AND e.section IS NOT DISTINCT FROM v_section AND e.pool_id IS NOT DISTINCT FROM v_pool THEN
            RETURN jsonb_build_object('ok', ticketing_waitlist_entry_json(e));
        END IF;
        RETURN ticketing_error('conflict', jsonb_build_object('reason', 'waitlist_entry_exists'));
    END IF;
    IF v_pool IS NOT NULL THEN
        SELECT idx INTO v_pool_idx FROM pools WHERE event_id = ev.id AND pool_id = v_pool;
        IF NOT FOUND THEN
            RETURN ticketing_error('not_found', jsonb_build_object('entity', 'pool', 'id', v_pool));
        END IF;
    ELSE
        v_error := ticketing_waitlist_layout_error(ev, v_quantity, v_adjacent, v_section);
        IF v_error IS NOT NULL THEN
            RETURN v_error;
        END IF;
    END IF;
    IF ev.sale_opens_at IS NOT NULL AND v_now < ev.sale_opens_at THEN
        RETURN ticketing_error('not_on_sale', jsonb_build_object('opens_at', ev.sale_opens_at, 'closed_at', NULL));
    END IF;
    IF ev.sale_closes_at IS NOT NULL AND v_now >= ev.sale_closes_at THEN
        RETURN ticketing_error('not_on_sale', jsonb_build_object('opens_at', NULL, 'closed_at', ev.sale_closes_at));
    END IF;
    -- Limits as a reservation of `quantity` items would check them (waiting entries count).
    v_max := (ev.policy->>'holder_reservations_max')::bigint;
    IF v_max IS NOT NULL THEN
        SELECT count(*) INTO v_claims FROM reservations
        WHERE event_id = ev.id AND holder = v_holder AND status = 0;
        v_claims := v_claims + (SELECT entries FROM ticketing_waiting_claims(ev.id, v_holder));
        IF v_claims + 1 > v_max THEN
            RETURN ticketing_error('limit_exceeded', jsonb_build_object('limit', 'reservations', 'max', v_max));
        END IF;
    END IF;
    v_max := (ev.policy->>'holder_seats_max')::bigint;
    IF v_max IS NOT NULL AND ticketing_held_items(ev.id, v_holder, v_now)
                             + ticketing_owned_items(ev.id, v_holder) + v_quantity > v_max THEN
        RETURN ticketing_error('limit_exceeded', jsonb_build_object('limit', 'seats', 'max', v_max));
    END IF;
    IF (SELECT waiting FROM events WHERE id = ev.id) >= p_entries_max THEN
        RETURN ticketing_error('conflict', jsonb_build_object('reason', 'waitlist_full'));
    END IF;
    INSERT INTO waitlist_entries (id, event_id, holder, quantity, adjacent, section, pool_id, pool_idx,
                                  joined_at, token_hash)
    VALUES (p_id, ev.id, v_holder, v_quantity, v_adjacent, v_section, v_pool, v_pool_idx, v_now,
            sha256(p_token))
    RETURNING * INTO e;
    UPDATE events SET waiting = waiting + 1 WHERE id = ev.id;
    PERFORM ticketing_log(ev.id, v_now, jsonb_build_object(
        'type', 'waitlist_joined', 'entry', e.id, 'holder', e.holder, 'quantity', e.quantity,
        'adjacent', e.adjacent, 'section', e.section, 'pool', e.pool_id));
    -- Nothing waiting before it is satisfiable (every step serves): only the new entry may be.
    PERFORM ticketing_waitlist_serve(ev.id, v_now, e.serial);
    SELECT * INTO e FROM waitlist_entries WHERE id = p_id;
    RETURN jsonb_build_object('ok', ticketing_waitlist_entry_json(e));
END
$$;

-- An entry as it is now, the event's lapsed reservations finalized (and served) first.
CREATE FUNCTION ticketing_waitlist_entry(p_now bigint, p_event text, p_entry text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    w record;
    v_entry jsonb;
BEGIN
    SELECT * INTO w FROM ticketing_waitlist_event(p_event, false);
    IF w.error IS NOT NULL THEN
        RETURN w.error;
    END IF;
    PERFORM ticketing_finalize_for_read(p_now, p_event);
    -- The entry and its position read on one snapshot.
    SELECT ticketing_waitlist_entry_json(e) INTO v_entry FROM waitlist_entries e
    WHERE id = p_entry AND event_id = p_event;
    IF v_entry IS NULL THEN
        RETURN ticketing_error('not_found', jsonb_build_object('entity', 'waitlist_entry', 'id', p_entry));
    END IF;
    RETURN jsonb_build_object('ok', v_entry);
END
$$;

-- Takes a waiting entry off the waitlist; leaving again changes nothing.
CREATE FUNCTION ticketing_waitlist_leave(p_now bigint, p_event text, p_entry text, p_holder text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    w record;
    v_now bigint;
    e waitlist_entries;
BEGIN
    SELECT * INTO w FROM ticketing_waitlist_event(p_event, true);
    IF w.error IS NOT NULL THEN
        RETURN w.error;
    END IF;
    v_now := ticketing_now(p_now);
    PERFORM ticketing_finalize_lapsed(p_event, v_now);
    SELECT * INTO e FROM waitlist_entries
    WHERE id = p_entry AND event_id = p_event AND holder = p_holder FOR UPDATE;
    IF NOT FOUND THEN
        RETURN ticketing_error('not_found', jsonb_build_object('entity', 'waitlist_entry', 'id', p_entry));
    END IF;
    IF e.state = 2 THEN
        RETURN jsonb_build_object('ok', NULL);
    END IF;
    IF e.state = 1 THEN
        RETURN ticketing_error('conflict', jsonb_build_object('reason', 'waitlist_entry_offered'));
    END IF;
    UPDATE waitlist_entries SET state = 2 WHERE id = e.id;
    UPDATE events SET waiting = waiting - 1 WHERE id = p_event;
    PERFORM ticketing_log(p_event, v_now, jsonb_build_object('type', 'waitlist_left', 'entry', e.id));
    RETURN jsonb_build_object('ok', NULL);
END
$$;

-- The reservation, locked with its event, after the not-found and token checks, and the
-- event's id and whether it has a waitlist (so the caller settles it even when the token is
-- wrong): event_id NULL when the reservation is unknown; r NULL when error is set.
DROP FUNCTION ticketing_authorized(text, bytea);
CREATE FUNCTION ticketing_authorized(p_id text, p_token bytea, OUT r reservations, OUT error jsonb,
                                     OUT event_id text, OUT waitlist boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_event text;
BEGIN
    SELECT reservations.event_id INTO v_event FROM reservations WHERE id = p_id;
    IF NOT FOUND THEN
        error := ticketing_error('not_found', jsonb_build_object('entity', 'reservation', 'id', p_id));
        RETURN;
    END IF;
    SELECT ticketing_has_waitlist(policy) INTO waitlist FROM events WHERE id = v_event FOR UPDATE;
    event_id := v_event;
    SELECT * INTO r FROM reservations WHERE id = p_id FOR UPDATE;
    IF r.token_hash <> sha256(p_token) THEN
        r := NULL;
        error := ticketing_error('invalid_token');
    END IF;
END
$$;

-- The functions below are those of migrations 0002 to 0006, each settling an event with a
-- waitlist first (and reserve counting waiting entries toward holder limits).

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

CREATE OR REPLACE FUNCTION ticketing_reserve(p_now bigint, p_req jsonb, p_id text, p_token bytea, p_retention_ms bigint)
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
    -- On an event with a waitlist every operation settles it first (see the header).
    IF ticketing_has_waitlist(ev.policy) THEN
        PERFORM ticketing_finalize_lapsed(ev.id, v_now);
    END IF;
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
        -- An event with a waitlist runs each request on its own (ticketing_reserve settles it).
        SELECT * INTO ev FROM events WHERE id = v_events[1] AND NOT ticketing_has_waitlist(policy);
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

CREATE OR REPLACE FUNCTION ticketing_commit(p_now bigint, p_id text, p_token bytea, p_req jsonb, p_order text,
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
    IF auth.event_id IS NULL THEN
        RETURN auth.error;
    END IF;
    -- The server's time is read once the event is locked, so it never runs behind a change
    -- already made by the transaction we waited for.
    v_now := ticketing_now(p_now);
    -- On an event with a waitlist every operation settles it first (see the header).
    IF auth.waitlist THEN
        PERFORM ticketing_finalize_lapsed(auth.event_id, v_now);
    END IF;
    IF auth.error IS NOT NULL THEN
        RETURN auth.error;
    END IF;
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

CREATE OR REPLACE FUNCTION ticketing_extend(p_now bigint, p_id text, p_token bytea, p_ttl bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_now bigint;
    auth record;
    r reservations;
    v_max bigint;
BEGIN
    SELECT * INTO auth FROM ticketing_authorized(p_id, p_token);
    IF auth.event_id IS NULL THEN
        RETURN auth.error;
    END IF;
    -- The server's time is read once the event is locked, so it never runs behind a change
    -- already made by the transaction we waited for.
    v_now := ticketing_now(p_now);
    -- On an event with a waitlist every operation settles it first (see the header).
    IF auth.waitlist THEN
        PERFORM ticketing_finalize_lapsed(auth.event_id, v_now);
    END IF;
    IF auth.error IS NOT NULL THEN
        RETURN auth.error;
    END IF;
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

CREATE OR REPLACE FUNCTION ticketing_cancel(p_now bigint, p_id text, p_token bytea)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_now bigint;
    auth record;
    r reservations;
BEGIN
    SELECT * INTO auth FROM ticketing_authorized(p_id, p_token);
    IF auth.event_id IS NULL THEN
        RETURN auth.error;
    END IF;
    -- The server's time is read once the event is locked, so it never runs behind a change
    -- already made by the transaction we waited for.
    v_now := ticketing_now(p_now);
    -- On an event with a waitlist every operation settles it first (see the header).
    IF auth.waitlist THEN
        PERFORM ticketing_finalize_lapsed(auth.event_id, v_now);
    END IF;
    IF auth.error IS NOT NULL THEN
        RETURN auth.error;
    END IF;
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

CREATE OR REPLACE FUNCTION ticketing_refund(p_now bigint, p_order text, p_tickets text[])
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_waitlist boolean;
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
    SELECT ticketing_has_waitlist(policy) INTO v_waitlist FROM events WHERE id = o.event_id FOR UPDATE;
    -- The server's time is read once the event is locked, so it never runs behind a change
    -- already made by the transaction we waited for.
    v_now := ticketing_now(p_now);
    -- On an event with a waitlist every operation settles it first (see the header).
    IF v_waitlist THEN
        PERFORM ticketing_finalize_lapsed(o.event_id, v_now);
    END IF;
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

CREATE OR REPLACE FUNCTION ticketing_block(p_now bigint, p_event text, p_seats text[], p_blocked boolean)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_waitlist boolean;
    v_now bigint;
    v_missing text;
    v_taken text[];
    v_changed text[];
    v_idx integer[];
    v_changed_idx integer[];
BEGIN
    SELECT ticketing_has_waitlist(policy) INTO v_waitlist FROM events WHERE id = p_event FOR UPDATE;
    IF NOT FOUND THEN
        RETURN ticketing_error('not_found', jsonb_build_object('entity', 'event', 'id', p_event));
    END IF;
    -- The server's time is read once the event is locked, so it never runs behind a change
    -- already made by the transaction we waited for.
    v_now := ticketing_now(p_now);
    -- On an event with a waitlist every operation settles it first (see the header).
    IF v_waitlist THEN
        PERFORM ticketing_finalize_lapsed(p_event, v_now);
    END IF;
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

CREATE OR REPLACE FUNCTION ticketing_set_pool(p_now bigint, p_event text, p_pool text, p_value integer, p_capacity boolean)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_waitlist boolean;
    v_now bigint;
    p pools;
    v_used integer;
BEGIN
    SELECT ticketing_has_waitlist(policy) INTO v_waitlist FROM events WHERE id = p_event FOR UPDATE;
    IF NOT FOUND THEN
        RETURN ticketing_error('not_found', jsonb_build_object('entity', 'event', 'id', p_event));
    END IF;
    -- The server's time is read once the event is locked, so it never runs behind a change
    -- already made by the transaction we waited for.
    v_now := ticketing_now(p_now);
    -- On an event with a waitlist every operation settles it first (see the header).
    IF v_waitlist THEN
        PERFORM ticketing_finalize_lapsed(p_event, v_now);
    END IF;
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
