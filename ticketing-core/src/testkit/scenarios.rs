//! Scripted scenarios: every error code a request can earn and every transition, each on a
//! fresh store, with exact expectations. A refused request must change nothing.
//!
//! | code | scenario |
//! |---|---|
//! | `invalid_request` | [`reserve_errors_in_precedence_order`], [`commit_extend_cancel_error_paths`], [`tickets_error_paths`], [`admin_error_paths`] |
//! | `not_found` | the same |
//! | `idempotency_mismatch` | [`commit_is_idempotent_and_final`], [`reserve_replays_first_outcome`] |
//! | `invalid_token` | [`commit_extend_cancel_error_paths`] |
//! | `not_on_sale` | [`sale_window_is_enforced_on_both_sides`] |
//! | `reservation_expired` | [`commit_extend_cancel_error_paths`], [`late_commit_policy`] |
//! | `reservation_not_active` | [`commit_is_idempotent_and_final`] |
//! | `limit_exceeded` | [`reserve_errors_in_precedence_order`], [`tickets_error_paths`], [`reservation_limit`] |
//! | `seat_unavailable` | [`reserve_errors_in_precedence_order`], [`admin_error_paths`] |
//! | `sold_out` | [`reserve_errors_in_precedence_order`], [`sold_out_reports_what_remains`] |
//! | `conflict` | [`tickets_error_paths`], [`admin_error_paths`] |
//!
//! `changes_pruned` depends on a backend's retention setting and `backend` on a failing
//! server: each backend tests those itself. Invalid-request errors are compared by field
//! (the reason is prose and may differ between backends).

use std::time::Duration;

use super::TestStore;
use super::invariants::check_store;
use crate::{
    Availability, BestAvailable, ChangeKind, ClientReservationId, Clock, CommitRequest,
    ConflictReason, Entity, Error, EventId, EventSpec, GaRequest, HolderId, HolderLimit,
    IdempotencyKey, LateCommit, Page, PaymentId, Policy, PoolId, PoolSpec, Position, RefundTo,
    Reservation, ReservationId, ReservationStatus, ReservationToken, ReserveRequest, Result,
    SaleWindow, Seat, SeatId, SeatStatus, TicketId, TicketStatus, validate,
};

fn seat(id: &str) -> SeatId {
    SeatId::new(id).unwrap()
}

fn holder(id: &str) -> HolderId {
    HolderId::new(id).unwrap()
}

fn key(id: &str) -> IdempotencyKey {
    IdempotencyKey::new(id).unwrap()
}

/// Errors as the conformance kit compares them: invalid requests by field only.
fn comparable(error: &Error) -> String {
    match error {
        Error::InvalidRequest { field, .. } => format!("invalid_request {field}"),
        other => format!("{other:?}"),
    }
}

/// One event on a fresh store: rows A and B of four seats (A premium, B standard) in
/// section S, and a GA pool `ga` of 5.
struct Fixture {
    t: TestStore,
    event: EventId,
    pool: PoolId,
}

async fn fixture(t: TestStore, policy: Policy, sale_window: Option<SaleWindow>) -> Fixture {
    let event = EventId::new("e").unwrap();
    let pool = PoolId::new("ga").unwrap();
    let mut seats = Vec::new();
    for row in ["A", "B"] {
        for number in 1..=4 {
            seats.push(Seat {
                id: seat(&format!("{row}-{number}")),
                section: "S".into(),
                row: row.into(),
                number,
                category: if row == "A" { "premium" } else { "standard" }.into(),
                accessible: false,
                position: Position::default(),
            });
        }
    }
    let spec = EventSpec {
        id: event.clone(),
        name: "fixture".into(),
        seats,
        pools: vec![PoolSpec {
            id: pool.clone(),
            name: "GA".into(),
            capacity: 5,
        }],
        sale_window,
        policy,
    };
    t.store.create_event(spec).await.unwrap();
    Fixture { t, event, pool }
}

impl Fixture {
    fn request(&self, who: &str) -> ReserveRequest {
        ReserveRequest::new(self.event.clone(), holder(who))
    }

    async fn reserve(&self, request: ReserveRequest) -> Result<Reservation> {
        self.t.store.reserve(request).await
    }

    async fn availability(&self) -> Availability {
        self.t.store.availability(&self.event).await.unwrap()
    }

    async fn commit_all(&self, reservation: &Reservation, idempotency_key: &str) -> crate::Order {
        let request = CommitRequest::new(reservation.token.clone().unwrap(), key(idempotency_key));
        self.t.store.commit(&reservation.id, request).await.unwrap()
    }

    fn advance(&self, seconds: u64) {
        self.t.clock.advance(Duration::from_secs(seconds));
    }

