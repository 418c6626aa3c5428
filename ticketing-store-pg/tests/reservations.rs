//! Reserving on PostgreSQL, checked against the semantics page: results, errors in their
//! precedence, idempotency, lazy expiry — and after each step, the change log replays to the
//! availability snapshot.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use ticketing_core::{
    BestAvailable, ClientReservationId, Clock, Entity, Error, EventId, HolderId, HolderLimit,
    ManualClock, Policy, PoolId, ReservationStatus, ReserveRequest, SaleWindow, SeatId, SeatStatus,
};
use ticketing_store_pg::PgStore;

mod common;
use common::{fresh_store, spec};

fn seat(id: &str) -> SeatId {
    SeatId::new(id).unwrap()
}

fn request(who: &str) -> ReserveRequest {
    ReserveRequest::new(EventId::new("e").unwrap(), HolderId::new(who).unwrap())
}

/// The log replays to the snapshot (the invariants of the conformance kit).
async fn check(store: &PgStore) {
    let event = store.event(&EventId::new("e").unwrap()).await.unwrap();
    let availability = store.availability(&event.id).await.unwrap();
    let log = store.changes(&event.id, 0, 10_000).await.unwrap();
    let replayed = ticketing_core::testkit::invariants::replay(&event, &log)
        .unwrap_or_else(|why| panic!("log does not replay: {why}"));
    assert_eq!(replayed, availability);
}

async fn store_with(clock: &ManualClock, policy: Policy, window: Option<SaleWindow>) -> PgStore {
    let store = fresh_store(clock).await;
    let mut event = spec("e", "reserve");
    event.policy = policy;
    event.sale_window = window;
    store.create_event(event).await.unwrap();
    store
}

#[tokio::test]
async fn reserve_holds_seats_and_units_all_or_nothing() {
    let clock = ManualClock::default();
    let store = store_with(&clock, Policy::default(), None).await;
    let ga = PoolId::new("ga").unwrap();
    let held = store
        .reserve(request("a").seats([seat("A-2")]).ga(ga.clone(), 3))
        .await
        .unwrap();
    assert!(held.token.is_some());
    assert_eq!(held.status, ReservationStatus::Active);
    assert_eq!(held.created_at, clock.now());
    assert_eq!(
        held.expires_at,
        clock.now().saturating_add(Duration::from_secs(300))
    );
    let availability = store.availability(&held.event).await.unwrap();
    assert_eq!(availability.seats[1], SeatStatus::Held);
    assert_eq!(
        (availability.pools[0].held, availability.pools[0].available),
        (3, 97)
    );
    // A refusal changes nothing: A-2 is taken, so A-1 stays free and no units move.
    let refused = store
        .reserve(
            request("b")
                .seats([seat("A-1"), seat("A-2")])
                .ga(ga.clone(), 1),
        )
        .await
        .unwrap_err();
    assert_eq!(
        refused,
        Error::SeatUnavailable {
            seats: vec![seat("A-2")]
        }
    );
    assert_eq!(store.availability(&held.event).await.unwrap(), availability);
    store
        .reserve(request("c").ga(ga.clone(), 60))
        .await
        .unwrap();
    assert_eq!(
        store
            .reserve(request("b").ga(ga.clone(), 38))
            .await
            .unwrap_err(),
        Error::SoldOut {
            pool: Some(ga.clone()),
            remaining: 37
        }
    );
    let mut read = store.reservation(&held.id).await.unwrap();
    assert!(read.token.is_none());
    read.token = held.token.clone();
    assert_eq!(read, held);
    check(&store).await;
    store.drop_schema().await.unwrap();
}

