//! The command line of `ticketing-flash-sale`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use ticketing_core::{
    Coalescing, InventoryStore, MemoryStore, MemoryStoreConfig, MemoryWaitingRoom, SystemClock,
    WaitingRoom,
};
use ticketing_store_pg::{PgStore, PgStoreConfig};
use ticketing_store_redis::{RedisStore, RedisStoreConfig, RedisWaitingRoom};

use super::config::{EventShape, Mix, QueueConfig, SaleConfig};
use super::http::HttpTarget;
use super::target::Target;
use super::{SaleError, run};

/// Which store to drive in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreChoice {
    /// The in-memory store.
    Memory,
    /// PostgreSQL (`--database-url` or `DATABASE_URL`).
    Postgres,
    /// Redis (`--redis-url` or `REDIS_URL`).
    Redis,
}

/// Flags and environment of `ticketing-flash-sale`. Shares are between 0 and 1.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "ticketing-flash-sale",
    version,
    about = "A flash sale: virtual buyers compete for an event, then an audit proves nothing was oversold.",
    after_help = "Exit status: 0 when the audit passed, 1 when it failed, 2 when the sale could not run."
)]
pub struct FlashSaleArgs {
    /// The store to drive in this process.
    #[arg(long, value_enum, default_value_t = StoreChoice::Memory)]
    pub store: StoreChoice,
    /// Wrap the store in `Coalescing` (concurrent reserves of an event, and concurrent
    /// commits, go in batches).
    #[arg(long, conflicts_with = "url")]
    pub coalesce: bool,
    /// PostgreSQL URL, for `--store postgres`.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// PostgreSQL connections (default: the store's).
    #[arg(long)]
    pub pg_connections: Option<u32>,
    /// Redis URL, for `--store redis`.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,
    /// Drive a ticketing server on this machine over HTTP instead (`http://127.0.0.1:8080`).
    #[arg(long, conflicts_with = "store")]
    pub url: Option<String>,
    /// The server's admin key (it prints it at start), to create the event and audit.
    #[arg(long, env = "TICKETING_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
    /// HTTP request timeout, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u64,
    /// Virtual buyers.
    #[arg(long, default_value_t = 100_000)]
    pub buyers: u64,
    /// Operations (store calls, HTTP requests) in flight at once.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// Buyers shopping at once (thinking buyers hold no operation slot).
    #[arg(long, default_value_t = 4_096)]
    pub sessions: usize,
    /// Close the sale after this long (`90s`, `5m`).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Seed of every buyer's choices.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The event to create (default: `flash-SEED-` and random hex, new every run).
    #[arg(long)]
    pub event_id: Option<String>,
    /// Sections of the demo stadium on sale (default: all 20).
    #[arg(long)]
    pub sections: Option<u32>,
    /// Rows per section (default: all 25).
    #[arg(long)]
    pub rows: Option<u32>,
    /// Seats per row (default: all 100).
    #[arg(long)]
    pub seats_per_row: Option<u32>,
    /// Places in the standing field (default: 10,000; 0: none).
    #[arg(long)]
    pub ga_capacity: Option<u32>,
    /// The event's default hold, in seconds.
    #[arg(long, default_value_t = 300)]
    pub hold_ttl_seconds: u32,
    /// The short hold of buyers who let it lapse or pay late, in seconds.
    #[arg(long, default_value_t = 1)]
    pub short_ttl_seconds: u32,
    /// Least think time before commit or cancel, in milliseconds.
    #[arg(long, default_value_t = 10)]
    pub think_ms_min: u64,
    /// Most think time before commit or cancel, in milliseconds.
    #[arg(long, default_value_t = 100)]
    pub think_ms_max: u64,
    /// Share of buyers asking for the best available adjacent seats.
    #[arg(long, default_value_t = 0.15)]
    pub best_available: f64,
    /// Share of buyers asking for standing places.
    #[arg(long, default_value_t = 0.15)]
    pub ga: f64,
    /// Share of holders who cancel after thinking.
    #[arg(long, default_value_t = 0.10)]
    pub abandon: f64,
    /// Share of holders who walk away from a short hold and let it expire.
    #[arg(long, default_value_t = 0.05)]
    pub expire: f64,
    /// Share of holders who pay after their short hold lapsed (must be refused).
    #[arg(long, default_value_t = 0.02)]
    pub late: f64,
    /// Share of buyers who retry after a conflict.
    #[arg(long, default_value_t = 0.6)]
    pub retry: f64,
    /// Further attempts of a retrying buyer.
    #[arg(long, default_value_t = 3)]
    pub retries: u32,
    /// Zipf exponent of section popularity (0: uniform).
    #[arg(long, default_value_t = 1.0)]
    pub zipf: f64,
    /// Send every buyer through the event's waiting room first: join, poll until admitted,
    /// reserve with the pass, leave when done.
    #[arg(long)]
    pub queue: bool,
    /// With --queue: visitors the room admits per second.
    #[arg(long, default_value_t = 2_000, requires = "queue")]
    pub queue_rate: u32,
    /// With --queue: most buyers shopping at once (default: no cap).
    #[arg(long, requires = "queue")]
    pub queue_cap: Option<u32>,
    /// With --queue: the pause between a queued buyer's status polls, in milliseconds.
    #[arg(long, default_value_t = 200, requires = "queue")]
    pub queue_poll_ms: u64,
    /// With --queue: how long a pass lasts after admission, in seconds.
    #[arg(long, default_value_t = 60, requires = "queue")]
    pub queue_pass_ttl_seconds: u32,
    /// With --queue: seats per buyer the room assumes (default: from the buyers' mix, 2).
    #[arg(long, requires = "queue")]
    pub queue_seats_per_buyer: Option<u32>,
    /// Timeline sample interval, in milliseconds.
    #[arg(long, default_value_t = 250)]
    pub sample_ms: u64,
    /// Write the summary as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Draw throughput and latency over time to this SVG file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

impl FlashSaleArgs {
    /// The sale these flags describe.
    pub fn config(&self) -> SaleConfig {
        let event_id = self
            .event_id
            .clone()
            .unwrap_or_else(|| format!("flash-{}-{:08x}", self.seed, rand::random::<u32>()));
        SaleConfig {
            buyers: self.buyers,
            concurrency: self.concurrency,
            sessions: self.sessions,
            duration: self.duration,
            seed: self.seed,
            event_id,
            shape: EventShape {
                sections: self.sections,
                rows: self.rows,
                seats_per_row: self.seats_per_row,
                ga_capacity: self.ga_capacity,
            },
            hold_ttl_seconds: self.hold_ttl_seconds,
            short_ttl_seconds: self.short_ttl_seconds,
            think_min: Duration::from_millis(self.think_ms_min),
            think_max: Duration::from_millis(self.think_ms_max),
            mix: Mix {
                best_available: self.best_available,
                ga: self.ga,
                abandon: self.abandon,
                expire: self.expire,
                late: self.late,
                retry: self.retry,
                retries: self.retries,
                zipf_exponent: self.zipf,
            },
            sample_interval: Duration::from_millis(self.sample_ms),
            progress: !self.quiet,
            queue: self.queue.then(|| QueueConfig {
                admit_per_second: self.queue_rate,
                active_max: self.queue_cap,
                seats_per_buyer: self
                    .queue_seats_per_buyer
                    .unwrap_or_else(QueueConfig::seats_per_buyer_of_mix),
                pass_ttl_seconds: self.queue_pass_ttl_seconds,
                poll_interval: Duration::from_millis(self.queue_poll_ms),
            }),
        }
    }

