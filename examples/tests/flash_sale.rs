//! Small, fast flash sales through `ticketing_examples::flash_sale::run`, the code the
//! binary runs: on the in-memory store, PostgreSQL, Redis and over HTTP, then through a
//! waiting room in process and over HTTP. Each must pass its audit with nothing oversold,
//! account for every buyer, and sell something.
//!
//! PostgreSQL (`DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/test`) and Redis
//! (`REDIS_URL`, default `redis://127.0.0.1:6379`) must be running: the tests fail, never
//! skip, when they are not. Each sale has a schema or a key prefix of its own.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use ticketing_core::sweeper::SweeperConfig;
use ticketing_core::{
    EventId, InventoryStore, MemoryStore, MemoryStoreConfig, MemoryWaitingRoom, PassKey, RoomStats,
    SystemClock, WaitingRoom,
};
use ticketing_examples::flash_sale::{
    FlashSaleArgs, QueueFigures, SaleError, Summary, Target, run,
};
use ticketing_http::{HttpConfig, WaitingRoomConfig};
use ticketing_store_redis::RedisWaitingRoom;
use tokio::sync::oneshot;

const ADMIN: &str = "flash-sale-test-admin-key";

/// A queued sale on a store in this process that also serves the queue's polls: fewer
/// buyers and sessions than the others.
const QUEUED_IN_PROCESS: [&str; 9] = [
    "--buyers",
    "800",
    "--sessions",
    "64",
    "--duration",
    QUEUED_DURATION,
    "--queue",
    "--queue-poll-ms",
    "100",
];

/// When a queued sale closes. Its end is slow by design: with a few places left that most
/// buyers cannot use (an odd seat, a pair apart), the room lets in one buyer at a time, and
/// each leaves empty-handed. The close ends that (the buyers still queued leave).
const QUEUED_DURATION: &str = "4s";

/// A small sale: 2 sections of 5 rows of 20 seats and a 100-place field (300 places),
/// 2,000 buyers, short think times; closes after 30 s at the latest (it sells out in a
/// few). `extra` adds flags, or overrides these.
fn args(extra: &[&str]) -> FlashSaleArgs {
    let defaults = [
        ("--buyers", "2000"),
        ("--concurrency", "64"),
        ("--sessions", "256"),
        ("--duration", "30s"),
        ("--seed", "7"),
        ("--sections", "2"),
        ("--rows", "5"),
        ("--seats-per-row", "20"),
        ("--ga-capacity", "100"),
        ("--think-ms-min", "1"),
        ("--think-ms-max", "20"),
        ("--sample-ms", "100"),
    ];
    let mut argv = vec!["ticketing-flash-sale", "--quiet"];
    for (flag, value) in defaults {
        if !extra.contains(&flag) {
            argv.extend([flag, value]);
        }
    }
    argv.extend_from_slice(extra);
    FlashSaleArgs::try_parse_from(argv).unwrap()
}

/// A sale that never gets a Ctrl-C.
async fn sale(target: Target, args: &FlashSaleArgs) -> Summary {
    let summary = run(target, args.config(), std::future::pending())
        .await
        .unwrap();
    println!("{}", summary.table());
    summary
}

/// The audit passed, nothing was oversold, every buyer and reservation is accounted for,
/// and something was sold.
fn assert_sound(summary: &Summary) {
    let table = summary.table();
    let audit = &summary.audit;
    assert!(audit.passed, "the audit failed:\n{table}");
    assert_eq!(
        (audit.oversold_seats, audit.oversold_ga),
        (0, 0),
        "oversold:\n{table}"
    );
    let c = &summary.counts;
    let queued_out = summary.queue.map_or(0, |q| {
        q.sold_out_while_queued
            + q.starved
            + q.closed_while_queued
            + q.poll_failures
            + q.join_failures
    });
    assert_eq!(
        c.arrived + c.turned_away + c.never_came + queued_out,
        summary.buyers,
        "buyers unaccounted for:\n{table}"
    );
    assert!(audit.reservations.add_up(), "{table}");
    assert_eq!(audit.reservations.reserved, c.reserved, "{table}");
    assert_eq!(
        audit.reservations.committed,
        c.committed + c.late_commits_accepted,
        "{table}"
    );
    assert_eq!(c.late_commits_accepted, 0, "{table}");
    assert_eq!(c.errors, 0, "{table}");
    let sold = &summary.sold;
    assert!(sold.total > 0, "nothing was sold:\n{table}");
    assert_eq!(sold.total, sold.seats + sold.ga);
    assert!(sold.total <= summary.event.capacity, "{table}");
}

