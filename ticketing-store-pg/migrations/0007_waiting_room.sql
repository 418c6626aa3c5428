-- Waiting rooms (ticketing_core::WaitingRoom): a room per gated event and a row per queue
-- ticket, with the rules of the core's `room` module, one function call per trait method.
--
-- Positions are exact without counting the queue. Every ticket that enters the queue takes
-- the room's next ordinal, and admission takes the lowest ordinals first, so the visitors
-- ahead of ordinal o are o - head (head: the lowest waiting ordinal, one index probe) less
-- those who left the queue between head and o (an index range holding only such leavers,
-- and leaving is rare). Every path is an index probe or touches only the rows it changes:
-- join, status and leave are O(log n) at any queue length, and an admission step reads
-- and writes only the tickets it admits and the passes it lapses.
--
-- Concurrency (READ COMMITTED): join, leave, admit and configure lock the room row first,
-- then the tickets they change, so they run one at a time per room and cannot deadlock;
-- each of their statements sees what the previous holder of the lock committed. Status
-- and stats read on one snapshot (their reads run in one STABLE function), and lock the
-- room only to open it when its time has come. Rooms do not reference events: rooms and
-- inventory may live in different backends.

CREATE TABLE rooms (
    id               integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id         text    COLLATE "C" NOT NULL UNIQUE,
    -- RoomSettings.
    admit_per_second integer,
    active_max       integer,
    pass_ttl_seconds integer NOT NULL,
    seats_per_buyer  integer NOT NULL,
    opens_at         bigint,
    -- The u64 seed's bits.
    shuffle_seed     bigint  NOT NULL,
    -- The room's state, as MemoryWaitingRoom keeps it.
    opened_at        bigint,
    last_step_at     bigint  NOT NULL,
    -- Rate credit in visitor-milliseconds (AdmissionBudget).
    credit           bigint  NOT NULL DEFAULT 0,
    sold_out         boolean NOT NULL DEFAULT false,
    admitted_total   bigint  NOT NULL DEFAULT 0,
    next_ordinal     bigint  NOT NULL DEFAULT 1,
    -- Tickets in states 0 and 1 (pre-queue and queue), and in state 2 (passes, some of
    -- which may be past their time until a step lapses them): counts kept so that no
    -- call counts the queue.
    waiting          bigint  NOT NULL DEFAULT 0,
    passes           bigint  NOT NULL DEFAULT 0
);

-- Fixed-width columns first, widest first, so a row has no padding; the two nullable ones
-- are NULL for a visitor in the queue and take no space then.
CREATE TABLE queue_tickets (
    -- Queue order. In the pre-queue: arrival order, renumbered at the opening.
    ordinal         bigint   NOT NULL,
    joined_at       bigint   NOT NULL,
    pass_expires_at bigint,
    -- Pre-queue only: ticketing_shuffle_key.
    shuffle_key     bigint,
    room_id         integer  NOT NULL REFERENCES rooms (id),
    -- 0 pre-queue, 1 waiting, 2 admitted, 3 lapsed, 4 left the queue (counted by the
    -- positions of those behind until the head passes it), 5 left otherwise (pre-queue or
    -- a pass given back). 0 to 2 hold the visitor's place.
    state           smallint NOT NULL CHECK (state BETWEEN 0 AND 5),
    id              text     COLLATE "C" PRIMARY KEY,
    visitor         text     COLLATE "C" NOT NULL
);

-- One place per visitor, found by join.
CREATE UNIQUE INDEX queue_tickets_place ON queue_tickets (room_id, visitor) WHERE state <= 2;
-- The queue: its head, and the next visitors to admit.
CREATE INDEX queue_tickets_queue ON queue_tickets (room_id, ordinal) WHERE state = 1;
-- Leavers between the head and a position.
CREATE INDEX queue_tickets_left ON queue_tickets (room_id, ordinal) WHERE state = 4;
-- Live passes by expiry: what a step lapses.
CREATE INDEX queue_tickets_passes ON queue_tickets (room_id, pass_expires_at) WHERE state = 2;
-- The pre-queue in the order of the opening's draw.
CREATE INDEX queue_tickets_prequeue ON queue_tickets (room_id, shuffle_key, ordinal) WHERE state = 0;

