//! The domain: events, seats, pools, reservations, orders, tickets and changes.
//!
//! Words follow the seed documents: a holder *reserves* items, the reservation *holds*
//! them until it is *committed* (after payment), *cancelled*, or *expires*.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::id::{
    ClientReservationId, EventId, HolderId, IdempotencyKey, OrderId, PaymentId, PoolId,
    ReservationId, SeatId, TicketCode, TicketId, WaitlistEntryId,
};
use crate::time::Timestamp;
use crate::token::ReservationToken;

/// Where a seat is drawn on a seat map (any unit; the layout's author decides).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Position {
    /// Horizontal coordinate.
    pub x: f32,
    /// Vertical coordinate.
    pub y: f32,
}

/// An assigned seat of an event's layout. The layout's order is its best-available rank:
/// earlier seats are offered first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seat {
    /// Unique within the event.
    pub id: SeatId,
    /// The section ("Floor", "114").
    pub section: String,
    /// The row within the section ("A", "12").
    pub row: String,
    /// The seat's number within its row; adjacent seats have consecutive numbers.
    pub number: u32,
    /// The price category ("premium", "standard"); pricing itself is the application's.
    #[serde(default)]
    pub category: String,
    /// Whether the seat is wheelchair accessible.
    #[serde(default)]
    pub accessible: bool,
    /// Where to draw it.
    #[serde(default)]
    pub position: Position,
}

/// A general-admission pool: counted capacity, no seat identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSpec {
    /// Unique within the event.
    pub id: PoolId,
    /// A name to show ("Standing", "Lawn").
    #[serde(default)]
    pub name: String,
    /// Units it starts with; [`crate::InventoryStore::resize_pool`] changes it.
    pub capacity: u32,
}

/// When an event is on sale: `opens_at <= now < closes_at`, either bound optional.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaleWindow {
    /// The sale opens at this instant (inclusive).
    pub opens_at: Option<Timestamp>,
    /// The sale closes at this instant (exclusive).
    pub closes_at: Option<Timestamp>,
}

impl SaleWindow {
    /// Whether `now` is inside the window.
    pub fn contains(&self, now: Timestamp) -> bool {
        self.opens_at.is_none_or(|opens| opens <= now)
            && self.closes_at.is_none_or(|closes| now < closes)
    }
}

/// What commit does with a reservation whose hold has lapsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LateCommit {
    /// Refuse: `reservation_expired`. Expiry is final.
    #[default]
    Strict,
    /// Commit if every item is still free (payment succeeded just after the hold lapsed);
    /// otherwise `reservation_expired`.
    IfStillAvailable,
}

/// Where refunded inventory goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundTo {
    /// Back on sale.
    #[default]
    Sale,
    /// Blocked: off sale until an organizer unblocks it.
    Blocked,
}

/// An event's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Hold time of a reservation that does not ask for one.
    pub reservation_ttl_seconds: u32,
    /// The longest hold a reservation may ask for, and the longest total hold that
    /// extensions may reach (counted from the reservation's creation).
    pub reservation_ttl_seconds_max: u32,
    /// Most seats and GA units one holder may have reserved (live) plus owned (valid tickets).
    pub holder_seats_max: Option<u32>,
    /// Most live reservations one holder may have at once.
    pub holder_reservations_max: Option<u32>,
    /// What commit does after the hold lapsed.
    pub late_commit: LateCommit,
    /// Where refunded inventory goes.
    pub refund_to: RefundTo,
    /// Whether holders may join the event's waitlist (see [`crate::waitlist`]). Off by
    /// default: an event with waiting entries serializes its operations on one lock so
    /// that freed inventory is offered before anyone else can take it.
    pub waitlist: bool,
    /// How long an offer made to a waitlist entry holds its items (1 to
    /// [`RESERVATION_TTL_SECONDS_MAX`](crate::validate::RESERVATION_TTL_SECONDS_MAX)).
    pub waitlist_offer_ttl_seconds: u32,
}