    /// Awaits `attempt`, expects `expected`, and checks that nothing changed.
    async fn refuses<T: std::fmt::Debug>(
        &self,
        attempt: impl std::future::Future<Output = Result<T>>,
        expected: Error,
    ) {
        let before = self.availability().await;
        let outcome = attempt.await;
        let error = match outcome {
            Ok(value) => panic!("expected {expected:?}, got Ok({value:?})"),
            Err(error) => error,
        };
        assert_eq!(comparable(&error), comparable(&expected), "{error}");
        let after = self.availability().await;
        assert_eq!(
            (before.seats, before.pools, before.seq),
            (after.seats, after.pools, after.seq),
            "a refused request changes nothing (refused with {error:?})"
        );
    }

    /// The log replays to the snapshot (see [`check_store`]).
    async fn check(&self) {
        if let Err(why) = check_store(self.t.store.as_ref(), &self.event).await {
            panic!("invariants: {why}");
        }
    }

    async fn change_kinds(&self) -> Vec<ChangeKind> {
        let changes = self.t.store.changes(&self.event, 0, 1_000).await.unwrap();
        changes.into_iter().map(|change| change.kind).collect()
    }
}

/// Reserve's errors, one broken thing per row, in the documented precedence.
pub async fn reserve_errors_in_precedence_order(t: TestStore) {
    let f = fixture(
        t,
        Policy {
            holder_seats_max: Some(3),
            holder_reservations_max: Some(2),
            ..Policy::default()
        },
        None,
    )
    .await;
    f.reserve(f.request("taken").seats([seat("B-2")]))
        .await
        .unwrap();
    let unknown_event =
        ReserveRequest::new(EventId::new("nope").unwrap(), holder("a")).seats([seat("A-1")]);
    let rows: Vec<(ReserveRequest, Error)> = vec![
        (f.request("a"), Error::invalid("seat_ids", "")),
        (
            f.request("a").seats([seat("A-1"), seat("A-1")]),
            Error::invalid("seat_ids", ""),
        ),
        (
            f.request("a").ga(f.pool.clone(), 0),
            Error::invalid("ga", ""),
        ),
        (
            f.request("a").seats([seat("A-1")]).ttl_seconds(0),
            Error::invalid("ttl_seconds", ""),
        ),
        (unknown_event, Error::not_found(Entity::Event, "nope")),
        (
            f.request("a").seats([seat("Z-9")]),
            Error::not_found(Entity::Seat, "Z-9"),
        ),
        (
            f.request("a").ga(PoolId::new("vip").unwrap(), 1),
            Error::not_found(Entity::Pool, "vip"),
        ),
        (
            f.request("a")
                .seats([seat("A-1"), seat("A-2"), seat("A-3"), seat("A-4")]),
            Error::LimitExceeded {
                limit: HolderLimit::Seats,
                max: 3,
            },
        ),
        (
            f.request("a").seats([seat("A-1"), seat("B-2")]),
            Error::SeatUnavailable {
                seats: vec![seat("B-2")],
            },
        ),
        (
            f.request("a").ga(f.pool.clone(), 6),
            Error::LimitExceeded {
                limit: HolderLimit::Seats,
                max: 3,
            },
        ),
        (
            f.request("b")
                .ga(f.pool.clone(), 3)
                .best_available(BestAvailable {
                    count: 1,
                    section: Some("X".into()),
                    ..Default::default()
                }),
            Error::LimitExceeded {
                limit: HolderLimit::Seats,
                max: 3,
            },
        ),
        (
            f.request("c").best_available(BestAvailable {
                count: 3,
                adjacent: true,
                category: Some("standard".into()),
                ..Default::default()
            }),
            // B-1, B-3, B-4 are free but B-2 (taken) breaks every run of three.
            Error::SoldOut {
                pool: None,
                remaining: 3,
            },
        ),
    ];
    for (request, expected) in rows {
        f.refuses(f.reserve(request), expected).await;
    }
    f.check().await;
}

/// `sold_out` carries what remains; a TTL above the event's maximum is refused.
pub async fn sold_out_reports_what_remains(t: TestStore) {
    let f = fixture(
        t,
        Policy {
            reservation_ttl_seconds_max: 600,
            ..Policy::default()
        },
        None,
    )
    .await;
    f.reserve(f.request("a").ga(f.pool.clone(), 4))
        .await
        .unwrap();
    f.refuses(
        f.reserve(f.request("b").ga(f.pool.clone(), 2)),
        Error::SoldOut {
            pool: Some(f.pool.clone()),
            remaining: 1,
        },
    )
    .await;
    f.refuses(
        f.reserve(f.request("b").ga(f.pool.clone(), 1).ttl_seconds(601)),
        Error::invalid("ttl_seconds", ""),
    )
    .await;
    let last = f
        .reserve(f.request("b").ga(f.pool.clone(), 1))
        .await
        .unwrap();
    assert_eq!(last.ga[0].quantity, 1);
    assert_eq!(f.availability().await.pools[0].available, 0);
    f.check().await;
}

