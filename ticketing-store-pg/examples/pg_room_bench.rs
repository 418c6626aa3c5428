//! Joins/s and status polls/s of the PostgreSQL waiting room, and what a queue of a million
//! visitors costs, in one run.
//!
//! ```sh
//! cargo run --release -p ticketing-store-pg --example pg_room_bench -- [joins] [polls] [queued]
//! # defaults: 20000 joins, 100000 polls, 1000000 queued visitors
//! ```
//!
//! 1. `ticketing_core::testkit::room::bench_room` at 64 clients: `joins` new visitors join
//!    one room, then `polls` status polls of their tickets (64 pooled connections).
//! 2. `queued` visitors put in another room's queue by one `generate_series` statement (the
//!    rows `join` writes: 28-byte ticket ids, 16-byte visitor ids in random order), then
//!    the queue table's size with its indexes per visitor, and the latency of join, status,
//!    leave and an admission step of 10,000 at that depth against a 1,000-visitor queue,
//!    with the positions checked exact at the end.
//!
//! Then the admission rate's accuracy: `ticketing_core::testkit::room::admission_accuracy`,
//! a simulated minute at 1,000 visitors/s with a step every 100 ms, on a manual clock.
//!
//! Needs `DATABASE_URL` (default the local server); works in schemas of its own, dropped at
//! the end. The server's clock: nothing is injected.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use ticketing_core::room::ADMIT_PER_STEP_MAX;
use ticketing_core::testkit::room::{admission_accuracy, bench_room};
use ticketing_core::{EventId, HolderId, QueueStatus, QueueTicketId, RoomSettings, WaitingRoom};
use ticketing_store_pg::{PgStore, PgStoreConfig, PgWaitingRoom};

const CLIENTS: usize = 64;
/// Calls per operation in the latency probe.
const PROBES: usize = 200;

fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn arg(index: usize, default: usize) -> usize {
    std::env::args()
        .nth(index)
        .and_then(|text| text.parse().ok())
        .unwrap_or(default)
}

async fn fresh_store(schema: &str, connections: u32) -> PgStore {
    let config = PgStoreConfig::new(database_url())
        .schema(schema)
        .unwrap()
        .max_connections(connections)
        .statement_timeout(Duration::from_secs(600));
    let store = PgStore::connect(config)
        .await
        .expect("PostgreSQL reachable");
    store.drop_schema().await.unwrap();
    store.migrate().await.unwrap();
    store
}

/// Bytes of the queue table and of each of its indexes.
async fn queue_sizes(store: &PgStore) -> Vec<(String, i64)> {
    sqlx::query_as(
        "SELECT 'queue_tickets (heap)', pg_relation_size('queue_tickets')
         UNION ALL
         SELECT indexrelid::regclass::text, pg_relation_size(indexrelid)
         FROM pg_index WHERE indrelid = 'queue_tickets'::regclass
         UNION ALL
         SELECT 'total', pg_total_relation_size('queue_tickets')",
    )
    .fetch_all(store.pool())
    .await
    .unwrap()
}

/// Puts `visitors` waiting visitors in `event`'s (configured) room with one statement: the
/// rows `ticketing_room_join` writes, ticket ids ordered by time as ULIDs are, visitor ids
/// in random order.
async fn fill_queue(store: &PgStore, event: &EventId, visitors: usize) {
    sqlx::query(
        "WITH room AS (SELECT id, last_step_at FROM rooms WHERE event_id = $1),
         queued AS (
             INSERT INTO queue_tickets (ordinal, joined_at, room_id, state, id, visitor)
             SELECT n, room.last_step_at + n / 10, room.id, 1,
                    'q_' || lpad(upper(to_hex(room.last_step_at + n / 10)), 10, '0')
                         || upper(substr(md5(n::text), 1, 16)),
                    'v-' || substr(md5('v' || n), 1, 14)
             FROM room, generate_series(1, $2::bigint) AS n
             RETURNING 1)
         UPDATE rooms SET next_ordinal = $2::bigint + 1, waiting = (SELECT count(*) FROM queued)
         WHERE event_id = $1",
    )
    .bind(event.as_str())
    .bind(visitors as i64)
    .execute(store.pool())
    .await
    .unwrap();
    sqlx::query("ANALYZE queue_tickets")
        .execute(store.pool())
        .await
        .unwrap();
}

async fn ticket_at(store: &PgStore, event: &EventId, ordinal: usize) -> QueueTicketId {
    let id: String = sqlx::query_scalar(
        "SELECT q.id FROM queue_tickets q JOIN rooms r ON r.id = q.room_id
         WHERE r.event_id = $1 AND q.ordinal = $2",
    )
    .bind(event.as_str())
    .bind(ordinal as i64)
    .fetch_one(store.pool())
    .await
    .unwrap();
    QueueTicketId::new(id).unwrap()
}

async fn position(rooms: &PgWaitingRoom, ticket: &QueueTicketId) -> u64 {
    match rooms.status(ticket).await.unwrap().status {
        QueueStatus::Waiting { position, .. } => position,
        other => panic!("expected waiting, got {other:?}"),
    }
}

/// Median and 99th percentile of `micros`, in microseconds.
fn p50_p99(mut micros: Vec<u64>) -> (u64, u64) {
    micros.sort_unstable();
    let at = |p: f64| micros[((micros.len() as f64 - 1.0) * p).round() as usize];
    (at(0.5), at(0.99))
}

