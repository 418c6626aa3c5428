//! Large layouts: every per-seat operation finds its rows by key, and best available stays
//! linear in the layout, whatever the state of the event.
//!
//! A regression here does not make an answer wrong, only slow — until the statement timeout
//! turns it into a `backend` error while the event row stays locked for every other buyer.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use sqlx::Row;
use ticketing_core::{
    BestAvailable, CommitRequest, Error, EventId, EventSpec, HolderId, IdempotencyKey, ManualClock,
    Policy, ReserveRequest, Seat, SeatId,
};
use ticketing_store_pg::PgStore;
use ticketing_store_pg::testkit::connect_for_test;

mod common;

fn seat(id: &str) -> SeatId {
    SeatId::new(id).unwrap()
}

/// `rows` rows of `per_row` seats, all in section "Main", in layout order row by row.
fn layout(id: &str, rows: u32, per_row: u32) -> EventSpec {
    let seats = (0..rows)
        .flat_map(|row| {
            (1..=per_row).map(move |number| Seat {
                id: seat(&format!("R{row}-{number}")),
                section: "Main".into(),
                row: format!("R{row}"),
                number,
                category: "standard".into(),
                accessible: false,
                position: Default::default(),
            })
        })
        .collect();
    EventSpec {
        id: EventId::new(id).unwrap(),
        name: id.to_owned(),
        seats,
        pools: vec![],
        sale_window: None,
        policy: Policy::default(),
    }
}

#[tokio::test]
async fn every_event_id_column_shares_the_collation_of_events_id() {
    let store = common::fresh_store(&ManualClock::default()).await;
    let rows = sqlx::query(
        "SELECT table_name::text AS table_name, collation_name::text AS collation
         FROM information_schema.columns
         WHERE table_schema = $1 AND column_name = 'event_id' ORDER BY table_name",
    )
    .bind(store.schema())
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert!(rows.len() >= 5, "every table of an event has an event_id");
    for row in &rows {
        let table: String = row.get("table_name");
        let collation: Option<String> = row.get("collation");
        // Another collation than events.id's keeps every lookup by event off the index.
        assert_eq!(collation.as_deref(), Some("C"), "{table}.event_id");
    }
    store.drop_schema().await.unwrap();
}

#[tokio::test]
async fn adjacent_best_available_stays_linear_on_a_fragmented_layout() {
    let clock = ManualClock::default();
    // 20,000 seats. A search that probes the layout once per candidate needs about 10^8 row
    // visits once every other seat is gone: far past this timeout. A linear one needs ms.
    let config = common::fresh_config()
        .clock(Arc::new(clock.clone()))
        .statement_timeout(Duration::from_secs(3));
    let store = connect_for_test(config).await;
    let event = store
        .create_event(layout("big", 100, 200))
        .await
        .unwrap()
        .id;
    let even: Vec<SeatId> = (0..100)
        .flat_map(|row| {
            (2..=200)
                .step_by(2)
                .map(move |n| seat(&format!("R{row}-{n}")))
        })
        .collect();
    store.block(&event, &even, true).await.unwrap();
    let best = |count: u32, adjacent: bool| {
        ReserveRequest::new(event.clone(), HolderId::new("h").unwrap()).best_available(
            BestAvailable {
                count,
                adjacent,
                section: None,
                category: None,
            },
        )
    };
    assert_eq!(
        store.reserve(best(2, true)).await.unwrap_err(),
        Error::SoldOut {
            pool: None,
            remaining: 10_000
        },
        "no two free seats are adjacent"
    );
    // The longest request there is, on an event whose rows are shorter than it.
    let long = store
        .create_event(layout("short-rows", 1_000, 20))
        .await
        .unwrap()
        .id;
    let request =
        ReserveRequest::new(long, HolderId::new("h").unwrap()).best_available(BestAvailable {
            count: 64,
            adjacent: true,
            section: None,
            category: None,
        });
    assert_eq!(
        store.reserve(request).await.unwrap_err(),
        Error::SoldOut {
            pool: None,
            remaining: 20_000
        }
    );
    // A run appears in the middle of the layout: found, in number order.
    let row_57: Vec<SeatId> = (2..=200)
        .step_by(2)
        .map(|n| seat(&format!("R57-{n}")))
        .collect();
    store.block(&event, &row_57, false).await.unwrap();
    let picked = store.reserve(best(4, true)).await.unwrap();
    assert_eq!(
        picked.seats,
        ["R57-1", "R57-2", "R57-3", "R57-4"].map(seat).to_vec()
    );
    let single = store.reserve(best(1, true)).await.unwrap();
    assert_eq!(single.seats, vec![seat("R0-1")]);
    store.drop_schema().await.unwrap();
}

/// Rows of `seats` read by this store's (single) connection so far: by sequential scans,
/// and fetched through indexes.
async fn seat_rows_read(store: &PgStore) -> i64 {
    // Pending statistics reach the shared views when the backend goes idle after this.
    sqlx::query("SELECT pg_stat_force_next_flush()")
        .execute(store.pool())
        .await
        .unwrap();
    sqlx::query_scalar(
        "SELECT COALESCE(seq_tup_read, 0) + COALESCE(idx_tup_fetch, 0) FROM pg_stat_user_tables
         WHERE schemaname = $1 AND relname = 'seats'",
    )
    .bind(store.schema())
    .fetch_one(store.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn seat_operations_find_their_seats_by_key() {
    let clock = ManualClock::default();
    // One connection: every statement below runs on the backend whose statistics are read.
    let config = common::fresh_config()
        .clock(Arc::new(clock.clone()))
        .max_connections(1);
    let store = connect_for_test(config).await;
    let event = store.create_event(layout("e", 20, 100)).await.unwrap().id;
    let before = seat_rows_read(&store).await;
    let request = |who: &str, seats: &[&str]| {
        ReserveRequest::new(event.clone(), HolderId::new(who).unwrap())
            .seats(seats.iter().map(|id| seat(id)))
    };
    let a = store
        .reserve(request("a", &["R3-7", "R3-8"]))
        .await
        .unwrap();
    let token = a.token.clone().unwrap();
    store.extend(&a.id, &token, 600).await.unwrap();
    store.cancel(&a.id, &token).await.unwrap();
    let b = store
        .reserve(request("b", &["R9-1", "R4-4"]))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(301));
    // Expired lazily by the next reserve of its seat, then swept.
    let c = store.reserve(request("c", &["R9-1"])).await.unwrap();
    let d = store.reserve(request("d", &["R12-12"])).await.unwrap();
    clock.advance(Duration::from_secs(301));
    assert_eq!(store.expire_due(10).await.unwrap(), 2);
    let e = store
        .reserve(request("e", &["R4-4", "R5-5"]))
        .await
        .unwrap();
    let order = store
        .commit(
            &e.id,
            CommitRequest::new(e.token.unwrap(), IdempotencyKey::new("k").unwrap()),
        )
        .await
        .unwrap();
    store.refund(&order.id, None).await.unwrap();
    store
        .block(&event, &[seat("R19-100"), seat("R0-1")], true)
        .await
        .unwrap();
    let _ = (b, c, d);
    // Eleven operations on 2,000 seats, touching eight of them: a few rows each, not the
    // layout (one scan of the event would read 2,000).
    let read = seat_rows_read(&store).await - before;
    assert!(read < 200, "per-seat operations read {read} seat rows");
    store.drop_schema().await.unwrap();
}
