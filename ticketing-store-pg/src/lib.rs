//! # ticketing-store-pg
//!
//! The PostgreSQL backend of [`ticketing_core`]: inventory that survives restarts and is
//! shared by every application instance.
//!
//! [`PgStore`] implements every
//! [`InventoryStore`](ticketing_core::InventoryStore) operation, each one statement (a plpgsql
//! function installed by the migrations), and passes the whole conformance kit against a real server
//! (`tests/conformance.rs`). `reserve_batch` is one round trip (every event of the batch locked
//! in id order first); serialization failures and deadlocks are retried a bounded number of
//! times; `statement_cache(false)` suits PgBouncer's transaction mode; the kit also passes
//! through `ticketing_core::Coalescing` (group commit; ticketing-core's `tokio` feature).
//! `tests/durability.rs` kills a private server with SIGKILL mid-run and finds every
//! acknowledged commit after restart.
//! `examples/pg_bench.rs` measures it against pgbench (BENCHMARKS.md).
//!
//! **Waiting rooms.** [`PgWaitingRoom`] ([`PgStore::waiting_room`]) implements
//! [`WaitingRoom`](ticketing_core::WaitingRoom) in the same schema, each call one round trip,
//! and passes the room conformance kit (`tests/room_conformance.rs`); positions are exact
//! without counting the queue (migration 0007), `examples/pg_room_bench.rs` measures it.
//!
//! **Waitlists.** [`PgStore`] implements [`WaitlistStore`](ticketing_core::WaitlistStore),
//! each call one round trip, and passes the waitlist conformance kit
//! (`tests/waitlist_conformance.rs`). The serve step is SQL (migration 0008) and runs in the
//! transaction of every operation that frees inventory, under the event's row lock, so no
//! racing buyer can take what it frees: a change that frees inventory serves as it is
//! logged, finalizing lapsed holds serves once none is left lapsed, and every operation on
//! an event with a waitlist finalizes its lapsed holds first. An offer is a reservation
//! whose token hash is the entry's. An event without a waitlist pays a flag read from the
//! event row it locks anyway.
//!
//! **Commit batches.** `commit_batch` (what `Coalescing` sends for concurrent commits) is one
//! round trip and one transaction: every event of the batch locked in id order, one WAL
//! flush for all. Consecutive commits of every item of a live hold (first use of their key,
//! no waitlist) are written with one statement per table (`ticketing_commit_run`,
//! migrations 0012 and 0013); any other commit runs `ticketing_commit` on its own after the
//! ones before it are written, so every answer is that of the commits one after the other
//! (`tests/commit_batch.rs` checks a mixed batch against a twin store).
//!
//! **Best available.** Indexes hold the free seats of each event, section, category and row
//! (migration 0009): picking N seats walks the free seats in layout order and stops at the
//! answer, instead of reading every seat of the event under its row lock. One SQL picker,
//! `ticketing_pick_seats`, serves reserve and the waitlist's serve step. (Until migration
//! 0010 a walk of a section or category could not use its index: the event id's "C"
//! collation became the picker's for the section too.)
//!
//! **Reserves beside each other, and striped GA pools** (migration 0014). A plain reserve
//! (named seats and GA units, no best available, no waitlist, a first use of its client
//! reservation id) does not take the event's row: it holds the event's advisory lock in
//! share mode, takes its seats by row (several in layout order) and its units from the
//! pool's row or a stripe, and writes its change to `pending_changes` without a sequence
//! number; whoever next takes a sequence number of the event (a trigger on its row) numbers
//! the pending changes first, and `availability` and `changes` number them before reading,
//! so the log stays gap-free and replays to every snapshot. Everything that decides on free
//! inventory with the older functions (other reserves and batches, commits, block, pool
//! changes, transfers, availability) takes the advisory lock exclusively first - fair: a
//! waiting exclusive request holds back later shared ones - so it sees no reserve half-way.
//! The shared path answers what it can decide alone (success, not on sale, a holder limit,
//! a seat taken) exactly as the exclusive path would, finalizes lapsed seat holds as it
//! does, and hands anything else (a pool short of units, a lapsed GA hold, a repeated client
//! id, bad input) to it, after rolling back its own subtransaction. A GA pool may be striped
//! over counter rows ([`PgStoreConfig::ga_stripes`], [`PgStore::set_pool_stripes`]): reserves
//! take units from a stripe no one else holds, refilled in chunks from the pool's row, whose
//! check still bounds held + sold + blocked + units out in stripes by the capacity. Units in
//! stripes are folded into the pool's `held` by whoever next changes its row, skipping
//! stripes in use, and drained whole under the exclusive lock; so a release may leave
//! `held` short for a while (`held + striped >= 0` is the row's check), never a count that
//! anything decides on.
//! `tests/shared_reserves.rs` races reserves, commits and cancels on a one-row and a
//! striped pool; the conformance kit runs with every pool striped. Migration 0015 keeps the
//! shared path from planning anything on a call: a SQL function with a `FROM` clause is
//! planned anew on every call, so the lapsed-GA-hold check is plpgsql and asked only when a
//! hold has lapsed (1.5x the calls/s of the store's reserve statement, CPU-bound).
//!
//! **How a batch runs.** A batch of one event without a waitlist (what `Coalescing` sends)
//! is one set-based run (`ticketing_reserve_run`, migration 0010): its requests are decided
//! one after the other against the event's state read once (seats, pools, holders' counts,
//! the records of their client reservation ids), each accepted request's items counted as
//! taken for the next; then all accepted reservations, seats, pools, changes and new
//! idempotency records are written with one statement per table. A client reservation id
//! seen earlier — in an earlier call or earlier in the batch — answers as `reserve` would
//! (replay or `idempotency_mismatch`); best available picks with the seats the run has
//! taken excluded, so it picks what a call after the others would. Other batches (several
//! events, or an event with a waitlist) run each request on its own. The model check
//! compares `reserve_batch` with the reference model making the same requests one after
//! the other, and `tests/batch_equivalence.rs` compares its answers and every table it
//! writes with `reserve` called one request at a time.
//!
//! ## Design
//!
//! - **A schema per store.** Every connection sets `search_path` to the configured schema
//!   (startup parameter), so SQL names are unqualified and stores, tenants and parallel tests
//!   share a database. Behind PgBouncer the `options` startup parameter must be allowed
//!   (`ignore_startup_parameters` does not apply: the path is needed).
//! - **Migrations** run in one transaction under `pg_advisory_xact_lock`, so instances that
//!   start together wait for each other instead of racing, and no session-level lock is left
//!   behind a pooler.
//! - **One statement per operation.** Events are created with one statement of CTEs (event,
//!   seats, pools, change 1). The reservation operations are plpgsql functions installed by
//!   the migrations, called with one statement and answering one `jsonb` document (the
//!   result or the error with its data), so each costs one round trip.
//! - **Lock order**: the event's advisory lock (exclusive or shared), then its row, then
//!   seat rows by layout index, pool rows, stripes, reservation rows. Nobody holding a
//!   pool's row waits for one of its stripes (refills and folds skip stripes in use; only
//!   the drain waits, under the exclusive lock, when no reserve holds one), so a reserve may
//!   wait for a pool's row while it holds a stripe. The sweeper uses `FOR UPDATE SKIP
//!   LOCKED` on events; every call is retried a few times on a deadlock or serialization
//!   failure.
//! - **Lazy expiry**: a seat whose `hold_expires_at` has passed reads as free; the operation
//!   that takes it finalizes the lapsed reservation in the same transaction (logging
//!   `Expired` before its own change), as the in-memory store does.
//! - **Secrets**: a reservation token never reaches the database, nor its logs: the store
//!   sends the token's SHA-256 ([`ReservationToken::digest`](ticketing_core::ReservationToken::digest))
//!   and the database keeps the SHA-256 of that.
//! - **Time**: `clock_timestamp()` on the server, or the injected clock's value passed as a
//!   parameter.
//!
//! ```no_run
//! # async fn demo() -> ticketing_core::Result<()> {
//! use ticketing_store_pg::{PgStore, PgStoreConfig};
//!
//! let config = PgStoreConfig::new("postgres://postgres@127.0.0.1:5432/test").schema("tickets")?;
//! let store = PgStore::connect(config).await?; // creates the schema and migrates it
//! # let _ = store;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod error;
mod events;
mod reads;
mod reservations;
mod room;
mod store;
mod tickets;
mod waitlist;
mod wire;