/// Fills a room with `queued` visitors and answers the queue's sizes then; then one
/// client's join, status and leave latencies at that depth and one admission step (of
/// `ADMIT_PER_STEP_MAX`, or a tenth of the queue), checking positions exact after it all.
async fn probe(store: &PgStore, queued: usize) -> Vec<(String, i64)> {
    let rooms = store.waiting_room();
    let event = EventId::new(format!("probe-{queued}")).unwrap();
    rooms
        .configure(
            &event,
            RoomSettings::cap(ADMIT_PER_STEP_MAX.min(queued as u32 / 10)),
        )
        .await
        .unwrap();
    let filled = Instant::now();
    fill_queue(store, &event, queued).await;
    let filled = filled.elapsed();
    let sizes = queue_sizes(store).await;
    let last = ticket_at(store, &event, queued).await;
    assert_eq!(position(&rooms, &last).await, queued as u64);
    let mut joins = Vec::new();
    for n in 0..PROBES {
        let visitor = HolderId::new(format!("late-{n}")).unwrap();
        let began = Instant::now();
        rooms.join(&event, &visitor).await.unwrap();
        joins.push(began.elapsed().as_micros() as u64);
    }
    let mut polls = Vec::new();
    for n in 0..PROBES {
        let ticket = ticket_at(store, &event, 1 + n * (queued - 1) / PROBES).await;
        let began = Instant::now();
        rooms.status(&ticket).await.unwrap();
        polls.push(began.elapsed().as_micros() as u64);
    }
    // Leavers spread over the queue ahead of the last visitor (ordinals 2, 2 + step, …).
    let mut leaves = Vec::new();
    for n in 0..PROBES {
        let ticket = ticket_at(store, &event, 2 + n * (queued - 2) / PROBES).await;
        let began = Instant::now();
        rooms.leave(&ticket).await.unwrap();
        leaves.push(began.elapsed().as_micros() as u64);
    }
    let began = Instant::now();
    let step = rooms.admit(&event, u64::MAX).await.unwrap();
    let step_time = began.elapsed();
    let admitted = u64::from(step.admitted);
    let ahead = queued as u64 - PROBES as u64 - admitted;
    assert_eq!(
        position(&rooms, &last).await,
        ahead,
        "exact after leaves and a step"
    );
    let mut polls_after = Vec::new();
    for n in 0..PROBES {
        let ticket = ticket_at(store, &event, queued - n).await;
        let began = Instant::now();
        rooms.status(&ticket).await.unwrap();
        polls_after.push(began.elapsed().as_micros() as u64);
    }
    let (join50, join99) = p50_p99(joins);
    let (poll50, poll99) = p50_p99(polls);
    let (leave50, leave99) = p50_p99(leaves);
    let (after50, after99) = p50_p99(polls_after);
    println!(
        "{queued:>9} queued (filled in {:.1} s): join p50/p99 {join50}/{join99} µs, status \
         {poll50}/{poll99} µs, leave {leave50}/{leave99} µs, admit step of {admitted} in {:.1} ms, \
         status after it {after50}/{after99} µs; last position {ahead} (exact)",
        filled.as_secs_f64(),
        step_time.as_secs_f64() * 1_000.0,
    );
    sizes
}

#[tokio::main]
async fn main() {
    let joins = arg(1, 20_000);
    let polls = arg(2, 100_000);
    let queued = arg(3, 1_000_000);
    println!("DATABASE_URL={}", database_url());

    let store = fresh_store("room_bench", CLIENTS as u32).await;
    let rooms: Arc<dyn WaitingRoom> = Arc::new(store.waiting_room());
    let event = EventId::new("room-bench").unwrap();
    let figures = bench_room(rooms, &event, CLIENTS, joins, polls).await;
    println!(
        "{} clients: {:.0} joins/s (p50 {} µs, p99 {} µs), {:.0} polls/s (p50 {} µs, p99 {} µs)",
        figures.clients,
        figures.joins_per_second,
        figures.join_p50_us,
        figures.join_p99_us,
        figures.polls_per_second,
        figures.poll_p50_us,
        figures.poll_p99_us,
    );
    // The rate's accuracy on the server, on a manual clock (a room of its own).
    let simulated = ticketing_store_pg::testkit::pg_room_for_test().await;
    let accuracy = admission_accuracy(
        &simulated,
        &EventId::new("simulated").unwrap(),
        1_000,
        60,
        100,
    )
    .await;
    println!("{accuracy}");
    let sizes = queue_sizes(&store).await;
    let total = sizes.last().unwrap().1;
    println!(
        "after {joins} real joins: {:.0} bytes per visitor (queue table and indexes)",
        total as f64 / joins as f64
    );
    store.drop_schema().await.unwrap();

    let store = fresh_store("room_bench_queue", 4).await;
    let sizes = probe(&store, queued).await;
    let total = sizes.last().unwrap().1;
    for (relation, bytes) in &sizes {
        println!(
            "  {relation:<24} {:>7.1} MiB  {:>6.1} bytes/visitor",
            *bytes as f64 / (1 << 20) as f64,
            *bytes as f64 / queued as f64
        );
    }
    println!(
        "{queued} queued visitors: {:.0} bytes per visitor",
        total as f64 / queued as f64
    );
    store.drop_schema().await.unwrap();
    let store = fresh_store("room_bench_queue", 4).await;
    probe(&store, 1_000).await;
    store.drop_schema().await.unwrap();
}
