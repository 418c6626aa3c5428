//! The example server: `ticketing-server`, the HTTP adapter over a chosen store.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use clap::{Parser, ValueEnum};
use ticketing_core::sweeper::{RoomSweeperStats, SweeperConfig};
use ticketing_core::{
    Coalescing, Error, EventId, EventSpec, InventoryStore, MemoryStore, MemoryWaitingRoom, PassKey,
    PoolId, PoolSpec, Position, RoomSettings, Seat, SeatId, WaitingRoom, WaitlistStore,
};
use ticketing_http::{HttpConfig, JwtConfig, RateLimit, Sweeper, WaitingRoomConfig};
use ticketing_store_pg::{PgStore, PgStoreConfig};
use ticketing_store_redis::{RedisStore, RedisStoreConfig, RedisWaitingRoom};

/// The demo event's id.
pub const DEMO_EVENT: &str = "demo-stadium";
/// Sections of the demo stadium.
const DEMO_SECTIONS: u32 = 20;
/// Rows per section.
const DEMO_ROWS: u32 = 25;
/// Seats per row: 20 × 25 × 100 = 50,000 seats.
const DEMO_SEATS_PER_ROW: u32 = 100;
/// Standing places on the field.
const DEMO_FIELD_CAPACITY: u32 = 10_000;
const _: () = assert!(DEMO_ROWS <= 26, "rows are lettered A to Z");

/// Which store the server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreKind {
    /// In this process; nothing survives a restart.
    Memory,
    /// PostgreSQL (`--database-url` or `DATABASE_URL`).
    Postgres,
    /// Redis (`--redis-url` or `REDIS_URL`).
    Redis,
}

/// Flags and environment of `ticketing-server`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "ticketing-server",
    version,
    about = "The ticketing REST API over a store of your choice."
)]
pub struct ServerArgs {
    /// Address to listen on.
    #[arg(long, env = "TICKETING_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The store.
    #[arg(long, env = "TICKETING_STORE", value_enum, default_value_t = StoreKind::Memory)]
    pub store: StoreKind,
    /// PostgreSQL URL, for `--store postgres`.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// Redis URL, for `--store redis`.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,
    /// On PostgreSQL and Redis, send each call on its own instead of gathering concurrent
    /// reserves (per event) and commits into batches (`Coalescing`, one round trip and one
    /// log flush per batch; a call that finds no batch in flight goes at once).
    #[arg(long, env = "TICKETING_NO_COALESCE")]
    pub no_coalesce: bool,
    /// Create the demo event: a 50,000-seat stadium (20 sections, 25 rows of 100) and a
    /// 10,000-place standing field.
    #[arg(long, env = "TICKETING_DEMO")]
    pub demo: bool,
    /// The admin key (X-Admin-Key); a random one is made and printed when absent.
    #[arg(long, env = "TICKETING_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
    /// HMAC secret of the buyers' JWTs (HS256, `sub` = holder); absent: development mode,
    /// the holder is the body's `user_id`.
    #[arg(long, env = "TICKETING_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Requests per second per client address (0: unlimited).
    #[arg(long, env = "TICKETING_CLIENT_RATE", default_value_t = 50)]
    pub client_rate: u32,
    /// Reservations per second per holder (0: unlimited).
    #[arg(long, env = "TICKETING_HOLDER_RATE", default_value_t = 5)]
    pub holder_rate: u32,
    /// Turn every rate limit off (benchmarks).
    #[arg(long, env = "TICKETING_NO_RATE_LIMITS")]
    pub no_rate_limits: bool,
    /// Requests served at once.
    #[arg(long, env = "TICKETING_CONCURRENCY", default_value_t = 1_024)]
    pub concurrency: usize,
    /// Request timeout, in milliseconds.
    #[arg(long, env = "TICKETING_TIMEOUT_MS", default_value_t = 10_000)]
    pub timeout_ms: u64,
    /// CORS origins to allow (comma-separated; `*` for any). None: no CORS.
    #[arg(long, env = "TICKETING_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Pause between expiry sweeps, in milliseconds.
    #[arg(long, env = "TICKETING_SWEEP_INTERVAL_MS", default_value_t = 500)]
    pub sweep_interval_ms: u64,
    /// The secret that signs waiting room passes (at least 32 bytes); every instance
    /// serving an event needs the same. Absent: a random one, good for this instance only.
    #[arg(long, env = "TICKETING_PASS_SECRET", hide_env_values = true)]
    pub pass_secret: Option<String>,
    /// Pause between waiting room admission steps, in milliseconds.
    #[arg(long, env = "TICKETING_ROOM_STEP_MS", default_value_t = 200)]
    pub room_step_ms: u64,
    /// With `--demo`: put the demo event behind a waiting room admitting this many visitors
    /// a second (reserve then needs a pass). Absent: not gated.
    #[arg(long, env = "TICKETING_DEMO_ROOM_RATE")]
    pub demo_room_rate: Option<u32>,
}

