//! Throughput and latency of the PostgreSQL store against its practical limits, in one run.
//!
//! ```sh
//! cargo run --release -p ticketing-store-pg --example pg_bench -- [seconds per case, default 5] [cases]
//! ```
//!
//! `cases` picks some of the cases below, comma-separated: `reserve` (1, 8 and 32 clients
//! with pgbench's limits), `live`, `ga`, `coalescing`, `flash`; default all.
//!
//! On a 50,000-seat event, for 1, 8 and 32 concurrent clients: single-seat reserves/s and
//! commits/s with p50/p99, and in the same run `pgbench` on the same server executing (a)
//! the very statement the store sends for a reserve and (b) the seed documents' single-row
//! conditional UPDATE, the practical limits; (c) the writes every reserve makes (the seat,
//! the reservation, its change) as one plain statement, as fast as any reserve on this
//! schema can be; and (a) again with `synchronous_commit = off`, what the two cores execute
//! of the store's statement when no commit waits for its WAL flush: the ceiling of any rate
//! through it. Then one GA unit per reserve at 32 clients on a one-row pool and on one
//! striped over 8 and over 32 counter rows, and pgbench running the store's GA statement on
//! the 32 stripes with `synchronous_commit = off`, the ceiling again. Then `Coalescing` off
//! and on at 32 and 256 concurrent callers on one hot event, and at 256 with a flash sale's
//! requests (a client reservation id each, one in five for the best 2 adjacent seats),
//! reserving only and reserving then committing. Needs `DATABASE_URL` (default the local
//! server) and `pgbench` on the PATH; works in a schema of its own, dropped at the end.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ticketing_core::{
    BestAvailable, ClientReservationId, Coalescing, CoalescingConfig, CommitRequest, Error,
    EventId, EventSpec, HolderId, IdempotencyKey, InventoryStore, Policy, ReserveRequest, Seat,
    SeatId,
};
use ticketing_store_pg::{PgStore, PgStoreConfig};

const SEATS: u32 = 50_000;
const SCHEMA: &str = "bench";

fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

async fn fresh_store(max_connections: u32) -> PgStore {
    let config = PgStoreConfig::new(database_url())
        .schema(SCHEMA)
        .unwrap()
        .max_connections(max_connections)
        // 256 callers without coalescing queue for 32 connections, each call waiting for the
        // event's lock: on a busy machine a caller waits more than the default 5 s.
        .acquire_timeout(Duration::from_secs(60));
    let store = PgStore::connect(config)
        .await
        .expect("PostgreSQL reachable");
    store.drop_schema().await.unwrap();
    store.migrate().await.unwrap();
    store
        .create_event(EventSpec {
            id: EventId::new("bench").unwrap(),
            name: "bench".into(),
            seats: (0..SEATS)
                .map(|index| Seat {
                    id: SeatId::new(format!("s{index}")).unwrap(),
                    section: format!("S{}", index / 1_000),
                    row: format!("R{}", index / 25 % 40),
                    number: index % 25 + 1,
                    category: String::new(),
                    accessible: false,
                    position: Default::default(),
                })
                .collect(),
            pools: vec![ticketing_core::PoolSpec {
                id: ticketing_core::PoolId::new("ga").unwrap(),
                name: "GA".into(),
                capacity: 200_000,
            }],
            sale_window: None,
            policy: Policy::default(),
        })
        .await
        .unwrap();
    store
}

struct Outcome {
    ops: u64,
    elapsed: Duration,
    latency: Histogram<u64>,
}