impl Policy {
    /// The default hold: 5 minutes.
    pub const RESERVATION_TTL_SECONDS_DEFAULT: u32 = 300;
    /// The default hold of a waitlist offer: 15 minutes.
    pub const WAITLIST_OFFER_TTL_SECONDS_DEFAULT: u32 = 900;
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            reservation_ttl_seconds: Self::RESERVATION_TTL_SECONDS_DEFAULT,
            reservation_ttl_seconds_max: crate::validate::RESERVATION_TTL_SECONDS_MAX,
            holder_seats_max: None,
            holder_reservations_max: None,
            late_commit: LateCommit::Strict,
            refund_to: RefundTo::Sale,
            waitlist: false,
            waitlist_offer_ttl_seconds: Self::WAITLIST_OFFER_TTL_SECONDS_DEFAULT,
        }
    }
}

/// What [`crate::InventoryStore::create_event`] takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    /// Unique within the store.
    pub id: EventId,
    /// A name to show.
    pub name: String,
    /// Assigned seats, in best-available order.
    #[serde(default)]
    pub seats: Vec<Seat>,
    /// General-admission pools.
    #[serde(default)]
    pub pools: Vec<PoolSpec>,
    /// When it is on sale; `None`: always.
    #[serde(default)]
    pub sale_window: Option<SaleWindow>,
    /// Its rules.
    #[serde(default)]
    pub policy: Policy,
}

/// An event as created: its layout is immutable and shared, so cloning is cheap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique within the store.
    pub id: EventId,
    /// A name to show.
    pub name: String,
    /// Assigned seats, in best-available order. [`Availability::seats`] follows this order.
    pub seats: Arc<[Seat]>,
    /// General-admission pools as created (capacity as first given).
    pub pools: Arc<[PoolSpec]>,
    /// When it is on sale; `None`: always.
    pub sale_window: Option<SaleWindow>,
    /// Its rules.
    pub policy: Policy,
    /// When it was created.
    pub created_at: Timestamp,
}

impl Event {
    /// The event `spec` describes, created at `created_at`.
    pub fn from_spec(spec: EventSpec, created_at: Timestamp) -> Self {
        Self {
            id: spec.id,
            name: spec.name,
            seats: spec.seats.into(),
            pools: spec.pools.into(),
            sale_window: spec.sale_window,
            policy: spec.policy,
            created_at,
        }
    }

    /// A short description for listings.
    pub fn summary(&self) -> EventSummary {
        EventSummary {
            id: self.id.clone(),
            name: self.name.clone(),
            seats: u32::try_from(self.seats.len()).unwrap_or(u32::MAX),
            pools: u32::try_from(self.pools.len()).unwrap_or(u32::MAX),
            sale_window: self.sale_window,
            created_at: self.created_at,
        }
    }
}

/// One line of an event listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventSummary {
    /// The event.
    pub id: EventId,
    /// Its name.
    pub name: String,
    /// How many assigned seats its layout has.
    pub seats: u32,
    /// How many GA pools it has.
    pub pools: u32,
    /// When it is on sale.
    pub sale_window: Option<SaleWindow>,
    /// When it was created.
    pub created_at: Timestamp,
}

/// A page of a listing ordered by id: the items after `after`, at most `limit` of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    /// The last id of the previous page (the cursor); `None` for the first page.
    pub after: Option<EventId>,
    /// How many items at most (1 to [`crate::validate::PAGE_LIMIT_MAX`]).
    pub limit: u32,
}

impl Default for Page {
    fn default() -> Self {
        Self {
            after: None,
            limit: 100,
        }
    }
}

/// A quantity of units from one GA pool.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GaRequest {
    /// The pool.
    pub pool: PoolId,
    /// How many units (at least 1).
    pub quantity: u32,
}

/// "Give me the best N seats": the first free ones in layout order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BestAvailable {
    /// How many seats (at least 1).
    pub count: u32,
    /// All in one row with consecutive numbers.
    #[serde(default)]
    pub adjacent: bool,
    /// Only from this section.
    #[serde(default)]
    pub section: Option<String>,
    /// Only of this category.
    #[serde(default)]
    pub category: Option<String>,
}