#[cfg(feature = "testkit")]
pub mod testkit;

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, Executor};
use ticketing_core::{Clock, Error, Result, Timestamp};

pub use error::PgFailure;
use error::backend;
pub use room::PgWaitingRoom;

/// The longest schema name PostgreSQL keeps (NAMEDATALEN - 1).
const SCHEMA_LENGTH_MAX: usize = 63;

/// How to reach PostgreSQL and where the store keeps its tables.
#[derive(Debug, Clone)]
pub struct PgStoreConfig {
    url: String,
    schema: String,
    max_connections: u32,
    acquire_timeout: Duration,
    statement_timeout: Duration,
    idempotency_retention: Duration,
    statement_cache: bool,
    change_retention: Option<u64>,
    ga_stripes: u16,
    clock: Option<Arc<dyn Clock>>,
}

/// The most counter rows a GA pool's capacity may be striped over.
pub const GA_STRIPES_MAX: u16 = 64;

/// `stripes` if within 1 to [`GA_STRIPES_MAX`], else `invalid_request`.
pub(crate) fn check_stripes(stripes: u16) -> Result<u16> {
    if (1..=GA_STRIPES_MAX).contains(&stripes) {
        Ok(stripes)
    } else {
        Err(Error::invalid(
            "stripes",
            format!("from 1 to {GA_STRIPES_MAX} counter rows"),
        ))
    }
}