/// Before the window opens and from its close on, reserve is `not_on_sale`.
pub async fn sale_window_is_enforced_on_both_sides(t: TestStore) {
    let now = t.clock.now();
    let opens = now.saturating_add(Duration::from_secs(60));
    let closes = opens.saturating_add(Duration::from_secs(60));
    let f = fixture(
        t,
        Policy::default(),
        Some(SaleWindow {
            opens_at: Some(opens),
            closes_at: Some(closes),
        }),
    )
    .await;
    f.refuses(
        f.reserve(f.request("a").seats([seat("A-1")])),
        Error::NotOnSale {
            opens_at: Some(opens),
            closed_at: None,
        },
    )
    .await;
    f.advance(60);
    f.reserve(f.request("a").seats([seat("A-1")]))
        .await
        .unwrap();
    f.advance(60);
    f.refuses(
        f.reserve(f.request("a").seats([seat("A-2")])),
        Error::NotOnSale {
            opens_at: None,
            closed_at: Some(closes),
        },
    )
    .await;
    f.check().await;
}

/// Commit, extend and cancel: unknown reservation, wrong token, foreign items, expiry.
pub async fn commit_extend_cancel_error_paths(t: TestStore) {
    let f = fixture(t, Policy::default(), None).await;
    let held = f
        .reserve(
            f.request("a")
                .seats([seat("A-1"), seat("A-2")])
                .ga(f.pool.clone(), 2)
                .ttl_seconds(60),
        )
        .await
        .unwrap();
    let token = held.token.clone().unwrap();
    let wrong = ReservationToken::generate();
    let missing = ReservationId::new("rsv_missing").unwrap();
    let store = &f.t.store;
    f.refuses(
        store.commit(&missing, CommitRequest::new(token.clone(), key("k"))),
        Error::not_found(Entity::Reservation, "rsv_missing"),
    )
    .await;
    f.refuses(
        store.commit(&held.id, CommitRequest::new(wrong.clone(), key("k"))),
        Error::InvalidToken,
    )
    .await;
    let mut foreign = CommitRequest::new(token.clone(), key("k1"));
    foreign.seats = Some(vec![seat("B-1")]);
    f.refuses(
        store.commit(&held.id, foreign),
        Error::invalid("seat_ids", ""),
    )
    .await;
    let mut too_many = CommitRequest::new(token.clone(), key("k2"));
    too_many.ga = Some(vec![GaRequest {
        pool: f.pool.clone(),
        quantity: 3,
    }]);
    f.refuses(store.commit(&held.id, too_many), Error::invalid("ga", ""))
        .await;
    let mut nothing = CommitRequest::new(token.clone(), key("k3"));
    (nothing.seats, nothing.ga) = (Some(vec![]), Some(vec![]));
    f.refuses(
        store.commit(&held.id, nothing),
        Error::invalid("seat_ids", ""),
    )
    .await;
    f.refuses(
        store.extend(&held.id, &token, 0),
        Error::invalid("ttl_seconds", ""),
    )
    .await;
    f.refuses(store.extend(&held.id, &wrong, 60), Error::InvalidToken)
        .await;
    f.refuses(store.cancel(&held.id, &wrong), Error::InvalidToken)
        .await;
    f.refuses(
        store.cancel(&missing, &token),
        Error::not_found(Entity::Reservation, "rsv_missing"),
    )
    .await;
    // Extending past the longest total hold (30 min from creation).
    f.advance(1);
    f.refuses(
        store.extend(&held.id, &token, validate::RESERVATION_TTL_SECONDS_MAX),
        Error::invalid("ttl_seconds", ""),
    )
    .await;
    f.advance(60);
    let expired = Error::ReservationExpired {
        expired_at: held.expires_at,
    };
    f.refuses(store.extend(&held.id, &token, 200), expired.clone())
        .await;
    f.refuses(store.cancel(&held.id, &token), expired.clone())
        .await;
    f.refuses(
        store.commit(&held.id, CommitRequest::new(token.clone(), key("k4"))),
        expired.clone(),
    )
    .await;
    // The first outcome of key k4 stands.
    f.refuses(
        store.commit(&held.id, CommitRequest::new(token.clone(), key("k4"))),
        expired,
    )
    .await;
    assert_eq!(
        store.reservation(&held.id).await.unwrap().status,
        ReservationStatus::Expired
    );
    f.check().await;
}

