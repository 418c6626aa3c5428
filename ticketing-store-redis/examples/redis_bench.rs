//! Reserves per second through `RedisStore` at 1, 8 and 32 concurrent clients on a
//! 50,000-seat event, next to `redis-benchmark` running (a) the store's own reserve script
//! by EVALSHA and (b) a minimal 4-key all-or-nothing EVAL, on the same server in the same run.
//!
//! Run with (a local server; `redis-benchmark` on PATH):
//!
//! ```text
//! cargo run --release -p ticketing-store-redis --example redis_bench
//! REDIS_URL=redis://127.0.0.1:6379 TICKETING_BENCH_SECONDS=3 cargo run --release ...
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ticketing_core::{
    EventId, EventSpec, HolderId, Policy, PoolId, PoolSpec, ReserveRequest, Seat, SeatId,
};
use ticketing_store_redis::{RedisStore, RedisStoreConfig, reserve_script_source};

const SEATS: u32 = 50_000;

fn event(id: &EventId) -> EventSpec {
    EventSpec {
        id: id.clone(),
        name: "bench".into(),
        seats: (1..=SEATS)
            .map(|n| Seat {
                id: SeatId::new(format!("S-{n}")).unwrap(),
                section: "floor".into(),
                row: format!("{}", n / 50),
                number: n,
                category: "standard".into(),
                accessible: false,
                position: Default::default(),
            })
            .collect(),
        pools: vec![PoolSpec {
            id: PoolId::new("ga").unwrap(),
            name: "GA".into(),
            capacity: 10_000_000,
        }],
        sale_window: None,
        policy: Policy::default(),
    }
}

/// `clients` tasks reserving one GA unit each, in a loop, for `seconds`.
async fn run(store: &RedisStore, id: &EventId, clients: usize, seconds: u64) -> (f64, u64, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let (store, id, stop) = (store.clone(), id.clone(), stop.clone());
            tokio::spawn(async move {
                let mut histogram = Histogram::<u64>::new(3).unwrap();
                let holder = HolderId::new(format!("c{client}")).unwrap();
                while !stop.load(Ordering::Relaxed) {
                    let request = ReserveRequest::new(id.clone(), holder.clone())
                        .ga(PoolId::new("ga").unwrap(), 1);
                    let at = Instant::now();
                    store.reserve(request).await.unwrap();
                    histogram
                        .record(u64::try_from(at.elapsed().as_micros()).unwrap_or(u64::MAX))
                        .unwrap();
                }
                histogram
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = Histogram::<u64>::new(3).unwrap();
    for task in tasks {
        total.add(task.await.unwrap()).unwrap();
    }
    let rate = total.len() as f64 / started.elapsed().as_secs_f64();
    (
        rate,
        total.value_at_quantile(0.5),
        total.value_at_quantile(0.99),
    )
}

fn redis_benchmark(port: &str, clients: usize, requests: usize, command: &[String]) -> String {
    let output = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", port, "-q", "-r", "1000000000"])
        .args(["-c", &clients.to_string(), "-n", &requests.to_string()])
        .args(command)
        .output()
        .expect("redis-benchmark on PATH");
    let text = String::from_utf8_lossy(&output.stdout);
    // `-q` prints "<command>: <n> requests per second, p50=<x> msec": keep the figures.
    let last = text.rsplit('\r').next().unwrap_or_default().trim();
    last.rsplit_once(": ")
        .map_or(last, |(_, figures)| figures)
        .to_owned()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let port = url
        .rsplit(':')
        .next()
        .unwrap_or("6379")
        .trim_end_matches('/')
        .to_owned();
    let seconds: u64 = std::env::var("TICKETING_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let prefix = format!("bench:{:08x}:", rand::random::<u32>());
    let store = RedisStore::connect(RedisStoreConfig::new(&url).key_prefix(&prefix).unwrap())
        .await
        .unwrap();
    let id = EventId::new("bench-50k").unwrap();
    store.create_event(event(&id)).await.unwrap();

    // (a) the reserve script itself, by SHA, with the same keys and a one-request batch.
    let sha = redis::Script::new(&reserve_script_source())
        .get_hash()
        .to_owned();
    let tag = RedisStore::event_tag(&id);
    let request = format!(
        r#"[{{"id":"rsv___rand_int__.{tag}","tok":"x","holder":"rb","seats":[],"ga":[{{"pool":"ga","quantity":1}}],"fp":{{}}}}]"#
    );
    let mut evalsha = vec!["EVALSHA".to_owned(), sha, "16".to_owned()];
    evalsha.extend(store.event_keys(&id));
    evalsha.extend([
        String::new(),
        id.to_string(),
        "86400000".to_owned(),
        request,
    ]);
    // (b) a minimal all-or-nothing claim of 4 keys.
    let minimal: Vec<String> = [
        "EVAL",
        "for i = 1, 4 do if redis.call('EXISTS', KEYS[i]) == 1 then return 0 end end \
         for i = 1, 4 do redis.call('SET', KEYS[i], 1) end return 1",
        "4",
        "{b}:__rand_int__:1",
        "{b}:__rand_int__:2",
        "{b}:__rand_int__:3",
        "{b}:__rand_int__:4",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();

    println!(
        "| clients | store reserves/s | p50 µs | p99 µs | (a) redis-benchmark EVALSHA reserve | (b) minimal 4-key EVAL |"
    );
    println!("|---|---|---|---|---|---|");
    for clients in [1, 8, 32] {
        let (rate, p50, p99) = run(&store, &id, clients, seconds).await;
        let requests = (rate as usize * seconds as usize).max(1_000);
        let a = redis_benchmark(&port, clients, requests, &evalsha);
        let b = redis_benchmark(&port, clients, requests, &minimal);
        println!("| {clients} | {rate:.0} | {p50} | {p99} | {a} | {b} |");
    }
    store.delete_all().await.unwrap();
    let _ = Command::new("redis-cli")
        .args(["-p", &port, "EVAL", "for _, k in ipairs(redis.call('KEYS', '{b}:*')) do redis.call('UNLINK', k) end return 1", "0"])
        .output();
}
