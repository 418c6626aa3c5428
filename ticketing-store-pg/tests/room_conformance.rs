//! The waiting room conformance kit of `ticketing_core::testkit::room` against a real
//! PostgreSQL server, each scenario on a schema of its own; and the SQL versions of the
//! core's room arithmetic (admission budget, estimated wait, shuffle key) checked against
//! the core's own functions.
#![allow(missing_docs, clippy::unwrap_used, clippy::panic)]

ticketing_core::room_conformance_suite!(ticketing_store_pg::testkit::pg_room_for_test);

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ticketing_core::room::{AdmissionBudget, estimated_wait_seconds, shuffle_key};
use ticketing_core::{
    Clock, EventId, HolderId, ManualClock, MemoryWaitingRoom, QueueTicketId, RoomSettings,
    RoomStats, Timestamp, WaitingRoom,
};
use ticketing_store_pg::PgStore;
use ticketing_store_pg::testkit::{connect_for_test, fresh_config};

async fn store() -> PgStore {
    connect_for_test(fresh_config()).await
}

/// `ticketing_room_budget` is `AdmissionBudget::of`, on a grid around every bound.
#[tokio::test]
async fn sql_budget_is_the_core_budget() {
    let store = store().await;
    let mut rng = StdRng::seed_from_u64(7);
    let mut cases = Vec::new();
    for _ in 0..2_000 {
        let rate = rng.random_bool(0.7).then(|| rng.random_range(1..=200));
        let cap = (rate.is_none() || rng.random_bool(0.5)).then(|| rng.random_range(1..=50));
        let settings = RoomSettings {
            admit_per_second: rate,
            active_max: cap,
            seats_per_buyer: rng.random_range(1..=4),
            ..RoomSettings::default()
        };
        let credit = rng.random_range(0..=u64::from(rate.unwrap_or(0)) * 1_000);
        let elapsed_ms = [0, 1, 99, 250, 1_000, 86_400_000_000][rng.random_range(0..6)];
        let active = rng.random_range(0..60);
        let waiting = [0, 1, 7, 20_000][rng.random_range(0..4)];
        let free_units = [0, 1, 7, 100, 1 << 40][rng.random_range(0..5)];
        cases.push((settings, credit, elapsed_ms, active, waiting, free_units));
    }
    for (settings, credit, elapsed_ms, active, waiting, free_units) in cases {
        let expected =
            AdmissionBudget::of(&settings, credit, elapsed_ms, active, waiting, free_units);
        let (admit, credit_left): (i64, i64) = sqlx::query_as(
            "SELECT admit, credit FROM ticketing_room_budget($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(settings.admit_per_second.map(|rate| rate as i32))
        .bind(settings.active_max.map(|cap| cap as i32))
        .bind(settings.seats_per_buyer as i32)
        .bind(credit as i64)
        .bind(elapsed_ms as i64)
        .bind(active as i64)
        .bind(waiting as i64)
        .bind(free_units as i64)
        .bind(i64::from(ticketing_core::room::ADMIT_PER_STEP_MAX))
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert_eq!(
            (admit as u64, credit_left as u64),
            (expected.admit, expected.credit),
            "{settings:?} credit {credit} elapsed {elapsed_ms} active {active} \
             waiting {waiting} free {free_units}"
        );
    }
    store.drop_schema().await.unwrap();
}

/// `ticketing_room_wait` is `estimated_wait_seconds`, measured and configured rates alike.
#[tokio::test]
async fn sql_wait_is_the_core_estimate() {
    let store = store().await;
    let mut rng = StdRng::seed_from_u64(11);
    for _ in 0..1_000 {
        let rate = rng.random_bool(0.8).then(|| rng.random_range(1..=1_000));
        let settings = RoomSettings {
            admit_per_second: rate,
            active_max: Some(5),
            ..RoomSettings::default()
        };
        let opened = Timestamp::from_millis(rng.random_range(0..1_000_000));
        let stats = RoomStats {
            admitted_total: [0, 1, 3, 999, 123_456][rng.random_range(0..5)],
            opened_at: rng.random_bool(0.8).then_some(opened),
            ..RoomStats::default()
        };
        let now = Timestamp::from_millis(rng.random_range(0..2_000_000));
        let position = rng.random_range(1..2_000_000);
        let expected = estimated_wait_seconds(&settings, &stats, now, position);
        let wait: Option<i64> =
            sqlx::query_scalar("SELECT ticketing_room_wait($1, $2, $3, $4, $5)")
                .bind(rate.map(|rate| rate as i32))
                .bind(stats.admitted_total as i64)
                .bind(stats.opened_at.map(|at| at.as_millis() as i64))
                .bind(now.as_millis() as i64)
                .bind(position as i64)
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(
            wait.map(|wait| wait as u64),
            expected,
            "{stats:?} now {now:?} position {position} rate {rate:?}"
        );
    }
    store.drop_schema().await.unwrap();
}

/// `ticketing_shuffle_key` is `shuffle_key` with the top bit flipped, so bigint order is
/// the key's order; seeds above `i64::MAX` and every character a visitor id may hold included.
#[tokio::test]
async fn sql_shuffle_key_is_the_core_key() {
    let store = store().await;
    let seeds = [
        0,
        1,
        42,
        u64::MAX,
        1 << 63,
        (1 << 63) - 1,
        0xdead_beef_cafe_f00d,
    ];
    let visitors = [
        "alice",
        "visitor-0001",
        "v",
        "a.b:c@d|e+f_G",
        "x".repeat(64).as_str(),
    ]
    .map(|visitor| HolderId::new(visitor).unwrap());
    let mut keys = Vec::new();
    for seed in seeds {
        for visitor in &visitors {
            let key: i64 = sqlx::query_scalar("SELECT ticketing_shuffle_key($1, $2)")
                .bind(seed as i64)
                .bind(visitor.as_str())
                .fetch_one(store.pool())
                .await
                .unwrap();
            let expected = shuffle_key(seed, visitor);
            assert_eq!((key as u64) ^ (1 << 63), expected, "seed {seed} {visitor}");
            keys.push((key, expected));
        }
    }
    let mut by_sql = keys.clone();
    by_sql.sort_by_key(|(sql, _)| *sql);
    let mut by_core = keys;
    by_core.sort_by_key(|(_, core)| *core);
    assert_eq!(by_sql, by_core, "bigint order is u64 order");
    store.drop_schema().await.unwrap();
}

/// The same random calls on `MemoryWaitingRoom` (the reference) and on PostgreSQL, on one
/// manual clock: every answer equal, ticket ids mapped one to one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matches_the_memory_reference() {
    // Seeds in parallel, each on its own clock and schema: the run is bound by commits.
    let runs: Vec<_> = (0..4)
        .map(|seed| {
            tokio::spawn(async move {
                let clock = ManualClock::default();
                let memory = MemoryWaitingRoom::with_clock(Arc::new(clock.clone()));
                let config = fresh_config().clock(Arc::new(clock.clone()));
                let store = connect_for_test(config).await;
                let pg = store.waiting_room();
                run_against_reference(seed, &clock, &memory, &pg).await;
                store.drop_schema().await.unwrap();
            })
        })
        .collect();
    for run in runs {
        run.await.unwrap();
    }
}

