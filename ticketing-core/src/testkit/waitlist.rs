//! The waitlist's conformance suite: every [`WaitlistStore`] backend runs it against a real
//! server through [`waitlist_conformance_suite!`](crate::waitlist_conformance_suite), on a
//! manual clock (time only moves when a scenario moves it).
//!
//! | rule or code | scenario |
//! |---|---|
//! | join, position, repeat join, `conflict{waitlist_entry_exists}` | [`join_waits_in_line`] |
//! | serve rule: first matching entry, nobody cuts in | [`freed_inventory_goes_to_the_waitlist_first`] |
//! | every release path serves | [`every_release_path_serves`] |
//! | offers lapse or are cancelled to the next | [`offers_pass_to_the_next_in_line`] |
//! | all or nothing, adjacency, sections | [`group_entries_are_all_or_nothing`] |
//! | a join free inventory satisfies is offered at once | [`join_is_offered_at_once_when_free`] |
//! | leave, `conflict{waitlist_entry_offered}` | [`leaving_keeps_positions_exact`] |
//! | limits (`limit_exceeded`) | [`waiting_entries_count_toward_limits`] |
//! | `invalid_request`, `not_found`, `not_on_sale` | [`waitlist_error_paths`] |
//! | [`RACE_TASKS`] tasks releasing and reserving while entries wait | [`waitlist_race`] |
//!
//! `conflict{waitlist_full}` needs [`WAITLIST_ENTRIES_MAX`](crate::validate::WAITLIST_ENTRIES_MAX)
//! entries; the in-memory store tests it in its own tests.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::invariants::{check_store, waiting_entries};
use crate::time::{Clock, ManualClock};
use crate::waitlist::{
    WaitlistEntry, WaitlistJoined, WaitlistRequest, WaitlistState, WaitlistStore,
};
use crate::{
    Availability, ChangeKind, CommitRequest, ConflictReason, Entity, Error, EventId, EventSpec,
    HolderId, HolderLimit, IdempotencyKey, Policy, PoolId, PoolSpec, Position, RefundTo,
    Reservation, ReservationId, ReservationStatus, ReservationToken, ReserveRequest, Result,
    SaleWindow, Seat, SeatId, SeatStatus, WaitlistEntryId,
};

/// A fresh, isolated store with waitlists for one test, and the manual clock it runs on.
#[derive(Clone)]
pub struct TestWaitlist {
    /// The store under test.
    pub store: Arc<dyn WaitlistStore>,
    /// Its clock: only this moves time for the store.
    pub clock: ManualClock,
}

/// Makes a fresh, isolated [`TestWaitlist`].
pub type WaitlistFactory =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = TestWaitlist> + Send>> + Send + Sync>;

/// A [`WaitlistFactory`] from an async function.
pub fn waitlist_factory<F, Fut>(make: F) -> WaitlistFactory
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = TestWaitlist> + Send + 'static,
{
    Arc::new(move || Box::pin(make()))
}

/// A fresh in-memory store on a manual clock: the in-memory backend's own factory.
pub async fn memory_waitlist_for_test() -> TestWaitlist {
    let clock = ManualClock::default();
    let store = crate::MemoryStore::with_clock(Arc::new(clock.clone()));
    TestWaitlist {
        store: Arc::new(store),
        clock,
    }
}

fn seat(id: &str) -> SeatId {
    SeatId::new(id).unwrap()
}

fn holder(id: &str) -> HolderId {
    HolderId::new(id).unwrap()
}

/// The waitlist's policy in scenarios: on, offers held for 10 minutes.
fn policy() -> Policy {
    Policy {
        waitlist: true,
        waitlist_offer_ttl_seconds: 600,
        ..Policy::default()
    }
}

/// Errors as the conformance kit compares them: invalid requests by field only.
fn comparable(error: &Error) -> String {
    match error {
        Error::InvalidRequest { field, .. } => format!("invalid_request {field}"),
        other => format!("{other:?}"),
    }
}

/// One event on a fresh store: section Floor with rows A and B of four seats, section
/// Balcony with row C of two, and a GA pool `ga` of 3.
struct Fixture {
    t: TestWaitlist,
    event: EventId,
    pool: PoolId,
}

/// The fixture's seats, in layout order.
const SEATS: [&str; 10] = [
    "A-1", "A-2", "A-3", "A-4", "B-1", "B-2", "B-3", "B-4", "C-1", "C-2",
];

async fn fixture(t: TestWaitlist, policy: Policy) -> Fixture {
    fixture_with(t, policy, None).await
}

async fn fixture_with(t: TestWaitlist, policy: Policy, window: Option<SaleWindow>) -> Fixture {
    let event = EventId::new("wl").unwrap();
    let pool = PoolId::new("ga").unwrap();
    let seats = SEATS
        .iter()
        .map(|id| {
            let (row, number) = id.split_at(1);
            Seat {
                id: seat(id),
                section: if row == "C" { "Balcony" } else { "Floor" }.into(),
                row: row.into(),
                number: number[1..].parse().unwrap(),
                category: "standard".into(),
                accessible: false,
                position: Position::default(),
            }
        })
        .collect();
    let spec = EventSpec {
        id: event.clone(),
        name: "waitlist fixture".into(),
        seats,
        pools: vec![PoolSpec {
            id: pool.clone(),
            name: "GA".into(),
            capacity: 3,
        }],
        sale_window: window,
        policy,
    };
    t.store.create_event(spec).await.unwrap();
    Fixture { t, event, pool }
}

impl Fixture {
    fn store(&self) -> &dyn WaitlistStore {
        self.t.store.as_ref()
    }

    fn advance(&self, seconds: u64) {
        self.t.clock.advance(Duration::from_secs(seconds));
    }