-- ticketing_core::room::shuffle_key (the first 8 bytes, big-endian, of SHA-256 over the
-- seed's 8 big-endian bytes and the visitor id) with its top bit flipped, so that bigint
-- order is the order of the u64 key.
CREATE FUNCTION ticketing_shuffle_key(p_seed bigint, p_visitor text) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT ('x' || encode(substring(sha256(int8send(p_seed) || convert_to(p_visitor, 'UTF8'))
                                    FROM 1 FOR 8), 'hex'))::bit(64)::bigint
           # (-9223372036854775808)::bigint
$$;

-- ticketing_core::room::AdmissionBudget::of: visitors to admit now and the credit left.
-- Numeric where the core saturates.
CREATE FUNCTION ticketing_room_budget(p_rate integer, p_cap integer, p_seats_per_buyer integer,
                                      p_credit bigint, p_elapsed_ms bigint, p_active bigint,
                                      p_waiting bigint, p_free_units bigint, p_step_max bigint,
                                      OUT admit bigint, OUT credit bigint)
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    admit := LEAST(p_waiting, p_step_max);
    credit := p_credit;
    IF p_rate IS NOT NULL THEN
        credit := LEAST(credit::numeric + p_rate::numeric * p_elapsed_ms, p_rate::numeric * 1000);
        admit := LEAST(admit, credit / 1000);
    END IF;
    IF p_cap IS NOT NULL THEN
        admit := LEAST(admit, GREATEST(p_cap - p_active, 0));
    END IF;
    admit := LEAST(admit, GREATEST(p_free_units / GREATEST(p_seats_per_buyer, 1) - p_active, 0));
    IF p_rate IS NOT NULL THEN
        credit := credit - admit * 1000;
    END IF;
END
$$;

-- ticketing_core::room::estimated_wait_seconds: by the rate measured since the opening,
-- or the configured rate before anyone was admitted; NULL when there is neither.
CREATE FUNCTION ticketing_room_wait(p_rate integer, p_admitted_total bigint, p_opened_at bigint,
                                    p_now bigint, p_position bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN p_opened_at IS NOT NULL AND p_admitted_total > 0 THEN
            div(p_position::numeric * GREATEST(GREATEST(p_now - p_opened_at, 0) / 1000, 1)
                + p_admitted_total - 1, p_admitted_total)
        WHEN p_rate IS NOT NULL THEN div(p_position::numeric + p_rate - 1, p_rate)
    END::bigint
$$;

-- Opens the (locked) room if its time has come: the pre-queue, in shuffle-key order (ties
-- by arrival), takes the next ordinals, and the rate starts with one second's credit.
CREATE FUNCTION ticketing_room_open_due(r rooms, p_now bigint) RETURNS rooms
LANGUAGE plpgsql AS $$
DECLARE
    v_count bigint;
BEGIN
    IF r.opened_at IS NOT NULL OR p_now < r.opens_at THEN
        RETURN r;
    END IF;
    UPDATE queue_tickets q SET state = 1, ordinal = r.next_ordinal + drawn.rank - 1
    FROM (SELECT id, row_number() OVER (ORDER BY shuffle_key, ordinal) AS rank
          FROM queue_tickets WHERE room_id = r.id AND state = 0) drawn
    WHERE q.id = drawn.id;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    UPDATE rooms SET opened_at = p_now, last_step_at = p_now,
                     credit = COALESCE(admit_per_second::bigint * 1000, 0),
                     next_ordinal = next_ordinal + v_count
    WHERE id = r.id
    RETURNING * INTO r;
    RETURN r;
END
$$;

CREATE FUNCTION ticketing_room_not_found(p_event text) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT ticketing_error('not_found', jsonb_build_object('entity', 'room', 'id', p_event))
$$;

CREATE FUNCTION ticketing_queue_ticket_not_found(p_ticket text) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT ticketing_error('not_found', jsonb_build_object('entity', 'queue_ticket', 'id', p_ticket))
$$;

-- A ticket as ticketing_core::QueueTicket deserializes it.
CREATE FUNCTION ticketing_queue_ticket_json(q queue_tickets, p_event text) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('id', q.id, 'event', p_event, 'visitor', q.visitor,
                              'joined_at', q.joined_at)
$$;

-- The room's counts as ticketing_core::RoomStats deserializes them. STABLE: called by the
-- statement that read the room, it reads the passes past their time on the same snapshot.
CREATE FUNCTION ticketing_room_stats_json(r rooms, p_now bigint) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'waiting', r.waiting,
        'active', r.passes - (SELECT count(*) FROM queue_tickets
                              WHERE room_id = r.id AND state = 2 AND pass_expires_at <= p_now),
        'admitted_total', r.admitted_total,
        'sold_out', r.sold_out,
        'opened_at', r.opened_at)
$$;

-- Where a ticket stands, as ticketing_core::QueueState deserializes it. STABLE: called by
-- the statement that read the ticket and its room, it finds the head and the leavers on the
-- same snapshot, so a step committing meanwhile cannot skew the position.
CREATE FUNCTION ticketing_queue_state_json(q queue_tickets, r rooms, p_now bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_head bigint;
    v_left bigint;
    v_position bigint;
    v_status jsonb;
BEGIN
    IF q.state = 0 THEN
        v_status := jsonb_build_object('status', 'pre_queue', 'opens_at', COALESCE(r.opens_at, p_now));
    ELSIF q.state = 1 AND r.sold_out THEN
        v_status := jsonb_build_object('status', 'sold_out');
    ELSIF q.state = 1 THEN
        SELECT ordinal INTO v_head FROM queue_tickets
        WHERE room_id = r.id AND state = 1 ORDER BY ordinal LIMIT 1;
        SELECT count(*) INTO v_left FROM queue_tickets
        WHERE room_id = r.id AND state = 4 AND ordinal >= v_head AND ordinal < q.ordinal;
        v_position := q.ordinal - v_head - v_left + 1;
        v_status := jsonb_build_object(
            'status', 'waiting', 'position', v_position,
            'estimated_wait_seconds',
            ticketing_room_wait(r.admit_per_second, r.admitted_total, r.opened_at, p_now, v_position));
    ELSIF q.state = 2 AND q.pass_expires_at > p_now THEN
        v_status := jsonb_build_object('status', 'admitted', 'pass_expires_at', q.pass_expires_at);
    ELSIF q.state IN (2, 3) THEN
        v_status := jsonb_build_object('status', 'lapsed');
    ELSE
        v_status := jsonb_build_object('status', 'left');
    END IF;
    RETURN jsonb_build_object('ok', v_status || jsonb_build_object(
        'ticket', ticketing_queue_ticket_json(q, r.event_id)));
END
$$;

-- WaitingRoom::configure, after validation (done by the caller): creates the room or
-- changes its settings; the queue and live passes stay, the credit is kept within one
-- second's worth of the new rate.
CREATE FUNCTION ticketing_room_configure(p_now bigint, p_event text, p_rate integer, p_cap integer,
                                         p_pass_ttl integer, p_seats_per_buyer integer,
                                         p_opens_at bigint, p_seed bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_now bigint := ticketing_now(p_now);
    r rooms;
BEGIN
    INSERT INTO rooms AS room (event_id, admit_per_second, active_max, pass_ttl_seconds,
                               seats_per_buyer, opens_at, shuffle_seed, last_step_at)
    VALUES (p_event, p_rate, p_cap, p_pass_ttl, p_seats_per_buyer, p_opens_at, p_seed, v_now)
    ON CONFLICT (event_id) DO UPDATE
    SET admit_per_second = EXCLUDED.admit_per_second, active_max = EXCLUDED.active_max,
        pass_ttl_seconds = EXCLUDED.pass_ttl_seconds, seats_per_buyer = EXCLUDED.seats_per_buyer,
        opens_at = EXCLUDED.opens_at, shuffle_seed = EXCLUDED.shuffle_seed,
        credit = LEAST(room.credit, COALESCE(EXCLUDED.admit_per_second::bigint * 1000, 0))
    RETURNING * INTO r;
    PERFORM ticketing_room_open_due(r, v_now);
    RETURN '{"ok": null}';
END
$$;

-- WaitingRoom::join: the visitor's place, or a new ticket p_id at the back (of the
-- pre-queue before the opening).
CREATE FUNCTION ticketing_room_join(p_now bigint, p_event text, p_visitor text, p_id text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_now bigint := ticketing_now(p_now);
    v_prequeue boolean;
    r rooms;
    q queue_tickets;
BEGIN
    SELECT * INTO r FROM rooms WHERE event_id = p_event FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN ticketing_room_not_found(p_event);
    END IF;
    r := ticketing_room_open_due(r, v_now);
    SELECT * INTO q FROM queue_tickets WHERE room_id = r.id AND visitor = p_visitor AND state <= 2;
    IF FOUND THEN
        IF q.state <> 2 OR q.pass_expires_at > v_now THEN
            RETURN jsonb_build_object('ok', ticketing_queue_ticket_json(q, p_event));
        END IF;
        -- A pass that lapsed and was not swept yet: finish it, then queue anew.
        UPDATE queue_tickets SET state = 3 WHERE id = q.id;
        r.passes := r.passes - 1;
    END IF;
    v_prequeue := r.opened_at IS NULL;
    INSERT INTO queue_tickets (ordinal, joined_at, shuffle_key, room_id, state, id, visitor)
    VALUES (r.next_ordinal, v_now,
            CASE WHEN v_prequeue THEN ticketing_shuffle_key(r.shuffle_seed, p_visitor) END,
            r.id, CASE WHEN v_prequeue THEN 0 ELSE 1 END, p_id, p_visitor)
    RETURNING * INTO q;
    UPDATE rooms SET next_ordinal = next_ordinal + 1, waiting = waiting + 1, passes = r.passes
    WHERE id = r.id;
    RETURN jsonb_build_object('ok', ticketing_queue_ticket_json(q, p_event));
END
$$;

-- WaitingRoom::status. Locks the room only to open it when its time has come.
CREATE FUNCTION ticketing_room_status(p_now bigint, p_ticket text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_now bigint := ticketing_now(p_now);
    v_answer jsonb;
    v_due boolean;
    r rooms;
BEGIN
    SELECT ticketing_queue_state_json(q, r0, v_now), r0.opened_at IS NULL AND r0.opens_at <= v_now
    INTO v_answer, v_due
    FROM queue_tickets q JOIN rooms r0 ON r0.id = q.room_id
    WHERE q.id = p_ticket;
    IF v_answer IS NULL THEN
        RETURN ticketing_queue_ticket_not_found(p_ticket);
    END IF;
    IF v_due THEN
        SELECT rooms.* INTO r FROM rooms JOIN queue_tickets q ON q.room_id = rooms.id
        WHERE q.id = p_ticket FOR NO KEY UPDATE OF rooms;
        PERFORM ticketing_room_open_due(r, v_now);
        SELECT ticketing_queue_state_json(q, r0, v_now) INTO v_answer
        FROM queue_tickets q JOIN rooms r0 ON r0.id = q.room_id
        WHERE q.id = p_ticket;
    END IF;
    RETURN v_answer;
END
$$;

-- WaitingRoom::leave: off the pre-queue or the queue, or a live pass given back; a ticket
-- already ended (or whose pass is past its time) is left as it is.
CREATE FUNCTION ticketing_room_leave(p_now bigint, p_ticket text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_now bigint := ticketing_now(p_now);
    v_room integer;
    r rooms;
    q queue_tickets;
BEGIN
    SELECT room_id INTO v_room FROM queue_tickets WHERE id = p_ticket;
    IF NOT FOUND THEN
        RETURN ticketing_queue_ticket_not_found(p_ticket);
    END IF;
    SELECT * INTO r FROM rooms WHERE id = v_room FOR NO KEY UPDATE;
    r := ticketing_room_open_due(r, v_now);
    -- Read again under the room's lock: a step may have admitted the ticket meanwhile.
    SELECT * INTO q FROM queue_tickets WHERE id = p_ticket;
    IF q.state IN (0, 1) THEN
        UPDATE queue_tickets SET state = CASE WHEN q.state = 1 THEN 4 ELSE 5 END WHERE id = q.id;
        UPDATE rooms SET waiting = waiting - 1 WHERE id = r.id;
    ELSIF q.state = 2 AND q.pass_expires_at > v_now THEN
        UPDATE queue_tickets SET state = 5 WHERE id = q.id;
        UPDATE rooms SET passes = passes - 1 WHERE id = r.id;
    END IF;
    RETURN '{"ok": null}';
END
$$;

-- WaitingRoom::admit: lapses the passes past their time, then, once the room is open,
-- admits the next visitors as ticketing_room_budget allows, as ticketing_core::AdmitStep.
CREATE FUNCTION ticketing_room_admit(p_now bigint, p_event text, p_free_units bigint,
                                     p_step_max bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_now bigint := ticketing_now(p_now);
    v_lapsed bigint;
    v_admitted bigint := 0;
    v_budget record;
    r rooms;
BEGIN
    SELECT * INTO r FROM rooms WHERE event_id = p_event FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN ticketing_room_not_found(p_event);
    END IF;
    r := ticketing_room_open_due(r, v_now);
    UPDATE queue_tickets SET state = 3
    WHERE room_id = r.id AND state = 2 AND pass_expires_at <= v_now;
    GET DIAGNOSTICS v_lapsed = ROW_COUNT;
    IF r.opened_at IS NULL THEN
        UPDATE rooms SET passes = passes - v_lapsed WHERE id = r.id RETURNING * INTO r;
    ELSE
        SELECT * INTO v_budget
        FROM ticketing_room_budget(r.admit_per_second, r.active_max, r.seats_per_buyer, r.credit,
                                   GREATEST(v_now - r.last_step_at, 0), r.passes - v_lapsed,
                                   r.waiting, p_free_units, p_step_max);
        UPDATE queue_tickets SET state = 2, pass_expires_at = v_now + r.pass_ttl_seconds::bigint * 1000
        WHERE id IN (SELECT id FROM queue_tickets WHERE room_id = r.id AND state = 1
                     ORDER BY ordinal LIMIT v_budget.admit);
        GET DIAGNOSTICS v_admitted = ROW_COUNT;
        UPDATE rooms SET credit = v_budget.credit, last_step_at = GREATEST(v_now, last_step_at),
                         sold_out = (p_free_units = 0), admitted_total = admitted_total + v_admitted,
                         waiting = waiting - v_admitted, passes = passes - v_lapsed + v_admitted
        WHERE id = r.id
        RETURNING * INTO r;
    END IF;
    -- Every pass past its time was lapsed above: the live passes are the room's passes.
    RETURN jsonb_build_object('ok', jsonb_build_object(
        'admitted', v_admitted, 'lapsed', v_lapsed,
        'stats', jsonb_build_object('waiting', r.waiting, 'active', r.passes,
                                    'admitted_total', r.admitted_total, 'sold_out', r.sold_out,
                                    'opened_at', r.opened_at)));
END
$$;

-- WaitingRoom::stats. Locks the room only to open it when its time has come.
CREATE FUNCTION ticketing_room_stats(p_now bigint, p_event text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_now bigint := ticketing_now(p_now);
    v_stats jsonb;
    v_due boolean;
    r rooms;
BEGIN
    SELECT ticketing_room_stats_json(r0, v_now), r0.opened_at IS NULL AND r0.opens_at <= v_now
    INTO v_stats, v_due
    FROM rooms r0 WHERE event_id = p_event;
    IF v_stats IS NULL THEN
        RETURN ticketing_room_not_found(p_event);
    END IF;
    IF v_due THEN
        SELECT * INTO r FROM rooms WHERE event_id = p_event FOR NO KEY UPDATE;
        r := ticketing_room_open_due(r, v_now);
        SELECT ticketing_room_stats_json(r, v_now) INTO v_stats;
    END IF;
    RETURN jsonb_build_object('ok', v_stats);
END
$$;
