//! `reserve_batch` decides as `reserve` does one request after the other: the same answers
//! and the same state, table by table, for random batches of every kind of request — named
//! seats, GA units, best available (adjacent or not, by section or category), client
//! reservation ids used twice in one batch or again in later ones (replays and
//! mismatches), bad hold times, unknown seats and pools, holder limits, a sale window that
//! opens and closes, lapsed holds and expired idempotency records.
//!
//! Two stores in schemas of their own share one manual clock: one gets each batch through
//! `reserve_batch` (one set-based run, migration 0010), the other gets the same requests
//! through `reserve`, one by one. Reservation ids and tokens are made per call, so the
//! comparison maps the batch store's ids to the other's as fresh reservations appear.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use sqlx::Row;
use ticketing_core::{
    BestAvailable, ClientReservationId, Error, EventId, EventSpec, HolderId, HolderLimit,
    ManualClock, Policy, PoolId, PoolSpec, Reservation, ReserveRequest, Result, SaleWindow, Seat,
    SeatId, Timestamp,
};
use ticketing_store_pg::PgStore;

mod common;

/// Seeds, and batches per seed: a few seconds in all.
const SEEDS: u64 = 2;
const ROUNDS: usize = 40;
/// The tables are compared after every this many batches (and after the last).
const STATE_EVERY: usize = 5;
/// Requests in a batch at most.
const BATCH_MAX: usize = 20;
const SECTIONS: [&str; 3] = ["A", "B", "C"];
const ROWS: [&str; 3] = ["r1", "r2", "r3"];
const NUMBERS: u32 = 8;
const HOLDERS: u32 = 6;

fn seat_id(section: &str, row: &str, number: u32) -> SeatId {
    SeatId::new(format!("{section}-{row}-{number}")).unwrap()
}

/// 72 seats in three sections of three rows; the middle row of each section is "vip".
fn spec(id: &str, policy: Policy, sale_window: Option<SaleWindow>) -> EventSpec {
    let mut seats = Vec::new();
    for section in SECTIONS {
        for row in ROWS {
            for number in 1..=NUMBERS {
                seats.push(Seat {
                    id: seat_id(section, row, number),
                    section: section.into(),
                    row: row.into(),
                    number,
                    category: if row == "r2" { "vip" } else { "std" }.into(),
                    accessible: false,
                    position: Default::default(),
                });
            }
        }
    }
    EventSpec {
        id: EventId::new(id).unwrap(),
        name: id.to_owned(),
        seats,
        pools: vec![
            PoolSpec {
                id: PoolId::new("ga").unwrap(),
                name: "GA".into(),
                capacity: 25,
            },
            PoolSpec {
                id: PoolId::new("box").unwrap(),
                name: "Box".into(),
                capacity: 6,
            },
        ],
        sale_window,
        policy,
    }
}

/// The two stores, with the same events and the same seats blocked.
async fn pair(clock: &ManualClock) -> (PgStore, PgStore) {
    let start = clock_now(clock);
    let main = Policy {
        reservation_ttl_seconds: 60,
        reservation_ttl_seconds_max: 600,
        holder_seats_max: Some(9),
        holder_reservations_max: Some(3),
        ..Policy::default()
    };
    let window = SaleWindow {
        opens_at: Some(Timestamp::from_millis(start + 30_000)),
        closes_at: Some(Timestamp::from_millis(start + 360_000)),
    };
    let mut stores = Vec::new();
    for _ in 0..2 {
        let config = common::fresh_config()
            .clock(Arc::new(clock.clone()))
            .idempotency_retention(Duration::from_secs(100));
        let store = ticketing_store_pg::testkit::connect_for_test(config).await;
        store.create_event(spec("main", main, None)).await.unwrap();
        let policy = Policy {
            reservation_ttl_seconds: 45,
            ..Policy::default()
        };
        store
            .create_event(spec("win", policy, Some(window)))
            .await
            .unwrap();
        let blocked = [
            seat_id("A", "r1", 3),
            seat_id("B", "r2", 5),
            seat_id("C", "r3", 1),
        ];
        store
            .block(&EventId::new("main").unwrap(), &blocked, true)
            .await
            .unwrap();
        stores.push(store);
    }
    let single = stores.pop().unwrap();
    (stores.pop().unwrap(), single)
}

fn clock_now(clock: &ManualClock) -> u64 {
    use ticketing_core::Clock;
    clock.now().as_millis()
}