    fn seats(&self, who: &str, quantity: u32) -> WaitlistRequest {
        WaitlistRequest::seats(self.event.clone(), holder(who), quantity)
    }

    fn ga(&self, who: &str, quantity: u32) -> WaitlistRequest {
        WaitlistRequest::ga(self.event.clone(), holder(who), self.pool.clone(), quantity)
    }

    async fn hold(&self, who: &str, seats: &[&str]) -> Reservation {
        let request = ReserveRequest::new(self.event.clone(), holder(who))
            .seats(seats.iter().map(|s| seat(s)));
        self.store().reserve(request).await.unwrap()
    }

    async fn hold_ga(&self, who: &str, quantity: u32) -> Reservation {
        let request =
            ReserveRequest::new(self.event.clone(), holder(who)).ga(self.pool.clone(), quantity);
        self.store().reserve(request).await.unwrap()
    }

    /// Holds every seat (one reservation each, by `owner-<seat>`) and every GA unit (one
    /// reservation, by `owner-ga`): the event is sold out.
    async fn sell_out(&self) -> (BTreeMap<&'static str, Reservation>, Reservation) {
        let mut held = BTreeMap::new();
        for id in SEATS {
            held.insert(id, self.hold(&format!("owner-{id}"), &[id]).await);
        }
        let ga = self.hold_ga("owner-ga", 3).await;
        assert_eq!(self.availability().await.free_units(), 0);
        (held, ga)
    }

    async fn cancel(&self, reservation: &Reservation) {
        let token = reservation.token.clone().unwrap();
        self.store().cancel(&reservation.id, &token).await.unwrap();
    }

    async fn join(&self, request: WaitlistRequest) -> WaitlistJoined {
        let joined = self.store().waitlist_join(request.clone()).await.unwrap();
        assert_eq!(joined.entry.request, request);
        joined
    }

    async fn entry(&self, entry: &WaitlistEntryId) -> WaitlistEntry {
        self.store()
            .waitlist_entry(&self.event, entry)
            .await
            .unwrap()
    }

    async fn position(&self, entry: &WaitlistEntryId) -> u64 {
        match self.entry(entry).await.state {
            WaitlistState::Waiting { position } => position,
            other => panic!("expected waiting, got {other:?}"),
        }
    }

    /// The offer made to `entry`: a live reservation of its holder with its quantity, held
    /// for the offer TTL from `offered_at`.
    async fn offer(&self, joined: &WaitlistJoined) -> Reservation {
        let entry = self.entry(&joined.entry.id).await;
        let WaitlistState::Offered { reservation } = &entry.state else {
            panic!("expected an offer to {}, got {:?}", entry.id, entry.state);
        };
        let offer = self.store().reservation(reservation).await.unwrap();
        assert_eq!(
            offer.holder, entry.request.holder,
            "the offer is the holder's"
        );
        assert_eq!(
            offer.item_count(),
            entry.request.quantity,
            "all of the entry"
        );
        assert_eq!(offer.status, ReservationStatus::Active, "the offer is live");
        assert_eq!(offer.token, None, "a read never carries the token");
        assert_eq!(offer.client_reservation_id, None);
        let policy = self.store().event(&self.event).await.unwrap().policy;
        assert_eq!(
            offer.expires_at,
            offer
                .created_at
                .saturating_add(Duration::from_secs(u64::from(
                    policy.waitlist_offer_ttl_seconds
                ))),
            "an offer holds for the offer TTL"
        );
        offer
    }

    async fn availability(&self) -> Availability {
        self.store().availability(&self.event).await.unwrap()
    }

    async fn seat_status(&self, id: &str) -> SeatStatus {
        let index = SEATS.iter().position(|known| *known == id).unwrap();
        self.availability().await.seats[index]
    }

    /// The kinds of the changes after `seq`.
    async fn changes_after(&self, seq: u64) -> Vec<ChangeKind> {
        let changes = self.store().changes(&self.event, seq, 1_000).await.unwrap();
        changes.into_iter().map(|change| change.kind).collect()
    }

    async fn seq(&self) -> u64 {
        self.availability().await.seq
    }

    /// Awaits `attempt`, expects `expected`, and checks that nothing changed.
    async fn refuses<T: std::fmt::Debug>(
        &self,
        attempt: impl Future<Output = Result<T>>,
        expected: Error,
    ) {
        let before = self.availability().await;
        let error = match attempt.await {
            Ok(value) => panic!("expected {expected:?}, got Ok({value:?})"),
            Err(error) => error,
        };
        assert_eq!(comparable(&error), comparable(&expected), "{error}");
        let after = self.availability().await;
        assert_eq!(
            before, after,
            "a refused request changes nothing ({error:?})"
        );
    }

    /// The log replays to the snapshot, and no waiting entry is left satisfiable.
    async fn check(&self) {
        if let Err(why) = check_store(self.store(), &self.event).await {
            panic!("invariants: {why}");
        }
    }
}

/// The kinds of an offer to `entry` (for matching against the log).
fn is_offer_to(kind: &ChangeKind, entry: &WaitlistEntryId) -> bool {
    matches!(kind, ChangeKind::OfferMade { entry: offered, .. } if offered == entry)
}