#[tokio::test]
async fn reserve_errors_follow_the_precedence() {
    let clock = ManualClock::default();
    let opens = clock.now().saturating_add(Duration::from_secs(60));
    let policy = Policy {
        reservation_ttl_seconds_max: 600,
        holder_seats_max: Some(2),
        holder_reservations_max: Some(1),
        ..Policy::default()
    };
    let store = store_with(
        &clock,
        policy,
        Some(SaleWindow {
            opens_at: Some(opens),
            closes_at: None,
        }),
    )
    .await;
    let rows = [
        (
            ReserveRequest::new(EventId::new("nope").unwrap(), HolderId::new("a").unwrap())
                .seats([seat("A-1")]),
            Error::not_found(Entity::Event, "nope"),
        ),
        (
            request("a").seats([seat("A-1")]).ttl_seconds(601),
            Error::invalid("ttl_seconds", ""),
        ),
        (
            request("a").seats([seat("Z-1")]),
            Error::not_found(Entity::Seat, "Z-1"),
        ),
        (
            request("a").ga(PoolId::new("vip").unwrap(), 1),
            Error::not_found(Entity::Pool, "vip"),
        ),
        (
            request("a").seats([seat("A-1")]),
            Error::NotOnSale {
                opens_at: Some(opens),
                closed_at: None,
            },
        ),
    ];
    for (request, expected) in rows {
        let error = store.reserve(request).await.unwrap_err();
        assert_eq!(error.code(), expected.code());
        if expected.code() != "invalid_request" {
            assert_eq!(error, expected);
        }
    }
    clock.advance(Duration::from_secs(60));
    store
        .reserve(request("a").seats([seat("A-1")]))
        .await
        .unwrap();
    assert_eq!(
        store
            .reserve(request("a").seats([seat("A-2")]))
            .await
            .unwrap_err(),
        Error::LimitExceeded {
            limit: HolderLimit::Reservations,
            max: 1
        }
    );
    assert_eq!(
        store
            .reserve(
                request("b")
                    .seats([seat("A-2"), seat("A-3")])
                    .ga(PoolId::new("ga").unwrap(), 1)
            )
            .await
            .unwrap_err(),
        Error::LimitExceeded {
            limit: HolderLimit::Seats,
            max: 2
        }
    );
    check(&store).await;
    store.drop_schema().await.unwrap();
}

#[tokio::test]
async fn best_available_picks_in_layout_order() {
    let clock = ManualClock::default();
    let store = store_with(&clock, Policy::default(), None).await;
    store
        .reserve(request("x").seats([seat("A-2")]))
        .await
        .unwrap();
    let best = |count, adjacent| BestAvailable {
        count,
        adjacent,
        section: None,
        category: None,
    };
    assert_eq!(
        store
            .reserve(request("a").best_available(best(2, true)))
            .await
            .unwrap_err(),
        Error::SoldOut {
            pool: None,
            remaining: 2
        },
        "A-1 and A-3 are free but not next to each other"
    );
    let any = store
        .reserve(request("a").best_available(best(2, false)))
        .await
        .unwrap();
    assert_eq!(any.seats, vec![seat("A-1"), seat("A-3")]);
    check(&store).await;
    store.drop_schema().await.unwrap();
}

#[tokio::test]
async fn a_client_reservation_id_replays_the_first_outcome() {
    let clock = ManualClock::default();
    let store = store_with(&clock, Policy::default(), None).await;
    let client = ClientReservationId::new("c-1").unwrap();
    let first = store
        .reserve(
            request("a")
                .seats([seat("A-1")])
                .client_reservation_id(client.clone()),
        )
        .await
        .unwrap();
    let again = store
        .reserve(
            request("a")
                .seats([seat("A-1")])
                .client_reservation_id(client.clone()),
        )
        .await
        .unwrap();
    assert_eq!(
        (again.id.clone(), again.token.clone()),
        (first.id.clone(), None)
    );
    assert_eq!(
        store
            .reserve(
                request("a")
                    .seats([seat("A-2")])
                    .client_reservation_id(client.clone())
            )
            .await
            .unwrap_err(),
        Error::IdempotencyMismatch { field: "seat_ids" }
    );
    // A failure is remembered too: A-1 is taken by "a", and stays the answer for c-2.
    let failing = request("b")
        .seats([seat("A-1")])
        .client_reservation_id(ClientReservationId::new("c-2").unwrap());
    let failure = store.reserve(failing.clone()).await.unwrap_err();
    assert_eq!(
        failure,
        Error::SeatUnavailable {
            seats: vec![seat("A-1")]
        }
    );
    clock.advance(Duration::from_secs(301));
    assert_eq!(
        store.reserve(failing.clone()).await.unwrap_err(),
        failure,
        "a retry never flips"
    );
    // Past the retention the id is forgotten.
    clock.advance(Duration::from_secs(24 * 3600));
    assert!(store.reserve(failing).await.unwrap().token.is_some());
    check(&store).await;
    store.drop_schema().await.unwrap();
}