    /// Opens what the flags point at: a server (checked to be on this machine) or a store,
    /// with its waiting rooms on the same backend.
    pub async fn target(&self) -> Result<Target, SaleError> {
        if let Some(url) = &self.url {
            let timeout = Duration::from_millis(self.timeout_ms.max(1));
            let target = HttpTarget::new(url, self.admin_key.clone(), timeout, self.concurrency)?;
            return Ok(Target::Http(Box::new(target)));
        }
        let coalesce = self.coalesce;
        match self.store {
            StoreChoice::Memory => {
                // Keep the whole change log: the audit replays it.
                let config = MemoryStoreConfig::default().change_retention(usize::MAX);
                let store = MemoryStore::with_config(Arc::new(SystemClock), config);
                let rooms = MemoryWaitingRoom::new();
                Ok(wrap(store, coalesce, "memory").with_rooms(Arc::new(rooms)))
            }
            StoreChoice::Postgres => {
                let url = self.database_url.clone().ok_or_else(|| {
                    SaleError::Invalid(
                        "--store postgres needs --database-url or DATABASE_URL".to_owned(),
                    )
                })?;
                let mut config = PgStoreConfig::new(url);
                if let Some(connections) = self.pg_connections {
                    config = config.max_connections(connections);
                }
                let store = PgStore::connect(config).await?;
                let rooms = store.waiting_room();
                Ok(wrap(store, coalesce, "postgres").with_rooms(Arc::new(rooms)))
            }
            StoreChoice::Redis => {
                let url = self.redis_url.clone().ok_or_else(|| {
                    SaleError::Invalid("--store redis needs --redis-url or REDIS_URL".to_owned())
                })?;
                let store = RedisStore::connect(RedisStoreConfig::new(url)).await?;
                let rooms = RedisWaitingRoom::new(&store);
                if self.queue {
                    rooms.load_scripts().await?;
                }
                let rooms: Arc<dyn WaitingRoom> = Arc::new(rooms);
                Ok(wrap(store, coalesce, "redis").with_rooms(rooms))
            }
        }
    }
}

/// `store` as a target, behind `Coalescing` when asked.
fn wrap<S: InventoryStore + 'static>(store: S, coalesce: bool, name: &str) -> Target {
    if coalesce {
        Target::store(
            Arc::new(Coalescing::new(store)),
            format!("{name}, coalescing"),
        )
    } else {
        Target::store(Arc::new(store), name)
    }
}