/// An all-or-nothing request for any mix of explicit seats, GA units and best-available
/// seats, held for `ttl_seconds`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReserveRequest {
    /// The event.
    pub event: EventId,
    /// Who reserves.
    pub holder: HolderId,
    /// The client's id for this request: repeating it returns the first outcome.
    #[serde(default)]
    pub client_reservation_id: Option<ClientReservationId>,
    /// Explicit seats.
    #[serde(default)]
    pub seats: Vec<SeatId>,
    /// GA units, at most one entry per pool.
    #[serde(default)]
    pub ga: Vec<GaRequest>,
    /// Best-available seats, chosen from seats not named in `seats`.
    #[serde(default)]
    pub best_available: Option<BestAvailable>,
    /// The hold time; `None`: the event's default.
    #[serde(default)]
    pub ttl_seconds: Option<u32>,
}

impl ReserveRequest {
    /// An empty request for `holder` on `event`; add items with the builder methods.
    pub fn new(event: EventId, holder: HolderId) -> Self {
        Self {
            event,
            holder,
            client_reservation_id: None,
            seats: Vec::new(),
            ga: Vec::new(),
            best_available: None,
            ttl_seconds: None,
        }
    }

    /// Adds explicit seats.
    pub fn seats(mut self, seats: impl IntoIterator<Item = SeatId>) -> Self {
        self.seats.extend(seats);
        self
    }

    /// Adds `quantity` units of `pool`.
    pub fn ga(mut self, pool: PoolId, quantity: u32) -> Self {
        self.ga.push(GaRequest { pool, quantity });
        self
    }

    /// Asks for best-available seats.
    pub fn best_available(mut self, best: BestAvailable) -> Self {
        self.best_available = Some(best);
        self
    }

    /// Sets the client reservation id (idempotency).
    pub fn client_reservation_id(mut self, id: ClientReservationId) -> Self {
        self.client_reservation_id = Some(id);
        self
    }

    /// Sets the hold time.
    pub fn ttl_seconds(mut self, ttl_seconds: u32) -> Self {
        self.ttl_seconds = Some(ttl_seconds);
        self
    }
}

/// Where a reservation is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationStatus {
    /// Holding its items until `expires_at`.
    Active,
    /// Turned into an order.
    Committed,
    /// Given up by its holder (or the application).
    Cancelled,
    /// Its hold lapsed.
    Expired,
}

impl fmt::Display for ReservationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReservationStatus::Active => "active",
            ReservationStatus::Committed => "committed",
            ReservationStatus::Cancelled => "cancelled",
            ReservationStatus::Expired => "expired",
        })
    }
}

/// A holder's claim on seats and GA units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// Made by the store.
    pub id: ReservationId,
    /// The event.
    pub event: EventId,
    /// Who holds it.
    pub holder: HolderId,
    /// Its status now (an active reservation past `expires_at` reads as expired).
    pub status: ReservationStatus,
    /// Its seats: the explicit ones in request order, then best-available ones in layout order.
    pub seats: Vec<SeatId>,
    /// Its GA units, in request order.
    pub ga: Vec<GaRequest>,
    /// When it was made.
    pub created_at: Timestamp,
    /// When its hold lapses (or lapsed).
    pub expires_at: Timestamp,
    /// The secret that commit, extend and cancel require. Returned only by the call that
    /// created the reservation: stores keep only what they need to check it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub token: Option<ReservationToken>,
    /// The client's id for the request that made it.
    pub client_reservation_id: Option<ClientReservationId>,
    /// The order that committing it made.
    pub order: Option<OrderId>,
}

impl Reservation {
    /// Seats plus GA units.
    pub fn item_count(&self) -> u32 {
        let seats = u32::try_from(self.seats.len()).unwrap_or(u32::MAX);
        self.ga
            .iter()
            .fold(seats, |sum, ga| sum.saturating_add(ga.quantity))
    }
}

/// What [`crate::InventoryStore::commit`] takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitRequest {
    /// The reservation's token.
    pub token: ReservationToken,
    /// The client's key: repeating it returns the first outcome.
    pub idempotency_key: IdempotencyKey,
    /// The application's payment reference.
    pub payment_id: Option<PaymentId>,
    /// Which seats to buy; `None`: all. The rest are released in the same step.
    pub seats: Option<Vec<SeatId>>,
    /// Which GA units to buy; `None`: all. The rest are released in the same step.
    pub ga: Option<Vec<GaRequest>>,
}