impl Outcome {
    fn per_second(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    fn line(&self, what: &str) -> String {
        format!(
            "{what:<44} {:>9.0} ops/s  p50 {:>6.2} ms  p99 {:>6.2} ms",
            self.per_second(),
            self.latency.value_at_quantile(0.5) as f64 / 1_000.0,
            self.latency.value_at_quantile(0.99) as f64 / 1_000.0
        )
    }
}

/// `clients` tasks each running `op(n)` with fresh numbers from one counter for `duration`.
async fn drive<F, Fut>(clients: u32, duration: Duration, op: F) -> Outcome
where
    F: Fn(u32) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let counter = Arc::new(AtomicU32::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (op, counter) = (op.clone(), counter.clone());
            tokio::spawn(async move {
                let mut latency = Histogram::<u64>::new(3).unwrap();
                let mut ops = 0u64;
                while start.elapsed() < duration {
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    let began = Instant::now();
                    op(n).await;
                    latency.record(began.elapsed().as_micros() as u64).unwrap();
                    ops += 1;
                }
                (ops, latency)
            })
        })
        .collect();
    let mut outcome = Outcome {
        ops: 0,
        elapsed: Duration::ZERO,
        latency: Histogram::new(3).unwrap(),
    };
    for task in tasks {
        let (ops, latency) = task.await.unwrap();
        outcome.ops += ops;
        outcome.latency.add(latency).unwrap();
    }
    outcome.elapsed = start.elapsed();
    outcome
}

/// `clients` tasks reserving one seat each call (`reserve_request`), a taken seat counting as
/// an answer like any other, for `duration`.
async fn drive_seat_reserves(
    store: Arc<dyn InventoryStore>,
    clients: u32,
    duration: Duration,
) -> Outcome {
    drive(clients, duration, move |n| {
        let store = store.clone();
        async move {
            match store.reserve(reserve_request(n, "bench")).await {
                Ok(_) | Err(Error::SeatUnavailable { .. }) => {}
                Err(other) => panic!("{other}"),
            }
        }
    })
    .await
}

fn reserve_request(n: u32, holder: &str) -> ReserveRequest {
    ReserveRequest::new(
        EventId::new("bench").unwrap(),
        HolderId::new(holder).unwrap(),
    )
    .seats([SeatId::new(format!("s{}", n % SEATS)).unwrap()])
}

/// A flash sale's reserve: a client reservation id on every request (retries must be
/// idempotent), and one in five asking for the best 2 adjacent seats (of a section, every
/// other time) instead of naming a seat.
fn flash_sale_request(n: u32) -> ReserveRequest {
    let request = ReserveRequest::new(
        EventId::new("bench").unwrap(),
        HolderId::new("bench").unwrap(),
    )
    .client_reservation_id(ClientReservationId::new(format!("c{n}")).unwrap());
    if !n.is_multiple_of(5) {
        return request.seats([SeatId::new(format!("s{}", n % SEATS)).unwrap()]);
    }
    request.best_available(BestAvailable {
        count: 2,
        adjacent: true,
        section: n.is_multiple_of(10).then(|| format!("S{}", n / 10 % 50)),
        category: None,
    })
}

/// Runs pgbench with `script` for `clients` and returns its tps; `synchronous_commit` is the
/// server setting its sessions run with ("on" waits for each commit's WAL flush).
fn pgbench(script: &str, clients: u32, seconds: u64, synchronous_commit: &str) -> f64 {
    let path = std::env::temp_dir().join(format!("ticketing-pgbench-{}.sql", std::process::id()));
    std::fs::write(&path, script).unwrap();
    let options: sqlx::postgres::PgConnectOptions = database_url().parse().unwrap();
    let output = Command::new("pgbench")
        .env(
            "PGOPTIONS",
            format!("-c search_path={SCHEMA} -c synchronous_commit={synchronous_commit}"),
        )
        .args(["-n", "-h", options.get_host()])
        .args(["-p", &options.get_port().to_string()])
        .args(["-U", options.get_username()])
        .args([
            "-c",
            &clients.to_string(),
            "-j",
            &clients.min(2).to_string(),
        ])
        .args(["-T", &seconds.to_string(), "-f"])
        .arg(&path)
        .arg(options.get_database().unwrap_or("postgres"))
        .output()
        .expect("pgbench on the PATH");
    let _ = std::fs::remove_file(&path);
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find(|line| line.starts_with("tps = "))
        .and_then(|line| line.split_whitespace().nth(2))
        .and_then(|tps| tps.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "pgbench failed: {text}{}",
                String::from_utf8_lossy(&output.stderr)
            )
        })
}