/// The whole program: runs the sale the flags describe, prints the summary, writes the
/// files asked for. Exit status 0 when the audit passed, 1 when it failed, 2 when the sale
/// could not run. Call within a tokio runtime.
pub async fn main_with(args: FlashSaleArgs) -> ExitCode {
    match sale(&args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("ticketing-flash-sale: {error}");
            ExitCode::from(2)
        }
    }
}

async fn sale(args: &FlashSaleArgs) -> Result<bool, SaleError> {
    let config = args.config();
    config.check()?;
    let target = args.target().await?;
    if !args.quiet {
        eprintln!(
            "flash sale on {}: {} buyers, event {} (Ctrl-C closes the sale early, then audits)",
            target.describe(),
            super::grouped(config.buyers),
            config.event_id
        );
    }
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let summary = run(target, config, interrupt).await?;
    println!("{}", summary.table());
    if let Some(path) = &args.json {
        summary.write_json(path)?;
        println!("summary written to {}", path.display());
    }
    if let Some(path) = &args.plot {
        summary.write_plot(path)?;
        println!("chart written to {}", path.display());
    }
    Ok(summary.audit.passed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn flag_defaults_are_the_config_defaults() {
        let args = FlashSaleArgs::try_parse_from(["ticketing-flash-sale", "--quiet"]).unwrap();
        let config = args.config();
        let defaults = SaleConfig::default();
        assert!(config.event_id.starts_with("flash-42-"));
        assert_eq!(
            SaleConfig {
                event_id: defaults.event_id.clone(),
                ..config
            },
            defaults
        );
    }

    #[test]
    fn queue_flags_need_queue_and_make_its_config() {
        let stray = FlashSaleArgs::try_parse_from(["ticketing-flash-sale", "--queue-rate", "5"]);
        assert!(stray.is_err());
        let args = FlashSaleArgs::try_parse_from([
            "ticketing-flash-sale",
            "--queue",
            "--queue-cap",
            "50",
            "--queue-poll-ms",
            "100",
        ])
        .unwrap();
        let queue = args.config().queue.unwrap();
        assert_eq!(queue.active_max, Some(50));
        assert_eq!(queue.admit_per_second, 2_000);
        assert_eq!(queue.poll_interval, Duration::from_millis(100));
        assert_eq!(queue.seats_per_buyer, 2);
        assert_eq!(
            QueueConfig {
                active_max: None,
                poll_interval: QueueConfig::default().poll_interval,
                ..queue
            },
            QueueConfig::default()
        );
        assert!(args.config().check().is_ok());
    }

    #[test]
    fn url_and_store_exclude_each_other() {
        let both = FlashSaleArgs::try_parse_from([
            "ticketing-flash-sale",
            "--store",
            "redis",
            "--url",
            "http://127.0.0.1:8080",
        ]);
        assert!(both.is_err());
        let coalesced_http = FlashSaleArgs::try_parse_from([
            "ticketing-flash-sale",
            "--coalesce",
            "--url",
            "http://127.0.0.1:8080",
        ]);
        assert!(coalesced_http.is_err());
    }
}