/// A partial commit sells the chosen items and frees the rest; a retry returns the same
/// order; a different payload under the key is a mismatch; a committed reservation is final.
pub async fn commit_is_idempotent_and_final(t: TestStore) {
    let f = fixture(t, Policy::default(), None).await;
    let held = f
        .reserve(f.request("a").seats([seat("A-1"), seat("A-2")]))
        .await
        .unwrap();
    let token = held.token.clone().unwrap();
    let store = &f.t.store;
    let mut subset = CommitRequest::new(token.clone(), key("pay"));
    subset.seats = Some(vec![seat("A-2")]);
    let order = store.commit(&held.id, subset.clone()).await.unwrap();
    assert_eq!(order.tickets.len(), 1);
    assert_eq!(store.commit(&held.id, subset.clone()).await.unwrap(), order);
    let mut other = subset.clone();
    other.payment_id = Some(PaymentId::new("p2").unwrap());
    f.refuses(
        store.commit(&held.id, other),
        Error::IdempotencyMismatch {
            field: "payment_id",
        },
    )
    .await;
    let not_active = Error::ReservationNotActive {
        status: ReservationStatus::Committed,
    };
    f.refuses(
        store.commit(&held.id, CommitRequest::new(token.clone(), key("again"))),
        not_active.clone(),
    )
    .await;
    f.refuses(store.cancel(&held.id, &token), not_active).await;
    let reservation = store.reservation(&held.id).await.unwrap();
    assert_eq!(reservation.status, ReservationStatus::Committed);
    assert_eq!(reservation.order.as_ref(), Some(&order.id));
    assert!(
        reservation.token.is_none(),
        "the token is returned only once"
    );
    let seats = f.availability().await.seats;
    assert_eq!(
        (seats[0], seats[1]),
        (SeatStatus::Available, SeatStatus::Sold),
        "the dropped seat was released"
    );
    assert!(matches!(
        f.change_kinds().await.last(),
        Some(ChangeKind::Committed { seats, released_seats, .. })
            if seats == &[seat("A-2")] && released_seats == &[seat("A-1")]
    ));
    f.check().await;
}

/// A client reservation id replays the first outcome, failure included, until the
/// retention has passed.
pub async fn reserve_replays_first_outcome(t: TestStore) {
    let f = fixture(t, Policy::default(), None).await;
    let blocker = f
        .reserve(f.request("x").seats([seat("A-1")]))
        .await
        .unwrap();
    let client = ClientReservationId::new("c-1").unwrap();
    let request = f
        .request("a")
        .seats([seat("A-1")])
        .client_reservation_id(client.clone());
    let first = f.reserve(request.clone()).await.unwrap_err();
    assert_eq!(
        first,
        Error::SeatUnavailable {
            seats: vec![seat("A-1")]
        }
    );
    f.t.store
        .cancel(&blocker.id, &blocker.token.unwrap())
        .await
        .unwrap();
    assert_eq!(
        f.reserve(request.clone()).await.unwrap_err(),
        first,
        "a retry never flips the outcome"
    );
    let mismatch = f
        .request("a")
        .seats([seat("A-2")])
        .client_reservation_id(client.clone());
    f.refuses(
        f.reserve(mismatch),
        Error::IdempotencyMismatch { field: "seat_ids" },
    )
    .await;
    // A success replays as the reservation now, without its token.
    let other = f
        .request("b")
        .seats([seat("A-3")])
        .client_reservation_id(ClientReservationId::new("c-2").unwrap());
    let made = f.reserve(other.clone()).await.unwrap();
    let again = f.reserve(other).await.unwrap();
    assert_eq!(
        (again.id.clone(), again.token.clone()),
        (made.id.clone(), None)
    );
    f.advance(24 * 3_600);
    f.t.store.expire_due(100).await.unwrap();
    let fresh = f.reserve(request).await.unwrap();
    assert!(
        fresh.token.is_some(),
        "past the retention the id is forgotten"
    );
    f.check().await;
}

