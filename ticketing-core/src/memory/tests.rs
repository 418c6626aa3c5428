//! The in-memory store's own table of error paths: each row breaks one thing and names the
//! error it expects; after every failing row the event's availability is unchanged.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::needless_pass_by_value
)]

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::*;

fn ready<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the in-memory store never waits"),
    }
}

fn seat(id: &str) -> SeatId {
    SeatId::new(id).unwrap()
}

fn holder(id: &str) -> HolderId {
    HolderId::new(id).unwrap()
}

fn key(id: &str) -> IdempotencyKey {
    IdempotencyKey::new(id).unwrap()
}

struct Fixture {
    store: MemoryStore,
    clock: ManualClock,
    event: EventId,
    pool: PoolId,
}

/// Two rows of four seats (A-1..A-4, B-1..B-4), a pool of 5, the given policy.
fn fixture(policy: Policy, sale_window: Option<SaleWindow>) -> Fixture {
    let clock = ManualClock::default();
    let store = MemoryStore::with_clock(Arc::new(clock.clone()));
    let event = EventId::new("e").unwrap();
    let pool = PoolId::new("ga").unwrap();
    let seats = ["A", "B"]
        .iter()
        .flat_map(|row| {
            (1..=4).map(move |number| Seat {
                id: seat(&format!("{row}-{number}")),
                section: "S".into(),
                row: (*row).into(),
                number,
                category: if *row == "A" {
                    "premium".into()
                } else {
                    "standard".into()
                },
                accessible: false,
                position: Position::default(),
            })
        })
        .collect();
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
    ready(store.create_event(spec)).unwrap();
    Fixture {
        store,
        clock,
        event,
        pool,
    }
}

impl Fixture {
    fn request(&self, who: &str) -> ReserveRequest {
        ReserveRequest::new(self.event.clone(), holder(who))
    }

    fn reserve(&self, request: ReserveRequest) -> Result<Reservation> {
        ready(self.store.reserve(request))
    }

    fn availability(&self) -> Availability {
        ready(self.store.availability(&self.event)).unwrap()
    }

    /// Runs `attempt`, expects `expected`, and checks nothing changed.
    fn refuses<T: std::fmt::Debug>(&self, attempt: impl FnOnce() -> Result<T>, expected: Error) {
        let before = self.availability();
        let outcome = attempt();
        assert_eq!(outcome.unwrap_err(), expected);
        let after = self.availability();
        assert_eq!(
            (before.seats, before.pools),
            (after.seats, after.pools),
            "a refused request changes nothing"
        );
    }
}

#[test]
fn reserve_errors_in_precedence_order() {
    let f = fixture(
        Policy {
            holder_seats_max: Some(3),
            holder_reservations_max: Some(2),
            ..Policy::default()
        },
        None,
    );
    f.reserve(f.request("taken").seats([seat("B-2")])).unwrap();
    let unknown_event =
        ReserveRequest::new(EventId::new("nope").unwrap(), holder("a")).seats([seat("A-1")]);
    let rows: Vec<(ReserveRequest, Error)> = vec![
        (
            f.request("a"),
            Error::invalid(
                "seat_ids",
                "a reservation needs at least one seat, GA unit or best-available seat",
            ),
        ),
        (
            f.request("a").seats([seat("A-1"), seat("A-1")]),
            Error::invalid("seat_ids", "seat 'A-1' listed twice"),
        ),
        (
            f.request("a").ga(f.pool.clone(), 0),
            Error::invalid("ga", "quantity for pool 'ga' must be at least 1"),
        ),
        (
            f.request("a").seats([seat("A-1")]).ttl_seconds(0),
            Error::invalid("ttl_seconds", "must be 1 to 1800, got 0"),
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
            f.request("a").ga(f.pool.clone(), 6).seats([]),
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
            Error::SoldOut {
                pool: None,
                remaining: 3,
            },
        ),
    ];
    for (request, expected) in rows {
        f.refuses(|| f.reserve(request), expected);
    }
}

