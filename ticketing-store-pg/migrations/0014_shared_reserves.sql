-- Reserves that do not wait for each other, and striped GA pools.
--
-- Until now every operation of an event took its row lock (FOR UPDATE) for the change log's
-- next sequence number, so reserves of one event ran one at a time, each holding the lock
-- through its commit's WAL flush: one event did at most one reserve per flush, however many
-- clients and free seats it had. Here a plain reserve - named seats and GA units, no best
-- available, on an event without a waitlist, with no lapsed GA hold to finalize and no
-- idempotency record yet - runs beside other such reserves:
--
-- - It holds the event's advisory lock in SHARE mode; every operation that decides on free
--   inventory (the other reserves, commits, block, pool changes, transfers, availability)
--   takes it EXCLUSIVE first (the wrappers below), so they see the event exactly as before
--   and never a reserve half-way. Advisory locks queue fairly: a waiting exclusive request
--   holds back later shared ones (a row share lock would let them pass and starve it).
--   Transaction-scoped, so PgBouncer in transaction mode is fine.
-- - Seats are locked in index order and taken only when free; a holder with limits is
--   serialized by a second advisory lock on (event, holder).
-- - Its change goes to pending_changes, without a sequence number. Whoever next takes a
--   sequence number of the event (a trigger on events.next_seq, fired with the event's row
--   lock held) first numbers the pending changes, oldest first. Order among them is free:
--   they only take free inventory, so they commute; every change that depends on one (its
--   commit, cancel, expiry) is numbered after it, because the dependent operation saw it
--   committed, so the trigger, which runs later, sees its pending row.
-- - Lapsed seat holds it finalizes as the old path does (taking the event's row for their
--   log entries); lapsed GA holds send it to the exclusive path (their release holds pool
--   rows that reserves beside it may wait for). It answers the refusals it can decide -
--   not on sale, a holder limit, a seat held, sold or blocked - exactly as the old path
--   would. Anything else (a sold-out
--   pool, a repeated client id, bad input) runs the reserve as before under the exclusive
--   lock: found before the shared lock is taken, or, for a request with GA units, after
--   rolling back a subtransaction that releases what it took. Races it cannot answer (a
--   client id recorded meanwhile, a seat freed between two reads) raise a serialization
--   failure: the store retries the call.
--
-- Striped GA pools: a pool with `stripes` > 1 hands out its free units to counter rows
-- (pool_stripes) in chunks; a reserve takes units from a stripe nobody else holds (SKIP
-- LOCKED), or queues for one when all are in use, so concurrent GA reserves do not queue on
-- the pool's row. pools.striped counts
-- the units handed to stripes (held by their reserves or still unused), so
-- held + sold + blocked + striped <= capacity holds on the pool row: never oversold. The
-- older functions only know held/sold/blocked: a trigger folds the taken units of the
-- stripes nobody holds into held before any of them changes the pool row (a release may so
-- leave held short for a while: held + striped >= 0 replaces held >= 0), and the exclusive
-- lock drains the stripes (taken into held, unused back to the pool) before anything
-- decides on free units. Lock order: the exclusive lock, the event's row, pool rows, stripes.
--
-- The foreign keys from reservations and reserve_records to events go: each insert checked
-- one by taking a KEY SHARE lock on the event's row - every concurrent reserve on the one
-- hot row, and a wait on whoever holds it FOR UPDATE while holding seats. Events are never
-- deleted (a store drops its whole schema), and every insert names an event it just read.

ALTER TABLE reservations DROP CONSTRAINT IF EXISTS reservations_event_id_fkey;
ALTER TABLE reserve_records DROP CONSTRAINT IF EXISTS reserve_records_event_id_fkey;

-- No primary key: rows are only ever found by event (one index to maintain per insert).
CREATE TABLE pending_changes (
    id              bigserial NOT NULL,
    event_id        text    COLLATE "C" NOT NULL,
    at              bigint  NOT NULL,
    kind            jsonb   NOT NULL
);
CREATE INDEX pending_changes_event ON pending_changes (event_id, id);

