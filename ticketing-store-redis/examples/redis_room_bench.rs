//! Joins/s and status polls/s of `RedisWaitingRoom` at 64 clients, next to `redis-benchmark`
//! on comparable single commands in the same run, and the bytes a queued visitor costs.
//!
//! ```text
//! cargo run --release -p ticketing-store-redis --example redis_room_bench -- [visitors, default 1000000]
//! ```
//!
//! Against the server at `REDIS_URL` (default the local one), under a key prefix of its own
//! (`rbench:` and 8 random hex digits) that it deletes at the end, also after a failure.
//!
//! 1. `ticketing_core::testkit::room::bench_room` at 64 clients: 20,000 joins of new
//!    visitors (one script call each), then 100,000 status polls of their tickets (one
//!    script call each, `ZRANK` inside).
//! 2. The practical limits, `redis-benchmark -c 64 -n 100000 -q` on the same server:
//!    `ZADD` of a random member (what a join's queue insert costs alone) and `ZRANK` of
//!    the member in the middle of the bench room's queue (what a poll's position costs
//!    alone); each figure's ratio to them.
//! 3. Memory: `visitors` visitors join one room (a cap of one and no step, so all wait);
//!    `MEMORY USAGE … SAMPLES 0` of each of the room's keys and the server's `used_memory`
//!    before and after, divided by the visitors.
//!
//! Then the admission rate's accuracy: `ticketing_core::testkit::room::admission_accuracy`,
//! a simulated minute at 1,000 visitors/s with a step every 100 ms, on a manual clock.
//!
//! Needs `redis-benchmark` on the PATH.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use redis::aio::MultiplexedConnection;
use ticketing_core::testkit::room::{admission_accuracy, bench_room};
use ticketing_core::{EventId, HolderId, RoomSettings, WaitingRoom};
use ticketing_store_redis::{RedisStoreConfig, RedisWaitingRoom};

const CLIENTS: usize = 64;
const JOINS: usize = 20_000;
const POLLS: usize = 100_000;

/// `redis-benchmark`'s requests/s and p50 (ms) for `command`.
fn redis_benchmark(url: &str, command: &[&str]) -> (f64, String) {
    let output = Command::new("redis-benchmark")
        .args(["-u", url, "-q", "-r", "1000000000"])
        .args(["-c", &CLIENTS.to_string(), "-n", &POLLS.to_string()])
        .args(command)
        .output()
        .expect("redis-benchmark on the PATH");
    let text = String::from_utf8_lossy(&output.stdout);
    // `-q` prints "<command>: <n> requests per second, p50=<x> msec" after progress lines.
    let last = text.rsplit('\r').next().unwrap_or_default().trim();
    let figures = last.rsplit_once(": ").map_or(last, |(_, figures)| figures);
    let rate = figures
        .split_whitespace()
        .next()
        .and_then(|rate| rate.parse().ok())
        .unwrap_or_else(|| panic!("redis-benchmark failed: {text}"));
    let p50 = figures
        .split_once("p50=")
        .map_or("?", |(_, p50)| p50.trim_end_matches(" msec"))
        .to_owned();
    (rate, p50)
}

async fn used_memory(connection: &mut MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(connection)
        .await
        .unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|value| value.trim().parse().ok())
        .expect("used_memory in INFO memory")
}

