//! The JSON on the wire: request bodies (unknown fields refused) and response documents.
//!
//! Field names follow the seed contracts (`client_reservation_id`, `user_id`, `seat_ids`,
//! `ttl_seconds`, `idempotency_key`, `payment_id`); times are RFC 3339 strings in UTC.
//! Ids are strings of 1 to 64 bytes of `A-Z a-z 0-9 - _ . : @ | +`.

use serde::{Deserialize, Serialize};
use ticketing_core::{
    Availability, BestAvailable, Error, Event, EventSummary, GaRequest, Order, PoolId, Reservation,
    SeatId, Ticket, TicketItem, Timestamp,
};
use utoipa::ToSchema;

/// A quantity of units from one GA pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GaItem {
    /// The pool's id.
    pub pool: String,
    /// How many units (at least 1).
    pub quantity: u32,
}

impl GaItem {
    pub(crate) fn to_core(&self) -> Result<GaRequest, Error> {
        Ok(GaRequest {
            pool: PoolId::new(&self.pool)?,
            quantity: self.quantity,
        })
    }

    fn from_core(ga: &GaRequest) -> Self {
        Self {
            pool: ga.pool.to_string(),
            quantity: ga.quantity,
        }
    }
}

/// "The best N seats": the first free ones in layout order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BestAvailableBody {
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

/// `POST /v1/events/{id}/reservations`: any mix of explicit seats, GA units and best
/// available, all or nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReserveBody {
    /// The client's id for this request: a repeat returns the first outcome.
    #[serde(default)]
    pub client_reservation_id: Option<String>,
    /// The holder, in development mode only; with JWT authentication the holder is the
    /// token's `sub` and this field, if sent, must equal it.
    #[serde(default)]
    pub user_id: Option<String>,
    /// Explicit seats.
    #[serde(default)]
    pub seat_ids: Vec<String>,
    /// GA units, at most one entry per pool.
    #[serde(default)]
    pub ga: Vec<GaItem>,
    /// Best-available seats.
    #[serde(default)]
    pub best_available: Option<BestAvailableBody>,
    /// The hold, in seconds (default: the event's, 300).
    #[serde(default)]
    pub ttl_seconds: Option<u32>,
}

impl BestAvailableBody {
    pub(crate) fn to_core(&self) -> BestAvailable {
        BestAvailable {
            count: self.count,
            adjacent: self.adjacent,
            section: self.section.clone(),
            category: self.category.clone(),
        }
    }
}

/// A reservation. `token` is present only in the answer that created it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReservationView {
    /// Its id.
    pub reservation_id: String,
    /// The secret that commit, extend and cancel need in the `Reservation-Token` header;
    /// returned once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// `active`, `committed`, `cancelled` or `expired`.
    pub status: String,
    /// The event.
    pub event_id: String,
    /// The holder.
    pub user_id: String,
    /// Held seats: explicit ones in request order, then best-available ones.
    pub seats: Vec<String>,
    /// Held GA units.
    pub ga: Vec<GaItem>,
    /// When it was made.
    pub created_at: String,
    /// When its hold lapses (or lapsed).
    pub expires_at: String,
    /// The client's id of the request that made it.
    pub client_reservation_id: Option<String>,
    /// The order that committing it made.
    pub order_id: Option<String>,
}

impl ReservationView {
    pub(crate) fn from_core(reservation: &Reservation) -> Self {
        Self {
            reservation_id: reservation.id.to_string(),
            token: reservation.token.as_ref().map(|token| token.expose()),
            status: reservation.status.to_string(),
            event_id: reservation.event.to_string(),
            user_id: reservation.holder.to_string(),
            seats: reservation.seats.iter().map(ToString::to_string).collect(),
            ga: reservation.ga.iter().map(GaItem::from_core).collect(),
            created_at: reservation.created_at.to_string(),
            expires_at: reservation.expires_at.to_string(),
            client_reservation_id: reservation
                .client_reservation_id
                .as_ref()
                .map(ToString::to_string),
            order_id: reservation.order.as_ref().map(ToString::to_string),
        }
    }
}