/// Refund, transfer and check-in: every refusal, then the happy paths.
pub async fn tickets_error_paths(t: TestStore) {
    let f = fixture(
        t,
        Policy {
            holder_seats_max: Some(2),
            refund_to: RefundTo::Blocked,
            ..Policy::default()
        },
        None,
    )
    .await;
    let store = &f.t.store;
    let held = f
        .reserve(f.request("a").seats([seat("A-1")]).ga(f.pool.clone(), 1))
        .await
        .unwrap();
    let order = f.commit_all(&held, "k").await;
    let (seat_ticket, unit_ticket) = (&order.tickets[0], &order.tickets[1]);
    f.reserve(f.request("full").seats([seat("B-1"), seat("B-2")]))
        .await
        .unwrap();
    f.refuses(
        store.transfer(&TicketId::new("tkt_x").unwrap(), &holder("b")),
        Error::not_found(Entity::Ticket, "tkt_x"),
    )
    .await;
    f.refuses(
        store.transfer(&seat_ticket.id, &holder("a")),
        Error::invalid("to", ""),
    )
    .await;
    f.refuses(
        store.transfer(&seat_ticket.id, &holder("full")),
        Error::LimitExceeded {
            limit: HolderLimit::Seats,
            max: 2,
        },
    )
    .await;
    let moved = store.transfer(&seat_ticket.id, &holder("b")).await.unwrap();
    assert_ne!(moved.code, seat_ticket.code, "a transfer issues a new code");
    assert_eq!(moved.holder, holder("b"));
    f.refuses(
        store.check_in(&seat_ticket.code),
        Error::not_found(Entity::Ticket, &seat_ticket.code),
    )
    .await;
    let admitted = store.check_in(&moved.code).await.unwrap();
    assert_eq!(admitted.status, TicketStatus::CheckedIn);
    let checked_in = Error::Conflict {
        reason: ConflictReason::TicketCheckedIn,
    };
    f.refuses(store.check_in(&moved.code), checked_in.clone())
        .await;
    f.refuses(
        store.refund(&order.id, Some(std::slice::from_ref(&seat_ticket.id))),
        checked_in.clone(),
    )
    .await;
    f.refuses(
        store.transfer(&seat_ticket.id, &holder("c")),
        checked_in.clone(),
    )
    .await;
    f.refuses(
        store.refund(&order.id, Some(&[])),
        Error::invalid("ticket_ids", ""),
    )
    .await;
    let stranger = TicketId::new("tkt_x").unwrap();
    f.refuses(
        store.refund(&order.id, Some(std::slice::from_ref(&stranger))),
        Error::not_found(Entity::Ticket, "tkt_x"),
    )
    .await;
    f.refuses(
        store.refund(&crate::OrderId::new("ord_x").unwrap(), None),
        Error::not_found(Entity::Order, "ord_x"),
    )
    .await;
    let refund = store.refund(&order.id, None).await.unwrap();
    assert_eq!(refund.tickets, vec![unit_ticket.id.clone()]);
    assert_eq!(refund.to, RefundTo::Blocked);
    assert_eq!(
        f.availability().await.pools[0].blocked,
        1,
        "refund_to blocked"
    );
    let refunded = Error::Conflict {
        reason: ConflictReason::TicketRefunded,
    };
    f.refuses(
        store.refund(&order.id, Some(std::slice::from_ref(&unit_ticket.id))),
        refunded.clone(),
    )
    .await;
    f.refuses(store.check_in(&unit_ticket.code), refunded.clone())
        .await;
    // Nothing valid is left: the order's first ticket (checked in) gives the reason.
    f.refuses(store.refund(&order.id, None), checked_in).await;
    f.refuses(store.transfer(&unit_ticket.id, &holder("c")), refunded)
        .await;
    let now = store.order(&order.id).await.unwrap();
    assert_eq!(
        now.tickets.iter().map(|t| t.status).collect::<Vec<_>>(),
        vec![TicketStatus::CheckedIn, TicketStatus::Refunded]
    );
    f.check().await;
}

/// Event creation, block/unblock, pool resize and blocked counts, change log reads.
pub async fn admin_error_paths(t: TestStore) {
    let f = fixture(t, Policy::default(), None).await;
    let store = &f.t.store;
    let spec = |id: &str| EventSpec {
        id: EventId::new(id).unwrap(),
        name: "x".into(),
        seats: vec![],
        pools: vec![PoolSpec {
            id: PoolId::new("p").unwrap(),
            name: String::new(),
            capacity: 1,
        }],
        sale_window: None,
        policy: Policy::default(),
    };
    assert_eq!(
        store.create_event(spec("e")).await.unwrap_err(),
        Error::Conflict {
            reason: ConflictReason::EventExists
        }
    );
    let mut no_items = spec("y");
    no_items.pools.clear();
    assert_eq!(
        store.create_event(no_items).await.unwrap_err().code(),
        "invalid_request"
    );
    f.refuses(
        store.event(&EventId::new("y").unwrap()),
        Error::not_found(Entity::Event, "y"),
    )
    .await;
    let held = f
        .reserve(f.request("a").seats([seat("A-1")]).ga(f.pool.clone(), 3))
        .await
        .unwrap();
    f.refuses(
        store.block(&f.event, &[seat("A-2"), seat("A-1")], true),
        Error::SeatUnavailable {
            seats: vec![seat("A-1")],
        },
    )
    .await;
    f.refuses(
        store.block(&f.event, &[seat("Q-1")], true),
        Error::not_found(Entity::Seat, "Q-1"),
    )
    .await;
    f.refuses(
        store.block(&EventId::new("y").unwrap(), &[seat("A-1")], true),
        Error::not_found(Entity::Event, "y"),
    )
    .await;
    f.refuses(
        store.block(&f.event, &[], true),
        Error::invalid("seat_ids", ""),
    )
    .await;
    let below = Error::Conflict {
        reason: ConflictReason::CapacityBelowUsage { used: 3 },
    };
    f.refuses(store.resize_pool(&f.event, &f.pool, 2), below.clone())
        .await;
    f.refuses(store.set_pool_blocked(&f.event, &f.pool, 3), below)
        .await;
    f.refuses(
        store.resize_pool(&f.event, &PoolId::new("vip").unwrap(), 2),
        Error::not_found(Entity::Pool, "vip"),
    )
    .await;
    f.refuses(
        store.resize_pool(&f.event, &f.pool, validate::POOL_CAPACITY_MAX + 1),
        Error::invalid("capacity", ""),
    )
    .await;
    store.block(&f.event, &[seat("A-2")], true).await.unwrap();
    assert_eq!(f.availability().await.seats[1], SeatStatus::Blocked);
    store
        .block(&f.event, &[seat("A-1"), seat("A-2")], false)
        .await
        .unwrap();
    let seats = f.availability().await.seats;
    assert_eq!(
        (seats[0], seats[1]),
        (SeatStatus::Held, SeatStatus::Available),
        "unblock leaves held seats alone"
    );
    store.resize_pool(&f.event, &f.pool, 7).await.unwrap();
    store.set_pool_blocked(&f.event, &f.pool, 2).await.unwrap();
    let pool = &f.availability().await.pools[0];
    assert_eq!(
        (pool.capacity, pool.held, pool.blocked, pool.available),
        (7, 3, 2, 2)
    );
    f.advance(301);
    assert_eq!(
        f.reserve(f.request("b").ga(f.pool.clone(), 5))
            .await
            .unwrap()
            .ga[0]
            .quantity,
        5,
        "a lapsed hold is free at once"
    );
    assert_eq!(
        store.reservation(&held.id).await.unwrap().status,
        ReservationStatus::Expired
    );
    f.refuses(store.changes(&f.event, 0, 0), Error::invalid("limit", ""))
        .await;
    f.refuses(
        store.changes(&EventId::new("y").unwrap(), 0, 10),
        Error::not_found(Entity::Event, "y"),
    )
    .await;
    let log = store.changes(&f.event, 0, 100).await.unwrap();
    assert!(
        log.iter()
            .enumerate()
            .all(|(index, change)| change.seq == index as u64 + 1),
        "gap-free from 1"
    );
    assert_eq!(log[0].kind, ChangeKind::EventCreated);
    let tail = store.changes(&f.event, 2, 2).await.unwrap();
    assert_eq!(
        tail.iter().map(|change| change.seq).collect::<Vec<_>>(),
        vec![3, 4]
    );
    f.check().await;
}