/// A random request on `event`: named seats (now and then one that does not exist), GA
/// units (now and then of an unknown pool), best available with random filters, a hold
/// time (now and then above the main event's maximum); at least one item.
fn request(rng: &mut StdRng, event: &str) -> ReserveRequest {
    let holder = HolderId::new(format!("h{}", rng.random_range(0..HOLDERS))).unwrap();
    let mut request = ReserveRequest::new(EventId::new(event).unwrap(), holder);
    let kind = rng.random_range(0..10);
    if kind < 5 {
        let mut seats: Vec<SeatId> = Vec::new();
        for _ in 0..rng.random_range(1..=3) {
            let seat = if rng.random_bool(0.04) {
                SeatId::new("Z-r9-99").unwrap()
            } else {
                let section = SECTIONS[rng.random_range(0..SECTIONS.len())];
                let row = ROWS[rng.random_range(0..ROWS.len())];
                seat_id(section, row, rng.random_range(1..=NUMBERS))
            };
            if !seats.contains(&seat) {
                seats.push(seat);
            }
        }
        request = request.seats(seats);
    }
    if (4..7).contains(&kind) || rng.random_bool(0.1) {
        let pool = match rng.random_range(0..20) {
            0 => "nope",
            1..=5 => "box",
            _ => "ga",
        };
        request = request.ga(PoolId::new(pool).unwrap(), rng.random_range(1..=4));
    }
    if kind >= 6 || rng.random_bool(0.1) {
        let section = rng
            .random_bool(0.4)
            .then(|| ["A", "B", "C", "Q"][rng.random_range(0..4)].to_owned());
        let category = rng
            .random_bool(0.3)
            .then(|| ["std", "vip"][rng.random_range(0..2)].to_owned());
        request = request.best_available(BestAvailable {
            count: rng.random_range(1..=4),
            adjacent: rng.random_bool(0.5),
            section,
            category,
        });
    }
    match rng.random_range(0..20) {
        0 => request = request.ttl_seconds(1_000),
        1..=3 => request = request.ttl_seconds(rng.random_range(5..=120)),
        _ => {}
    }
    request
}

/// The same request with one field changed: a mismatch when its client id has a record.
fn mutated(rng: &mut StdRng, mut request: ReserveRequest) -> ReserveRequest {
    match rng.random_range(0..4) {
        0 => request.holder = HolderId::new("h-other").unwrap(),
        1 => request.seats.push(seat_id("C", "r1", NUMBERS)),
        2 => request.ttl_seconds = Some(request.ttl_seconds.unwrap_or(60) + 1),
        _ => {
            request.best_available = Some(BestAvailable {
                count: 1,
                ..BestAvailable::default()
            });
        }
    }
    request
}

/// A batch: mostly of one event (the set-based run), now and then of both (each request on
/// its own). Client ids: new ones, ids of this batch again (same request or changed), and
/// ids of earlier batches again.
fn batch(
    rng: &mut StdRng,
    history: &mut Vec<ReserveRequest>,
    next_client: &mut u32,
) -> Vec<ReserveRequest> {
    let main_only = rng.random_bool(0.7);
    let mixed = rng.random_bool(0.05);
    let size = rng.random_range(1..=BATCH_MAX);
    let mut requests = Vec::with_capacity(size);
    let mut mine: Vec<ReserveRequest> = Vec::new();
    for _ in 0..size {
        let event = if main_only && !mixed {
            "main"
        } else if mixed {
            ["main", "win"][rng.random_range(0..2)]
        } else {
            "win"
        };
        let roll = rng.random_range(0..20);
        let request = if roll < 3 && !history.is_empty() {
            // Again, as an earlier batch asked (a replay, or a fresh call once the record
            // expired), or changed (a mismatch).
            let earlier = history[rng.random_range(0..history.len())].clone();
            if rng.random_bool(0.7) {
                earlier
            } else {
                mutated(rng, earlier)
            }
        } else if roll < 5 && !mine.is_empty() {
            let earlier = mine[rng.random_range(0..mine.len())].clone();
            if rng.random_bool(0.7) {
                earlier
            } else {
                mutated(rng, earlier)
            }
        } else {
            let mut request = request(rng, event);
            if rng.random_bool(0.6) {
                *next_client += 1;
                let id = ClientReservationId::new(format!("c{next_client}")).unwrap();
                request = request.client_reservation_id(id);
                mine.push(request.clone());
            }
            request
        };
        requests.push(request);
    }
    history.extend(mine);
    requests
}

/// Batch-store reservation ids to the one-by-one store's.
#[derive(Default)]
struct Ids(HashMap<String, String>);