#[tokio::test]
async fn a_lapsed_hold_is_free_at_once_and_logged_expired() {
    let clock = ManualClock::default();
    let store = store_with(&clock, Policy::default(), None).await;
    let lapsing = store
        .reserve(request("a").seats([seat("A-1")]).ttl_seconds(10))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(10));
    assert_eq!(
        store.reservation(&lapsing.id).await.unwrap().status,
        ReservationStatus::Expired
    );
    let taken = store
        .reserve(request("b").seats([seat("A-1")]))
        .await
        .unwrap();
    assert_eq!(taken.seats, vec![seat("A-1")]);
    let kinds: Vec<String> = store
        .changes(&taken.event, 0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|change| {
            serde_json::to_value(change.kind).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(kinds, ["event_created", "reserved", "expired", "reserved"]);
    check(&store).await;
    store.drop_schema().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_batches_over_two_events_never_double_book() {
    let clock = ManualClock::default();
    let store = std::sync::Arc::new(fresh_store(&clock).await);
    for id in ["e", "f"] {
        store.create_event(spec(id, "batch")).await.unwrap();
    }
    let mut tasks = Vec::new();
    for task in 0..4u32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            // Events in opposite orders in alternate tasks: locks are taken in id order.
            let events = if task % 2 == 0 {
                ["e", "f"]
            } else {
                ["f", "e"]
            };
            let requests: Vec<ReserveRequest> = (0..40u32)
                .map(|n| {
                    ReserveRequest::new(
                        EventId::new(events[(n % 2) as usize]).unwrap(),
                        HolderId::new(format!("h{task}")).unwrap(),
                    )
                    .seats([seat(&format!("A-{}", 1 + (n + task) % 3))])
                })
                .collect();
            store.reserve_batch(requests).await
        }));
    }
    let mut won = 0;
    for task in tasks {
        let results = task.await.unwrap();
        assert_eq!(results.len(), 40);
        for result in results {
            match result {
                Ok(reservation) => {
                    assert!(reservation.token.is_some());
                    won += 1;
                }
                Err(Error::SeatUnavailable { .. }) => {}
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!(
        won, 6,
        "each of the 3 seats of each event is won exactly once"
    );
    for id in ["e", "f"] {
        let event = store.event(&EventId::new(id).unwrap()).await.unwrap();
        let availability = store.availability(&event.id).await.unwrap();
        let log = store.changes(&event.id, 0, 10_000).await.unwrap();
        assert_eq!(
            ticketing_core::testkit::invariants::replay(&event, &log).unwrap(),
            availability
        );
        assert!(
            availability
                .seats
                .iter()
                .all(|status| *status == SeatStatus::Held)
        );
    }
    store.drop_schema().await.unwrap();
}

#[tokio::test]
async fn hostile_input_is_refused_or_stored_verbatim() {
    let clock = ManualClock::default();
    let store = fresh_store(&clock).await;
    // Free text goes to SQL as parameters only: quotes, backslashes, NUL-free unicode and
    // SQL fragments in sections and categories come back exactly.
    let mut event = spec("e", "hostile");
    for seat in &mut event.seats {
        seat.section = "Sec'); DROP TABLE seats; --".into();
        seat.category = "\\x00 \u{202e}ünïcødé \"quoted\" 🎟".into();
    }
    let created = store.create_event(event).await.unwrap();
    assert_eq!(store.event(&created.id).await.unwrap(), created);
    let best = BestAvailable {
        count: 2,
        adjacent: true,
        section: Some("Sec'); DROP TABLE seats; --".into()),
        category: Some("\\x00 \u{202e}ünïcødé \"quoted\" 🎟".into()),
    };
    let picked = store
        .reserve(request("a").best_available(best))
        .await
        .unwrap();
    assert_eq!(picked.seats, vec![seat("A-1"), seat("A-2")]);
    // Ids with quotes or too long never become ids.
    assert!(SeatId::new("A'1").is_err());
    assert!(SeatId::new("x".repeat(65)).is_err());
    // Huge lists are refused before anything reaches the server.
    let many: Vec<SeatId> = (0..65).map(|n| seat(&format!("Z-{n}"))).collect();
    assert_eq!(
        store
            .reserve(request("a").seats(many))
            .await
            .unwrap_err()
            .code(),
        "invalid_request"
    );
    let too_many_to_block: Vec<SeatId> = (0..10_001).map(|n| seat(&format!("Z-{n}"))).collect();
    assert_eq!(
        store
            .block(&created.id, &too_many_to_block, true)
            .await
            .unwrap_err()
            .code(),
        "invalid_request"
    );
    check(&store).await;
    store.drop_schema().await.unwrap();
}