/// Every transition of a reservation and a ticket, each logged once.
pub async fn lifecycle_transitions(t: TestStore) {
    let f = fixture(t, Policy::default(), None).await;
    let store = &f.t.store;
    // active → committed
    let bought = f
        .reserve(f.request("a").seats([seat("A-1")]).ga(f.pool.clone(), 2))
        .await
        .unwrap();
    assert_eq!(bought.status, ReservationStatus::Active);
    assert_eq!(
        bought.expires_at,
        bought.created_at.saturating_add(Duration::from_secs(300))
    );
    let order = f.commit_all(&bought, "k1").await;
    assert_eq!(order.tickets.len(), 3);
    assert_eq!(store.order(&order.id).await.unwrap(), order);
    // active → extended → cancelled; cancelling again changes nothing
    let dropped = f
        .reserve(f.request("b").seats([seat("A-2")]).ttl_seconds(60))
        .await
        .unwrap();
    let token = dropped.token.clone().unwrap();
    f.advance(30);
    let extended = store.extend(&dropped.id, &token, 120).await.unwrap();
    assert_eq!(
        extended.expires_at,
        f.t.clock.now().saturating_add(Duration::from_secs(120))
    );
    store.cancel(&dropped.id, &token).await.unwrap();
    let seq = f.availability().await.seq;
    store.cancel(&dropped.id, &token).await.unwrap();
    assert_eq!(
        f.availability().await.seq,
        seq,
        "a second cancel logs nothing"
    );
    // active → expired, finalized by the sweeper
    let lapsed = f
        .reserve(f.request("c").seats([seat("A-3")]).ttl_seconds(10))
        .await
        .unwrap();
    f.advance(11);
    assert_eq!(store.expire_due(100).await.unwrap(), 1);
    assert_eq!(store.expire_due(100).await.unwrap(), 0);
    assert_eq!(
        store.reservation(&lapsed.id).await.unwrap().status,
        ReservationStatus::Expired
    );
    // ticket: valid → transferred → checked in; another refunded to sale
    let moved = store
        .transfer(&order.tickets[0].id, &holder("d"))
        .await
        .unwrap();
    store.check_in(&moved.code).await.unwrap();
    let refund = store
        .refund(&order.id, Some(std::slice::from_ref(&order.tickets[1].id)))
        .await
        .unwrap();
    assert_eq!(refund.to, RefundTo::Sale);
    let availability = f.availability().await;
    assert_eq!(
        availability.seats[..3],
        [
            SeatStatus::Sold,
            SeatStatus::Available,
            SeatStatus::Available
        ]
    );
    assert_eq!(
        (availability.pools[0].sold, availability.pools[0].available),
        (1, 4)
    );
    let kinds: Vec<&'static str> = f
        .change_kinds()
        .await
        .iter()
        .map(|kind| match kind {
            ChangeKind::EventCreated => "created",
            ChangeKind::Reserved { .. } => "reserved",
            ChangeKind::Extended { .. } => "extended",
            ChangeKind::Committed { .. } => "committed",
            ChangeKind::Cancelled { .. } => "cancelled",
            ChangeKind::Expired { .. } => "expired",
            ChangeKind::Refunded { .. } => "refunded",
            ChangeKind::Transferred { .. } => "transferred",
            ChangeKind::CheckedIn { .. } => "checked_in",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "created",
            "reserved",
            "committed",
            "reserved",
            "extended",
            "cancelled",
            "reserved",
            "expired",
            "transferred",
            "checked_in",
            "refunded"
        ]
    );
    f.check().await;
}