/// (a) The statement the store sends for a single-seat reserve, on random seats.
const SAME_SQL: &str = r#"\set seat random(0, 49999)
SELECT ticketing_reserve(NULL, jsonb_build_object('event', 'bench', 'holder', 'pgbench',
    'client_reservation_id', NULL, 'seats', jsonb_build_array('s' || :seat), 'ga', '[]'::jsonb,
    'best_available', NULL, 'ttl_seconds', NULL),
    'rsv_' || md5(random()::text), '\x00'::bytea, 86400000);
"#;

/// The statement the store sends for a reserve of one GA unit (pool "ga"), a new id each.
const GA_SQL: &str = r#"\set n random(1, 1000000000)
SELECT ticketing_reserve(NULL, '{"event":"bench","holder":"pgbench","seats":[],"ga":[{"pool":"ga","quantity":1}]}'::jsonb,
    'rsv_g' || :n || '_' || :client_id, '\x00'::bytea, 86400000);
"#;

/// (c) The writes every successful single-seat reserve makes - the seat taken, the
/// reservation, its change - as one plain statement: no checks, no plpgsql, nothing read.
const BARE_WRITES: &str = r#"\set seat random(0, 49999)
WITH s AS (UPDATE seats SET status = 1, hold_expires_at = 9000000000000,
                  reservation_id = 'rsv_' || :seat || '_' || :client_id || '_' || random()
           WHERE event_id = 'bench' AND seat_id = 's' || :seat AND status = 0
           RETURNING idx, seat_id, reservation_id),
     r AS (INSERT INTO reservations (id, event_id, holder, status, seat_ids, seat_idx, pool_ids,
                                     pool_idx, pool_qty, created_at, expires_at, token_hash)
           SELECT s.reservation_id, 'bench', 'pgbench', 0, ARRAY[s.seat_id], ARRAY[s.idx], '{}',
                  '{}', '{}', 0, 9000000000000, sha256('\x00'::bytea) FROM s RETURNING id)
INSERT INTO pending_changes (event_id, at, kind)
SELECT 'bench', 0, jsonb_build_object('type', 'reserved', 'reservation', r.id) FROM r;
"#;