/// Joining a sold-out event waits in line; joining again returns the same entry (without
/// its token); another request while the entry is open is a conflict.
pub async fn join_waits_in_line(t: TestWaitlist) {
    let f = fixture(t, policy()).await;
    f.sell_out().await;
    let joined_at = f.t.clock.now();
    let alice = f.join(f.seats("alice", 1)).await;
    assert!(alice.token.is_some(), "the first join returns the token");
    assert_eq!(alice.entry.joined_at, joined_at);
    assert_eq!(alice.entry.state, WaitlistState::Waiting { position: 1 });
    let bob = f.join(f.ga("bob", 2)).await;
    assert_eq!(bob.entry.state, WaitlistState::Waiting { position: 2 });
    assert_ne!(alice.entry.id, bob.entry.id);
    let again = f.join(f.seats("alice", 1)).await;
    assert_eq!(
        again.entry, alice.entry,
        "joining again returns the same entry"
    );
    assert_eq!(again.token, None, "the token is returned once");
    f.refuses(
        f.store().waitlist_join(f.seats("alice", 2)),
        Error::Conflict {
            reason: ConflictReason::WaitlistEntryExists,
        },
    )
    .await;
    assert_eq!(f.entry(&alice.entry.id).await, alice.entry);
    assert_eq!(f.entry(&bob.entry.id).await, bob.entry);
    let kinds = f.changes_after(f.seq().await - 2).await;
    assert_eq!(
        kinds,
        vec![
            ChangeKind::WaitlistJoined {
                entry: alice.entry.id.clone(),
                holder: holder("alice"),
                quantity: 1,
                adjacent: false,
                section: None,
                pool: None,
            },
            ChangeKind::WaitlistJoined {
                entry: bob.entry.id.clone(),
                holder: holder("bob"),
                quantity: 2,
                adjacent: false,
                section: None,
                pool: Some(f.pool.clone()),
            },
        ]
    );
    f.check().await;
}