#[test]
fn sold_out_reports_what_remains_and_ttl_is_bounded_by_the_event() {
    let f = fixture(
        Policy {
            reservation_ttl_seconds_max: 600,
            ..Policy::default()
        },
        None,
    );
    f.reserve(f.request("a").ga(f.pool.clone(), 4)).unwrap();
    f.refuses(
        || f.reserve(f.request("b").ga(f.pool.clone(), 2)),
        Error::SoldOut {
            pool: Some(f.pool.clone()),
            remaining: 1,
        },
    );
    f.refuses(
        || f.reserve(f.request("b").ga(f.pool.clone(), 1).ttl_seconds(601)),
        Error::invalid("ttl_seconds", "this event allows at most 600 seconds"),
    );
}

#[test]
fn sale_window_is_enforced_on_both_sides() {
    let now = ManualClock::default().now();
    let opens = now.saturating_add(Duration::from_secs(60));
    let closes = opens.saturating_add(Duration::from_secs(60));
    let f = fixture(
        Policy::default(),
        Some(SaleWindow {
            opens_at: Some(opens),
            closes_at: Some(closes),
        }),
    );
    f.refuses(
        || f.reserve(f.request("a").seats([seat("A-1")])),
        Error::NotOnSale {
            opens_at: Some(opens),
            closed_at: None,
        },
    );
    f.clock.advance(Duration::from_secs(60));
    f.reserve(f.request("a").seats([seat("A-1")])).unwrap();
    f.clock.advance(Duration::from_secs(60));
    f.refuses(
        || f.reserve(f.request("a").seats([seat("A-2")])),
        Error::NotOnSale {
            opens_at: None,
            closed_at: Some(closes),
        },
    );
}

#[test]
fn commit_extend_cancel_error_paths() {
    let f = fixture(Policy::default(), None);
    let held = f
        .reserve(
            f.request("a")
                .seats([seat("A-1"), seat("A-2")])
                .ga(f.pool.clone(), 2)
                .ttl_seconds(60),
        )
        .unwrap();
    let token = held.token.clone().unwrap();
    let wrong = ReservationToken::generate();
    let missing = ReservationId::new("rsv_missing").unwrap();
    let commit = |request: CommitRequest| ready(f.store.commit(&held.id, request));
    f.refuses(
        || {
            ready(
                f.store
                    .commit(&missing, CommitRequest::new(token.clone(), key("k"))),
            )
        },
        Error::not_found(Entity::Reservation, "rsv_missing"),
    );
    f.refuses(
        || commit(CommitRequest::new(wrong.clone(), key("k"))),
        Error::InvalidToken,
    );
    let mut foreign = CommitRequest::new(token.clone(), key("k1"));
    foreign.seats = Some(vec![seat("B-1")]);
    f.refuses(
        || commit(foreign),
        Error::invalid("seat_ids", "seat 'B-1' is not in the reservation"),
    );
    let mut too_many = CommitRequest::new(token.clone(), key("k2"));
    too_many.ga = Some(vec![GaRequest {
        pool: f.pool.clone(),
        quantity: 3,
    }]);
    f.refuses(
        || commit(too_many),
        Error::invalid("ga", "the reservation holds 2 of pool 'ga'"),
    );
    let mut nothing = CommitRequest::new(token.clone(), key("k3"));
    (nothing.seats, nothing.ga) = (Some(vec![]), Some(vec![]));
    f.refuses(
        || commit(nothing),
        Error::invalid(
            "seat_ids",
            "a commit must buy at least one item; cancel instead",
        ),
    );
    f.refuses(
        || ready(f.store.extend(&held.id, &token, 0)),
        Error::invalid("ttl_seconds", "must be 1 to 1800, got 0"),
    );
    f.refuses(
        || ready(f.store.extend(&held.id, &wrong, 60)),
        Error::InvalidToken,
    );
    f.refuses(
        || ready(f.store.cancel(&held.id, &wrong)),
        Error::InvalidToken,
    );
    f.clock.advance(Duration::from_secs(1_700));
    f.refuses(
        || ready(f.store.extend(&held.id, &token, 200)),
        Error::ReservationExpired {
            expired_at: held.expires_at,
        },
    );
    f.refuses(
        || ready(f.store.cancel(&held.id, &token)),
        Error::ReservationExpired {
            expired_at: held.expires_at,
        },
    );
    f.refuses(
        || commit(CommitRequest::new(token.clone(), key("k4"))),
        Error::ReservationExpired {
            expired_at: held.expires_at,
        },
    );
    // The first outcome of key k4 stands even though nothing else about it can change now.
    f.refuses(
        || commit(CommitRequest::new(token.clone(), key("k4"))),
        Error::ReservationExpired {
            expired_at: held.expires_at,
        },
    );
}