/// (b) The seeds' single-row conditional UPDATE, toggling so that every call writes.
const SEED_UPDATE: &str = r#"\set seat random(0, 49999)
UPDATE bench_seats SET status = CASE status WHEN 'available' THEN 'held' ELSE 'available' END
WHERE event_id = 'bench' AND seat_id = 's' || :seat;
"#;

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let duration = Duration::from_secs(seconds);
    let cases = std::env::args().nth(2).unwrap_or_default();
    const CASES: [&str; 5] = ["reserve", "live", "ga", "coalescing", "flash"];
    if let Some(unknown) = cases
        .split(',')
        .map(str::trim)
        .find(|case| !case.is_empty() && !CASES.contains(case))
    {
        eprintln!(
            "unknown case {unknown:?}: the cases are {}",
            CASES.join(", ")
        );
        std::process::exit(2);
    }
    let wanted = |case: &str| cases.is_empty() || cases.split(',').any(|c| c.trim() == case);
    println!(
        "{seconds} s per case, 50,000-seat event, DATABASE_URL={}",
        database_url()
    );
    for clients in [1u32, 8, 32].into_iter().filter(|_| wanted("reserve")) {
        let store = Arc::new(fresh_store(clients.max(8)).await);
        let reserves = drive_seat_reserves(store.clone(), clients, duration).await;
        println!("{}", reserves.line(&format!("reserve, {clients} clients")));
        let committing = store.clone();
        let commits = drive(clients, duration, move |n| {
            let store = committing.clone();
            async move {
                let Ok(held) = store.reserve(reserve_request(n + SEATS / 2, "buyer")).await else {
                    return;
                };
                let key = IdempotencyKey::new(format!("k{n}")).unwrap();
                let _ = store
                    .commit(&held.id, CommitRequest::new(held.token.unwrap(), key))
                    .await;
            }
        })
        .await;
        println!(
            "{}",
            commits.line(&format!("reserve + commit, {clients} clients"))
        );
        if clients > 8 {
            // The same callers through a pool of 8 connections: two cores run 8 server
            // processes better than 32 (pgbench's runs below have one connection per client).
            let pooled =
                drive_seat_reserves(Arc::new(fresh_store(8).await), clients, duration).await;
            println!(
                "{}",
                pooled.line(&format!("reserve, {clients} clients, 8 connections"))
            );
        }
        // The same SQL without waiting for WAL flushes: what the two cores execute of it at
        // all, the ceiling of any reserve rate through this statement (on its own fresh
        // event, as (a) below: every seat taken before is a cheaper refusal).
        fresh_store(4).await;
        let unflushed = pgbench(SAME_SQL, clients, seconds, "off");
        fresh_store(4).await;
        let bare = pgbench(BARE_WRITES, clients, seconds, "on");
        let store = fresh_store(4).await;
        for statement in [
            "CREATE TABLE IF NOT EXISTS bench_seats AS SELECT event_id, seat_id, 'available'::text AS status FROM seats",
            "CREATE UNIQUE INDEX IF NOT EXISTS bench_seats_key ON bench_seats (event_id, seat_id)",
        ] {
            sqlx::query(statement).execute(store.pool()).await.unwrap();
        }
        let same = pgbench(SAME_SQL, clients, seconds, "on");
        let seed = pgbench(SEED_UPDATE, clients, seconds, "on");
        println!(
            "pgbench, {clients} clients: (a) same SQL {same:.0} tps, (b) seed UPDATE {seed:.0} tps, (c) bare writes {bare:.0} tps, (a) with synchronous_commit off {unflushed:.0} tps; store reserve = {:.2} of (a), {:.2} of (b), {:.2} of (c); (c) = {:.2} of (b); half of (b) = {:.2} of (a) unflushed",
            reserves.per_second() / same,
            reserves.per_second() / seed,
            reserves.per_second() / bare,
            bare / seed,
            seed / 2.0 / unflushed
        );
    }
    // The same 8-client reserve, on an event that already has 100,000 live reservations
    // (seeded by SQL, each holding one GA unit until far in the future): nothing may scan them.
    let mut rates = Vec::new();
    for live in [0u32, 100_000].into_iter().filter(|_| wanted("live")) {
        let store = Arc::new(fresh_store(8).await);
        if live > 0 {
            sqlx::query(
                "INSERT INTO reservations (id, event_id, holder, status, seat_ids, seat_idx, pool_ids,
                     pool_idx, pool_qty, created_at, expires_at, token_hash)
                 SELECT 'rsv_live_' || n, 'bench', 'live' || (n % 5000), 0, '{}', '{}', '{ga}', '{0}',
                        '{1}', 0, 9000000000000, sha256('\\x00'::bytea)
                 FROM generate_series(1, $1) AS n",
            )
            .bind(i64::from(live))
            .execute(store.pool())
            .await
            .unwrap();
            sqlx::query("UPDATE pools SET held = held + $1 WHERE event_id = 'bench'")
                .bind(i64::from(live) as i32)
                .execute(store.pool())
                .await
                .unwrap();
            sqlx::query("ANALYZE reservations")
                .execute(store.pool())
                .await
                .unwrap();
        }
        let outcome = drive_seat_reserves(store.clone(), 8, duration).await;
        println!(
            "{}",
            outcome.line(&format!("reserve, 8 clients, {live} live reservations"))
        );
        rates.push(outcome.per_second());
    }
    if let [empty, live] = rates[..] {
        println!(
            "with 100,000 live reservations: {:.2} of the empty event's rate",
            live / empty
        );
    }
    // One GA unit per reserve at 32 clients: the pool's capacity on its one row, then striped
    // over 8 and 32 counter rows (migration 0014).
    let mut ga_rates = Vec::new();
    for stripes in [1u16, 8, 32].into_iter().filter(|_| wanted("ga")) {
        let store = Arc::new(fresh_store(32).await);
        let ga = ticketing_core::PoolId::new("ga").unwrap();
        store
            .set_pool_stripes(&EventId::new("bench").unwrap(), &ga, stripes)
            .await
            .unwrap();
        let reserving = store.clone();
        let outcome = drive(32, duration, move |_| {
            let store = reserving.clone();
            let ga = ga.clone();
            async move {
                let request = ReserveRequest::new(
                    EventId::new("bench").unwrap(),
                    HolderId::new("bench").unwrap(),
                )
                .ga(ga, 1);
                if let Err(error) = store.reserve(request).await {
                    panic!("{error}");
                }
            }
        })
        .await;
        println!(
            "{}",
            outcome.line(&format!("GA reserve, 32 clients, {stripes} stripe(s)"))
        );
        ga_rates.push(outcome.per_second());
    }
    if let [one, eight, thirty_two] = ga_rates[..] {
        // The store's GA statement on the 32-stripe pool (the last schema) without waiting for
        // WAL flushes: what the two cores execute of it at all.
        let unflushed = pgbench(GA_SQL, 32, seconds, "off");
        println!(
            "GA pool striped over 8 / 32 rows: {:.2}x / {:.2}x the one-row pool's rate at 32 clients; pgbench, the GA statement on 32 stripes with synchronous_commit off: {unflushed:.0} tps, 3x the one-row pool = {:.2} of it",
            eight / one,
            thirty_two / one,
            3.0 * one / unflushed
        );
    }
    for callers in [32u32, 256].into_iter().filter(|_| wanted("coalescing")) {
        for coalesce in [false, true] {
            let store = fresh_store(32).await;
            let store: Arc<dyn InventoryStore> = if coalesce {
                Arc::new(Coalescing::with_config(
                    store,
                    CoalescingConfig::default().max_batch(256),
                ))
            } else {
                Arc::new(store)
            };
            let outcome = drive_seat_reserves(store, callers, duration).await;
            let label = format!(
                "reserve, {callers} callers, coalescing {}",
                if coalesce { "on" } else { "off" }
            );
            println!("{}", outcome.line(&label));
        }
    }
    // The same with the flash sale's requests (before migration 0010 every one of them ran
    // on its own inside the batch), then with each buyer committing what it got (commit
    // batches: migrations 0011 and 0012).
    for with_commit in [false, true].into_iter().filter(|_| wanted("flash")) {
        for coalesce in [false, true] {
            let store = fresh_store(32).await;
            let store: Arc<dyn InventoryStore> = if coalesce {
                Arc::new(Coalescing::with_config(
                    store,
                    CoalescingConfig::default().max_batch(256),
                ))
            } else {
                Arc::new(store)
            };
            let outcome = drive(256, duration, move |n| {
                let store = store.clone();
                async move {
                    let held = match store.reserve(flash_sale_request(n)).await {
                        Ok(held) => held,
                        Err(Error::SeatUnavailable { .. } | Error::SoldOut { .. }) => return,
                        Err(other) => panic!("{other}"),
                    };
                    if let (true, Some(token)) = (with_commit, held.token) {
                        let key = IdempotencyKey::new(format!("k{n}")).unwrap();
                        if let Err(error) =
                            store.commit(&held.id, CommitRequest::new(token, key)).await
                        {
                            panic!("{error}");
                        }
                    }
                }
            })
            .await;
            let label = format!(
                "flash-sale {}, 256 callers, coalescing {}",
                if with_commit {
                    "reserve + commit"
                } else {
                    "mix"
                },
                if coalesce { "on" } else { "off" }
            );
            println!("{}", outcome.line(&label));
        }
    }
    // TICKETING_BENCH_KEEP=1 leaves the last schema for a look with psql.
    if std::env::var_os("TICKETING_BENCH_KEEP").is_none() {
        fresh_store(1).await.drop_schema().await.unwrap();
    }
}