async fn throughput(rooms: &RedisWaitingRoom, url: &str, connection: &mut MultiplexedConnection) {
    let event = EventId::new("bench-room").unwrap();
    let figures = bench_room(Arc::new(rooms.clone()), &event, CLIENTS, JOINS, POLLS).await;
    let keys = rooms.room_keys(&event);
    let (queue, zadd_key) = (&keys[1], format!("{}zadd", rooms.store().key_prefix()));
    let middle: Vec<String> = redis::cmd("ZRANGE")
        .arg(queue)
        .arg(JOINS / 2)
        .arg(JOINS / 2)
        .query_async(connection)
        .await
        .unwrap();
    let (zadd, zadd_p50) =
        redis_benchmark(url, &["ZADD", &zadd_key, "__rand_int__", "__rand_int__"]);
    let (zrank, zrank_p50) = redis_benchmark(url, &["ZRANK", queue, &middle[0]]);
    println!("RedisWaitingRoom at {CLIENTS} clients ({JOINS} joins, {POLLS} polls)");
    println!(
        "| operation | per second | p50 µs | p99 µs | redis-benchmark (same clients) | ratio |"
    );
    println!("|---|---:|---:|---:|---|---:|");
    println!(
        "| join | {:.0} | {} | {} | ZADD {zadd:.0}/s, p50 {zadd_p50} ms | {:.0}% |",
        figures.joins_per_second,
        figures.join_p50_us,
        figures.join_p99_us,
        100.0 * figures.joins_per_second / zadd
    );
    println!(
        "| status | {:.0} | {} | {} | ZRANK {zrank:.0}/s, p50 {zrank_p50} ms | {:.0}% |",
        figures.polls_per_second,
        figures.poll_p50_us,
        figures.poll_p99_us,
        100.0 * figures.polls_per_second / zrank
    );
    // The rate's accuracy on the server, on a manual clock (a room of its own).
    let simulated = ticketing_store_redis::testkit::redis_room_for_test().await;
    let accuracy = admission_accuracy(
        &simulated,
        &EventId::new("simulated").unwrap(),
        1_000,
        60,
        100,
    )
    .await;
    println!("{accuracy}");
}

async fn memory(rooms: &RedisWaitingRoom, visitors: usize, connection: &mut MultiplexedConnection) {
    let event = EventId::new("memory-room").unwrap();
    rooms.configure(&event, RoomSettings::cap(1)).await.unwrap();
    let before = used_memory(connection).await;
    let started = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (rooms, event) = (rooms.clone(), event.clone());
            tokio::spawn(async move {
                for n in (client..visitors).step_by(CLIENTS) {
                    let visitor = HolderId::new(format!("visitor-{n:08}")).unwrap();
                    rooms.join(&event, &visitor).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    let after = used_memory(connection).await;
    assert_eq!(rooms.stats(&event).await.unwrap().waiting, visitors as u64);
    println!(
        "\n{visitors} visitors joined one room in {seconds:.1} s ({:.0} joins/s); visitor ids of 16 bytes",
        visitors as f64 / seconds
    );
    println!("| key | holds | MEMORY USAGE | bytes per visitor |");
    println!("|---|---|---:|---:|");
    let mut total = 0;
    let holds = [
        "settings and counters",
        "the queue (ticket keys by order)",
        "live passes",
        "visitor -> ticket key",
        "ticket key -> record",
    ];
    for (key, holds) in rooms.room_keys(&event).iter().zip(holds) {
        let bytes: Option<u64> = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(key)
            .arg("SAMPLES")
            .arg(0)
            .query_async(connection)
            .await
            .unwrap();
        let bytes = bytes.unwrap_or(0);
        total += bytes;
        let name = key.rsplit(':').next().unwrap_or(key);
        println!(
            "| `{name}` | {holds} | {bytes} | {:.1} |",
            bytes as f64 / visitors as f64
        );
    }
    println!(
        "| all | | {total} | {:.1} |",
        total as f64 / visitors as f64
    );
    println!(
        "used_memory {before} -> {after}: {:.1} bytes per visitor",
        after.saturating_sub(before) as f64 / visitors as f64
    );
}

#[tokio::main]
async fn main() {
    let visitors: usize = std::env::args().nth(1).map_or(1_000_000, |text| {
        text.parse().expect("a number of visitors")
    });
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let prefix = format!("rbench:{:08x}:", rand::random::<u32>());
    let config = RedisStoreConfig::new(&url).key_prefix(&prefix).unwrap();
    let rooms = RedisWaitingRoom::connect(config)
        .await
        .unwrap_or_else(|error| panic!("Redis at {url} is unreachable: {error}"));
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let run = {
        let (rooms, url, mut connection) = (rooms.clone(), url.clone(), connection.clone());
        tokio::spawn(async move {
            throughput(&rooms, &url, &mut connection).await;
            memory(&rooms, visitors, &mut connection).await;
        })
    };
    let outcome = run.await;
    let deleted = rooms.store().delete_all().await.unwrap();
    let left: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut connection)
        .await
        .unwrap();
    println!(
        "\ndeleted the bench's {deleted} keys under {prefix} ({} left)",
        left.len()
    );
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}