impl Ids {
    /// Checks that `batched` answers as `single` did, learning the ids of fresh reservations.
    fn check_answer(
        &mut self,
        at: &str,
        batched: &Result<Reservation>,
        single: &Result<Reservation>,
    ) {
        match (batched, single) {
            (Ok(batched), Ok(single)) => {
                assert_eq!(
                    batched.token.is_some(),
                    single.token.is_some(),
                    "{at}: fresh or replayed\n batch: {batched:?}\nsingle: {single:?}"
                );
                if batched.token.is_some() {
                    let known = self.0.insert(batched.id.to_string(), single.id.to_string());
                    assert!(known.is_none(), "{at}: a fresh reservation's id came twice");
                } else {
                    assert_eq!(
                        self.0.get(batched.id.as_str()),
                        Some(&single.id.to_string()),
                        "{at}: a replay of another reservation"
                    );
                }
                let mut batched = batched.clone();
                batched.id = single.id.clone();
                let mut expect = single.clone();
                expect.token = None;
                batched.token = None;
                assert_eq!(batched, expect, "{at}");
            }
            (Err(batched), Err(single)) => {
                assert_eq!(format!("{batched:?}"), format!("{single:?}"), "{at}");
            }
            _ => panic!("{at}:\n batch: {batched:?}\nsingle: {single:?}"),
        }
    }

    /// `value` with every batch-store id replaced by the one-by-one store's.
    fn map(&self, value: Value) -> Value {
        match value {
            Value::String(text) => Value::String(self.0.get(&text).cloned().unwrap_or(text)),
            Value::Array(items) => Value::Array(items.into_iter().map(|v| self.map(v)).collect()),
            Value::Object(fields) => Value::Object(
                fields
                    .into_iter()
                    .map(|(key, v)| (key, self.map(v)))
                    .collect(),
            ),
            other => other,
        }
    }
}

/// Every row of the tables a reserve writes, as JSON, without the token hashes (tokens are
/// random per call), sorted.
async fn state(store: &PgStore) -> Vec<(&'static str, Vec<Value>)> {
    let tables = [
        (
            "events",
            "SELECT to_jsonb(e) - 'created_at' AS row FROM events e",
        ),
        ("seats", "SELECT to_jsonb(s) AS row FROM seats s"),
        ("pools", "SELECT to_jsonb(p) AS row FROM pools p"),
        (
            "reservations",
            "SELECT to_jsonb(r) - 'token_hash' AS row FROM reservations r",
        ),
        (
            "changes",
            "SELECT to_jsonb(c) AS row FROM changes c ORDER BY event_id, seq",
        ),
        (
            "reserve_records",
            "SELECT to_jsonb(rr) AS row FROM reserve_records rr",
        ),
    ];
    // A reserve made beside others leaves its change unnumbered (migration 0014) until the
    // event's next sequence number is taken or the log is read: number them first, as a
    // reader of the log would.
    sqlx::query("SELECT ticketing_sequence_now(id) FROM events")
        .execute(store.pool())
        .await
        .unwrap();
    let mut out = Vec::new();
    for (name, sql) in tables {
        let rows = sqlx::query(sql).fetch_all(store.pool()).await.unwrap();
        let rows: Vec<Value> = rows.iter().map(|row| row.get::<Value, _>("row")).collect();
        out.push((name, rows));
    }
    out
}

/// The change log in order, except within a run of expiries logged at one instant: holds
/// lapsing at the same millisecond are finalized in id order, and ids are random past their
/// time part, so the two stores may log them in different orders. Sequence numbers dropped.
fn log_order(rows: Vec<Value>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(rows.len());
    let mut run: Vec<String> = Vec::new();
    let mut run_key = None;
    for mut row in rows {
        if let Value::Object(fields) = &mut row {
            fields.remove("seq");
        }
        let expired = row["kind"]["type"] == "expired";
        let key = (row["event_id"].clone(), row["at"].clone());
        if !expired || run_key.as_ref() != Some(&key) {
            run.sort();
            out.append(&mut run);
            run_key = None;
        }
        if expired {
            run_key = Some(key);
            run.push(row.to_string());
        } else {
            out.push(row.to_string());
        }
    }
    run.sort();
    out.append(&mut run);
    out
}

async fn check_state(at: &str, ids: &Ids, batched: &PgStore, single: &PgStore) {
    let batched = state(batched).await;
    let single = state(single).await;
    for ((name, batched), (_, single)) in batched.into_iter().zip(single) {
        let batched: Vec<Value> = batched.into_iter().map(|row| ids.map(row)).collect();
        let (batched, single) = if name == "changes" {
            (log_order(batched), log_order(single))
        } else {
            let mut batched: Vec<String> = batched.iter().map(Value::to_string).collect();
            let mut single: Vec<String> = single.iter().map(Value::to_string).collect();
            batched.sort();
            single.sort();
            (batched, single)
        };
        assert_eq!(batched.len(), single.len(), "{at}: {name} rows");
        for (batched, single) in batched.iter().zip(&single) {
            assert_eq!(batched, single, "{at}: {name}");
        }
    }
}