/// `POST /v1/reservations/{id}/commit`. The idempotency key comes from the
/// `Idempotency-Key` header or from `idempotency_key` (both: they must be equal).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommitBody {
    /// The seeds' body form of the idempotency key.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// The application's payment reference, recorded on the order.
    #[serde(default)]
    pub payment_id: Option<String>,
    /// Accepted for seed clients and ignored: payments are the application's.
    #[serde(default, skip_serializing)]
    pub payment_token: Option<String>,
    /// Buy only these seats (default: all); the rest are released.
    #[serde(default)]
    pub seat_ids: Option<Vec<String>>,
    /// Buy only these GA units (default: all); the rest are released.
    #[serde(default)]
    pub ga: Option<Vec<GaItem>>,
}

/// `POST /v1/reservations/{id}/extend`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendBody {
    /// The new hold, from now, in seconds; the total hold may not pass the event's maximum.
    pub ttl_seconds: u32,
}

/// A ticket: one seat or one GA unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TicketView {
    /// Its id.
    pub ticket_id: String,
    /// Its order.
    pub order_id: String,
    /// The event.
    pub event_id: String,
    /// Its holder now.
    pub user_id: String,
    /// The seat, for an assigned seat.
    pub seat_id: Option<String>,
    /// The pool, for a GA unit.
    pub pool: Option<String>,
    /// The gate code (secret: whoever shows it gets in).
    pub code: String,
    /// `valid`, `checked_in` or `refunded`.
    pub status: String,
}

fn snake(value: &impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(text)) => text,
        _ => String::new(),
    }
}

impl TicketView {
    pub(crate) fn from_core(ticket: &Ticket) -> Self {
        let (seat_id, pool) = match &ticket.item {
            TicketItem::Seat(seat) => (Some(seat.to_string()), None),
            TicketItem::Pool(pool) => (None, Some(pool.to_string())),
        };
        Self {
            ticket_id: ticket.id.to_string(),
            order_id: ticket.order.to_string(),
            event_id: ticket.event.to_string(),
            user_id: ticket.holder.to_string(),
            seat_id,
            pool,
            code: ticket.code.to_string(),
            status: snake(&ticket.status),
        }
    }
}

/// An order: what a commit made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderView {
    /// Its id.
    pub order_id: String,
    /// The event.
    pub event_id: String,
    /// The reservation it came from.
    pub reservation_id: String,
    /// The buyer.
    pub user_id: String,
    /// The application's payment reference.
    pub payment_id: Option<String>,
    /// One per seat and GA unit.
    pub tickets: Vec<TicketView>,
    /// When it was made.
    pub created_at: String,
}

impl OrderView {
    pub(crate) fn from_core(order: &Order) -> Self {
        Self {
            order_id: order.id.to_string(),
            event_id: order.event.to_string(),
            reservation_id: order.reservation.to_string(),
            user_id: order.holder.to_string(),
            payment_id: order.payment_id.as_ref().map(ToString::to_string),
            tickets: order.tickets.iter().map(TicketView::from_core).collect(),
            created_at: order.created_at.to_string(),
        }
    }
}

/// `POST /v1/orders/{id}/refund`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundBody {
    /// The tickets to refund; absent: every valid ticket of the order.
    #[serde(default)]
    pub ticket_ids: Option<Vec<String>>,
}

/// What a refund did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RefundView {
    /// The order.
    pub order_id: String,
    /// The tickets refunded by this call.
    pub ticket_ids: Vec<String>,
    /// Where their inventory went: `sale` or `blocked`.
    pub to: String,
    /// When.
    pub refunded_at: String,
}

impl RefundView {
    pub(crate) fn from_core(refund: &ticketing_core::Refund) -> Self {
        Self {
            order_id: refund.order.to_string(),
            ticket_ids: refund.tickets.iter().map(ToString::to_string).collect(),
            to: snake(&refund.to),
            refunded_at: refund.refunded_at.to_string(),
        }
    }
}

/// `POST /v1/tickets/{id}/transfer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    /// The new holder.
    pub to_user_id: String,
}

/// `POST /v1/tickets/check-in`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckInBody {
    /// The gate code on the ticket.
    pub code: String,
}

