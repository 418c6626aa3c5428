//! The concurrent stress run: many tasks on hot seats and a GA pool at capacity, with
//! expiry racing commit and cancel racing commit; then every invariant and a log replay.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::Mutex as AsyncMutex;

use super::TestStore;
use crate::{
    CommitRequest, Error, EventId, EventSpec, GaRequest, HolderId, IdempotencyKey, InventoryStore,
    LateCommit, OrderId, Policy, PoolId, PoolSpec, Reservation, ReservationStatus, ReserveRequest,
    Seat, SeatId, SeatStatus, TicketItem, TicketStatus,
};

/// Tasks racing at once.
pub const STRESS_TASKS: usize = 16;
/// Operations per task (bounded: the run stops by itself).
pub const STRESS_ROUNDS: usize = 60;
const HOT_SEATS: u32 = 8;
const POOL_CAPACITY: u32 = 12;

/// What the tasks saw succeed.
#[derive(Default)]
struct Ledger {
    reservations: BTreeSet<crate::ReservationId>,
    orders: BTreeSet<OrderId>,
}

fn stress_event(id: &str, late_commit: LateCommit) -> EventSpec {
    let seats = (1..=HOT_SEATS)
        .map(|number| Seat {
            id: SeatId::new(format!("H-{number}")).unwrap(),
            section: "hot".into(),
            row: "1".into(),
            number,
            category: "standard".into(),
            accessible: false,
            position: Default::default(),
        })
        .collect();
    EventSpec {
        id: EventId::new(id).unwrap(),
        name: format!("stress {id}"),
        seats,
        pools: vec![PoolSpec {
            id: PoolId::new("ga").unwrap(),
            name: "GA".into(),
            capacity: POOL_CAPACITY,
        }],
        sale_window: None,
        policy: Policy {
            late_commit,
            reservation_ttl_seconds: 2,
            ..Policy::default()
        },
    }
}

/// Runs the stress: [`STRESS_TASKS`] tasks, two events (strict and late-commit), a clock
/// that moves underneath them, then checks everything that must hold.
pub async fn stress_hot_seats(t: &TestStore) {
    let events = [
        stress_event("stress-strict", LateCommit::Strict),
        stress_event("stress-late", LateCommit::IfStillAvailable),
    ];
    for spec in &events {
        t.store.create_event(spec.clone()).await.unwrap();
    }
    let ledger = Arc::new(AsyncMutex::new(Ledger::default()));
    let mut tasks = Vec::new();
    for task in 0..STRESS_TASKS {
        let (store, ledger) = (t.store.clone(), ledger.clone());
        let event = events[task % events.len()].id.clone();
        tasks.push(tokio::spawn(async move {
            buyer(store, ledger, event, task as u64).await;
        }));
    }
    // The clock moves while buyers work: holds lapse under their commits.
    let (store, clock) = (t.store.clone(), t.clock.clone());
    let ticker = tokio::spawn(async move {
        for _ in 0..STRESS_ROUNDS {
            clock.advance(Duration::from_millis(700));
            store.expire_due(5).await.unwrap();
            tokio::task::yield_now().await;
        }
    });
    for task in tasks {
        task.await.unwrap();
    }
    ticker.await.unwrap();
    let ledger = ledger.lock().await;
    for spec in &events {
        audit(t.store.as_ref(), &spec.id, &ledger).await;
    }
    // Everything still live lapses and is swept; the invariants hold afterwards too.
    t.clock.advance(Duration::from_secs(3_600));
    while t.store.expire_due(64).await.unwrap() > 0 {}
    for spec in &events {
        audit(t.store.as_ref(), &spec.id, &ledger).await;
        let availability = t.store.availability(&spec.id).await.unwrap();
        assert!(
            availability
                .seats
                .iter()
                .all(|status| *status != SeatStatus::Held)
        );
        assert!(availability.pools.iter().all(|pool| pool.held == 0));
    }
}

async fn buyer(
    store: Arc<dyn InventoryStore>,
    ledger: Arc<AsyncMutex<Ledger>>,
    event: EventId,
    seed: u64,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let holder = HolderId::new(format!("buyer-{seed}")).unwrap();
    for round in 0..STRESS_ROUNDS {
        let mut request = ReserveRequest::new(event.clone(), holder.clone());
        let first = rng.random_range(1..=HOT_SEATS);
        for number in first..=(first + rng.random_range(0..2)).min(HOT_SEATS) {
            request
                .seats
                .push(SeatId::new(format!("H-{number}")).unwrap());
        }
        if rng.random_bool(0.5) {
            request.ga.push(GaRequest {
                pool: PoolId::new("ga").unwrap(),
                quantity: rng.random_range(1..=3),
            });
        }
        let reservation = match store.reserve(request).await {
            Ok(reservation) => reservation,
            Err(Error::SeatUnavailable { .. } | Error::SoldOut { .. }) => continue,
            Err(other) => panic!("reserve failed unexpectedly: {other:?}"),
        };
        ledger
            .lock()
            .await
            .reservations
            .insert(reservation.id.clone());
        let key = IdempotencyKey::new(format!("k-{seed}-{round}")).unwrap();
        match rng.random_range(0..5) {
            0 => {} // abandoned: expiry takes it
            1 => cancel(&*store, &reservation).await,
            2 => race_cancel_commit(&*store, &ledger, &reservation, key).await,
            _ => {
                tokio::task::yield_now().await;
                if let Some(order) = commit(&*store, &reservation, key).await {
                    ledger.lock().await.orders.insert(order.clone());
                    if rng.random_bool(0.25) {
                        store.refund(&order, None).await.unwrap();
                    }
                }
            }
        }
    }
}

