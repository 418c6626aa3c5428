//! # ticketing-store-redis
//!
//! The Redis backend of [`ticketing_core`]: inventory shared by every application instance,
//! each operation one Lua script on one hash slot, on a single server or on Redis Cluster.
//!
//! [`RedisStore`] implements every [`InventoryStore`](ticketing_core::InventoryStore)
//! operation with the in-memory store's semantics and passes the whole conformance kit
//! against a real server (`tests/conformance.rs`), through
//! `ticketing_core::Coalescing` too, and its stress run against a real
//! three-primary cluster (`tests/cluster.rs`).
//!
//! It also implements [`WaitlistStore`](ticketing_core::WaitlistStore): the serve step runs
//! in the same script as every release, and the waitlist's conformance suite passes
//! (`tests/waitlist_conformance.rs`).
//!
//! [`RedisWaitingRoom`] implements [`WaitingRoom`](ticketing_core::WaitingRoom) beside the
//! inventory, each call one script on the event's slot, and passes the waiting room's
//! conformance suite (`tests/room_conformance.rs`); [`room`] describes its keys.
//!
//! ```no_run
//! # async fn demo() -> ticketing_core::Result<()> {
//! use ticketing_store_redis::{RedisStore, RedisStoreConfig};
//!
//! let config = RedisStoreConfig::new("redis://127.0.0.1:6379").key_prefix("tickets:")?;
//! let store = RedisStore::connect(config).await?; // checks the server, loads the scripts
//! # let _ = store;
//! # Ok(())
//! # }
//! ```
//!
#![doc = include_str!("../docs/design.md")]
#![doc = include_str!("../docs/durability.md")]
#![deny(missing_docs)]

mod connection;
mod error;
mod events;
mod keys;
mod reads;
mod reservations;
pub mod room;
mod store;
mod tickets;
mod waitlist;
mod wire;

#[cfg(feature = "testkit")]
pub mod testkit;

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManagerConfig;
use redis::{ErrorKind, RedisError, Script, ServerErrorKind};
use ticketing_core::{Clock, Error, Result, SystemClock, Timestamp};

pub use connection::reserve_script_source;
use connection::{Connection, SCRIPTS};
pub use error::RedisFailure;
use error::backend;
use keys::Keys;
pub use room::RedisWaitingRoom;

/// Where the store's servers are.
#[derive(Debug, Clone)]
enum Servers {
    Single(String),
    Cluster(Vec<String>),
}

/// How to reach Redis and where the store keeps its keys.
#[derive(Debug, Clone)]
pub struct RedisStoreConfig {
    servers: Servers,
    key_prefix: String,
    connection_timeout: Duration,
    response_timeout: Duration,
    retries: u32,
    retry_delay: Duration,
    idempotency_retention: Duration,
    wait: Option<(u32, Duration)>,
    clock: Option<Arc<dyn Clock>>,
}

impl RedisStoreConfig {
    /// A store on the server at `url` (`redis://[user:password@]host:port[/db]`), keys under
    /// `ticketing:`, 5 s connection and response timeouts, 3 retries, on the server's clock.
    pub fn new(url: impl Into<String>) -> Self {
        Self::with_servers(Servers::Single(url.into()))
    }

    /// A store on Redis Cluster, discovered from any of `nodes` (`redis://host:port`).
    pub fn cluster(nodes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self::with_servers(Servers::Cluster(
            nodes.into_iter().map(Into::into).collect(),
        ))
    }

    fn with_servers(servers: Servers) -> Self {
        Self {
            servers,
            key_prefix: "ticketing:".to_owned(),
            connection_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(5),
            retries: 3,
            retry_delay: Duration::from_millis(100),
            idempotency_retention: Duration::from_secs(24 * 60 * 60),
            wait: None,
            clock: None,
        }
    }

    /// Puts every key under `prefix`: up to 64 bytes of `A-Z a-z 0-9 - _ . :`. Stores with
    /// different prefixes share a server without seeing each other.
    ///
    /// Errors: `invalid_request` for any other prefix (a brace would move the hash tag).
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Result<Self> {
        let prefix = prefix.into();
        keys::check_prefix(&prefix)?;
        self.key_prefix = prefix;
        Ok(self)
    }

    /// How long connecting may take.
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// How long one command may wait for its answer before failing with `backend`.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// How many times a failed call is tried again (with exponential backoff from
    /// `delay`), only when trying again cannot apply it twice: the server refused the
    /// connection or was loading, or the operation is idempotent (reads, commits, cancels,
    /// reserves with a client reservation id). Default: 3 times from 100 ms.
    pub fn retries(mut self, retries: u32, delay: Duration) -> Self {
        self.retries = retries;
        self.retry_delay = delay;
        self
    }

