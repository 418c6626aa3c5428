-- Events, their layout and the change log. Unqualified names: the store sets search_path to
-- its configured schema, so several stores (tenants, parallel tests) share one database.
-- Times are milliseconds since the Unix epoch (ticketing_core::Timestamp), as bigint.

CREATE TABLE events (
    -- "C" collation: ids order by bytes, as Rust strings do (event listings page by id).
    id              text    COLLATE "C" PRIMARY KEY,
    name            text    NOT NULL,
    -- ticketing_core::Policy and the sale window as serde writes them. This row is locked and
    -- updated by every change of the event (next_seq), so it holds nothing large: the
    -- layout is in event_layouts.
    policy          jsonb   NOT NULL,
    sale_window     jsonb,
    seat_count      integer NOT NULL,
    pool_count      integer NOT NULL,
    sale_opens_at   bigint,
    sale_closes_at  bigint,
    created_at      bigint  NOT NULL,
    -- The sequence number the next change will get; bumped in the same transaction as the
    -- change row, so the log has no gaps.
    next_seq        bigint  NOT NULL DEFAULT 1
);

-- The event as created (ticketing_core::EventSpec as serde writes it): `event()` reads it.
CREATE TABLE event_layouts (
    event_id        text    COLLATE "C" PRIMARY KEY REFERENCES events (id),
    spec            jsonb   NOT NULL
);

-- Every event_id column is COLLATE "C" like events.id: a comparison with a "C" value is made
-- in "C", and an index on a column of another collation cannot serve it (every lookup by
-- event would scan the whole table, all events included).

-- One row per seat. `status`: 0 available, 1 held, 2 sold, 3 blocked. A held seat names its
-- reservation and when the hold lapses, so lazy expiry needs no join.
CREATE TABLE seats (
    event_id        text    COLLATE "C" NOT NULL REFERENCES events (id),
    idx             integer NOT NULL,
    seat_id         text    NOT NULL,
    section         text    NOT NULL,
    row_name        text    NOT NULL,
    number          bigint  NOT NULL,
    category        text    NOT NULL,
    status          smallint NOT NULL DEFAULT 0 CHECK (status BETWEEN 0 AND 3),
    reservation_id  text,
    hold_expires_at bigint,
    PRIMARY KEY (event_id, idx),
    UNIQUE (event_id, seat_id),
    CHECK ((status = 1) = (reservation_id IS NOT NULL))
);

-- GA pools: counters only. `held` counts live and lapsed-but-not-finalized holds.
CREATE TABLE pools (
    event_id        text    COLLATE "C" NOT NULL REFERENCES events (id),
    idx             integer NOT NULL,
    pool_id         text    NOT NULL,
    capacity        integer NOT NULL CHECK (capacity >= 0),
    held            integer NOT NULL DEFAULT 0 CHECK (held >= 0),
    sold            integer NOT NULL DEFAULT 0 CHECK (sold >= 0),
    blocked         integer NOT NULL DEFAULT 0 CHECK (blocked >= 0),
    PRIMARY KEY (event_id, idx),
    UNIQUE (event_id, pool_id),
    CHECK (held + sold + blocked <= capacity)
);

-- The per-event change log: a transactional outbox integrators can tail.
CREATE TABLE changes (
    event_id        text    COLLATE "C" NOT NULL REFERENCES events (id),
    seq             bigint  NOT NULL,
    at              bigint  NOT NULL,
    -- ticketing_core::ChangeKind as serde serializes it (tagged by "type").
    kind            jsonb   NOT NULL,
    PRIMARY KEY (event_id, seq)
);
