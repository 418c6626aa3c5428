//! The waitlist: holders wait for inventory of a sold-out event, and freed inventory is
//! offered to them before anyone else can take it.
//!
//! An event takes a waitlist when its [`Policy::waitlist`](crate::Policy::waitlist) is on.
//! A holder [joins](WaitlistStore::waitlist_join) for `quantity` seats (optionally adjacent,
//! optionally in one section) or `quantity` units of one GA pool, and gets an entry and a
//! secret token. When the event frees inventory, the store offers it to waiting entries in
//! the same atomic step: the offer is an ordinary [`Reservation`](crate::Reservation) in the
//! entry's holder's name, whose token is the entry's token, so the holder commits it as any
//! reservation.
//!
//! ## The rules, on every backend
//!
//! - **Serve rule: first matching entry.** Whenever the event frees inventory — cancel,
//!   expiry (when the lapsed reservations are finalized), refund to sale, unblock, a pool
//!   resized up or unblocked, a commit that releases items — the store walks the waiting
//!   entries in join order and offers to *every* entry that the free inventory (what was
//!   freed plus what was already free) satisfies in full, taking its items as it goes. An
//!   entry it cannot satisfy keeps its place and does not block later, smaller entries.
//!   Seats are picked as best available (the first free seats in layout order, matching
//!   the section; with `adjacent`, the first run of `quantity` consecutive numbers in one
//!   row); units of a pool by count.
//! - **Nobody cuts in.** While a waiting entry is satisfiable by free inventory, nothing
//!   else takes free inventory: after every operation, no waiting entry is satisfiable.
//!   So a join that free inventory satisfies is offered at once.
//! - **All or nothing.** An entry is offered all of its quantity in one reservation or
//!   nothing. The offer consumes the entry.
//! - **Offers are reservations.** An offer holds its items for the event's
//!   [`waitlist_offer_ttl_seconds`](crate::Policy::waitlist_offer_ttl_seconds) (15 minutes
//!   by default) from when it is made; it is committed, extended and cancelled like any
//!   reservation, with the entry's token. An offer that lapses or is cancelled frees its
//!   items, which go to the next entries by the same rule. Offers are made whether or not
//!   the event is on sale at that moment (joining needs the sale window).
//! - **Lapses are served when finalized.** A lapsed reservation's items are offered when
//!   the store finalizes it: by [`expire_due`](crate::InventoryStore::expire_due) once it
//!   has finalized every lapsed reservation of the event, or by the next operation on the
//!   event (which finalizes them first), at that operation's time.
//! - **One open entry per holder and event.** An entry is *open* while it waits or while
//!   its offer is live. Joining again with an open entry and the same request returns that
//!   entry (without its token); with another request, `conflict`
//!   [`WaitlistEntryExists`](crate::ConflictReason::WaitlistEntryExists). Once the entry
//!   left, or its offer was committed, cancelled or lapsed, joining again queues a new
//!   entry at the back.
//! - **Limits.** A waiting entry counts toward its holder's limits as a live reservation
//!   of `quantity` items would, so an offer never takes a holder over a limit; joining
//!   checks them as reserving would (`limit_exceeded`).
//! - **Positions** are 1 + the entries still waiting that joined earlier. With the
//!   first-matching rule a smaller entry may be served before a larger one ahead of it.
//! - **The change log** records `WaitlistJoined`, `WaitlistLeft` and `OfferMade`, each in
//!   the step that made it, so replaying the log shows that no change took free inventory
//!   while a waiting entry could have had it (see `testkit::invariants`).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::id::{EventId, HolderId, PoolId, ReservationId, WaitlistEntryId};
use crate::store::InventoryStore;
use crate::time::Timestamp;
use crate::token::ReservationToken;

/// What [`WaitlistStore::waitlist_join`] takes: who waits, for what.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitlistRequest {
    /// The event.
    pub event: EventId,
    /// Who waits.
    pub holder: HolderId,
    /// How many seats or units, offered all at once or not at all (1 to
    /// [`ITEMS_PER_RESERVATION_MAX`](crate::validate::ITEMS_PER_RESERVATION_MAX)).
    pub quantity: u32,
    /// Seats only: all in one row with consecutive numbers.
    #[serde(default)]
    pub adjacent: bool,
    /// Seats only: from this section only.
    #[serde(default)]
    pub section: Option<String>,
    /// Units of this GA pool instead of seats.
    #[serde(default)]
    pub pool: Option<PoolId>,
}