/// A built server: the router, its running sweepers, and the admin key in force.
#[derive(Debug)]
pub struct Server {
    /// The app to serve.
    pub router: Router,
    /// The expiry sweeper; stop it after serving.
    pub sweeper: Sweeper,
    /// The waiting rooms' admission steps; stop it after serving.
    pub room_sweeper: ticketing_core::sweeper::Sweeper<RoomSweeperStats>,
    /// The admin key (given or generated).
    pub admin_key: String,
}

fn rate(per_second: u32) -> Option<RateLimit> {
    (per_second > 0).then(|| RateLimit::new(per_second, per_second.saturating_mul(2)))
}

/// The opened backend: the inventory and the waiting rooms beside it, on the same server.
#[derive(Clone)]
pub struct Backend {
    /// Seats, pools, reservations and orders.
    pub store: Arc<dyn InventoryStore>,
    /// The events' waiting rooms.
    pub rooms: Arc<dyn WaitingRoom>,
    /// The store again, as the waitlists it serves.
    pub waitlist: Option<Arc<dyn WaitlistStore>>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend").finish_non_exhaustive()
    }
}

/// Opens the chosen store and its waiting rooms.
pub async fn open_backend(args: &ServerArgs) -> Result<Backend, Error> {
    match args.store {
        StoreKind::Memory => {
            let store = Arc::new(MemoryStore::new());
            Ok(Backend {
                store: store.clone(),
                rooms: Arc::new(MemoryWaitingRoom::new()),
                waitlist: Some(store),
            })
        }
        StoreKind::Postgres => {
            let url = args.database_url.clone().ok_or_else(|| {
                Error::invalid(
                    "database_url",
                    "--store postgres needs --database-url or DATABASE_URL",
                )
            })?;
            let store = PgStore::connect(PgStoreConfig::new(url)).await?;
            let rooms = Arc::new(store.waiting_room());
            Ok(durable_backend(store, rooms, args))
        }
        StoreKind::Redis => {
            let url = args.redis_url.clone().ok_or_else(|| {
                Error::invalid("redis_url", "--store redis needs --redis-url or REDIS_URL")
            })?;
            let store = RedisStore::connect(RedisStoreConfig::new(url)).await?;
            let rooms = RedisWaitingRoom::new(&store);
            rooms.load_scripts().await?;
            Ok(durable_backend(store, Arc::new(rooms), args))
        }
    }
}

/// A durable store as the server's backend: behind `Coalescing` unless `--no-coalesce`.
fn durable_backend<S>(store: S, rooms: Arc<dyn WaitingRoom>, args: &ServerArgs) -> Backend
where
    S: InventoryStore + WaitlistStore + 'static,
{
    if args.no_coalesce {
        let store = Arc::new(store);
        return Backend {
            store: store.clone(),
            rooms,
            waitlist: Some(store),
        };
    }
    let store = Arc::new(Coalescing::new(store));
    Backend {
        store: store.clone(),
        rooms,
        waitlist: Some(store),
    }
}

/// The key that signs passes: from `--pass-secret`, or random.
fn pass_key(args: &ServerArgs) -> Result<PassKey, Error> {
    match &args.pass_secret {
        Some(secret) => PassKey::new(secret.as_bytes()),
        None => Ok(PassKey::random()),
    }
}

