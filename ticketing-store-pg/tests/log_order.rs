//! What the change log says, and in which order, where the semantics page leaves a choice
//! the conformance kit cannot see (it replays the log, which is blind to order within a
//! change and to which lapsed hold a bounded sweep takes): the same as the in-memory store.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use ticketing_core::{
    ChangeKind, CommitRequest, EventId, HolderId, IdempotencyKey, InventoryStore, ManualClock,
    MemoryStore, ReservationId, ReserveRequest, SeatId,
};

mod common;

fn seat(id: &str) -> SeatId {
    SeatId::new(id).unwrap()
}

fn event(id: &str) -> EventId {
    EventId::new(id).unwrap()
}

/// The reservations whose expiry `store` has logged for `event`, in log order.
async fn expired(store: &dyn InventoryStore, event: &EventId) -> Vec<ReservationId> {
    let changes = store.changes(event, 0, 100).await.unwrap();
    changes
        .into_iter()
        .filter_map(|change| match change.kind {
            ChangeKind::Expired { reservation, .. } => Some(reservation),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_bounded_sweep_takes_the_earliest_lapses_of_all_events() {
    let clock = ManualClock::default();
    let store = common::fresh_store(&clock).await;
    for id in ["a", "b"] {
        store.create_event(common::spec(id, id)).await.unwrap();
    }
    let hold = |on: &str, seat_id: &str, ttl_seconds: u32| {
        ReserveRequest::new(event(on), HolderId::new("h").unwrap())
            .seats([seat(seat_id)])
            .ttl_seconds(ttl_seconds)
    };
    // Lapses: a's first at 60 s, b's at 100 s, a's second at 200 s.
    let first = store.reserve(hold("a", "A-1", 60)).await.unwrap();
    let middle = store.reserve(hold("b", "A-1", 100)).await.unwrap();
    let last = store.reserve(hold("a", "A-2", 200)).await.unwrap();
    clock.advance(Duration::from_secs(300));
    assert_eq!(store.expire_due(2).await.unwrap(), 2);
    assert_eq!(expired(&store, &event("a")).await, vec![first.id]);
    assert_eq!(expired(&store, &event("b")).await, vec![middle.id]);
    assert_eq!(store.expire_due(10).await.unwrap(), 1);
    assert_eq!(expired(&store, &event("a")).await.last(), Some(&last.id));
    store.drop_schema().await.unwrap();
}

/// Seats and GA units of the `Refunded` change a refund of everything logs on `store`.
async fn refunded_items(store: &dyn InventoryStore) -> (Vec<SeatId>, Vec<(String, u32)>) {
    store.create_event(common::spec("e", "e")).await.unwrap();
    // Seats named out of layout order, and GA units between them in the tickets.
    let reservation = store
        .reserve(
            ReserveRequest::new(event("e"), HolderId::new("h").unwrap())
                .seats([seat("A-3"), seat("A-1")])
                .ga(ticketing_core::PoolId::new("ga").unwrap(), 2),
        )
        .await
        .unwrap();
    let order = store
        .commit(
            &reservation.id,
            CommitRequest::new(
                reservation.token.clone().unwrap(),
                IdempotencyKey::new("k").unwrap(),
            ),
        )
        .await
        .unwrap();
    let refund = store.refund(&order.id, None).await.unwrap();
    let ticket_ids: Vec<_> = order
        .tickets
        .iter()
        .map(|ticket| ticket.id.clone())
        .collect();
    assert_eq!(
        refund.tickets, ticket_ids,
        "refunded in the order's ticket order"
    );
    let changes = store.changes(&event("e"), 0, 100).await.unwrap();
    let Some(ChangeKind::Refunded { seats, ga, .. }) = changes.last().map(|c| c.kind.clone())
    else {
        panic!("the last change is the refund: {changes:?}")
    };
    let ga = ga
        .into_iter()
        .map(|entry| (entry.pool.as_str().to_owned(), entry.quantity))
        .collect();
    (seats, ga)
}

#[tokio::test]
async fn a_refund_logs_its_items_as_the_in_memory_store_does() {
    let clock = ManualClock::default();
    let pg = common::fresh_store(&clock).await;
    let memory = MemoryStore::with_clock(Arc::new(clock.clone()));
    let expected = refunded_items(&memory).await;
    assert_eq!(expected.0, vec![seat("A-1"), seat("A-3")], "layout order");
    assert_eq!(refunded_items(&pg).await, expected);
    pg.drop_schema().await.unwrap();
}

/// Five reservations after the event's creation, a sweep, and what `changes` then answers.
async fn pruned_log(store: &dyn InventoryStore) -> Vec<ticketing_core::Result<Vec<u64>>> {
    store.create_event(common::spec("e", "e")).await.unwrap();
    store
        .create_event(common::spec("quiet", "quiet"))
        .await
        .unwrap();
    for n in 0..5 {
        store
            .reserve(
                ReserveRequest::new(event("e"), HolderId::new(format!("h{n}")).unwrap())
                    .ga(ticketing_core::PoolId::new("ga").unwrap(), 1),
            )
            .await
            .unwrap();
    }
    assert_eq!(store.expire_due(10).await.unwrap(), 0);
    assert_eq!(store.availability(&event("e")).await.unwrap().seq, 6);
    let mut answers = Vec::new();
    for (on, after) in [("e", 0), ("e", 2), ("e", 3), ("e", 6), ("quiet", 0)] {
        let page = store.changes(&event(on), after, 10).await;
        answers.push(page.map(|changes| changes.iter().map(|change| change.seq).collect()));
    }
    answers
}

#[tokio::test]
async fn a_change_retention_prunes_the_log_as_the_in_memory_store_does() {
    let clock = ManualClock::default();
    let memory = MemoryStore::with_config(
        Arc::new(clock.clone()),
        ticketing_core::MemoryStoreConfig::default().change_retention(3),
    );
    let expected = pruned_log(&memory).await;
    let pruned = Err(ticketing_core::Error::ChangesPruned { first_retained: 4 });
    assert_eq!(
        expected,
        vec![
            pruned.clone(),
            pruned,
            Ok(vec![4, 5, 6]),
            Ok(vec![]),
            Ok(vec![1])
        ]
    );
    let config = common::fresh_config()
        .clock(Arc::new(clock.clone()))
        .change_retention(3);
    let pg = ticketing_store_pg::testkit::connect_for_test(config).await;
    assert_eq!(pruned_log(&pg).await, expected);
    // Without a retention nothing is ever pruned.
    let keep_all = common::fresh_store(&clock).await;
    let answers = pruned_log(&keep_all).await;
    assert_eq!(answers[0], Ok(vec![1, 2, 3, 4, 5, 6]));
    pg.drop_schema().await.unwrap();
    keep_all.drop_schema().await.unwrap();
}