async fn run_against_reference(
    seed: u64,
    clock: &ManualClock,
    memory: &MemoryWaitingRoom,
    pg: &ticketing_store_pg::PgWaitingRoom,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let events: Vec<EventId> = (0..2)
        .map(|n| EventId::new(format!("ref-{n}")).unwrap())
        .collect();
    let visitors: Vec<HolderId> = (0..12)
        .map(|n| HolderId::new(format!("v{n}")).unwrap())
        .collect();
    // Memory ticket id -> PostgreSQL ticket id.
    let mut tickets: HashMap<QueueTicketId, QueueTicketId> = HashMap::new();
    let mut order: Vec<QueueTicketId> = Vec::new();
    for step in 0..300 {
        let event = &events[rng.random_range(0..events.len())];
        let what = rng.random_range(0..100);
        let context = format!("seed {seed} step {step} op {what} {event}");
        match what {
            0..5 => {
                let settings = RoomSettings {
                    admit_per_second: rng.random_bool(0.7).then(|| rng.random_range(1..=5)),
                    active_max: rng.random_bool(0.5).then(|| rng.random_range(1..=4)),
                    pass_ttl_seconds: rng.random_range(10..=40),
                    seats_per_buyer: rng.random_range(1..=3),
                    opens_at: rng.random_bool(0.5).then(|| {
                        Clock::now(clock)
                            .saturating_add(Duration::from_millis(rng.random_range(0..8_000)))
                    }),
                    shuffle_seed: rng.random(),
                };
                let settings =
                    if settings.admit_per_second.is_none() && settings.active_max.is_none() {
                        settings.active_max(2)
                    } else {
                        settings
                    };
                let expected = memory.configure(event, settings).await;
                assert_eq!(pg.configure(event, settings).await, expected, "{context}");
                assert_eq!(
                    pg.settings(event).await.unwrap(),
                    memory.settings(event).await.unwrap()
                );
            }
            5..40 => {
                let visitor = &visitors[rng.random_range(0..visitors.len())];
                let expected = memory.join(event, visitor).await;
                let actual = pg.join(event, visitor).await;
                match (expected, actual) {
                    (Ok(expected), Ok(actual)) => {
                        assert_eq!(
                            (&actual.event, &actual.visitor, actual.joined_at),
                            (&expected.event, &expected.visitor, expected.joined_at),
                            "{context}"
                        );
                        match tickets.get(&expected.id) {
                            Some(mapped) => assert_eq!(mapped, &actual.id, "{context}: same place"),
                            None => {
                                assert!(!tickets.values().any(|id| id == &actual.id), "{context}");
                                tickets.insert(expected.id.clone(), actual.id);
                                order.push(expected.id);
                            }
                        }
                    }
                    (expected, actual) => assert_eq!(actual.err(), expected.err(), "{context}"),
                }
            }
            40..50 if !order.is_empty() => {
                let ticket = &order[rng.random_range(0..order.len())];
                let expected = memory.leave(ticket).await;
                assert_eq!(pg.leave(&tickets[ticket]).await, expected, "{context}");
            }
            50..70 => {
                let free_units = [0, 1, 3, 6, 1_000][rng.random_range(0..5)];
                let expected = memory.admit(event, free_units).await;
                assert_eq!(pg.admit(event, free_units).await, expected, "{context}");
            }
            70..90 => {
                clock.advance(Duration::from_millis(rng.random_range(0..3_000)));
            }
            _ => {
                let expected = memory.stats(event).await;
                assert_eq!(pg.stats(event).await, expected, "{context}");
            }
        }
        // Every ticket reads the same on both every 10 steps, a few at random between.
        let checked: Vec<&QueueTicketId> = if step % 10 == 9 {
            order.iter().collect()
        } else {
            (0..3.min(order.len()))
                .map(|_| &order[rng.random_range(0..order.len())])
                .collect()
        };
        for ticket in checked {
            let expected = memory.status(ticket).await.unwrap();
            let actual = pg.status(&tickets[ticket]).await.unwrap();
            assert_eq!(actual.status, expected.status, "{context}: {ticket}");
            assert_eq!(actual.ticket.visitor, expected.ticket.visitor, "{context}");
        }
    }
    assert_eq!(pg.rooms().await.unwrap(), memory.rooms().await.unwrap());
}