ALTER TABLE pools
    ADD COLUMN stripes smallint NOT NULL DEFAULT 1 CHECK (stripes BETWEEN 1 AND 64),
    ADD COLUMN striped integer NOT NULL DEFAULT 0 CHECK (striped >= 0),
    ADD CONSTRAINT pools_striped_within_capacity CHECK (held + sold + blocked + striped <= capacity);
-- A striped pool's held may be short of its live holds' units for a while (see the fold
-- trigger): what is short is counted in the stripes' taken, at most `striped`.
ALTER TABLE pools DROP CONSTRAINT pools_held_check,
    ADD CONSTRAINT pools_held_with_stripes CHECK (held + striped >= 0);

-- A striped pool's counter rows: `quota` units handed to the stripe, `taken` of them held by
-- reserves not yet folded into the pool's held. The pool's striped = sum of quotas.
CREATE TABLE pool_stripes (
    event_id        text    COLLATE "C" NOT NULL,
    pool_idx        integer NOT NULL,
    stripe          smallint NOT NULL,
    quota           integer NOT NULL DEFAULT 0,
    taken           integer NOT NULL DEFAULT 0,
    PRIMARY KEY (event_id, pool_idx, stripe),
    CHECK (taken >= 0 AND taken <= quota)
);

-- Same body, now VOLATILE (it reads clock_timestamp()): a STABLE SQL function with a
-- volatile body is never inlined, so every call parsed and planned its SELECT again (perf:
-- the parser was the largest cost of a reserve). Only ever assigned to a variable.
CREATE OR REPLACE FUNCTION ticketing_now(p_now bigint) RETURNS bigint
LANGUAGE sql VOLATILE AS $$
    SELECT COALESCE(p_now, (extract(epoch from clock_timestamp()) * 1000)::bigint)
$$;

-- The event's advisory lock key (schemas share a database, so the schema is part of it).
CREATE FUNCTION ticketing_event_lock_key(p_event text) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT hashtextextended(current_schema() || '.' || p_event, 0)
$$;

-- Numbers the event's pending changes before the sequence number being taken: fires with
-- the event's row locked (one at a time), and callers read their first number back from
-- next_seq (RETURNING next_seq - n), which this moves past the pending ones.
CREATE FUNCTION ticketing_sequence_pending() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_count bigint;
BEGIN
    IF EXISTS (SELECT 1 FROM pending_changes WHERE event_id = NEW.id) THEN
        WITH moved AS (
            DELETE FROM pending_changes WHERE event_id = NEW.id RETURNING id, at, kind
        ), written AS (
            INSERT INTO changes (event_id, seq, at, kind)
            SELECT NEW.id, OLD.next_seq + row_number() OVER (ORDER BY id) - 1, at, kind FROM moved
            RETURNING 1
        )
        SELECT count(*) INTO v_count FROM written;
        NEW.next_seq := NEW.next_seq + v_count;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER events_sequence_pending BEFORE UPDATE OF next_seq ON events
FOR EACH ROW EXECUTE FUNCTION ticketing_sequence_pending();

-- Gives the event's pending changes their numbers now (readers of the log call it).
CREATE FUNCTION ticketing_sequence_now(p_event text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM pending_changes WHERE event_id = p_event) THEN
        UPDATE events SET next_seq = next_seq WHERE id = p_event;
    END IF;
END
$$;