impl PgStoreConfig {
    /// A store at `url` (`postgres://user@host:port/database`), in schema `ticketing`, with
    /// 16 connections, a 5 s acquire timeout and a 5 s statement timeout, on the server's
    /// clock.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            schema: "ticketing".to_owned(),
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(5),
            idempotency_retention: Duration::from_secs(24 * 60 * 60),
            statement_cache: true,
            change_retention: None,
            ga_stripes: 1,
            clock: None,
        }
    }

    /// Keeps the store's tables in `schema`: lowercase ASCII letters, digits and `_`, not
    /// starting with a digit, at most 63 bytes. Several stores may share one database.
    ///
    /// Errors: `invalid_request` for any other name (it becomes part of SQL text).
    pub fn schema(mut self, schema: impl Into<String>) -> Result<Self> {
        let schema = schema.into();
        let valid = !schema.is_empty()
            && schema.len() <= SCHEMA_LENGTH_MAX
            && schema
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_')
            && !schema.as_bytes()[0].is_ascii_digit()
            && !schema.starts_with("pg_");
        if !valid {
            return Err(Error::invalid(
                "schema",
                "lowercase letters, digits and '_', not starting with a digit or 'pg_', at most 63 bytes",
            ));
        }
        self.schema = schema;
        Ok(self)
    }

    /// How many connections the pool keeps at most. Callers beyond it wait for a connection
    /// (up to [`acquire_timeout`](Self::acquire_timeout)). More is not faster past a few
    /// server processes per core: on two cores, 32 concurrent reserves through 8
    /// connections ran at about 1.5x their rate through 32 (`examples/pg_bench.rs`).
    pub fn max_connections(mut self, connections: u32) -> Self {
        self.max_connections = connections.max(1);
        self
    }

    /// How long an operation waits for a free connection before failing with `backend`.
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// The server-side limit on any one statement (`statement_timeout`).
    pub fn statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = timeout;
        self
    }

    /// How long client reservation ids and commit idempotency keys are remembered
    /// (default 24 h).
    pub fn idempotency_retention(mut self, retention: Duration) -> Self {
        self.idempotency_retention = retention;
        self
    }

    /// Whether connections keep prepared statements (default on). Turn it off behind
    /// PgBouncer in transaction mode, where consecutive statements may reach different
    /// server connections.
    pub fn statement_cache(mut self, enabled: bool) -> Self {
        self.statement_cache = enabled;
        self
    }

    /// Keeps the last `changes` changes of each event (at least 1) and lets the sweeper step,
    /// [`PgStore::expire_due`], delete older ones; [`PgStore::changes`] then answers
    /// `changes_pruned` for what is gone. Default: every change is kept (the log is the
    /// outbox integrators tail).
    pub fn change_retention(mut self, changes: u64) -> Self {
        self.change_retention = Some(changes.max(1));
        self
    }

    /// How many counter rows the GA pools of events this store creates are striped over
    /// (default 1: the pool's row alone). Concurrent reserves of one pool take units from
    /// different stripes instead of queueing on its row; change one pool with
    /// [`PgStore::set_pool_stripes`].
    ///
    /// Errors: `invalid_request` outside 1 to [`GA_STRIPES_MAX`].
    pub fn ga_stripes(mut self, stripes: u16) -> Result<Self> {
        self.ga_stripes = check_stripes(stripes)?;
        Ok(self)
    }

    /// Reads time from `clock` instead of the server's clock (tests pass a
    /// [`ManualClock`](ticketing_core::ManualClock)).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The schema the store uses.
    pub fn schema_name(&self) -> &str {
        &self.schema
    }
}