impl WaitlistRequest {
    /// `holder` waits for `quantity` seats of `event`, anywhere.
    pub fn seats(event: EventId, holder: HolderId, quantity: u32) -> Self {
        Self {
            event,
            holder,
            quantity,
            adjacent: false,
            section: None,
            pool: None,
        }
    }

    /// `holder` waits for `quantity` units of GA pool `pool` of `event`.
    pub fn ga(event: EventId, holder: HolderId, pool: PoolId, quantity: u32) -> Self {
        Self {
            pool: Some(pool),
            ..Self::seats(event, holder, quantity)
        }
    }

    /// Asks for seats in one row with consecutive numbers.
    pub fn adjacent(mut self) -> Self {
        self.adjacent = true;
        self
    }

    /// Asks for seats of one section.
    pub fn section(mut self, section: impl Into<String>) -> Self {
        self.section = Some(section.into());
        self
    }
}

/// Where a waitlist entry stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum WaitlistState {
    /// Waiting for inventory.
    Waiting {
        /// 1 + the entries still waiting that joined earlier.
        position: u64,
    },
    /// Offered a reservation (the entry's token is its token); the entry no longer waits.
    /// The reservation's own status says whether the offer is still live.
    Offered {
        /// The offer.
        reservation: ReservationId,
    },
    /// The holder left the waitlist before an offer.
    Left,
}

/// A waitlist entry as it is now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitlistEntry {
    /// Made by the store; unguessable.
    pub id: WaitlistEntryId,
    /// What the holder asked for.
    pub request: WaitlistRequest,
    /// When the holder joined.
    pub joined_at: Timestamp,
    /// Where it stands now.
    #[serde(flatten)]
    pub state: WaitlistState,
}

/// What [`WaitlistStore::waitlist_join`] answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitlistJoined {
    /// The entry (already offered when free inventory satisfied it at once).
    pub entry: WaitlistEntry,
    /// The entry's secret: the token of the reservation it will be offered. Returned only
    /// by the join that made the entry; a repeated join answers `None`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub token: Option<ReservationToken>,
}

/// A store with waitlists, by the rules of the [module documentation](self). Every call is
/// atomic, and so is every offer with the operation that freed its items.
///
/// **Writing a backend.** Implement it so that `ticketing_core::waitlist_conformance_suite!`
/// passes; call [`check_waitlist_request`](crate::validate::check_waitlist_request) first.
#[async_trait]
pub trait WaitlistStore: InventoryStore {
    /// Puts `request.holder` on the event's waitlist, or returns its open entry.
    ///
    /// In order: the request's shape (`invalid_request`, see
    /// [`check_waitlist_request`](crate::validate::check_waitlist_request)); the event
    /// (`not_found` [`Event`](crate::Entity::Event)); its waitlist (`not_found`
    /// [`Waitlist`](crate::Entity::Waitlist) when the policy has none); the holder's open
    /// entry (the same request: that entry, without token; another:
    /// `conflict` [`WaitlistEntryExists`](crate::ConflictReason::WaitlistEntryExists)); the
    /// pool (`not_found` [`Pool`](crate::Entity::Pool)); whether the layout could ever
    /// satisfy it (`invalid_request`: `pool` for seats on an event without seats, `section`
    /// for a section without seats, `quantity` for more seats than the section has or an
    /// adjacent run longer than any row); the sale window (`not_on_sale`); the holder's
    /// limits (`limit_exceeded`: reservations, then seats); the waitlist's length
    /// (`conflict` [`WaitlistFull`](crate::ConflictReason::WaitlistFull)). Then the entry
    /// joins at the back, and is offered at once if free inventory satisfies it.
    async fn waitlist_join(&self, request: WaitlistRequest) -> Result<WaitlistJoined>;

    /// An entry as it is now (lapsed reservations of the event are finalized and served
    /// first).
    ///
    /// Errors: `not_found` (event, waitlist, then an entry not of this event).
    async fn waitlist_entry(
        &self,
        event: &EventId,
        entry: &WaitlistEntryId,
    ) -> Result<WaitlistEntry>;

    /// Takes a waiting entry off the waitlist. Leaving again changes nothing.
    ///
    /// Errors: `not_found` (event, waitlist, then an entry not of this event and holder);
    /// `conflict` [`WaitlistEntryOffered`](crate::ConflictReason::WaitlistEntryOffered)
    /// once the entry was offered (cancel the offer with the entry's token instead).
    async fn waitlist_leave(
        &self,
        event: &EventId,
        entry: &WaitlistEntryId,
        holder: &HolderId,
    ) -> Result<()>;
}