    /// How long client reservation ids and commit idempotency keys are remembered
    /// (default 24 h).
    pub fn idempotency_retention(mut self, retention: Duration) -> Self {
        self.idempotency_retention = retention;
        self
    }

    /// After each commit, waits (Redis `WAIT`) until `replicas` replicas acknowledged it,
    /// at most `timeout`; fewer is a `backend` error (the commit stands: retry it with the
    /// same idempotency key to get the order). See the crate docs on durability.
    pub fn wait_for_replicas(mut self, replicas: u32, timeout: Duration) -> Self {
        self.wait = Some((replicas, timeout));
        self
    }

    /// Reads time from `clock` instead of the server's `TIME` (tests pass a
    /// [`ManualClock`](ticketing_core::ManualClock)); the time is sent with each call.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The key prefix the store uses.
    pub fn key_prefix_name(&self) -> &str {
        &self.key_prefix
    }
}

/// Whether a call may run twice without harm (see [`RedisStoreConfig::retries`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Repeat {
    /// Running it twice gives the same state and answer.
    Safe,
    /// Try again only when the first attempt cannot have run.
    Unsafe,
}

/// Inventory in Redis.
#[derive(Clone)]
pub struct RedisStore {
    connection: Connection,
    keys: Keys,
    clock: Option<Arc<dyn Clock>>,
    retention_ms: u64,
    retries: u32,
    retry_delay: Duration,
    wait: Option<(u32, Duration)>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("key_prefix", &self.keys.prefix())
            .field(
                "cluster",
                &matches!(self.connection, Connection::Cluster(_)),
            )
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects, checks the server answers and loads every script.
    ///
    /// Errors: `invalid_request` for a malformed URL; `backend` when no server answers.
    pub async fn connect(config: RedisStoreConfig) -> Result<Self> {
        let connection = match &config.servers {
            Servers::Single(url) => {
                let client = redis::Client::open(url.as_str())
                    .map_err(|_| Error::invalid("url", "not a redis:// connection URL"))?;
                let settings = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(config.connection_timeout))
                    .set_response_timeout(Some(config.response_timeout))
                    .set_number_of_retries(usize::try_from(config.retries).unwrap_or(0));
                let manager = client
                    .get_connection_manager_with_config(settings)
                    .await
                    .map_err(|error| backend("connect", &error))?;
                Connection::Single(manager)
            }
            Servers::Cluster(nodes) => {
                let client = redis::cluster::ClusterClientBuilder::new(nodes.clone())
                    .connection_timeout(config.connection_timeout)
                    .response_timeout(config.response_timeout)
                    .retries(config.retries)
                    .build()
                    .map_err(|_| Error::invalid("url", "not a list of redis:// node URLs"))?;
                let connection = client
                    .get_async_connection()
                    .await
                    .map_err(|error| backend("connect", &error))?;
                Connection::Cluster(connection)
            }
        };
        let store = Self {
            connection,
            keys: Keys::new(config.key_prefix),
            clock: config.clock,
            retention_ms: u64::try_from(config.idempotency_retention.as_millis())
                .unwrap_or(u64::MAX),
            retries: config.retries,
            retry_delay: config.retry_delay,
            wait: config.wait,
        };
        store.load_scripts().await?;
        Ok(store)
    }

    /// Loads every script on every primary (a cluster routes `SCRIPT LOAD` to all). Calls
    /// reload a script themselves when a server answers NOSCRIPT (after a restart or a
    /// failover), so this only saves the first calls a round trip.
    ///
    /// Errors: `backend`.
    pub async fn load_scripts(&self) -> Result<()> {
        for script in SCRIPTS.all() {
            let mut connection = self.connection.clone();
            script
                .prepare_invoke()
                .load_async(&mut connection)
                .await
                .map_err(|error| backend("load_scripts", &error))?;
        }
        Ok(())
    }

    /// The hash tag of `event`'s keys (inside `{ev:…}`): 16 base32 characters of the
    /// SHA-256 of its id. Every key of the event is `<prefix>{ev:<tag>}:<name>`; operators
    /// find an event's slot with `CLUSTER KEYSLOT "{ev:<tag>}"`.
    pub fn event_tag(event: &ticketing_core::EventId) -> String {
        keys::tag(event)
    }

    /// The twenty-three keys of `event`, in the order every event script takes them as `KEYS`
    /// (for operators and for benchmarks that run a script directly).
    pub fn event_keys(&self, event: &ticketing_core::EventId) -> Vec<String> {
        self.keys.event(&keys::tag(event))
    }

    /// The key prefix this store uses.
    pub fn key_prefix(&self) -> &str {
        self.keys.prefix()
    }

    /// Deletes every key under this store's prefix (`SCAN` and `UNLINK`). For tests and
    /// tear-down on a single server; never while the store is in use.
    ///
    /// Errors: `invalid_request` on a cluster (scan each primary yourself); `backend`.
    pub async fn delete_all(&self) -> Result<u64> {
        let Connection::Single(connection) = &self.connection else {
            return Err(Error::invalid(
                "key_prefix",
                "delete_all runs on a single server only",
            ));
        };
        let mut connection = Connection::Single(connection.clone());
        delete_matching(&mut connection, &format!("{}*", self.keys.prefix())).await
    }

    /// The injected time as a script argument, or `""` for the server's `TIME`.
    fn now_arg(&self) -> String {
        self.clock
            .as_ref()
            .map(|clock| clock.now().as_millis().to_string())
            .unwrap_or_default()
    }

    /// The time for the time part of store-made ids (ordering only).
    fn id_time(&self) -> Timestamp {
        self.clock
            .as_ref()
            .map_or_else(|| SystemClock.now(), |clock| clock.now())
    }

    /// Runs `script` with `keys` and `args`, trying again as [`RedisStoreConfig::retries`]
    /// allows; answers the script's text.
    async fn run(
        &self,
        operation: &'static str,
        script: &Script,
        keys: &[String],
        args: &[&[u8]],
        repeat: Repeat,
    ) -> Result<String> {
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(key.as_str());
        }
        for arg in args {
            invocation.arg(*arg);
        }
        let mut attempt = 0;
        loop {
            let mut connection = self.connection.clone();
            match invocation.invoke_async::<String>(&mut connection).await {
                Ok(answer) => return Ok(answer),
                Err(error) if attempt < self.retries && may_repeat(&error, repeat) => {
                    let delay = self.retry_delay.saturating_mul(1 << attempt.min(6));
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(error) => return Err(backend(operation, &error)),
            }
        }
    }

    /// `WAIT` for the configured replicas on the primary that holds `key`.
    async fn wait_for_replicas(&self, key: &str) -> Result<()> {
        let Some((replicas, timeout)) = self.wait else {
            return Ok(());
        };
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let mut command = redis::cmd("WAIT");
        command.arg(replicas).arg(timeout_ms);
        let acknowledged: i64 = match &self.connection {
            Connection::Single(connection) => {
                let mut connection = connection.clone();
                command.query_async(&mut connection).await
            }
            Connection::Cluster(connection) => {
                let mut connection = connection.clone();
                let route = redis::cluster_routing::Route::with_key(
                    key,
                    redis::cluster_routing::SlotAddr::Master,
                );
                connection
                    .route_command(
                        command,
                        redis::cluster_routing::RoutingInfo::SingleNode(
                            redis::cluster_routing::SingleNodeRoutingInfo::SpecificNode(route),
                        ),
                    )
                    .await
                    .and_then(|value| {
                        redis::from_redis_value(value).map_err(redis::RedisError::from)
                    })
            }
        }
        .map_err(|error| backend("wait", &error))?;
        if acknowledged < i64::from(replicas) {
            return Err(Error::backend(
                "redis",
                RedisFailure::new(
                    "wait",
                    format!("{acknowledged} of {replicas} replicas acknowledged in time"),
                ),
            ));
        }
        Ok(())
    }
}

/// Whether an error proves the call did not run, or the call may run twice anyway.
fn may_repeat(error: &RedisError, repeat: Repeat) -> bool {
    let not_run = error.is_connection_refusal()
        || matches!(
            error.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::MasterDown
            )
        );
    not_run
        || (repeat == Repeat::Safe
            && (error.is_io_error() || error.is_timeout() || error.is_connection_dropped()))
}

async fn delete_matching(connection: &mut Connection, pattern: &str) -> Result<u64> {
    let mut cursor: u64 = 0;
    let mut deleted = 0;
    loop {
        let (next, found): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1_000)
            .query_async(connection)
            .await
            .map_err(|error| backend("delete_all", &error))?;
        if !found.is_empty() {
            let removed: u64 = redis::cmd("UNLINK")
                .arg(&found)
                .query_async(connection)
                .await
                .map_err(|error| backend("delete_all", &error))?;
            deleted += removed;
        }
        if next == 0 {
            return Ok(deleted);
        }
        cursor = next;
    }
}