/// The demo stadium: sections 101 to 120 (101-104 premium), rows A to Y of 100 seats each,
/// every tenth seat of row A accessible, and a standing field.
pub fn demo_event() -> Result<EventSpec, Error> {
    let capacity = DEMO_SECTIONS * DEMO_ROWS * DEMO_SEATS_PER_ROW;
    let mut seats = Vec::with_capacity(capacity as usize);
    for section_index in 0..DEMO_SECTIONS {
        let section = (101 + section_index).to_string();
        let category = if section_index < 4 {
            "premium"
        } else {
            "standard"
        };
        for row_index in 0..DEMO_ROWS {
            let row = char::from(b'A' + row_index as u8).to_string();
            for number in 1..=DEMO_SEATS_PER_ROW {
                seats.push(Seat {
                    id: SeatId::new(format!("{section}-{row}-{number}"))?,
                    section: section.clone(),
                    row: row.clone(),
                    number,
                    category: category.to_owned(),
                    accessible: row_index == 0 && number % 10 == 0,
                    position: Position {
                        x: (section_index * (DEMO_SEATS_PER_ROW + 10) + number) as f32,
                        y: row_index as f32,
                    },
                });
            }
        }
    }
    Ok(EventSpec {
        id: EventId::new(DEMO_EVENT)?,
        name: "Demo Stadium".to_owned(),
        seats,
        pools: vec![PoolSpec {
            id: PoolId::new("field")?,
            name: "Standing field".to_owned(),
            capacity: DEMO_FIELD_CAPACITY,
        }],
        sale_window: None,
        policy: Default::default(),
    })
}

fn random_key() -> String {
    let bytes: [u8; 15] = rand::random();
    data_encoding::BASE32_NOPAD.encode(&bytes).to_lowercase()
}

/// Opens the store, creates the demo event when asked (an existing one is kept), builds the
/// router and starts the expiry sweeper. Call within a tokio runtime.
pub async fn build(args: &ServerArgs) -> Result<Server, Error> {
    let pass_key = pass_key(args)?;
    let Backend {
        store,
        rooms,
        waitlist,
    } = open_backend(args).await?;
    if args.demo {
        match store.create_event(demo_event()?).await {
            Ok(_) | Err(Error::Conflict { .. }) => {}
            Err(error) => return Err(error),
        }
        if let Some(rate) = args.demo_room_rate {
            rooms
                .configure(&EventId::new(DEMO_EVENT)?, RoomSettings::rate(rate))
                .await?;
        }
    } else if args.demo_room_rate.is_some() {
        return Err(Error::invalid(
            "demo_room_rate",
            "--demo-room-rate gates the demo event: add --demo",
        ));
    }
    let admin_key = args.admin_key.clone().unwrap_or_else(random_key);
    let mut config = HttpConfig::default()
        .admin_key(admin_key.clone())
        .client_rate_limit(rate(args.client_rate))
        .holder_rate_limit(rate(args.holder_rate))
        .concurrency_limit(args.concurrency)
        .request_timeout(Duration::from_millis(args.timeout_ms.max(1)))
        .cors_allowed_origins(args.cors_origins.clone())
        .waiting_room(WaitingRoomConfig::new(Arc::clone(&rooms), pass_key));
    if args.no_rate_limits {
        config = config.without_rate_limits();
    }
    if let Some(secret) = &args.jwt_secret {
        config = config.jwt(JwtConfig::hs256(secret.as_bytes()));
    }
    if let Some(waitlist) = waitlist {
        config = config.waitlist(waitlist);
    }
    let sweeper = ticketing_http::spawn_sweeper(
        Arc::clone(&store),
        config.metrics.clone(),
        SweeperConfig::default().interval(Duration::from_millis(args.sweep_interval_ms.max(10))),
    );
    let room_sweeper = ticketing_http::spawn_room_sweeper(
        rooms,
        Arc::clone(&store),
        config.metrics.clone(),
        Duration::from_millis(args.room_step_ms.max(10)),
    );
    Ok(Server {
        router: ticketing_http::router(store, config).merge(page_router()),
        sweeper,
        room_sweeper,
        admin_key,
    })
}