/// Inventory in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    schema: String,
    clock: Option<Arc<dyn Clock>>,
    idempotency_retention_ms: u64,
    change_retention: Option<i64>,
    ga_stripes: u16,
}

impl PgStore {
    /// Connects, creates the schema if needed and applies the migrations.
    ///
    /// Errors: `backend` when the server is unreachable or a migration fails.
    pub async fn connect(config: PgStoreConfig) -> Result<Self> {
        let store = Self::connect_lazy(config)?;
        store.migrate().await?;
        Ok(store)
    }

    /// A store whose connections open on first use; call [`PgStore::migrate`] before use.
    ///
    /// Errors: `invalid_request` for a malformed URL.
    pub fn connect_lazy(config: PgStoreConfig) -> Result<Self> {
        let options: PgConnectOptions = config
            .url
            .parse()
            .map_err(|_| Error::invalid("url", "not a postgres:// connection URL"))?;
        let timeout_ms = config.statement_timeout.as_millis().to_string();
        // Every connection works in the store's schema; `public` stays out of the path so a
        // table of the same name elsewhere can never be picked up. No JIT: every statement
        // here is a short one under an event's lock, and a plan whose row estimate is large
        // (a fresh schema has no statistics; generate_series counts 1,000 rows) was compiled
        // for ~300 ms inside a commit batch (seen with auto_explain).
        let mut options = options.options([
            ("search_path", config.schema.as_str()),
            ("statement_timeout", timeout_ms.as_str()),
            ("jit", "off"),
        ]);
        if !config.statement_cache {
            options = options.statement_cache_capacity(0);
        }
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(config.acquire_timeout)
            .connect_lazy_with(options);
        Ok(Self {
            pool,
            schema: config.schema,
            clock: config.clock,
            idempotency_retention_ms: u64::try_from(config.idempotency_retention.as_millis())
                .unwrap_or(u64::MAX),
            change_retention: config
                .change_retention
                .map(|changes| i64::try_from(changes).unwrap_or(i64::MAX)),
            ga_stripes: config.ga_stripes,
        })
    }

    /// Creates the schema if needed and applies the embedded migrations, in one transaction
    /// under a transaction-level advisory lock: safe when several instances start at once,
    /// and behind PgBouncer in transaction mode (no session state survives).
    ///
    /// Errors: `backend`.
    pub async fn migrate(&self) -> Result<()> {
        let mut connection = self.pool.acquire().await.map_err(backend("connect"))?;
        let mut transaction = connection.begin().await.map_err(backend("migrate"))?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 7341))")
            .bind(format!("ticketing-migrate:{}", self.schema))
            .execute(&mut *transaction)
            .await
            .map_err(backend("migrate"))?;
        // The name was validated as a plain identifier: quoting it is enough.
        transaction
            .execute(format!("CREATE SCHEMA IF NOT EXISTS \"{}\"", self.schema).as_str())
            .await
            .map_err(backend("migrate"))?;
        let mut migrator = sqlx::migrate!("./migrations");
        // The advisory lock above serializes migrators; sqlx's own lock is session-level.
        migrator.set_locking(false);
        // `run_direct` on the transaction's connection: `run` takes an `Acquire` whose
        // lifetimes make the future not `Send` (sqlx issue #2016).
        migrator
            .run_direct(&mut *transaction)
            .await
            .map_err(backend("migrate"))?;
        transaction.commit().await.map_err(backend("migrate"))?;
        Ok(())
    }

    /// The schema this store uses.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The connection pool, for applications that read the change log with their own SQL.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The injected time, or `None` to use the server's clock in SQL.
    fn now_param(&self) -> Option<i64> {
        self.clock
            .as_ref()
            .map(|clock| i64::try_from(clock.now().as_millis()).unwrap_or(i64::MAX))
    }

    /// Drops the store's schema and everything in it. For tests and tear-down.
    ///
    /// Errors: `backend`.
    pub async fn drop_schema(&self) -> Result<()> {
        sqlx::query(&format!(
            "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
            self.schema
        ))
        .execute(&self.pool)
        .await
        .map_err(backend("drop_schema"))?;
        Ok(())
    }
}

/// Milliseconds since the epoch as PostgreSQL stores them.
fn to_db(at: Timestamp) -> i64 {
    i64::try_from(at.as_millis()).unwrap_or(i64::MAX)
}

/// The reverse of [`to_db`]; negative values (never written) read as the epoch.
fn from_db(millis: i64) -> Timestamp {
    Timestamp::from_millis(u64::try_from(millis).unwrap_or(0))
}