#[test]
fn commit_is_idempotent_and_final() {
    let f = fixture(Policy::default(), None);
    let held = f
        .reserve(f.request("a").seats([seat("A-1"), seat("A-2")]))
        .unwrap();
    let token = held.token.clone().unwrap();
    let mut subset = CommitRequest::new(token.clone(), key("pay"));
    subset.seats = Some(vec![seat("A-2")]);
    let order = ready(f.store.commit(&held.id, subset.clone())).unwrap();
    assert_eq!(order.tickets.len(), 1);
    assert_eq!(
        ready(f.store.commit(&held.id, subset.clone())).unwrap(),
        order
    );
    let mut other = subset.clone();
    other.payment_id = Some(PaymentId::new("p2").unwrap());
    f.refuses(
        || ready(f.store.commit(&held.id, other)),
        Error::IdempotencyMismatch {
            field: "payment_id",
        },
    );
    f.refuses(
        || {
            ready(
                f.store
                    .commit(&held.id, CommitRequest::new(token.clone(), key("again"))),
            )
        },
        Error::ReservationNotActive {
            status: ReservationStatus::Committed,
        },
    );
    f.refuses(
        || ready(f.store.cancel(&held.id, &token)),
        Error::ReservationNotActive {
            status: ReservationStatus::Committed,
        },
    );
    let seats = f.availability().seats;
    assert_eq!(
        (seats[0], seats[1]),
        (SeatStatus::Available, SeatStatus::Sold),
        "the dropped seat was released"
    );
}

#[test]
fn reserve_replays_first_outcome_including_failures() {
    let f = fixture(Policy::default(), None);
    let blocker = f.reserve(f.request("x").seats([seat("A-1")])).unwrap();
    let client = ClientReservationId::new("c-1").unwrap();
    let request = f
        .request("a")
        .seats([seat("A-1")])
        .client_reservation_id(client.clone());
    let first = f.reserve(request.clone()).unwrap_err();
    assert_eq!(
        first,
        Error::SeatUnavailable {
            seats: vec![seat("A-1")]
        }
    );
    ready(f.store.cancel(&blocker.id, &blocker.token.unwrap())).unwrap();
    assert_eq!(
        f.reserve(request.clone()).unwrap_err(),
        first,
        "a retry never flips the outcome"
    );
    let mismatch = f
        .request("a")
        .seats([seat("A-2")])
        .client_reservation_id(client);
    f.refuses(
        || f.reserve(mismatch),
        Error::IdempotencyMismatch { field: "seat_ids" },
    );
    f.clock.advance(Duration::from_secs(24 * 3_600));
    assert_eq!(ready(f.store.expire_due(10)).unwrap(), 0);
    let fresh = f.reserve(request).unwrap();
    assert!(
        fresh.token.is_some(),
        "past the retention the key is forgotten"
    );
}