fn token(reservation: &Reservation) -> crate::ReservationToken {
    reservation.token.clone().unwrap()
}

async fn cancel(store: &dyn InventoryStore, reservation: &Reservation) {
    match store.cancel(&reservation.id, &token(reservation)).await {
        Ok(()) | Err(Error::ReservationExpired { .. }) => {}
        Err(other) => panic!("cancel failed unexpectedly: {other:?}"),
    }
}

async fn commit(
    store: &dyn InventoryStore,
    reservation: &Reservation,
    key: IdempotencyKey,
) -> Option<OrderId> {
    match store
        .commit(&reservation.id, CommitRequest::new(token(reservation), key))
        .await
    {
        Ok(order) => {
            assert_eq!(order.tickets.len() as u32, reservation.item_count());
            Some(order.id)
        }
        Err(Error::ReservationExpired { .. }) => None,
        Err(other) => panic!("commit failed unexpectedly: {other:?}"),
    }
}

/// Cancel and commit the same reservation at once: exactly one may win.
async fn race_cancel_commit(
    store: &dyn InventoryStore,
    ledger: &AsyncMutex<Ledger>,
    reservation: &Reservation,
    key: IdempotencyKey,
) {
    let request = CommitRequest::new(token(reservation), key);
    let cancel_token = token(reservation);
    let (cancelled, committed) = tokio::join!(
        store.cancel(&reservation.id, &cancel_token),
        store.commit(&reservation.id, request)
    );
    match (&cancelled, &committed) {
        (Ok(()), Ok(_)) => panic!("both cancel and commit succeeded for {}", reservation.id),
        (_, Ok(order)) => {
            // Cancel came second, or the hold lapsed first and a late commit still won.
            assert!(
                matches!(
                    cancelled,
                    Err(Error::ReservationNotActive {
                        status: ReservationStatus::Committed
                    } | Error::ReservationExpired { .. })
                ),
                "cancel lost to commit with {cancelled:?}"
            );
            ledger.lock().await.orders.insert(order.id.clone());
        }
        (Ok(()), Err(error)) => assert!(
            matches!(
                error,
                Error::ReservationNotActive {
                    status: ReservationStatus::Cancelled
                }
            ),
            "commit after cancel: {error:?}"
        ),
        (Err(a), Err(b)) => assert!(
            matches!(a, Error::ReservationExpired { .. })
                && matches!(b, Error::ReservationExpired { .. }),
            "cancel {a:?}, commit {b:?}"
        ),
    }
}

/// Checks one event against what the tasks saw: no seat in two live claims, no seat on two
/// valid tickets, counts add up, every order's tickets exist, and the log replays to the
/// snapshot.
async fn audit(store: &dyn InventoryStore, event: &EventId, ledger: &Ledger) {
    let layout = store.event(event).await.unwrap();
    let availability = store.availability(event).await.unwrap();
    let seat_position: BTreeMap<&SeatId, usize> = layout
        .seats
        .iter()
        .enumerate()
        .map(|(index, seat)| (&seat.id, index))
        .collect();
    let mut held: BTreeMap<SeatId, crate::ReservationId> = BTreeMap::new();
    let mut held_units = 0;
    for id in &ledger.reservations {
        let reservation = store.reservation(id).await.unwrap();
        if reservation.event != *event || reservation.status != ReservationStatus::Active {
            continue;
        }
        for seat in &reservation.seats {
            if let Some(other) = held.insert(seat.clone(), id.clone()) {
                panic!("seat {seat} held by both {other} and {id}");
            }
            assert_eq!(
                availability.seats[seat_position[seat]],
                SeatStatus::Held,
                "live hold on {seat}"
            );
        }
        held_units += reservation.ga.iter().map(|ga| ga.quantity).sum::<u32>();
    }
    let mut sold: BTreeSet<SeatId> = BTreeSet::new();
    let mut sold_units = 0;
    for id in &ledger.orders {
        let order = store.order(id).await.unwrap();
        if order.event != *event {
            continue;
        }
        for ticket in &order.tickets {
            assert_eq!(
                store.ticket(&ticket.id).await.unwrap(),
                *ticket,
                "ticket {} exists as listed",
                ticket.id
            );
            if ticket.status == TicketStatus::Refunded {
                continue;
            }
            match &ticket.item {
                TicketItem::Seat(seat) => {
                    assert!(
                        sold.insert(seat.clone()),
                        "seat {seat} on two valid tickets"
                    );
                    assert_eq!(availability.seats[seat_position[seat]], SeatStatus::Sold);
                }
                TicketItem::Pool(_) => sold_units += 1,
            }
        }
    }
    let counted = |wanted: SeatStatus| {
        availability
            .seats
            .iter()
            .filter(|status| **status == wanted)
            .count()
    };
    assert_eq!(
        counted(SeatStatus::Held),
        held.len(),
        "held seats = seats of live reservations"
    );
    assert_eq!(
        counted(SeatStatus::Sold),
        sold.len(),
        "sold seats = seats on valid tickets"
    );
    let pool = &availability.pools[0];
    assert_eq!(
        pool.held, held_units,
        "pool held = units of live reservations"
    );
    assert_eq!(pool.sold, sold_units, "pool sold = valid GA tickets");
    assert_eq!(
        pool.held + pool.sold + pool.blocked + pool.available,
        pool.capacity
    );
    if let Err(why) = super::invariants::check_store(store, event).await {
        panic!("invariants of {event}: {why}");
    }
}