/// An assigned seat of a new event's layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeatBody {
    /// Unique within the event.
    pub seat_id: String,
    /// The section.
    #[serde(default)]
    pub section: String,
    /// The row within the section.
    #[serde(default)]
    pub row: String,
    /// The number within the row; adjacent seats have consecutive numbers.
    pub number: u32,
    /// The price category.
    #[serde(default)]
    pub category: String,
    /// Wheelchair accessible.
    #[serde(default)]
    pub accessible: bool,
    /// Where to draw it, horizontally.
    #[serde(default)]
    pub x: f32,
    /// Where to draw it, vertically.
    #[serde(default)]
    pub y: f32,
}

/// A GA pool of a new event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolBody {
    /// Unique within the event.
    pub pool: String,
    /// A name to show.
    #[serde(default)]
    pub name: String,
    /// Units it starts with.
    pub capacity: u32,
}

/// When an event is on sale (RFC 3339 bounds, either optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaleWindowBody {
    /// Opens at (inclusive).
    #[serde(default)]
    pub opens_at: Option<String>,
    /// Closes at (exclusive).
    #[serde(default)]
    pub closes_at: Option<String>,
}

/// An event's rules; every field optional (defaults: 300 s hold, 1800 s maximum, no
/// holder limits, `strict` late commit, refunds back to `sale`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyBody {
    /// Default hold.
    #[serde(default)]
    pub reservation_ttl_seconds: Option<u32>,
    /// Longest hold, extensions included.
    #[serde(default)]
    pub reservation_ttl_seconds_max: Option<u32>,
    /// Most seats and units one holder may have reserved plus bought.
    #[serde(default)]
    pub holder_seats_max: Option<u32>,
    /// Most live reservations one holder may have.
    #[serde(default)]
    pub holder_reservations_max: Option<u32>,
    /// `strict` or `if_still_available`.
    #[serde(default)]
    pub late_commit: Option<String>,
    /// `sale` or `blocked`.
    #[serde(default)]
    pub refund_to: Option<String>,
    /// Whether holders may join the event's waitlist (default off).
    #[serde(default)]
    pub waitlist: Option<bool>,
    /// How long a waitlist offer holds its items (default 900 s).
    #[serde(default)]
    pub waitlist_offer_ttl_seconds: Option<u32>,
}

/// `POST /v1/events` (admin).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEventBody {
    /// Unique within the store.
    pub event_id: String,
    /// A name to show.
    pub name: String,
    /// Assigned seats, in best-available order.
    #[serde(default)]
    pub seats: Vec<SeatBody>,
    /// GA pools.
    #[serde(default)]
    pub pools: Vec<PoolBody>,
    /// When it is on sale; absent: always.
    #[serde(default)]
    pub sale_window: Option<SaleWindowBody>,
    /// Its rules.
    #[serde(default)]
    pub policy: Option<PolicyBody>,
}

/// One event of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EventView {
    /// Its id.
    pub event_id: String,
    /// Its name.
    pub name: String,
    /// Assigned seats in its layout.
    pub seats: u32,
    /// GA pools.
    pub pools: u32,
    /// When it is on sale.
    pub sale_window: Option<SaleWindowBody>,
    /// When it was created.
    pub created_at: String,
}

fn window_view(window: Option<ticketing_core::SaleWindow>) -> Option<SaleWindowBody> {
    window.map(|window| SaleWindowBody {
        opens_at: window.opens_at.map(|at| at.to_string()),
        closes_at: window.closes_at.map(|at| at.to_string()),
    })
}

impl EventView {
    pub(crate) fn from_summary(summary: &EventSummary) -> Self {
        Self {
            event_id: summary.id.to_string(),
            name: summary.name.clone(),
            seats: summary.seats,
            pools: summary.pools,
            sale_window: window_view(summary.sale_window),
            created_at: summary.created_at.to_string(),
        }
    }
}

/// A page of events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EventList {
    /// Events ordered by id.
    pub events: Vec<EventView>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A seat on the seat map with its live status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SeatMapSeat {
    /// Its id.
    pub seat_id: String,
    /// Section.
    pub section: String,
    /// Row.
    pub row: String,
    /// Number.
    pub number: u32,
    /// Price category.
    pub category: String,
    /// Wheelchair accessible.
    pub accessible: bool,
    /// Drawing position.
    pub x: f32,
    /// Drawing position.
    pub y: f32,
    /// `available`, `held`, `sold` or `blocked`.
    pub status: String,
}