impl CommitRequest {
    /// A commit of every item, with `token` and `idempotency_key`.
    pub fn new(token: ReservationToken, idempotency_key: IdempotencyKey) -> Self {
        Self {
            token,
            idempotency_key,
            payment_id: None,
            seats: None,
            ga: None,
        }
    }

    /// Records the payment reference.
    pub fn payment_id(mut self, payment_id: PaymentId) -> Self {
        self.payment_id = Some(payment_id);
        self
    }
}

/// What a ticket admits to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketItem {
    /// An assigned seat.
    Seat(SeatId),
    /// One unit of a GA pool.
    Pool(PoolId),
}

/// Where a ticket is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    /// Good for entry.
    Valid,
    /// Scanned at the gate (once only).
    CheckedIn,
    /// Refunded; no longer good.
    Refunded,
}

/// One seat or GA unit of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// Made by the store.
    pub id: TicketId,
    /// The order it belongs to.
    pub order: OrderId,
    /// The event.
    pub event: EventId,
    /// Who owns it now (transfers change this).
    pub holder: HolderId,
    /// The seat or pool.
    pub item: TicketItem,
    /// The gate code; a transfer issues a new one so the old holder's copy stops working.
    pub code: TicketCode,
    /// Its status now.
    pub status: TicketStatus,
}

/// What committing a reservation makes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// Made by the store.
    pub id: OrderId,
    /// The event.
    pub event: EventId,
    /// The reservation it came from.
    pub reservation: ReservationId,
    /// Who bought it.
    pub holder: HolderId,
    /// The application's payment reference.
    pub payment_id: Option<PaymentId>,
    /// One per seat and per GA unit: seats in reservation order, then GA units.
    pub tickets: Vec<Ticket>,
    /// When it was made.
    pub created_at: Timestamp,
}

/// What [`crate::InventoryStore::refund`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    /// The order.
    pub order: OrderId,
    /// The tickets refunded by this call.
    pub tickets: Vec<TicketId>,
    /// Where their inventory went.
    pub to: RefundTo,
    /// When.
    pub refunded_at: Timestamp,
}

/// A seat's state as the public sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeatStatus {
    /// Free to reserve.
    Available,
    /// In a live reservation.
    Held,
    /// On a valid or checked-in ticket.
    Sold,
    /// Off sale (kills, comps, refunds under [`RefundTo::Blocked`]).
    Blocked,
}

/// A GA pool's counts. `held + sold + blocked + available == capacity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolAvailability {
    /// The pool.
    pub pool: PoolId,
    /// Its capacity now.
    pub capacity: u32,
    /// Units in live reservations.
    pub held: u32,
    /// Units on valid or checked-in tickets.
    pub sold: u32,
    /// Units off sale.
    pub blocked: u32,
    /// Units free to reserve.
    pub available: u32,
}

/// An event's inventory at one point of its change log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Availability {
    /// The event.
    pub event: EventId,
    /// The sequence number of the last change reflected here; follow the change log from it.
    pub seq: u64,
    /// Each seat's status, in the layout's order ([`Event::seats`]).
    pub seats: Vec<SeatStatus>,
    /// Each pool's counts, in the layout's order.
    pub pools: Vec<PoolAvailability>,
}

impl Availability {
    /// What is free to sell: seats available plus GA units available.
    pub fn free_units(&self) -> u64 {
        let seats = self
            .seats
            .iter()
            .filter(|status| **status == SeatStatus::Available)
            .count() as u64;
        let units: u64 = self
            .pools
            .iter()
            .map(|pool| u64::from(pool.available))
            .sum();
        seats + units
    }
}

/// One entry of an event's change log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The event.
    pub event: EventId,
    /// Gap-free, starting at 1 with [`ChangeKind::EventCreated`].
    pub seq: u64,
    /// When it happened (the store's clock).
    pub at: Timestamp,
    /// What happened.
    pub kind: ChangeKind,
}