/// Every buyer who reserved was admitted first, with a pass the target accepted, and every
/// buyer who queued is accounted for.
fn assert_queued(summary: &Summary) {
    let table = summary.table();
    let queue = summary.queue.expect("a queued sale has queue figures");
    assert!(queue.admitted > 0, "nobody was admitted:\n{table}");
    assert_eq!(
        queue.admitted, summary.counts.arrived,
        "buyers reserved without being admitted:\n{table}"
    );
    assert_eq!(queue.passes_refused, 0, "{table}");
    assert_eq!(
        (queue.join_failures, queue.poll_failures),
        (0, 0),
        "{table}"
    );
    assert!(queue.add_up(), "{table}");
    assert_eq!(queue.wait.count, queue.admitted, "{table}");
    assert!(queue.wait.p50_ms <= queue.wait.p99_ms && queue.wait.p99_ms <= queue.wait.max_ms);
    assert_eq!(queue.leave_failures, 0, "{table}");
    assert_eq!(
        queue.left, queue.joined,
        "every buyer who joined should have left the room:\n{table}"
    );
}

/// The room admitted every buyer who read its admission, and at most the buyers still
/// queued at the close besides (admitted before they polled again).
fn assert_room_agrees(stats: RoomStats, queue: QueueFigures) {
    assert!(
        (queue.admitted..=queue.admitted + queue.closed_while_queued)
            .contains(&stats.admitted_total),
        "the room admitted {}: {queue:?}",
        stats.admitted_total
    );
}

/// A memory store keeping its whole change log (the audit replays it).
fn memory_store() -> Arc<MemoryStore> {
    let config = MemoryStoreConfig::default().change_retention(usize::MAX);
    Arc::new(MemoryStore::with_config(Arc::new(SystemClock), config))
}