/// `if_still_available` commits a lapsed hold whose items are still free, and refuses one
/// whose items were taken; `strict` refuses both.
pub async fn late_commit_policy(t: TestStore) {
    let f = fixture(
        t,
        Policy {
            late_commit: LateCommit::IfStillAvailable,
            ..Policy::default()
        },
        None,
    )
    .await;
    let store = &f.t.store;
    let late = f
        .reserve(f.request("a").seats([seat("A-1")]).ttl_seconds(10))
        .await
        .unwrap();
    let taken = f
        .reserve(f.request("b").seats([seat("A-2")]).ttl_seconds(10))
        .await
        .unwrap();
    f.advance(11);
    store.expire_due(100).await.unwrap();
    f.reserve(f.request("c").seats([seat("A-2")]))
        .await
        .unwrap();
    let order = f.commit_all(&late, "late").await;
    assert_eq!(order.tickets.len(), 1);
    f.refuses(
        store.commit(
            &taken.id,
            CommitRequest::new(taken.token.clone().unwrap(), key("taken")),
        ),
        Error::ReservationExpired {
            expired_at: taken.expires_at,
        },
    )
    .await;
    assert_eq!(f.availability().await.seats[0], SeatStatus::Sold);
    f.check().await;
}

/// Best available: layout order, filters, adjacency that skips broken runs.
pub async fn best_available_picks(t: TestStore) {
    let f = fixture(t, Policy::default(), None).await;
    f.reserve(f.request("x").seats([seat("A-2"), seat("B-3")]))
        .await
        .unwrap();
    let best = |count, adjacent, category: Option<&str>| BestAvailable {
        count,
        adjacent,
        section: None,
        category: category.map(str::to_owned),
    };
    let any = f
        .reserve(f.request("a").best_available(best(2, false, None)))
        .await
        .unwrap();
    assert_eq!(any.seats, vec![seat("A-1"), seat("A-3")]);
    let pair = f
        .reserve(f.request("b").best_available(best(2, true, None)))
        .await
        .unwrap();
    assert_eq!(
        pair.seats,
        vec![seat("B-1"), seat("B-2")],
        "A-4 alone is no pair"
    );
    let with_explicit = f
        .reserve(f.request("c").seats([seat("A-4")]).best_available(best(
            1,
            false,
            Some("standard"),
        )))
        .await
        .unwrap();
    assert_eq!(with_explicit.seats, vec![seat("A-4"), seat("B-4")]);
    f.refuses(
        f.reserve(
            f.request("d")
                .best_available(best(1, false, Some("premium"))),
        ),
        Error::SoldOut {
            pool: None,
            remaining: 0,
        },
    )
    .await;
    f.check().await;
}

/// A holder may have at most `holder_reservations_max` live reservations; a lapsed one no
/// longer counts.
pub async fn reservation_limit(t: TestStore) {
    let f = fixture(
        t,
        Policy {
            holder_reservations_max: Some(1),
            ..Policy::default()
        },
        None,
    )
    .await;
    f.reserve(f.request("a").seats([seat("A-1")]).ttl_seconds(10))
        .await
        .unwrap();
    f.refuses(
        f.reserve(f.request("a").seats([seat("A-2")])),
        Error::LimitExceeded {
            limit: HolderLimit::Reservations,
            max: 1,
        },
    )
    .await;
    f.reserve(f.request("b").seats([seat("A-2")]))
        .await
        .unwrap();
    f.advance(10);
    f.reserve(f.request("a").seats([seat("A-3")]))
        .await
        .unwrap();
    f.check().await;
}