/// Freed inventory goes to the first waiting entry it satisfies, in the step that frees
/// it: a larger entry ahead does not block a smaller one, and a buyer racing for the freed
/// seat finds it held. The offer is committed with the entry's token.
pub async fn freed_inventory_goes_to_the_waitlist_first(t: TestWaitlist) {
    let f = fixture(t, policy()).await;
    let (held, ga) = f.sell_out().await;
    let alice = f
        .join(f.seats("alice", 2).adjacent().section("Floor"))
        .await;
    let bob = f.join(f.seats("bob", 1)).await;
    let carol = f.join(f.ga("carol", 1)).await;

    let before = f.seq().await;
    f.cancel(&held["A-1"]).await;
    let offer = f.offer(&bob).await;
    assert_eq!(offer.seats, vec![seat("A-1")]);
    assert_eq!(offer.created_at, f.t.clock.now(), "offered when freed");
    let kinds = f.changes_after(before).await;
    assert_eq!(kinds.len(), 2, "{kinds:?}");
    assert!(matches!(kinds[0], ChangeKind::Cancelled { .. }));
    assert!(is_offer_to(&kinds[1], &bob.entry.id), "{kinds:?}");
    f.refuses(
        f.store()
            .reserve(ReserveRequest::new(f.event.clone(), holder("racer")).seats([seat("A-1")])),
        Error::SeatUnavailable {
            seats: vec![seat("A-1")],
        },
    )
    .await;
    assert_eq!(
        f.position(&alice.entry.id).await,
        1,
        "the head keeps its place"
    );
    assert_eq!(f.position(&carol.entry.id).await, 2);

    let token = bob.token.clone().unwrap();
    let order = f
        .store()
        .commit(
            &offer.id,
            CommitRequest::new(token, IdempotencyKey::new("bob-pays").unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(order.holder, holder("bob"));
    assert_eq!(order.tickets.len(), 1);

    // B-2 alone is no pair: free for anyone. With B-3 it is: Alice's.
    f.cancel(&held["B-2"]).await;
    assert_eq!(f.seat_status("B-2").await, SeatStatus::Available);
    assert_eq!(f.position(&alice.entry.id).await, 1);
    f.cancel(&held["B-3"]).await;
    assert_eq!(f.offer(&alice).await.seats, vec![seat("B-2"), seat("B-3")]);

    f.cancel(&ga).await;
    assert_eq!(
        f.offer(&carol).await.ga,
        vec![crate::GaRequest {
            pool: f.pool.clone(),
            quantity: 1
        }]
    );
    assert_eq!(
        f.availability().await.pools[0].available,
        2,
        "the rest is free"
    );
    f.check().await;
}

/// Every way inventory is freed offers it: lazy expiry (the next operation), swept expiry
/// (`expire_due`), refund to sale, unblock, pool resized up or unblocked, and a commit
/// that releases part of a reservation.
pub async fn every_release_path_serves(t: TestWaitlist) {
    let f = fixture(
        t,
        Policy {
            refund_to: RefundTo::Sale,
            ..policy()
        },
    )
    .await;
    f.store()
        .block(&f.event, &[seat("B-4")], true)
        .await
        .unwrap();
    let lapsing = |seconds: u32, id: &str| {
        ReserveRequest::new(f.event.clone(), holder("owner"))
            .ttl_seconds(seconds)
            .seats([seat(id)])
    };
    f.store().reserve(lapsing(60, "A-1")).await.unwrap();
    f.store().reserve(lapsing(120, "A-2")).await.unwrap();
    let sold = f.hold("owner", &["A-3"]).await;
    let order = f
        .store()
        .commit(
            &sold.id,
            CommitRequest::new(
                sold.token.clone().unwrap(),
                IdempotencyKey::new("k").unwrap(),
            ),
        )
        .await
        .unwrap();
    let partial = f.hold("owner", &["B-1", "B-2"]).await;
    for id in ["A-4", "B-3", "C-1", "C-2"] {
        f.hold("owner", &[id]).await;
    }
    f.hold_ga("owner", 3).await;
    assert_eq!(f.availability().await.free_units(), 0);
    let wait = |who: &str| f.join(f.seats(who, 1));

    // Lazy expiry: the next operation (a racer's) finalizes A-1's hold and offers it first.
    let dave = wait("dave").await;
    let before = f.seq().await;
    f.advance(60);
    let racer = ReserveRequest::new(f.event.clone(), holder("racer")).seats([seat("A-1")]);
    assert_eq!(
        f.store().reserve(racer).await.unwrap_err(),
        Error::SeatUnavailable {
            seats: vec![seat("A-1")],
        }
    );
    let kinds = f.changes_after(before).await;
    assert!(matches!(kinds[0], ChangeKind::Expired { .. }), "{kinds:?}");
    assert!(is_offer_to(&kinds[1], &dave.entry.id), "{kinds:?}");
    assert_eq!(kinds.len(), 2, "{kinds:?}");
    assert_eq!(f.offer(&dave).await.seats, vec![seat("A-1")]);

    // Swept expiry.
    let erin = wait("erin").await;
    f.advance(60);
    assert_eq!(f.store().expire_due(10).await.unwrap(), 1);
    assert_eq!(f.offer(&erin).await.seats, vec![seat("A-2")]);

    // Refund to sale.
    let frank = wait("frank").await;
    f.store().refund(&order.id, None).await.unwrap();
    assert_eq!(f.offer(&frank).await.seats, vec![seat("A-3")]);

    // Unblock.
    let gina = wait("gina").await;
    f.store()
        .block(&f.event, &[seat("B-4")], false)
        .await
        .unwrap();
    assert_eq!(f.offer(&gina).await.seats, vec![seat("B-4")]);

    // A commit that buys B-1 releases B-2.
    let ivan = wait("ivan").await;
    let mut request = CommitRequest::new(
        partial.token.clone().unwrap(),
        IdempotencyKey::new("p").unwrap(),
    );
    request.seats = Some(vec![seat("B-1")]);
    f.store().commit(&partial.id, request).await.unwrap();
    assert_eq!(f.offer(&ivan).await.seats, vec![seat("B-2")]);

    // The pool grows by one (not enough for two), then by another; then one is unblocked.
    let hank = f.join(f.ga("hank", 2)).await;
    f.store().resize_pool(&f.event, &f.pool, 4).await.unwrap();
    assert_eq!(f.position(&hank.entry.id).await, 1);
    f.store().resize_pool(&f.event, &f.pool, 5).await.unwrap();
    assert_eq!(f.offer(&hank).await.ga[0].quantity, 2);
    f.store().resize_pool(&f.event, &f.pool, 6).await.unwrap();
    f.store()
        .set_pool_blocked(&f.event, &f.pool, 1)
        .await
        .unwrap();
    let jill = f.join(f.ga("jill", 1)).await;
    assert_eq!(f.position(&jill.entry.id).await, 1);
    f.store()
        .set_pool_blocked(&f.event, &f.pool, 0)
        .await
        .unwrap();
    assert_eq!(f.offer(&jill).await.ga[0].quantity, 1);
    f.check().await;
}

/// An offer that is cancelled (with the entry's token) or lapses frees its items, which go
/// to the next entry; an offer extends like any reservation; once the offer is over, the
/// holder may join again at the back.
pub async fn offers_pass_to_the_next_in_line(t: TestWaitlist) {
    let f = fixture(
        t,
        Policy {
            waitlist_offer_ttl_seconds: 120,
            ..policy()
        },
    )
    .await;
    let (held, _) = f.sell_out().await;
    let a = f.join(f.seats("a", 1)).await;
    let b = f.join(f.seats("b", 1)).await;
    let c = f.join(f.seats("c", 1)).await;
    f.cancel(&held["C-2"]).await;
    let offer = f.offer(&a).await;
    let a_token = a.token.clone().unwrap();
    let extended = f.store().extend(&offer.id, &a_token, 240).await.unwrap();
    assert_eq!(
        extended.expires_at,
        f.t.clock.now().saturating_add(Duration::from_secs(240))
    );
    f.refuses(
        f.store().cancel(&offer.id, &b.token.clone().unwrap()),
        Error::InvalidToken,
    )
    .await;
    let before = f.seq().await;
    f.store().cancel(&offer.id, &a_token).await.unwrap();
    assert_eq!(f.offer(&b).await.seats, vec![seat("C-2")]);
    let kinds = f.changes_after(before).await;
    assert!(
        matches!(kinds[0], ChangeKind::Cancelled { .. }),
        "{kinds:?}"
    );
    assert!(is_offer_to(&kinds[1], &b.entry.id), "{kinds:?}");

    f.advance(120);
    assert_eq!(
        f.store().expire_due(10).await.unwrap(),
        1,
        "b's offer lapsed"
    );
    let offer_c = f.offer(&c).await;
    assert_eq!(offer_c.seats, vec![seat("C-2")]);
    f.store()
        .commit(
            &offer_c.id,
            CommitRequest::new(c.token.clone().unwrap(), IdempotencyKey::new("c").unwrap()),
        )
        .await
        .unwrap();
    let WaitlistState::Offered { reservation } = f.entry(&b.entry.id).await.state else {
        panic!("b's entry was offered");
    };
    assert_eq!(
        f.store().reservation(&reservation).await.unwrap().status,
        ReservationStatus::Expired
    );
    let again = f.join(f.seats("b", 1)).await;
    assert_ne!(again.entry.id, b.entry.id, "a new entry");
    assert!(again.token.is_some());
    assert_eq!(again.entry.state, WaitlistState::Waiting { position: 1 });
    f.check().await;
}

/// A group entry is offered all its seats or none: adjacent ones in one row, from its
/// section.
pub async fn group_entries_are_all_or_nothing(t: TestWaitlist) {
    let f = fixture(t, policy()).await;
    let (held, _) = f.sell_out().await;
    let alice = f
        .join(f.seats("alice", 3).adjacent().section("Floor"))
        .await;
    let bob = f.join(f.seats("bob", 2).section("Balcony")).await;
    f.cancel(&held["A-1"]).await;
    f.cancel(&held["A-3"]).await;
    assert_eq!(
        f.position(&alice.entry.id).await,
        1,
        "A-1 and A-3 are no run of three"
    );
    f.cancel(&held["B-1"]).await;
    f.cancel(&held["B-3"]).await;
    assert_eq!(f.position(&alice.entry.id).await, 1);
    f.cancel(&held["B-2"]).await;
    assert_eq!(
        f.offer(&alice).await.seats,
        vec![seat("B-1"), seat("B-2"), seat("B-3")],
        "the first run of three in layout order"
    );
    assert_eq!(f.seat_status("A-1").await, SeatStatus::Available);
    f.cancel(&held["C-1"]).await;
    assert_eq!(f.position(&bob.entry.id).await, 1, "half of the pair");
    f.cancel(&held["C-2"]).await;
    assert_eq!(f.offer(&bob).await.seats, vec![seat("C-1"), seat("C-2")]);
    f.check().await;
}

/// A join that free inventory satisfies is offered at once: nothing free waits while an
/// entry could have it.
pub async fn join_is_offered_at_once_when_free(t: TestWaitlist) {
    let f = fixture(t, policy()).await;
    f.hold("early", &["A-1"]).await;
    let alice = f.join(f.seats("alice", 2).adjacent()).await;
    assert!(matches!(alice.entry.state, WaitlistState::Offered { .. }));
    assert!(alice.token.is_some());
    assert_eq!(f.offer(&alice).await.seats, vec![seat("A-2"), seat("A-3")]);
    let again = f.join(f.seats("alice", 2).adjacent()).await;
    assert_eq!(
        again.entry,
        f.entry(&alice.entry.id).await,
        "the live offer is the open entry"
    );
    assert_eq!(again.token, None);
    let bob = f.join(f.ga("bob", 3)).await;
    assert_eq!(f.offer(&bob).await.ga[0].quantity, 3);
    let kinds = f.changes_after(f.seq().await - 2).await;
    assert!(matches!(kinds[0], ChangeKind::WaitlistJoined { .. }));
    assert!(is_offer_to(&kinds[1], &bob.entry.id));
    f.check().await;
}

/// Leaving takes an entry out and moves those behind it up; leaving again changes nothing;
/// an offered entry cannot leave; after leaving, joining again queues at the back.
pub async fn leaving_keeps_positions_exact(t: TestWaitlist) {
    let f = fixture(t, policy()).await;
    let (held, _) = f.sell_out().await;
    let mut entries = Vec::new();
    for who in ["a", "b", "c", "d"] {
        entries.push(f.join(f.seats(who, 1)).await);
    }
    let id = |n: usize| entries[n].entry.id.clone();
    f.store()
        .waitlist_leave(&f.event, &id(1), &holder("b"))
        .await
        .unwrap();
    assert_eq!(f.entry(&id(1)).await.state, WaitlistState::Left);
    assert_eq!(f.position(&id(2)).await, 2);
    assert_eq!(f.position(&id(3)).await, 3);
    assert_eq!(
        f.changes_after(f.seq().await - 1).await,
        vec![ChangeKind::WaitlistLeft { entry: id(1) }]
    );
    let seq = f.seq().await;
    f.store()
        .waitlist_leave(&f.event, &id(1), &holder("b"))
        .await
        .unwrap();
    assert_eq!(f.seq().await, seq, "leaving again changes nothing");
    f.refuses(
        f.store().waitlist_leave(&f.event, &id(2), &holder("a")),
        Error::not_found(Entity::WaitlistEntry, id(2)),
    )
    .await;
    f.cancel(&held["A-1"]).await;
    f.offer(&entries[0]).await;
    f.refuses(
        f.store().waitlist_leave(&f.event, &id(0), &holder("a")),
        Error::Conflict {
            reason: ConflictReason::WaitlistEntryOffered,
        },
    )
    .await;
    let again = f.join(f.seats("b", 1)).await;
    assert_ne!(again.entry.id, id(1));
    assert_eq!(again.entry.state, WaitlistState::Waiting { position: 3 });
    assert_eq!(f.position(&id(2)).await, 1);
    f.check().await;
}

/// A waiting entry counts toward its holder's limits as a live reservation of its quantity
/// would, so the offer never takes the holder over a limit.
pub async fn waiting_entries_count_toward_limits(t: TestWaitlist) {
    let f = fixture(
        t,
        Policy {
            holder_seats_max: Some(3),
            holder_reservations_max: Some(2),
            ..policy()
        },
    )
    .await;
    let mut held = BTreeMap::new();
    for id in SEATS {
        held.insert(id, f.hold(&format!("owner-{id}"), &[id]).await);
    }
    let alice = f.join(f.seats("alice", 2)).await;
    f.refuses(
        f.store()
            .reserve(ReserveRequest::new(f.event.clone(), holder("alice")).ga(f.pool.clone(), 2)),
        Error::LimitExceeded {
            limit: HolderLimit::Seats,
            max: 3,
        },
    )
    .await;
    f.hold_ga("alice", 1).await;
    f.refuses(
        f.store()
            .reserve(ReserveRequest::new(f.event.clone(), holder("alice")).ga(f.pool.clone(), 1)),
        Error::LimitExceeded {
            limit: HolderLimit::Reservations,
            max: 2,
        },
    )
    .await;
    f.refuses(
        f.store().waitlist_join(f.seats("carol", 4)),
        Error::LimitExceeded {
            limit: HolderLimit::Seats,
            max: 3,
        },
    )
    .await;
    f.hold_ga("bob", 1).await;
    f.hold_ga("bob", 1).await;
    f.refuses(
        f.store().waitlist_join(f.seats("bob", 1)),
        Error::LimitExceeded {
            limit: HolderLimit::Reservations,
            max: 2,
        },
    )
    .await;
    f.cancel(&held["A-1"]).await;
    f.cancel(&held["A-2"]).await;
    assert_eq!(f.offer(&alice).await.seats, vec![seat("A-1"), seat("A-2")]);
    // Leaving gives the limit back.
    let dave = f.join(f.seats("dave", 3)).await;
    f.store()
        .waitlist_leave(&f.event, &dave.entry.id, &holder("dave"))
        .await
        .unwrap();
    f.cancel(&held["A-3"]).await;
    f.hold("dave", &["A-3"]).await;
    f.check().await;
}

/// Every refusal of the waitlist, each changing nothing: shape, lookups, what the layout
/// could never give, the sale window, and reading or leaving unknown entries.
pub async fn waitlist_error_paths(t: TestWaitlist) {
    let opens = t.clock.now().saturating_add(Duration::from_secs(100));
    let f = fixture_with(
        t,
        policy(),
        Some(SaleWindow {
            opens_at: Some(opens),
            closes_at: None,
        }),
    )
    .await;
    let store = f.store();
    let event = &f.event;
    let pool = PoolId::new("nope").unwrap();
    let rows: Vec<(WaitlistRequest, Error)> = vec![
        (f.seats("a", 0), Error::invalid("quantity", "")),
        (
            f.seats("a", crate::validate::ITEMS_PER_RESERVATION_MAX + 1),
            Error::invalid("quantity", ""),
        ),
        (f.seats("a", 1).section(""), Error::invalid("section", "")),
        (f.ga("a", 1).section("Floor"), Error::invalid("section", "")),
        (f.ga("a", 1).adjacent(), Error::invalid("adjacent", "")),
        (
            WaitlistRequest::seats(EventId::new("nope").unwrap(), holder("a"), 1),
            Error::not_found(Entity::Event, "nope"),
        ),
        (
            WaitlistRequest::ga(event.clone(), holder("a"), pool.clone(), 1),
            Error::not_found(Entity::Pool, &pool),
        ),
        (
            f.seats("a", 1).section("Roof"),
            Error::invalid("section", ""),
        ),
        (f.seats("a", 11), Error::invalid("quantity", "")),
        (
            f.seats("a", 3).section("Balcony"),
            Error::invalid("quantity", ""),
        ),
        (f.seats("a", 5).adjacent(), Error::invalid("quantity", "")),
        (
            f.seats("a", 1),
            Error::NotOnSale {
                opens_at: Some(opens),
                closed_at: None,
            },
        ),
    ];
    for (request, expected) in rows {
        f.refuses(store.waitlist_join(request), expected).await;
    }
    let unknown = WaitlistEntryId::new("w_unknown").unwrap();
    f.refuses(
        store.waitlist_entry(event, &unknown),
        Error::not_found(Entity::WaitlistEntry, &unknown),
    )
    .await;
    f.refuses(
        store.waitlist_leave(event, &unknown, &holder("a")),
        Error::not_found(Entity::WaitlistEntry, &unknown),
    )
    .await;
    let nope = EventId::new("nope").unwrap();
    f.refuses(
        store.waitlist_entry(&nope, &unknown),
        Error::not_found(Entity::Event, &nope),
    )
    .await;
    f.refuses(
        store.waitlist_leave(&nope, &unknown, &holder("a")),
        Error::not_found(Entity::Event, &nope),
    )
    .await;

    // An event without a waitlist, and one with no seats.
    let plain = EventId::new("plain").unwrap();
    let spec = |id: &EventId, policy: Policy, seats: Vec<Seat>| EventSpec {
        id: id.clone(),
        name: "other".into(),
        seats,
        pools: vec![PoolSpec {
            id: PoolId::new("ga").unwrap(),
            name: String::new(),
            capacity: 1,
        }],
        sale_window: None,
        policy,
    };
    let one_seat = vec![Seat {
        id: seat("S-1"),
        section: "S".into(),
        row: "1".into(),
        number: 1,
        category: String::new(),
        accessible: false,
        position: Position::default(),
    }];
    store
        .create_event(spec(&plain, Policy::default(), one_seat))
        .await
        .unwrap();
    let no_waitlist = Error::not_found(Entity::Waitlist, &plain);
    assert_eq!(
        store
            .waitlist_join(WaitlistRequest::seats(plain.clone(), holder("a"), 1))
            .await
            .unwrap_err(),
        no_waitlist
    );
    assert_eq!(
        store.waitlist_entry(&plain, &unknown).await.unwrap_err(),
        no_waitlist
    );
    assert_eq!(
        store
            .waitlist_leave(&plain, &unknown, &holder("a"))
            .await
            .unwrap_err(),
        no_waitlist
    );
    let ga_only = EventId::new("ga-only").unwrap();
    store
        .create_event(spec(&ga_only, policy(), vec![]))
        .await
        .unwrap();
    assert_eq!(
        comparable(
            &store
                .waitlist_join(WaitlistRequest::seats(ga_only.clone(), holder("a"), 1))
                .await
                .unwrap_err()
        ),
        "invalid_request pool"
    );
    let bad_ttl = Policy {
        waitlist_offer_ttl_seconds: 0,
        ..policy()
    };
    assert_eq!(
        comparable(
            &store
                .create_event(spec(&EventId::new("bad").unwrap(), bad_ttl, vec![]))
                .await
                .unwrap_err()
        ),
        "invalid_request policy.waitlist_offer_ttl_seconds"
    );

    // An entry of one event is unknown to another.
    f.advance(100);
    let joined = f.join(f.seats("a", 1)).await;
    assert_eq!(
        store
            .waitlist_entry(&ga_only, &joined.entry.id)
            .await
            .unwrap_err(),
        Error::not_found(Entity::WaitlistEntry, &joined.entry.id)
    );
    f.check().await;
}

/// Tasks in the waitlist race.
pub const RACE_TASKS: usize = 16;
/// Rounds of each racing buyer and of the clock.
const RACE_ROUNDS: usize = 40;
const RACE_SEATS: u32 = 8;
const RACE_UNITS: u32 = 8;
/// Entries of one seat and of one unit: every freed seat or unit satisfies one of them.
const RACE_SINGLES: usize = 5;

/// What each task in the race does.
#[derive(Debug, Clone, Copy)]
enum Racer {
    Refund(usize),
    Cancel(usize),
    Clock,
    Buyer(u64),
}

/// [`RACE_TASKS`] tasks on a sold-out event while entries wait: some release inventory
/// (refunds, cancels, holds lapsing under a moving clock and `expire_due`), the rest are
/// buyers reserving the same seats and units, and cancelling some of what they get. Then:
/// the log replays strictly (no seat held twice, no free inventory taken while a waiting
/// entry could have had it, every offer to the first satisfiable entry); no buyer reserved
/// a seat (a unit) while a one-seat (one-unit) entry waited; every single entry was offered
/// (more than enough was freed); every offer is a live reservation of its entry's holder,
/// of its quantity and kind.
pub async fn waitlist_race(t: TestWaitlist) {
    let event = EventId::new("wl-race").unwrap();
    let pool = PoolId::new("ga").unwrap();
    let spec = EventSpec {
        id: event.clone(),
        name: "waitlist race".into(),
        seats: (1..=RACE_SEATS)
            .map(|number| Seat {
                id: SeatId::new(format!("H-{number}")).unwrap(),
                section: "hot".into(),
                row: "1".into(),
                number,
                category: String::new(),
                accessible: false,
                position: Position::default(),
            })
            .collect(),
        pools: vec![PoolSpec {
            id: pool.clone(),
            name: "GA".into(),
            capacity: RACE_UNITS,
        }],
        sale_window: None,
        policy: Policy {
            reservation_ttl_seconds: 5,
            waitlist_offer_ttl_seconds: crate::validate::RESERVATION_TTL_SECONDS_MAX,
            ..policy()
        },
    };
    t.store.create_event(spec).await.unwrap();
    // Owners 1-3 buy (refunded in the race), 4-6 hold for long (cancelled), 7-8 hold for
    // five seconds (lapse under the clock).
    let mut owned = Vec::new();
    for n in 1..=RACE_SEATS {
        let request = ReserveRequest::new(event.clone(), holder(&format!("owner-{n}")))
            .seats([SeatId::new(format!("H-{n}")).unwrap()])
            .ga(pool.clone(), 1)
            .ttl_seconds(if n >= 7 { 5 } else { 1_800 });
        owned.push(t.store.reserve(request).await.unwrap());
    }
    let mut orders = Vec::new();
    for reservation in &owned[..3] {
        let key = IdempotencyKey::new(format!("buy-{}", reservation.holder)).unwrap();
        let request = CommitRequest::new(reservation.token.clone().unwrap(), key);
        orders.push(t.store.commit(&reservation.id, request).await.unwrap().id);
    }
    let mut entries: Vec<WaitlistJoined> = Vec::new();
    let group = WaitlistRequest::seats(event.clone(), holder("group"), 2).adjacent();
    entries.push(t.store.waitlist_join(group).await.unwrap());
    for n in 0..RACE_SINGLES {
        let seats = WaitlistRequest::seats(event.clone(), holder(&format!("single-{n}")), 1);
        entries.push(t.store.waitlist_join(seats).await.unwrap());
        let ga = WaitlistRequest::ga(event.clone(), holder(&format!("unit-{n}")), pool.clone(), 1);
        entries.push(t.store.waitlist_join(ga).await.unwrap());
    }
    for joined in &entries {
        assert!(
            matches!(joined.entry.state, WaitlistState::Waiting { .. }),
            "sold out: {joined:?}"
        );
    }
    let mut roles: Vec<Racer> = Vec::with_capacity(RACE_TASKS);
    roles.extend((0..3).map(Racer::Refund));
    roles.extend((3..6).map(Racer::Cancel));
    roles.push(Racer::Clock);
    while roles.len() < RACE_TASKS {
        roles.push(Racer::Buyer(roles.len() as u64));
    }
    let owned = Arc::new(owned);
    let orders = Arc::new(orders);
    let mut tasks = Vec::new();
    for role in roles {
        let (store, clock) = (t.store.clone(), t.clock.clone());
        let (owned, orders) = (owned.clone(), orders.clone());
        let (event, pool) = (event.clone(), pool.clone());
        tasks.push(tokio::spawn(async move {
            match role {
                Racer::Refund(n) => {
                    tokio::task::yield_now().await;
                    store.refund(&orders[n], None).await.unwrap();
                }
                Racer::Cancel(n) => {
                    tokio::task::yield_now().await;
                    let reservation = &owned[n];
                    let token = reservation.token.clone().unwrap();
                    store.cancel(&reservation.id, &token).await.unwrap();
                }
                Racer::Clock => {
                    for _ in 0..RACE_ROUNDS {
                        clock.advance(Duration::from_millis(500));
                        store.expire_due(4).await.unwrap();
                        tokio::task::yield_now().await;
                    }
                }
                Racer::Buyer(seed) => race_buyer(store.as_ref(), &event, &pool, seed).await,
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    if let Err(why) = check_store(t.store.as_ref(), &event).await {
        panic!("invariants: {why}");
    }
    check_no_buyer_cut_in(&t, &event).await;
    for joined in &entries {
        check_offer(&t, &event, joined).await;
    }
}

/// A buyer racing for the hot seats and units: reserves one at a time, cancels some.
async fn race_buyer(store: &dyn WaitlistStore, event: &EventId, pool: &PoolId, seed: u64) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let buyer = holder(&format!("buyer-{seed}"));
    for _ in 0..RACE_ROUNDS {
        let mut request = ReserveRequest::new(event.clone(), buyer.clone());
        if rng.random_bool(0.5) {
            let number = rng.random_range(1..=RACE_SEATS);
            request
                .seats
                .push(SeatId::new(format!("H-{number}")).unwrap());
        } else {
            request = request.ga(pool.clone(), 1);
        }
        match store.reserve(request).await {
            Ok(reservation) if rng.random_bool(0.5) => {
                tokio::task::yield_now().await;
                let token = reservation.token.clone().unwrap();
                match store.cancel(&reservation.id, &token).await {
                    Ok(()) | Err(Error::ReservationExpired { .. }) => {}
                    Err(other) => panic!("cancel failed unexpectedly: {other:?}"),
                }
            }
            Ok(_) | Err(Error::SeatUnavailable { .. } | Error::SoldOut { .. }) => {}
            Err(other) => panic!("reserve failed unexpectedly: {other:?}"),
        }
        tokio::task::yield_now().await;
    }
}

/// Walks the log: no buyer's reservation took a seat (a unit) while an entry for one seat
/// (one unit) waited — every freed seat or unit would have satisfied it.
async fn check_no_buyer_cut_in(t: &TestWaitlist, event: &EventId) {
    let changes = t.store.changes(event, 0, 10_000).await.unwrap();
    let mut singles: BTreeMap<WaitlistEntryId, bool> = BTreeMap::new();
    for change in &changes {
        match &change.kind {
            ChangeKind::WaitlistJoined {
                entry,
                quantity: 1,
                pool,
                ..
            } => {
                singles.insert(entry.clone(), pool.is_some());
            }
            ChangeKind::OfferMade { entry, .. } | ChangeKind::WaitlistLeft { entry } => {
                singles.remove(entry);
            }
            ChangeKind::Reserved {
                seats, ga, holder, ..
            } => {
                let seat_waits = singles.values().any(|is_pool| !is_pool);
                let unit_waits = singles.values().any(|is_pool| *is_pool);
                assert!(
                    !seat_waits || seats.is_empty(),
                    "change {}: {holder} reserved {seats:?} while a one-seat entry waited",
                    change.seq
                );
                assert!(
                    !unit_waits || ga.is_empty(),
                    "change {}: {holder} reserved {ga:?} while a one-unit entry waited",
                    change.seq
                );
            }
            _ => {}
        }
    }
    let layout = t.store.event(event).await.unwrap();
    let waiting = waiting_entries(&layout, &changes).unwrap();
    assert!(
        waiting.iter().all(|(_, _, quantity)| *quantity > 1),
        "every single entry was offered: eight seats and eight units were freed; {waiting:?}"
    );
}

/// An offered entry's reservation is live, its holder's, of its quantity and kind, and its
/// seats read as held.
async fn check_offer(t: &TestWaitlist, event: &EventId, joined: &WaitlistJoined) {
    let entry = t
        .store
        .waitlist_entry(event, &joined.entry.id)
        .await
        .unwrap();
    let request = &entry.request;
    let reservation: ReservationId = match &entry.state {
        WaitlistState::Offered { reservation } => reservation.clone(),
        WaitlistState::Waiting { .. } if request.quantity > 1 => return,
        other => panic!("entry {} of {}: {other:?}", entry.id, request.holder),
    };
    let offer = t.store.reservation(&reservation).await.unwrap();
    assert_eq!(offer.holder, request.holder);
    assert_eq!(offer.status, ReservationStatus::Active, "{offer:?}");
    assert_eq!(offer.item_count(), request.quantity);
    match &request.pool {
        Some(pool) => assert!(offer.seats.is_empty() && offer.ga[0].pool == *pool),
        None => assert!(offer.ga.is_empty()),
    }
    let layout = t.store.event(event).await.unwrap();
    let availability = t.store.availability(event).await.unwrap();
    for seat in &offer.seats {
        let index = layout
            .seats
            .iter()
            .position(|known| &known.id == seat)
            .unwrap();
        assert_eq!(
            availability.seats[index],
            SeatStatus::Held,
            "{seat} is held"
        );
    }
    // The entry's token is the offer's: a wrong one is refused, the right one extends it.
    let wrong = ReservationToken::generate();
    assert_eq!(
        t.store.extend(&offer.id, &wrong, 60).await.unwrap_err(),
        Error::InvalidToken
    );
    let token = joined.token.clone().unwrap();
    t.store.extend(&offer.id, &token, 60).await.unwrap();
}

/// The waitlist conformance suite for a backend: one `#[test]` per scenario, the waitlist
/// model check and the waitlist race, each on a fresh [`TestWaitlist`] from `$factory` (an
/// async fn).
///
/// ```ignore
/// ticketing_core::waitlist_conformance_suite!(my_backend::waitlist_store_for_test);
/// ```
#[macro_export]
macro_rules! waitlist_conformance_suite {
    ($factory:path) => {
        $crate::waitlist_conformance_suite!(@scenarios $factory;
            join_waits_in_line,
            freed_inventory_goes_to_the_waitlist_first,
            every_release_path_serves,
            offers_pass_to_the_next_in_line,
            group_entries_are_all_or_nothing,
            join_is_offered_at_once_when_free,
            leaving_keeps_positions_exact,
            waiting_entries_count_toward_limits,
            waitlist_error_paths,
            waitlist_race,
        );

        #[test]
        fn waitlist_model_check() {
            $crate::testkit::model_check::waitlist_model_check(
                $crate::testkit::waitlist::waitlist_factory($factory),
            );
        }
    };
    (@scenarios $factory:path; $($scenario:ident,)*) => {
        $(
            #[test]
            fn $scenario() {
                $crate::testkit::block_on(async {
                    $crate::testkit::waitlist::$scenario($factory().await).await;
                });
            }
        )*
    };
}