/// The live seat map page (`examples/web/`, plain HTML, JS and CSS built into the binary):
/// path, content type, contents.
const PAGE_FILES: [(&str, &str, &str); 7] = [
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("../web/index.html"),
    ),
    (
        "/app.css",
        "text/css; charset=utf-8",
        include_str!("../web/app.css"),
    ),
    ("/app.js", JS, include_str!("../web/app.js")),
    ("/api.js", JS, include_str!("../web/api.js")),
    ("/model.js", JS, include_str!("../web/model.js")),
    ("/seatmap.js", JS, include_str!("../web/seatmap.js")),
    ("/live.js", JS, include_str!("../web/live.js")),
];
const JS: &str = "text/javascript; charset=utf-8";
/// The page loads nothing from elsewhere, and this keeps it that way.
const PAGE_CSP: &str = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// The seat map page's routes, merged beside the API by [`build`].
pub fn page_router() -> Router {
    use axum::http::header;
    PAGE_FILES
        .into_iter()
        .fold(Router::new(), |router, (path, content_type, body)| {
            let headers = [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
            ];
            router.route(
                path,
                axum::routing::get(move || async move { (headers, body) }),
            )
        })
}

/// How long requests in progress (and open change streams) get after the shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting and lets
/// requests in progress finish, for at most [`SHUTDOWN_GRACE`] (change streams never
/// finish on their own).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stopping, mut stopped) = tokio::sync::watch::channel(false);
    let signal = async move {
        shutdown.await;
        let _ = stopping.send(true);
    };
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(signal)
    .into_future();
    let grace = async move {
        if stopped.wait_for(|stop| *stop).await.is_ok() {
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = server => result,
        () = grace => {
            tracing::warn!("grace period over: closing the connections still open");
            Ok(())
        }
    }
}

/// What to print at start: where it listens and how to try it.
pub fn banner(address: SocketAddr, admin_key: &str, args: &ServerArgs) -> String {
    let base = format!("http://{address}");
    let mut text = format!(
        "ticketing-server listening on {base} (store: {:?})\n\
         \x20 live seat map: {base}/\n\
         \x20 API description: {base}/openapi.json   metrics: {base}/metrics\n\
         \x20 admin key (X-Admin-Key): {admin_key}\n",
        args.store
    );
    if args.pass_secret.is_none() {
        text.push_str(
            "  waiting room passes signed with a random key: valid on this instance only (set --pass-secret)\n",
        );
    }
    if let (true, Some(rate)) = (args.demo, args.demo_room_rate) {
        text.push_str(&format!(
            "  {DEMO_EVENT} is behind a waiting room admitting {rate}/s: join with POST {base}/v1/events/{DEMO_EVENT}/queue\n"
        ));
    }
    if args.jwt_secret.is_none() {
        text.push_str(
            "  development mode: the holder is the body's user_id (set --jwt-secret for JWTs)\n",
        );
    }
    if args.demo {
        text.push_str(&format!(
            "\nTry it:\n\
             \x20 curl -s -X POST {base}/v1/events/{DEMO_EVENT}/reservations \\\n\
             \x20   -H 'content-type: application/json' \\\n\
             \x20   -d '{{\"user_id\":\"alice\",\"seat_ids\":[\"101-A-1\",\"101-A-2\"],\"ga\":[{{\"pool\":\"field\",\"quantity\":2}}]}}'\n\
             \x20 then commit with the returned reservation_id and token:\n\
             \x20 curl -s -X POST {base}/v1/reservations/RESERVATION_ID/commit \\\n\
             \x20   -H 'reservation-token: TOKEN' -H 'idempotency-key: pay-1' \\\n\
             \x20   -H 'content-type: application/json' -d '{{\"payment_id\":\"pay-1\"}}'\n\
             \x20 live changes: curl -N {base}/v1/events/{DEMO_EVENT}/changes\n"
        ));
    } else {
        text.push_str(&format!(
            "\nTry it: restart with --demo for a 50,000-seat stadium, or create an event:\n\
             \x20 curl -s -X POST {base}/v1/events -H 'x-admin-key: {admin_key}' \\\n\
             \x20   -H 'content-type: application/json' \\\n\
             \x20   -d '{{\"event_id\":\"gig\",\"name\":\"Gig\",\"pools\":[{{\"pool\":\"ga\",\"capacity\":100}}]}}'\n\
             \x20 curl -s -X POST {base}/v1/events/gig/reservations \\\n\
             \x20   -H 'content-type: application/json' -d '{{\"user_id\":\"alice\",\"ga\":[{{\"pool\":\"ga\",\"quantity\":2}}]}}'\n"
        ));
    }
    text
}