/// A GA pool's live counts (`available + held + sold + blocked == capacity`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PoolStatus {
    /// The pool.
    pub pool: String,
    /// Its name.
    pub name: String,
    /// Capacity now.
    pub capacity: u32,
    /// Free to reserve.
    pub available: u32,
    /// In live reservations.
    pub held: u32,
    /// Sold.
    pub sold: u32,
    /// Off sale.
    pub blocked: u32,
}

/// `GET /v1/events/{id}/seatmap`: layout, live status, pool counts, and the change
/// sequence number they reflect (follow `/changes?after={seq}` from it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SeatMap {
    /// The event.
    pub event_id: String,
    /// The last change reflected here.
    pub seq: u64,
    /// Seats in layout order.
    pub seats: Vec<SeatMapSeat>,
    /// Pools in layout order.
    pub pools: Vec<PoolStatus>,
}

impl SeatMap {
    pub(crate) fn build(event: &Event, availability: &Availability) -> Self {
        let seats = event
            .seats
            .iter()
            .zip(&availability.seats)
            .map(|(seat, status)| SeatMapSeat {
                seat_id: seat.id.to_string(),
                section: seat.section.clone(),
                row: seat.row.clone(),
                number: seat.number,
                category: seat.category.clone(),
                accessible: seat.accessible,
                x: seat.position.x,
                y: seat.position.y,
                status: snake(status),
            })
            .collect();
        let pools = availability
            .pools
            .iter()
            .map(|pool| PoolStatus {
                pool: pool.pool.to_string(),
                name: event
                    .pools
                    .iter()
                    .find(|spec| spec.id == pool.pool)
                    .map(|spec| spec.name.clone())
                    .unwrap_or_default(),
                capacity: pool.capacity,
                available: pool.available,
                held: pool.held,
                sold: pool.sold,
                blocked: pool.blocked,
            })
            .collect();
        Self {
            event_id: event.id.to_string(),
            seq: availability.seq,
            seats,
            pools,
        }
    }
}

/// `POST /v1/events/{id}/block` (admin).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlockBody {
    /// The seats.
    pub seat_ids: Vec<String>,
    /// `true` (default) blocks them, `false` unblocks.
    #[serde(default = "yes")]
    pub blocked: bool,
}

fn yes() -> bool {
    true
}

/// `PUT /v1/events/{id}/pools/{pool}` (admin): set either or both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolUpdateBody {
    /// New capacity.
    #[serde(default)]
    pub capacity: Option<u32>,
    /// New blocked (off-sale) count.
    #[serde(default)]
    pub blocked: Option<u32>,
}

/// `/healthz` and `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`, or why not.
    pub status: String,
}

/// An RFC 9457 problem document (`application/problem+json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// `urn:ticketing:{code}`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the problem type.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What happened, for people.
    pub detail: String,
    /// The stable code: the core's (`seat_unavailable`, `sold_out`, ...) or the adapter's
    /// (`unauthorized`, `missing_token`, `rate_limited`, `payload_too_large`, ...). Other
    /// members carry its data: `seat_ids`, `pool` and `remaining`, `expired_at`, `field`...
    pub code: String,
}

/// Parses an RFC 3339 time for `field`.
pub(crate) fn parse_time(field: &'static str, text: &str) -> Result<Timestamp, Error> {
    let time = humantime::parse_rfc3339_weak(text)
        .map_err(|error| Error::invalid(field, format!("not an RFC 3339 time: {error}")))?;
    let since_epoch = time
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| Error::invalid(field, "before 1970"))?;
    let millis = u64::try_from(since_epoch.as_millis())
        .map_err(|_| Error::invalid(field, "too far in the future"))?;
    Ok(Timestamp::from_millis(millis))
}

/// Parses seat ids for `seat_ids`.
pub(crate) fn seat_ids(ids: &[String]) -> Result<Vec<SeatId>, Error> {
    ids.iter().map(SeatId::new).collect()
}