#[test]
fn tickets_refund_transfer_check_in_error_paths() {
    let f = fixture(
        Policy {
            holder_seats_max: Some(2),
            refund_to: RefundTo::Blocked,
            ..Policy::default()
        },
        None,
    );
    let held = f
        .reserve(f.request("a").seats([seat("A-1")]).ga(f.pool.clone(), 1))
        .unwrap();
    let order = ready(
        f.store
            .commit(&held.id, CommitRequest::new(held.token.unwrap(), key("k"))),
    )
    .unwrap();
    let (seat_ticket, unit_ticket) = (&order.tickets[0], &order.tickets[1]);
    f.reserve(f.request("full").seats([seat("B-1"), seat("B-2")]))
        .unwrap();
    f.refuses(
        || ready(f.store.transfer(&seat_ticket.id, &holder("a"))),
        Error::invalid("to", "the ticket already belongs to this holder"),
    );
    f.refuses(
        || ready(f.store.transfer(&seat_ticket.id, &holder("full"))),
        Error::LimitExceeded {
            limit: HolderLimit::Seats,
            max: 2,
        },
    );
    let moved = ready(f.store.transfer(&seat_ticket.id, &holder("b"))).unwrap();
    assert_ne!(moved.code, seat_ticket.code);
    f.refuses(
        || ready(f.store.check_in(&seat_ticket.code)),
        Error::not_found(Entity::Ticket, &seat_ticket.code),
    );
    ready(f.store.check_in(&moved.code)).unwrap();
    let checked_in = Error::Conflict {
        reason: ConflictReason::TicketCheckedIn,
    };
    f.refuses(|| ready(f.store.check_in(&moved.code)), checked_in.clone());
    f.refuses(
        || {
            ready(
                f.store
                    .refund(&order.id, Some(std::slice::from_ref(&seat_ticket.id))),
            )
        },
        checked_in.clone(),
    );
    f.refuses(
        || ready(f.store.transfer(&seat_ticket.id, &holder("c"))),
        checked_in,
    );
    f.refuses(
        || ready(f.store.refund(&order.id, Some(&[]))),
        Error::invalid("ticket_ids", "must not be empty; omit it to refund all"),
    );
    let stranger = TicketId::new("tkt_x").unwrap();
    f.refuses(
        || {
            ready(
                f.store
                    .refund(&order.id, Some(std::slice::from_ref(&stranger))),
            )
        },
        Error::not_found(Entity::Ticket, "tkt_x"),
    );
    let refund = ready(f.store.refund(&order.id, None)).unwrap();
    assert_eq!(refund.tickets, vec![unit_ticket.id.clone()]);
    assert_eq!(f.availability().pools[0].blocked, 1, "refund_to blocked");
    let refunded = Error::Conflict {
        reason: ConflictReason::TicketRefunded,
    };
    f.refuses(
        || {
            ready(
                f.store
                    .refund(&order.id, Some(std::slice::from_ref(&unit_ticket.id))),
            )
        },
        refunded.clone(),
    );
    f.refuses(
        || ready(f.store.check_in(&unit_ticket.code)),
        refunded.clone(),
    );
    f.refuses(
        || ready(f.store.refund(&order.id, None)),
        // Nothing valid is left: the order's first ticket (checked in) gives the reason.
        Error::Conflict {
            reason: ConflictReason::TicketCheckedIn,
        },
    );
    f.refuses(
        || ready(f.store.transfer(&unit_ticket.id, &holder("c"))),
        refunded,
    );
}