-- Pruning counts the pending changes too, as the log does once they are numbered: they are
-- numbered first. An event whose row is busy is left for the next sweep (no waiting, so
-- no lock-order cycle with whoever holds it and waits for one this sweep holds).
CREATE OR REPLACE FUNCTION ticketing_prune_changes(p_keep bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    e record;
    v_deleted bigint := 0;
    v_rows bigint;
BEGIN
    IF p_keep IS NULL THEN
        RETURN 0;
    END IF;
    FOR e IN SELECT id, EXISTS (SELECT 1 FROM pending_changes p WHERE p.event_id = events.id) AS pending
             FROM events LOOP
        IF e.pending THEN
            UPDATE events SET next_seq = next_seq
            WHERE id = (SELECT id FROM events WHERE id = e.id FOR UPDATE SKIP LOCKED);
            CONTINUE WHEN NOT FOUND;
        END IF;
        DELETE FROM changes
        WHERE event_id = e.id AND seq < (SELECT next_seq FROM events WHERE id = e.id) - p_keep;
        GET DIAGNOSTICS v_rows = ROW_COUNT;
        v_deleted := v_deleted + v_rows;
    END LOOP;
    RETURN v_deleted;
END
$$;

-- Before an older function changes a striped pool's row: the taken units of every stripe
-- nobody else holds become held (their quota shrinks by as much). It never waits for a
-- stripe: a reserve holding one may be waiting for this pool's row (a refill), and a
-- stripe's lock can outlive the statement that found it full. So outside the exclusive lock
-- `held` may fall below zero for a while (a release of units still counted in a stripe it
-- skipped); what bounds the pool is unchanged: held + the stripes' taken units is what live
-- holds have, and held + sold + blocked + striped <= capacity. Under the exclusive lock, with
-- the pool's row held, no stripe is held by anyone else: the fold is whole and exact.
CREATE FUNCTION ticketing_fold_stripes() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_taken bigint;
BEGIN
    WITH locked AS (
        SELECT stripe, taken FROM pool_stripes
        WHERE event_id = NEW.event_id AND pool_idx = NEW.idx AND taken > 0
        FOR UPDATE SKIP LOCKED
    ), folded AS (
        UPDATE pool_stripes s SET quota = s.quota - l.taken, taken = 0
        FROM locked l
        WHERE s.event_id = NEW.event_id AND s.pool_idx = NEW.idx AND s.stripe = l.stripe
        RETURNING l.taken
    )
    SELECT COALESCE(sum(taken), 0) INTO v_taken FROM folded;
    NEW.held := NEW.held + v_taken;
    NEW.striped := NEW.striped - v_taken;
    RETURN NEW;
END
$$;

-- Only updates that leave `striped` alone are the older functions' (the stripe code below
-- always changes it), and only a pool with units out in stripes has anything to fold.
CREATE TRIGGER pools_fold_stripes BEFORE UPDATE ON pools
FOR EACH ROW WHEN (OLD.striped > 0 AND NEW.striped = OLD.striped)
EXECUTE FUNCTION ticketing_fold_stripes();

-- Under the exclusive lock: every stripe of the event's pools emptied (taken units held,
-- unused ones back to the pool), so the older functions see exact counters.
CREATE FUNCTION ticketing_drain_stripes(p_event text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    p record;
    v_taken bigint;
BEGIN
    FOR p IN SELECT idx FROM pools WHERE event_id = p_event AND striped > 0 ORDER BY idx FOR UPDATE LOOP
        PERFORM 1 FROM pool_stripes WHERE event_id = p_event AND pool_idx = p.idx ORDER BY stripe FOR UPDATE;
        SELECT COALESCE(sum(taken), 0) INTO v_taken FROM pool_stripes
        WHERE event_id = p_event AND pool_idx = p.idx;
        UPDATE pool_stripes SET quota = 0, taken = 0
        WHERE event_id = p_event AND pool_idx = p.idx AND quota > 0;
        UPDATE pools SET held = held + v_taken, striped = 0 WHERE event_id = p_event AND idx = p.idx;
    END LOOP;
END
$$;

-- Takes p_qty units of a striped pool for one reserve: from a stripe with room that nobody
-- holds (the first from p_start); else, every stripe with room being in use, from its own
-- stripe p_start, queueing for it (taking a stripe's units holds it until commit, so
-- reserves queue over all the stripes as they would over seats), refilled with a chunk of
-- the pool's free units when it has too few: the pool's row is then taken (p_may_wait:
-- waiting for it, else only if nobody holds it). False when the pool's free units are too
-- few for the request, or its row is busy and may not be waited for: the exclusive path then
-- decides, with exact counters.
--
-- No deadlock: whoever holds a pool's row waits for none of its stripes (the fold trigger
-- skips busy ones; only the drain waits, under the exclusive lock, when no reserve holds
-- one), so waiting for the row while holding a stripe is safe; a reserve queues for one
-- stripe of a pool, holding none of it that it took, and pools are taken in index order.
-- p_may_wait is for a request with this one GA item: with others, an older function could
-- hold this pool's row while waiting for another's this reserve holds.
CREATE FUNCTION ticketing_take_striped(p_event text, p_pool_idx integer, p_stripes integer, p_qty integer,
                                       p_start integer, p_may_wait boolean)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_stripe smallint;
    v_room boolean;
    v_chunk integer;
