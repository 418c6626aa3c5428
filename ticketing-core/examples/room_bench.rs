//! The in-memory waiting room: joins/s and status polls/s at 64 clients next to a naive
//! `Mutex<HashMap>` doing the least a join and a poll must (one insert, one lookup), what a
//! queued visitor costs in bytes with a million waiting, and the admission rate's accuracy
//! over a simulated minute.
//!
//! ```text
//! cargo run --release -p ticketing-core --features testkit --example room_bench -- [visitors, default 1000000]
//! ```
//!
//! Bytes are the process's resident set (`VmRSS` in `/proc/self/status`) before and after
//! the joins, divided by them: what the room really costs, allocator overhead included.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use ticketing_core::testkit::room::{admission_accuracy, bench_room, memory_room_for_test};
use ticketing_core::{EventId, HolderId, MemoryWaitingRoom, RoomSettings, WaitingRoom};

/// The resident set, in bytes.
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status");
    kib * 1024
}

const CLIENTS: usize = 64;
const JOINS: usize = 200_000;
const POLLS: usize = 1_000_000;

/// The naive limit: visitors to places in one locked map; a join inserts, a poll looks up.
async fn naive(clients: usize, joins: usize, polls: usize) -> (f64, f64) {
    let map: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    let per_client = joins / clients;
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let map = map.clone();
            tokio::spawn(async move {
                for n in 0..per_client {
                    let visitor = format!("bench-{client}-{n}");
                    let mut map = map.lock();
                    let next = map.len() as u64;
                    map.entry(visitor).or_insert(next);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let joins_per_second = (per_client * clients) as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let map = map.clone();
            tokio::spawn(async move {
                let mut found = 0_u64;
                for n in 0..polls / clients {
                    let visitor = format!("bench-{client}-{}", n % per_client);
                    found += map.lock().get(&visitor).copied().unwrap_or(0);
                }
                found
            })
        })
        .collect();
    for task in tasks {
        std::hint::black_box(task.await.unwrap());
    }
    let polls_per_second = (polls / clients * clients) as f64 / started.elapsed().as_secs_f64();
    (joins_per_second, polls_per_second)
}

fn main() {
    let visitors: usize = std::env::args()
        .nth(1)
        .map(|arg| arg.parse().expect("visitors: a number"))
        .unwrap_or(1_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let event = EventId::new("bench").unwrap();
        let rooms = Arc::new(MemoryWaitingRoom::new());
        let figures = bench_room(rooms, &event, CLIENTS, JOINS, POLLS).await;
        let (naive_joins, naive_polls) = naive(CLIENTS, JOINS, POLLS).await;
        println!("memory room, {CLIENTS} clients, {JOINS} joins, {POLLS} polls");
        println!(
            "  joins/s {:>10.0}  p50 {} us  p99 {} us   naive Mutex<HashMap> {:>10.0}  ratio {:.2}",
            figures.joins_per_second,
            figures.join_p50_us,
            figures.join_p99_us,
            naive_joins,
            figures.joins_per_second / naive_joins
        );
        println!(
            "  polls/s {:>10.0}  p50 {} us  p99 {} us   naive Mutex<HashMap> {:>10.0}  ratio {:.2}",
            figures.polls_per_second,
            figures.poll_p50_us,
            figures.poll_p99_us,
            naive_polls,
            figures.polls_per_second / naive_polls
        );

        let room = memory_room_for_test().await;
        let accuracy = admission_accuracy(&room, &event, 1_000, 60, 100).await;
        println!("{accuracy}");

        let rooms = MemoryWaitingRoom::new();
        let queue = EventId::new("million").unwrap();
        rooms.configure(&queue, RoomSettings::cap(1)).await.unwrap();
        // Visitor ids made first, so only what the room keeps is counted.
        let ids: Vec<HolderId> = (0..visitors)
            .map(|n| HolderId::new(format!("v{n:011}")).unwrap())
            .collect();
        let before = resident_bytes();
        let started = Instant::now();
        for visitor in &ids {
            rooms.join(&queue, visitor).await.unwrap();
        }
        let seconds = started.elapsed().as_secs_f64();
        let after = resident_bytes();
        let stats = rooms.stats(&queue).await.unwrap();
        assert_eq!(stats.waiting, visitors as u64);
        println!(
            "{visitors} visitors waiting (12-byte ids): {:.0} MiB, {:.0} bytes a visitor; joined in {seconds:.2} s",
            after.saturating_sub(before) as f64 / (1024.0 * 1024.0),
            after.saturating_sub(before) as f64 / visitors as f64
        );
    });
}