/// Events list by id, paged after a cursor; the limit is validated.
pub async fn events_are_listed_in_pages(t: TestStore) {
    let f = fixture(t, Policy::default(), None).await;
    let store = &f.t.store;
    for id in ["b", "a", "c"] {
        let mut spec = EventSpec {
            id: EventId::new(id).unwrap(),
            name: id.into(),
            seats: vec![],
            pools: vec![PoolSpec {
                id: PoolId::new("p").unwrap(),
                name: String::new(),
                capacity: 1,
            }],
            sale_window: None,
            policy: Policy::default(),
        };
        spec.name = format!("event {id}");
        store.create_event(spec).await.unwrap();
    }
    let first = store
        .events(Page {
            after: None,
            limit: 2,
        })
        .await
        .unwrap();
    assert_eq!(
        first.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    let rest = store
        .events(Page {
            after: Some(first[1].id.clone()),
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(
        rest.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["c", "e"]
    );
    assert_eq!(rest[1].seats, 8);
    f.refuses(
        store.events(Page {
            after: None,
            limit: 0,
        }),
        Error::invalid("limit", ""),
    )
    .await;
}

/// A batch runs each reservation on its own: one failure does not fail the others.
pub async fn reserve_batch_is_independent(t: TestStore) {
    let f = fixture(t, Policy::default(), None).await;
    let results =
        f.t.store
            .reserve_batch(vec![
                f.request("a").seats([seat("A-1")]),
                f.request("b").seats([seat("A-1")]),
                f.request("c"),
                f.request("d").ga(f.pool.clone(), 5),
            ])
            .await;
    assert_eq!(results.len(), 4);
    assert!(results[0].is_ok());
    assert_eq!(
        results[1].as_ref().unwrap_err(),
        &Error::SeatUnavailable {
            seats: vec![seat("A-1")]
        }
    );
    assert_eq!(results[2].as_ref().unwrap_err().code(), "invalid_request");
    assert!(results[3].is_ok());
    f.check().await;
}

/// A commit batch answers each commit as one call after the other would: a repeat in the
/// same batch replays the first outcome, one commit's failure does not fail the others.
pub async fn commit_batch_is_independent(t: TestStore) {
    let f = fixture(t, Policy::default(), None).await;
    let a = f
        .reserve(f.request("a").seats([seat("A-1")]))
        .await
        .unwrap();
    let b = f
        .reserve(f.request("b").seats([seat("A-2")]).ga(f.pool.clone(), 2))
        .await
        .unwrap();
    let a_token = a.token.clone().unwrap();
    let b_token = b.token.clone().unwrap();
    let unknown = ReservationId::new("rsv_unknown").unwrap();
    let mut b_ga = CommitRequest::new(b_token.clone(), key("b"));
    b_ga.seats = Some(vec![]);
    let results =
        f.t.store
            .commit_batch(vec![
                (a.id.clone(), CommitRequest::new(a_token.clone(), key("a"))),
                (a.id.clone(), CommitRequest::new(a_token.clone(), key("a"))),
                (
                    a.id.clone(),
                    CommitRequest::new(a_token.clone(), key("a-again")),
                ),
                (
                    b.id.clone(),
                    CommitRequest::new(ReservationToken::generate(), key("b")),
                ),
                (
                    unknown.clone(),
                    CommitRequest::new(b_token.clone(), key("b")),
                ),
                (b.id.clone(), b_ga),
            ])
            .await;
    assert_eq!(results.len(), 6);
    let first = results[0].as_ref().unwrap();
    assert_eq!(first.reservation, a.id);
    assert_eq!(first.tickets.len(), 1);
    assert_eq!(results[1].as_ref().unwrap(), first, "a repeat replays");
    assert_eq!(
        results[2].as_ref().unwrap_err(),
        &Error::ReservationNotActive {
            status: ReservationStatus::Committed
        }
    );
    assert_eq!(results[3].as_ref().unwrap_err(), &Error::InvalidToken);
    assert_eq!(results[4].as_ref().unwrap_err().code(), "not_found");
    let b_order = results[5].as_ref().unwrap();
    assert_eq!(b_order.reservation, b.id);
    assert_eq!(b_order.tickets.len(), 2, "only the GA units were bought");
    let seats = f.availability().await.seats;
    assert_eq!(
        (seats[0], seats[1]),
        (SeatStatus::Sold, SeatStatus::Available),
        "b's seat was released"
    );
    assert!(
        f.t.store.commit_batch(vec![]).await.is_empty(),
        "an empty batch has no answers"
    );
    f.check().await;
}

/// Generates the whole conformance suite for a backend: every scripted scenario, the
/// model check and the stress run, each on a fresh store from `$factory` (an
/// `async fn() -> TestStore`).
///
/// ```ignore
/// ticketing_core::conformance_suite!(ticketing_store_pg::testkit::pg_store_for_test);
/// ```
#[macro_export]
macro_rules! conformance_suite {
    ($factory:path) => {
        $crate::conformance_suite!(@scenarios $factory;
            reserve_errors_in_precedence_order,
            sold_out_reports_what_remains,
            sale_window_is_enforced_on_both_sides,
            commit_extend_cancel_error_paths,
            commit_is_idempotent_and_final,
            reserve_replays_first_outcome,
            tickets_error_paths,
            admin_error_paths,
            lifecycle_transitions,
            late_commit_policy,
            best_available_picks,
            reservation_limit,
            events_are_listed_in_pages,
            reserve_batch_is_independent,
            commit_batch_is_independent,
        );

        #[test]
        fn model_check() {
            $crate::testkit::model_check::model_check($crate::testkit::factory($factory));
        }

        #[test]
        fn stress_hot_seats() {
            $crate::testkit::block_on(async {
                let t = $factory().await;
                $crate::testkit::stress::stress_hot_seats(&t).await;
            });
        }
    };
    (@scenarios $factory:path; $($scenario:ident,)*) => {
        $(
            #[test]
            fn $scenario() {
                $crate::testkit::block_on(async {
                    $crate::testkit::scenarios::$scenario($factory().await).await;
                });
            }
        )*
    };
}