#[test]
fn admin_error_paths() {
    let f = fixture(Policy::default(), None);
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
        ready(f.store.create_event(spec("e"))).unwrap_err(),
        Error::Conflict {
            reason: ConflictReason::EventExists
        }
    );
    let mut no_items = spec("y");
    no_items.pools.clear();
    assert_eq!(
        ready(f.store.create_event(no_items)).unwrap_err().code(),
        "invalid_request"
    );
    let held = f
        .reserve(f.request("a").seats([seat("A-1")]).ga(f.pool.clone(), 3))
        .unwrap();
    f.refuses(
        || ready(f.store.block(&f.event, &[seat("A-2"), seat("A-1")], true)),
        Error::SeatUnavailable {
            seats: vec![seat("A-1")],
        },
    );
    f.refuses(
        || ready(f.store.block(&f.event, &[seat("Q-1")], true)),
        Error::not_found(Entity::Seat, "Q-1"),
    );
    f.refuses(
        || ready(f.store.block(&f.event, &[], true)),
        Error::invalid("seat_ids", "must not be empty"),
    );
    let below = Error::Conflict {
        reason: ConflictReason::CapacityBelowUsage { used: 3 },
    };
    f.refuses(
        || ready(f.store.resize_pool(&f.event, &f.pool, 2)),
        below.clone(),
    );
    f.refuses(
        || ready(f.store.set_pool_blocked(&f.event, &f.pool, 3)),
        below,
    );
    f.refuses(
        || {
            ready(
                f.store
                    .resize_pool(&f.event, &PoolId::new("vip").unwrap(), 2),
            )
        },
        Error::not_found(Entity::Pool, "vip"),
    );
    f.refuses(
        || {
            ready(
                f.store
                    .resize_pool(&f.event, &f.pool, validate::POOL_CAPACITY_MAX + 1),
            )
        },
        Error::invalid(
            "capacity",
            format!("at most {}", validate::POOL_CAPACITY_MAX),
        ),
    );
    ready(f.store.block(&f.event, &[seat("A-2")], true)).unwrap();
    ready(f.store.block(&f.event, &[seat("A-1"), seat("A-2")], false)).unwrap();
    let seats = f.availability().seats;
    assert_eq!(
        (seats[0], seats[1]),
        (SeatStatus::Held, SeatStatus::Available),
        "unblock leaves held seats alone"
    );
    f.clock.advance(Duration::from_secs(301));
    assert_eq!(
        f.reserve(f.request("b").ga(f.pool.clone(), 5)).unwrap().ga[0].quantity,
        5,
        "a lapsed hold is free at once"
    );
    assert_eq!(
        ready(f.store.reservation(&held.id)).unwrap().status,
        ReservationStatus::Expired
    );
    f.refuses(
        || ready(f.store.changes(&f.event, 0, 0)),
        Error::invalid(
            "limit",
            format!("must be 1 to {}", validate::CHANGES_LIMIT_MAX),
        ),
    );
    let log = ready(f.store.changes(&f.event, 0, 100)).unwrap();
    assert!(
        log.iter()
            .enumerate()
            .all(|(index, change)| change.seq == index as u64 + 1),
        "gap-free from 1"
    );
    assert_eq!(log[0].kind, ChangeKind::EventCreated);
}

#[test]
fn change_log_retention_prunes_old_changes() {
    let clock = ManualClock::default();
    let store = MemoryStore::with_config(
        Arc::new(clock),
        MemoryStoreConfig::default().change_retention(3),
    );
    let event = EventId::new("e").unwrap();
    let pool = PoolId::new("ga").unwrap();
    let spec = EventSpec {
        id: event.clone(),
        name: "e".into(),
        seats: vec![],
        pools: vec![PoolSpec {
            id: pool.clone(),
            name: String::new(),
            capacity: 100,
        }],
        sale_window: None,
        policy: Policy::default(),
    };
    ready(store.create_event(spec)).unwrap();
    for n in 0..5 {
        ready(store.reserve(
            ReserveRequest::new(event.clone(), holder(&format!("h{n}"))).ga(pool.clone(), 1),
        ))
        .unwrap();
    }
    assert_eq!(
        ready(store.changes(&event, 0, 10)).unwrap_err(),
        Error::ChangesPruned { first_retained: 4 }
    );
    let kept = ready(store.changes(&event, 3, 10)).unwrap();
    assert_eq!(
        kept.iter().map(|change| change.seq).collect::<Vec<_>>(),
        vec![4, 5, 6]
    );
    assert_eq!(ready(store.availability(&event)).unwrap().seq, 6);
}