BEGIN
    SELECT stripe INTO v_stripe FROM pool_stripes
    WHERE event_id = p_event AND pool_idx = p_pool_idx AND quota - taken >= p_qty
    ORDER BY (stripe + p_stripes - p_start) % p_stripes
    LIMIT 1 FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
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
    END IF;
    UPDATE pool_stripes SET taken = taken + p_qty
    WHERE event_id = p_event AND pool_idx = p_pool_idx AND stripe = v_stripe;
    RETURN true;
END
$$;

-- A reserve beside others found its client reservation id recorded by a racing reserve
-- after it checked: a serialization failure, so the caller retries the whole call, which
-- then answers from the record (the exclusive path).
CREATE FUNCTION ticketing_client_id_raced() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a racing reserve recorded this client reservation id' USING ERRCODE = '40001';
END
$$;

-- A refusal of the shared path, recorded under the client reservation id (when there is
-- one) as the exclusive path records every outcome.
CREATE FUNCTION ticketing_reserve_refused(p_event text, p_client text, p_now bigint, p_req jsonb,
                                          p_answer jsonb)
RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    IF p_client IS NOT NULL THEN
        INSERT INTO reserve_records (event_id, client_reservation_id, made_at, request, outcome)
        VALUES (p_event, p_client, p_now, p_req, p_answer)
        ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
            PERFORM ticketing_client_id_raced();
        END IF;
    END IF;
    RETURN p_answer;
END
$$;

-- Whether a hold with GA units has lapsed in the event and is not finalized yet. Reads the
-- lapses in index order (a generic plan of a plain range test read every live hold), the
-- first thousand at most: lapses pile up only without a sweeper.
CREATE FUNCTION ticketing_ga_lapsed(p_event text, p_now bigint) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT COALESCE(bool_or(cardinality(l.pool_idx) > 0), false)
    FROM (SELECT x.pool_idx FROM reservations x WHERE x.event_id = p_event AND x.status = 0
          AND x.expires_at <= p_now ORDER BY x.expires_at LIMIT 1000) l
$$;