/// A server on 127.0.0.1:0 with the router on a memory store (rate limits off, an admin
/// key, its expiry sweeper), and waiting rooms when `rooms` is given, with their admission
/// steps unless `room_steps` is false; stopped when dropped.
struct Server {
    url: String,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn server(rooms: Option<Arc<dyn WaitingRoom>>, room_steps: bool) -> Server {
    let store = memory_store();
    let store: Arc<dyn InventoryStore> = store;
    let mut config = HttpConfig::default().admin_key(ADMIN).without_rate_limits();
    let metrics = config.metrics.clone();
    let room_sweeper = match rooms {
        Some(rooms) => {
            config = config.waiting_room(WaitingRoomConfig::new(
                Arc::clone(&rooms),
                PassKey::random(),
            ));
            room_steps.then(|| {
                ticketing_http::spawn_room_sweeper(
                    rooms,
                    Arc::clone(&store),
                    metrics.clone(),
                    Duration::from_millis(50),
                )
            })
        }
        None => None,
    };
    let sweeper =
        ticketing_http::spawn_sweeper(Arc::clone(&store), metrics, SweeperConfig::default());
    let app = ticketing_http::router(store, config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let service = app.into_make_service_with_connect_info::<SocketAddr>();
        let served = axum::serve(listener, service)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
        sweeper.stop().await;
        if let Some(room_sweeper) = room_sweeper {
            room_sweeper.stop().await;
        }
        served.unwrap();
    });
    Server {
        url: format!("http://{address}"),
        stop: Some(stop),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_sale_passes_the_audit() {
    let args = args(&["--store", "memory"]);
    let summary = sale(args.target().await.unwrap(), &args).await;
    assert_sound(&summary);
    assert!(summary.queue.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coalesced_memory_sale_passes_the_audit() {
    let args = args(&["--store", "memory", "--coalesce"]);
    let summary = sale(args.target().await.unwrap(), &args).await;
    assert_sound(&summary);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sale_passes_the_audit() {
    let store =
        ticketing_store_pg::testkit::connect_for_test(ticketing_store_pg::testkit::fresh_config())
            .await;
    let args = args(&[]);
    let summary = sale(Target::store(Arc::new(store), "postgres"), &args).await;
    assert_sound(&summary);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_sale_passes_the_audit() {
    let config = ticketing_store_redis::testkit::fresh_config();
    let store = ticketing_store_redis::testkit::connect_for_test(config).await;
    let args = args(&[]);
    let summary = sale(Target::store(Arc::new(store), "redis"), &args).await;
    assert_sound(&summary);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_sale_passes_the_audit() {
    let server = server(None, false).await;
    let args = args(&["--url", &server.url, "--admin-key", ADMIN]);
    let summary = sale(args.target().await.unwrap(), &args).await;
    assert_sound(&summary);
    assert!(summary.target.contains("(HTTP)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_memory_sale_admits_every_buyer_before_they_reserve() {
    let rooms = Arc::new(MemoryWaitingRoom::new());
    let target = Target::store(memory_store(), "memory").with_rooms(rooms.clone());
    // A cap of 25 shoppers at once: most buyers wait and poll.
    let args = args(&[
        "--buyers",
        "800",
        "--duration",
        QUEUED_DURATION,
        "--queue",
        "--queue-rate",
        "1000",
        "--queue-cap",
        "25",
        "--queue-poll-ms",
        "50",
    ]);
    let summary = sale(target, &args).await;
    assert_sound(&summary);
    assert_queued(&summary);
    let queue = summary.queue.unwrap();
    assert!(queue.status_polls > 0, "nobody polled: {queue:?}");
    assert_eq!(queue.active_max, Some(25));
    let event = EventId::new(&summary.event.id).unwrap();
    let stats = rooms.stats(&event).await.unwrap();
    assert_room_agrees(stats, queue);
    assert_eq!(stats.active, 0, "every admitted buyer gave its pass back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_http_sale_goes_through_the_servers_gated_room() {
    let rooms = Arc::new(MemoryWaitingRoom::new());
    let server = server(Some(rooms.clone()), true).await;
    let args = args(&[
        "--url",
        &server.url,
        "--admin-key",
        ADMIN,
        "--buyers",
        "800",
        "--duration",
        QUEUED_DURATION,
        "--queue",
        "--queue-rate",
        "400",
        "--queue-poll-ms",
        "100",
    ]);
    let summary = sale(args.target().await.unwrap(), &args).await;
    assert_sound(&summary);
    assert_queued(&summary);
    // The server gated the event: its reserve checked every buyer's pass.
    let event = EventId::new(&summary.event.id).unwrap();
    let settings = rooms.settings(&event).await.unwrap().expect("gated");
    assert_eq!(settings.admit_per_second, Some(400));
    let stats = rooms.stats(&event).await.unwrap();
    assert_room_agrees(stats, summary.queue.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_redis_sale_passes_the_audit() {
    let config = ticketing_store_redis::testkit::fresh_config();
    let store = ticketing_store_redis::testkit::connect_for_test(config).await;
    let rooms = RedisWaitingRoom::new(&store);
    rooms.load_scripts().await.unwrap();
    let target = Target::store(Arc::new(store), "redis").with_rooms(Arc::new(rooms));
    let args = args(&QUEUED_IN_PROCESS);
    let summary = sale(target, &args).await;
    assert_sound(&summary);
    assert_queued(&summary);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_postgres_sale_passes_the_audit() {
    let store =
        ticketing_store_pg::testkit::connect_for_test(ticketing_store_pg::testkit::fresh_config())
            .await;
    let rooms = store.waiting_room();
    let target = Target::store(Arc::new(store), "postgres").with_rooms(Arc::new(rooms));
    let args = args(&QUEUED_IN_PROCESS);
    let summary = sale(target, &args).await;
    assert_sound(&summary);
    assert_queued(&summary);
}

/// The message of a sale refused before it started.
async fn refusal(argv: &[&str]) -> String {
    let args = args(argv);
    let target = match args.target().await {
        Ok(target) => target,
        Err(error) => return error.to_string(),
    };
    match run(target, args.config(), std::future::pending()).await {
        Err(SaleError::Invalid(text)) => text,
        other => panic!("{argv:?} should be refused, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_flags_are_clear_errors() {
    for (argv, expected) in [
        (
            &["--queue", "--queue-rate", "0"][..],
            "--queue-rate must be from 1",
        ),
        (
            &["--queue", "--queue-cap", "0"][..],
            "--queue-cap must be from 1",
        ),
        (
            &["--queue", "--queue-poll-ms", "1"][..],
            "--queue-poll-ms must be from 10",
        ),
        (
            &["--queue", "--queue-pass-ttl-seconds", "1"][..],
            "--queue-pass-ttl-seconds must be from 10",
        ),
        (
            &["--queue", "--queue-seats-per-buyer", "0"][..],
            "--queue-seats-per-buyer must be from 1",
        ),
        (
            &["--url", "http://10.0.0.1:8080", "--admin-key", ADMIN][..],
            "refusing a host that is not this machine",
        ),
        (&["--url", "https://127.0.0.1:8080"][..], "only http://"),
        (&["--zipf", "9"][..], "--zipf must be from 0 to 8"),
    ] {
        let message = refusal(argv).await;
        assert!(
            message.contains(expected),
            "{argv:?}: {message:?} should say {expected:?}"
        );
    }
    // Queue flags without --queue, and --url with --store, are refused by the parser.
    for argv in [
        &["ticketing-flash-sale", "--queue-rate", "5"][..],
        &["ticketing-flash-sale", "--queue-cap", "5"][..],
        &["ticketing-flash-sale", "--queue-poll-ms", "100"][..],
        &[
            "ticketing-flash-sale",
            "--store",
            "memory",
            "--url",
            "http://127.0.0.1:1",
        ][..],
    ] {
        let error = FlashSaleArgs::try_parse_from(argv).unwrap_err().to_string();
        assert!(error.contains("--"), "{argv:?}: {error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_on_a_server_without_rooms_is_a_clear_error() {
    let server = server(None, false).await;
    let args = args(&["--url", &server.url, "--admin-key", ADMIN, "--queue"]);
    let error = run(
        args.target().await.unwrap(),
        args.config(),
        std::future::pending(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(error.contains("no waiting rooms"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_nobody_steps_turns_the_queue_away() {
    // Rooms, but no admission steps: nobody is ever admitted. The buyers give up a few
    // seconds in, and the summary says what is wrong.
    let rooms = Arc::new(MemoryWaitingRoom::new());
    let server = server(Some(rooms.clone()), false).await;
    let args = args(&[
        "--url",
        &server.url,
        "--admin-key",
        ADMIN,
        "--buyers",
        "300",
        "--queue",
    ]);
    let summary = sale(args.target().await.unwrap(), &args).await;
    let table = summary.table();
    assert!(summary.audit.passed, "{table}");
    let queue = summary.queue.unwrap();
    assert_eq!((queue.admitted, summary.counts.arrived), (0, 0), "{table}");
    assert_eq!(queue.starved, 300, "{table}");
    assert!(queue.add_up(), "{table}");
    assert_eq!(summary.sold.total, 0);
    assert!(table.contains("the room admitted nobody"), "{table}");
}