/// What a change did. Replaying an event's changes in order from an empty layout yields
/// its availability.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
#[non_exhaustive]
pub enum ChangeKind {
    /// The event was created: every seat available, every pool at its first capacity.
    EventCreated,
    /// Items went from free to held.
    Reserved {
        /// The new reservation.
        reservation: ReservationId,
        /// Its holder.
        holder: HolderId,
        /// Seats now held.
        seats: Vec<SeatId>,
        /// GA units now held.
        ga: Vec<GaRequest>,
        /// When the hold lapses.
        expires_at: Timestamp,
    },
    /// A hold was extended.
    Extended {
        /// The reservation.
        reservation: ReservationId,
        /// The new end of the hold.
        expires_at: Timestamp,
    },
    /// A reservation became an order: its sold items went to sold, the rest to free.
    Committed {
        /// The reservation.
        reservation: ReservationId,
        /// The order made.
        order: OrderId,
        /// Seats sold.
        seats: Vec<SeatId>,
        /// GA units sold.
        ga: Vec<GaRequest>,
        /// Seats released (dropped at checkout).
        released_seats: Vec<SeatId>,
        /// GA units released (dropped at checkout).
        released_ga: Vec<GaRequest>,
        /// The reservation had expired and its items were free again (late commit): the
        /// sold items come from free inventory, not from held.
        after_expiry: bool,
    },
    /// A reservation was cancelled: its items went from held to free.
    Cancelled {
        /// The reservation.
        reservation: ReservationId,
        /// Seats freed.
        seats: Vec<SeatId>,
        /// GA units freed.
        ga: Vec<GaRequest>,
    },
    /// A reservation's hold lapsed: its items went from held to free.
    Expired {
        /// The reservation.
        reservation: ReservationId,
        /// Seats freed.
        seats: Vec<SeatId>,
        /// GA units freed.
        ga: Vec<GaRequest>,
    },
    /// Tickets were refunded: their items went from sold to free or blocked.
    Refunded {
        /// The order.
        order: OrderId,
        /// The tickets.
        tickets: Vec<TicketId>,
        /// Their seats.
        seats: Vec<SeatId>,
        /// Their GA units.
        ga: Vec<GaRequest>,
        /// Where the items went.
        to: RefundTo,
    },
    /// A ticket changed hands.
    Transferred {
        /// The ticket.
        ticket: TicketId,
        /// The old holder.
        from: HolderId,
        /// The new holder.
        to: HolderId,
    },
    /// A ticket was scanned at the gate.
    CheckedIn {
        /// The ticket.
        ticket: TicketId,
    },
    /// Seats went from free to blocked.
    SeatsBlocked {
        /// The seats whose state changed.
        seats: Vec<SeatId>,
    },
    /// Seats went from blocked to free.
    SeatsUnblocked {
        /// The seats whose state changed.
        seats: Vec<SeatId>,
    },
    /// A pool's capacity changed.
    PoolResized {
        /// The pool.
        pool: PoolId,
        /// The new capacity.
        capacity: u32,
    },
    /// A pool's blocked count was set.
    PoolBlocked {
        /// The pool.
        pool: PoolId,
        /// The new blocked count.
        blocked: u32,
    },
    /// A holder joined the event's waitlist, at its back.
    WaitlistJoined {
        /// The new entry.
        entry: WaitlistEntryId,
        /// Who waits.
        holder: HolderId,
        /// How many seats or units, all at once.
        quantity: u32,
        /// Seats in one row with consecutive numbers.
        adjacent: bool,
        /// Seats from this section only.
        section: Option<String>,
        /// Units of this GA pool instead of seats.
        pool: Option<PoolId>,
    },
    /// A waiting entry left the waitlist.
    WaitlistLeft {
        /// The entry.
        entry: WaitlistEntryId,
    },
    /// Freed items went from free to held by a new reservation offered to a waiting entry,
    /// which leaves the waitlist. The entry's token is the reservation's token.
    OfferMade {
        /// The new reservation.
        reservation: ReservationId,
        /// Its holder: the entry's.
        holder: HolderId,
        /// The entry served.
        entry: WaitlistEntryId,
        /// Seats now held.
        seats: Vec<SeatId>,
        /// GA units now held.
        ga: Vec<GaRequest>,
        /// When the offer lapses.
        expires_at: Timestamp,
    },
}