-- A reserve made beside other reserves (see the header), or NULL when this path cannot
-- decide it alone; the caller then rolls back whatever this did and takes the exclusive
-- path. It answers successes and the refusals it can decide (not on sale, a limit, a seat
-- taken), exactly as ticketing_reserve_exclusive would.
CREATE FUNCTION ticketing_reserve_shared(p_now bigint, p_req jsonb, p_id text, p_token bytea)
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
           ticketing_ga_lapsed(e.id, n.now) AS ga_lapsed
    INTO ev
    FROM events e, LATERAL (SELECT ticketing_now(p_now) AS now) n WHERE e.id = p_req->>'event';
    -- Lapsed holds with GA units are finalized under the exclusive lock: releasing their
    -- units holds their pools' rows, which reserves beside this one may be waiting for while
    -- they hold seats this one would then wait for.
    IF ev.id IS NULL OR ev.ga_lapsed OR ticketing_has_waitlist(ev.policy)
       OR array_position(ev.seat_idx, NULL) IS NOT NULL OR array_position(ev.pool_idx, NULL) IS NOT NULL THEN
        RETURN NULL;
    END IF;
    v_ttl := COALESCE((p_req->>'ttl_seconds')::bigint, (ev.policy->>'reservation_ttl_seconds')::bigint);
    IF v_ttl > (ev.policy->>'reservation_ttl_seconds_max')::bigint THEN
        RETURN NULL;
    END IF;
    -- A repeated client reservation id: the exclusive path answers from its record. (One
    -- recorded from now on makes this reserve's own record insert fail: see there.)
    IF v_client IS NOT NULL AND EXISTS (SELECT 1 FROM reserve_records c
                                        WHERE c.event_id = ev.id AND c.client_reservation_id = v_client) THEN
        RETURN NULL;
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
        v_taken := ARRAY(SELECT w.id FROM unnest(ev.seat_ids, ev.seat_idx) WITH ORDINALITY AS w (id, idx, ord)
                         WHERE (SELECT s.status FROM seats s WHERE s.event_id = ev.id AND s.idx = w.idx) <> 0
                         ORDER BY w.ord);
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

-- Whether this transaction took an exclusive lock (ticketing_exclusive): it has no use for
-- the shared path.
CREATE FUNCTION ticketing_in_exclusive() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT COALESCE(current_setting('ticketing.exclusive', true), '') = 'on'
$$;

-- Takes the exclusive lock of every event in p_events (in id order: no deadlock between
-- two of these), waiting for the reserves running beside each other to finish and holding
-- later ones back, then drains the stripes of the events in p_drain: those whose free GA
-- units the caller may decide on with the older functions' counters.
CREATE FUNCTION ticketing_exclusive(p_events text[], p_drain text[] DEFAULT '{}') RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_event text;
BEGIN
    PERFORM set_config('ticketing.exclusive', 'on', true);
    FOR v_event IN SELECT DISTINCT e FROM unnest(p_events) AS e WHERE e IS NOT NULL ORDER BY 1 LOOP
        PERFORM pg_advisory_xact_lock(ticketing_event_lock_key(v_event));
    END LOOP;
    -- Then the events' rows (as every older function takes them first), before any pool or
    -- stripe: operations that do not take the exclusive lock (cancel, expiry, refund) hold
    -- an event's row while they change its pools.
    PERFORM 1 FROM events WHERE id = ANY (p_events) ORDER BY id FOR UPDATE;
    FOR v_event IN SELECT DISTINCT e FROM unnest(p_drain) AS e WHERE e IS NOT NULL ORDER BY 1 LOOP
        IF EXISTS (SELECT 1 FROM pools WHERE event_id = v_event AND striped > 0) THEN
            PERFORM ticketing_drain_stripes(v_event);
        END IF;
    END LOOP;
END
$$;

-- The events of the reservations among p_ids that hold GA units and are not surely live: a
-- commit of one may take free units again (a late commit), so it needs exact counters. A
-- live hold's commit only moves its own units from held to sold. "Surely": live for another
-- minute, as the commit reads the time again after this (a hold lapsing in between would
-- otherwise meet counters that leave out the stripes: not an oversell - the pool row's
-- check refuses it - but an error).
CREATE FUNCTION ticketing_late_ga_events(p_now bigint, p_ids text[]) RETURNS text[]
LANGUAGE sql VOLATILE AS $$
    SELECT COALESCE(array_agg(DISTINCT r.event_id), '{}') FROM reservations r
    WHERE r.id = ANY (p_ids) AND cardinality(r.pool_idx) > 0
      AND (r.status <> 0 OR r.expires_at <= ticketing_now(p_now) + 60000)
$$;

-- The functions that decide on free inventory keep their bodies under new names and are
-- called through wrappers that take the exclusive lock of every event they touch first.
ALTER FUNCTION ticketing_reserve(bigint, jsonb, text, bytea, bigint) RENAME TO ticketing_reserve_exclusive;

CREATE FUNCTION ticketing_reserve(p_now bigint, p_req jsonb, p_id text, p_token bytea, p_retention_ms bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_answer jsonb;
BEGIN
    IF ticketing_in_exclusive() THEN
        NULL;
    ELSIF jsonb_array_length(COALESCE(p_req->'ga', '[]')) = 0 THEN
        -- Without GA items the shared path falls back only before it takes its lock.
        v_answer := ticketing_reserve_shared(p_now, p_req, p_id, p_token);
        IF v_answer IS NOT NULL THEN
            RETURN v_answer;
        END IF;
    ELSE
        -- A subtransaction: falling back rolls back the seats and units taken and releases
        -- the shared lock, so the exclusive path never waits for itself.
        BEGIN
            v_answer := ticketing_reserve_shared(p_now, p_req, p_id, p_token);
            IF v_answer IS NOT NULL THEN
                RETURN v_answer;
            END IF;
            RAISE EXCEPTION USING ERRCODE = 'TKSH1';
        EXCEPTION WHEN SQLSTATE 'TKSH1' THEN
            NULL;
        END;
    END IF;
    -- Only GA decisions need exact pool counters; seats are rows either way.
    PERFORM ticketing_exclusive(ARRAY[p_req->>'event'],
                                CASE WHEN jsonb_array_length(COALESCE(p_req->'ga', '[]')) > 0
                                     THEN ARRAY[p_req->>'event'] ELSE '{}' END);
    RETURN ticketing_reserve_exclusive(p_now, p_req, p_id, p_token, p_retention_ms);
END
$$;

ALTER FUNCTION ticketing_reserve_batch(bigint, jsonb, text[], bytea[], bigint) RENAME TO ticketing_reserve_batch_exclusive;

CREATE FUNCTION ticketing_reserve_batch(p_now bigint, p_reqs jsonb, p_ids text[], p_tokens bytea[],
                                        p_retention_ms bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ticketing_exclusive(ARRAY(SELECT r->>'event' FROM jsonb_array_elements(p_reqs) AS r),
                                ARRAY(SELECT r->>'event' FROM jsonb_array_elements(p_reqs) AS r
                                      WHERE jsonb_array_length(COALESCE(r->'ga', '[]')) > 0));
    RETURN ticketing_reserve_batch_exclusive(p_now, p_reqs, p_ids, p_tokens, p_retention_ms);
END
$$;

ALTER FUNCTION ticketing_commit(bigint, text, bytea, jsonb, text, bigint) RENAME TO ticketing_commit_exclusive;

CREATE FUNCTION ticketing_commit(p_now bigint, p_id text, p_token bytea, p_req jsonb, p_order text,
                                 p_retention_ms bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ticketing_exclusive(ARRAY[(SELECT event_id FROM reservations WHERE id = p_id)],
                                ticketing_late_ga_events(p_now, ARRAY[p_id]));
    RETURN ticketing_commit_exclusive(p_now, p_id, p_token, p_req, p_order, p_retention_ms);
END
$$;

ALTER FUNCTION ticketing_commit_batch(bigint, text[], bytea[], jsonb, text[], bigint)
    RENAME TO ticketing_commit_batch_exclusive;

CREATE FUNCTION ticketing_commit_batch(p_now bigint, p_ids text[], p_tokens bytea[], p_reqs jsonb,
                                       p_orders text[], p_retention_ms bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ticketing_exclusive(ARRAY(SELECT (SELECT x.event_id FROM reservations x WHERE x.id = w.id)
                                      FROM unnest(p_ids) AS w (id)),
                                ticketing_late_ga_events(p_now, p_ids));
    RETURN ticketing_commit_batch_exclusive(p_now, p_ids, p_tokens, p_reqs, p_orders, p_retention_ms);
END
$$;

ALTER FUNCTION ticketing_block(bigint, text, text[], boolean) RENAME TO ticketing_block_exclusive;

CREATE FUNCTION ticketing_block(p_now bigint, p_event text, p_seats text[], p_blocked boolean)
RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ticketing_exclusive(ARRAY[p_event]);
    RETURN ticketing_block_exclusive(p_now, p_event, p_seats, p_blocked);
END
$$;

ALTER FUNCTION ticketing_set_pool(bigint, text, text, integer, boolean) RENAME TO ticketing_set_pool_exclusive;

CREATE FUNCTION ticketing_set_pool(p_now bigint, p_event text, p_pool text, p_value integer, p_capacity boolean)
RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ticketing_exclusive(ARRAY[p_event], ARRAY[p_event]);
    RETURN ticketing_set_pool_exclusive(p_now, p_event, p_pool, p_value, p_capacity);
END
$$;

ALTER FUNCTION ticketing_transfer(bigint, text, text) RENAME TO ticketing_transfer_exclusive;

CREATE FUNCTION ticketing_transfer(p_now bigint, p_ticket text, p_to text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ticketing_exclusive(ARRAY[(SELECT event_id FROM tickets WHERE id = p_ticket)]);
    RETURN ticketing_transfer_exclusive(p_now, p_ticket, p_to);
END
$$;

-- The snapshot under the exclusive lock, after the pending changes are numbered: no reserve
-- can land between the numbering and the read, so the snapshot is exactly the log up to seq.
ALTER FUNCTION ticketing_availability(bigint, text) RENAME TO ticketing_availability_snapshot;

CREATE FUNCTION ticketing_availability(p_now bigint, p_event text)
RETURNS TABLE (seq bigint, seats smallint[], pool_ids text[], capacities integer[], helds integer[],
               solds integer[], blockeds integer[])
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ticketing_exclusive(ARRAY[p_event]);
    -- Units taken from stripes count as held (the fold trigger); unused ones stay out in
    -- their stripes and count as available, which they are.
    UPDATE pools SET held = held WHERE event_id = p_event AND striped > 0;
    PERFORM ticketing_sequence_now(p_event);
    RETURN QUERY SELECT * FROM ticketing_availability_snapshot(p_now, p_event);
END
$$;

-- A page of the log after p_after, its pending changes numbered first; with the event's
-- oldest kept sequence number. No row when the event does not exist, one row of NULLs but
-- first_retained when nothing comes after p_after.
CREATE FUNCTION ticketing_changes(p_event text, p_after bigint, p_limit bigint)
RETURNS TABLE (first_retained bigint, seq bigint, at bigint, kind jsonb)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ticketing_sequence_now(p_event);
    RETURN QUERY
    SELECT COALESCE((SELECT min(x.seq) FROM changes x WHERE x.event_id = e.id), e.next_seq),
           c.seq, c.at, c.kind
    FROM events e
    LEFT JOIN LATERAL (SELECT x.seq, x.at, x.kind FROM changes x
                       WHERE x.event_id = e.id AND x.seq > p_after
                       ORDER BY x.seq LIMIT p_limit) c ON true
    WHERE e.id = p_event ORDER BY c.seq;
END
$$;

-- How many counter rows a GA pool's capacity is striped over (1: the pool's row alone).
CREATE FUNCTION ticketing_set_pool_stripes(p_event text, p_pool text, p_stripes integer)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_idx integer;
BEGIN
    PERFORM ticketing_exclusive(ARRAY[p_event], ARRAY[p_event]);
    IF NOT EXISTS (SELECT 1 FROM events WHERE id = p_event) THEN
        RETURN ticketing_error('not_found', jsonb_build_object('entity', 'event', 'id', p_event));
    END IF;
    SELECT idx INTO v_idx FROM pools WHERE event_id = p_event AND pool_id = p_pool FOR UPDATE;
    IF NOT FOUND THEN
        RETURN ticketing_error('not_found', jsonb_build_object('entity', 'pool', 'id', p_pool));
    END IF;
    -- Drained by the exclusive lock: no unit is out in a stripe.
    DELETE FROM pool_stripes WHERE event_id = p_event AND pool_idx = v_idx;
    UPDATE pools SET stripes = p_stripes WHERE event_id = p_event AND idx = v_idx;
    INSERT INTO pool_stripes (event_id, pool_idx, stripe)
    SELECT p_event, v_idx, s FROM generate_series(0, p_stripes - 1) AS s WHERE p_stripes > 1;
    RETURN jsonb_build_object('ok', NULL);
END
$$;