/// What the one-by-one store answered, by kind, over every seed: the test checks that each
/// kind came up, so that a change of the generator cannot make it vacuous.
#[derive(Debug, Default)]
struct Seen(std::collections::BTreeMap<&'static str, u32>);

impl Seen {
    fn note(&mut self, request: &ReserveRequest, answer: &Result<Reservation>, made_now: bool) {
        let kind = match answer {
            Ok(made) if made.token.is_none() && made_now => "replayed from this batch",
            Ok(made) if made.token.is_none() => "replayed from an earlier batch",
            Ok(_)
                if request
                    .best_available
                    .as_ref()
                    .is_some_and(|best| best.adjacent) =>
            {
                "reserved best available adjacent"
            }
            Ok(_) if request.best_available.is_some() => "reserved best available",
            Ok(_) if request.client_reservation_id.is_some() => "reserved with a client id",
            Ok(_) => "reserved",
            Err(Error::SoldOut { pool: None, .. }) => "sold out (best available)",
            Err(Error::LimitExceeded {
                limit: HolderLimit::Seats,
                ..
            }) => "limit exceeded (seats)",
            Err(error) => error.code(),
        };
        *self.0.entry(kind).or_default() += 1;
    }
}

async fn run(seed: u64, seen: &mut Seen) {
    let clock = ManualClock::default();
    let (batched, single) = pair(&clock).await;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut ids = Ids::default();
    let mut history = Vec::new();
    let mut next_client = 0;
    // (batch store's, one-by-one store's) live reservations with their tokens, to cancel.
    let mut live: Vec<(Reservation, Reservation)> = Vec::new();
    for round in 0..ROUNDS {
        let requests = batch(&mut rng, &mut history, &mut next_client);
        let answers = batched.reserve_batch(requests.clone()).await;
        assert_eq!(answers.len(), requests.len());
        let mut made_now = Vec::new();
        for (position, (request, answer)) in requests.into_iter().zip(&answers).enumerate() {
            let alone = single.reserve(request.clone()).await;
            let at = format!("seed {seed} round {round} request {position}");
            ids.check_answer(&at, answer, &alone);
            let replays_this_batch = alone.as_ref().is_ok_and(|made| made_now.contains(&made.id));
            seen.note(&request, &alone, replays_this_batch);
            if let (Ok(a), Ok(b)) = (answer, &alone)
                && a.token.is_some()
            {
                made_now.push(b.id.clone());
                live.push((a.clone(), b.clone()));
            }
        }
        if round % STATE_EVERY == 0 || round + 1 == ROUNDS {
            check_state(
                &format!("seed {seed} after round {round}"),
                &ids,
                &batched,
                &single,
            )
            .await;
        }
        // Now and then a cancel frees seats in the middle of the layout (on both).
        if !live.is_empty() && rng.random_bool(0.3) {
            let (a, b) = live.swap_remove(rng.random_range(0..live.len()));
            let cancelled = batched.cancel(&a.id, a.token.as_ref().unwrap()).await;
            let alone = single.cancel(&b.id, b.token.as_ref().unwrap()).await;
            assert_eq!(format!("{cancelled:?}"), format!("{alone:?}"));
        }
        // Holds last 45-60 s by default and records 100 s: some lapse every few rounds, and
        // the window event opens at 30 s and closes at 360 s.
        clock.advance(Duration::from_secs(rng.random_range(0..=25)));
    }
    let expiries = sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM changes WHERE kind->>'type' = 'expired'",
    )
    .fetch_one(single.pool())
    .await
    .unwrap();
    *seen.0.entry("lapsed holds finalized").or_default() += u32::try_from(expiries).unwrap();
    batched.drop_schema().await.unwrap();
    single.drop_schema().await.unwrap();
}

#[tokio::test]
async fn reserve_batch_answers_and_writes_as_reserve_one_by_one() {
    let mut seen = Seen::default();
    for seed in 1..=SEEDS {
        run(seed, &mut seen).await;
    }
    eprintln!("{seen:#?}");
    for kind in [
        "reserved",
        "reserved with a client id",
        "reserved best available",
        "reserved best available adjacent",
        "replayed from this batch",
        "replayed from an earlier batch",
        "idempotency_mismatch",
        "invalid_request",
        "not_found",
        "not_on_sale",
        "limit_exceeded",
        "limit exceeded (seats)",
        "seat_unavailable",
        "sold_out",
        "sold out (best available)",
        "lapsed holds finalized",
    ] {
        assert!(
            seen.0.get(kind).is_some_and(|&n| n > 0),
            "never seen: {kind}\n{seen:#?}"
        );
    }
}
