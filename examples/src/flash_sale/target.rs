//! What the load generator drives: a store in this process, or a server over HTTP.

use std::sync::Arc;
use std::time::Duration;

use ticketing_core::{
    Availability, Change, CommitRequest, Error, Event, EventId, EventSpec, IdempotencyKey,
    InventoryStore, Order, OrderId, PaymentId, Reservation, ReservationId, ReservationToken,
    ReserveRequest, SeatId,
};

use ticketing_core::sweeper::{Sweeper, SweeperConfig, spawn_sweeper};

use super::SaleError;
use super::http::HttpTarget;

/// Changes read per call while fetching the log.
const CHANGES_PAGE: usize = 1_000;
/// Reservations one sweep step expires at most.
const SWEEP_STEP: usize = 1_000;

/// Why an operation did not succeed, as far as a buyer cares.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Failure {
    /// Some seats asked for are held or sold (the store names them).
    SeatsTaken(Vec<SeatId>),
    /// A GA pool (`ga`) or best available could not be served; `remaining` are free.
    SoldOut { ga: bool, remaining: u32 },
    /// The hold lapsed.
    Expired,
    /// The reservation is committed or cancelled already.
    NotActive,
    /// Too many requests: wait this long.
    RateLimited(Duration),
    /// The store or the connection failed; the call may have taken effect. Retry the same
    /// idempotent call.
    Transient(String),
    /// Anything else: a bug or a misconfiguration (the code and what it said).
    Other(String),
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        match error {
            Error::SeatUnavailable { seats } => Failure::SeatsTaken(seats),
            Error::SoldOut { pool, remaining } => Failure::SoldOut {
                ga: pool.is_some(),
                remaining,
            },
            Error::ReservationExpired { .. } => Failure::Expired,
            Error::ReservationNotActive { .. } => Failure::NotActive,
            Error::Backend { .. } => Failure::Transient(error.to_string()),
            other => Failure::Other(format!("{}: {other}", other.code())),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::SeatsTaken(seats) => write!(f, "seat_unavailable ({} seats)", seats.len()),
            Failure::SoldOut { remaining, .. } => write!(f, "sold_out ({remaining} remaining)"),
            Failure::Expired => f.write_str("reservation_expired"),
            Failure::NotActive => f.write_str("reservation_not_active"),
            Failure::RateLimited(wait) => write!(f, "rate_limited (retry after {wait:?})"),
            Failure::Transient(what) | Failure::Other(what) => f.write_str(what),
        }
    }
}

/// A reservation as its maker sees it.
#[derive(Debug, Clone)]
pub(crate) struct Hold {
    pub(crate) id: ReservationId,
    /// `None` when a retried reserve was answered by the first outcome without its token
    /// (the in-process stores hand a token out once).
    pub(crate) token: Option<ReservationToken>,
    pub(crate) seats: Vec<SeatId>,
}

impl Hold {
    fn from_reservation(reservation: Reservation) -> Self {
        Self {
            id: reservation.id,
            token: reservation.token,
            seats: reservation.seats,
        }
    }
}

/// What a commit sold.
#[derive(Debug, Clone)]
pub(crate) struct Sold {
    pub(crate) order: OrderId,
    pub(crate) seats: u32,
    pub(crate) ga_units: u32,
}

impl Sold {
    pub(crate) fn from_order(order: &Order) -> Self {
        let seats = order
            .tickets
            .iter()
            .filter(|ticket| matches!(ticket.item, ticketing_core::TicketItem::Seat(_)))
            .count();
        let seats = u32::try_from(seats).unwrap_or(u32::MAX);
        let total = u32::try_from(order.tickets.len()).unwrap_or(u32::MAX);
        Self {
            order: order.id.clone(),
            seats,
            ga_units: total - seats,
        }
    }
}

/// A store in this process (any backend, optionally behind `Coalescing`).
#[derive(Clone)]
pub struct StoreTarget {
    store: Arc<dyn InventoryStore>,
    label: String,
}

impl std::fmt::Debug for StoreTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreTarget")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

impl StoreTarget {
    async fn changes_through(&self, event: &EventId, seq: u64) -> Result<Vec<Change>, Failure> {
        let mut changes: Vec<Change> = Vec::new();
        while (changes.len() as u64) < seq {
            let after = changes.len() as u64;
            let page = self.store.changes(event, after, CHANGES_PAGE).await?;
            if page.is_empty() {
                break;
            }
            changes.extend(page);
        }
        changes.truncate(usize::try_from(seq).unwrap_or(usize::MAX));
        Ok(changes)
    }
}

/// Where the buyers go.
#[derive(Debug, Clone)]
pub enum Target {
    /// Straight to a store, in this process.
    Store(StoreTarget),
    /// To a ticketing server on this machine, over its REST API.
    Http(Box<HttpTarget>),
}

impl Target {
    /// A store in this process; `label` names it in the summary ("postgres, coalescing").
    pub fn store(store: Arc<dyn InventoryStore>, label: impl Into<String>) -> Self {
        Target::Store(StoreTarget {
            store,
            label: label.into(),
        })
    }

    /// For a store in this process, its expiry sweeper (as an embedding application runs
    /// one); a server runs its own.
    pub(crate) fn spawn_sweeper(&self) -> Option<Sweeper> {
        match self {
            Target::Store(target) => Some(spawn_sweeper(
                Arc::clone(&target.store),
                SweeperConfig::default(),
            )),
            Target::Http(_) => None,
        }
    }

    /// What the summary calls it.
    pub fn describe(&self) -> String {
        match self {
            Target::Store(target) => format!("{} (in-process)", target.label),
            Target::Http(target) => format!("{} (HTTP)", target.base()),
        }
    }

    pub(crate) async fn create_event(&self, spec: EventSpec) -> Result<Event, SaleError> {
        match self {
            Target::Store(target) => Ok(target.store.create_event(spec).await?),
            Target::Http(target) => target.create_event(spec).await,
        }
    }

    pub(crate) async fn reserve(&self, request: &ReserveRequest) -> Result<Hold, Failure> {
        match self {
            Target::Store(target) => target
                .store
                .reserve(request.clone())
                .await
                .map(Hold::from_reservation)
                .map_err(Failure::from),
            Target::Http(target) => target.reserve(request).await,
        }
    }

    pub(crate) async fn commit(
        &self,
        id: &ReservationId,
        token: &ReservationToken,
        key: &IdempotencyKey,
        payment: &PaymentId,
    ) -> Result<Sold, Failure> {
        match self {
            Target::Store(target) => {
                let request =
                    CommitRequest::new(token.clone(), key.clone()).payment_id(payment.clone());
                let order = target.store.commit(id, request).await?;
                Ok(Sold::from_order(&order))
            }
            Target::Http(target) => target.commit(id, token, key, payment).await,
        }
    }

    pub(crate) async fn cancel(
        &self,
        id: &ReservationId,
        token: &ReservationToken,
    ) -> Result<(), Failure> {
        match self {
            Target::Store(target) => Ok(target.store.cancel(id, token).await?),
            Target::Http(target) => target.cancel(id, token).await,
        }
    }

    /// Finalizes every lapsed hold; how many. Over HTTP the server's sweeper does this,
    /// and reading the seat map finalizes the event's lapsed holds first.
    pub(crate) async fn sweep(&self) -> Result<u64, Failure> {
        let Target::Store(target) = self else {
            return Ok(0);
        };
        let mut swept = 0;
        loop {
            let step = target.store.expire_due(SWEEP_STEP).await?;
            swept += step as u64;
            if step < SWEEP_STEP {
                return Ok(swept);
            }
        }
    }

    pub(crate) async fn availability(&self, event: &EventId) -> Result<Availability, Failure> {
        match self {
            Target::Store(target) => Ok(target.store.availability(event).await?),
            Target::Http(target) => target.availability(event).await,
        }
    }

    /// The event's change log from sequence 1 through `seq`.
    pub(crate) async fn changes_through(
        &self,
        event: &EventId,
        seq: u64,
    ) -> Result<Vec<Change>, Failure> {
        match self {
            Target::Store(target) => target.changes_through(event, seq).await,
            Target::Http(target) => target.changes_through(event, seq).await,
        }
    }

    pub(crate) async fn reservation(&self, id: &ReservationId) -> Result<Reservation, Failure> {
        match self {
            Target::Store(target) => Ok(target.store.reservation(id).await?),
            Target::Http(target) => target.reservation(id).await,
        }
    }

    pub(crate) async fn order(&self, id: &OrderId) -> Result<Order, Failure> {
        match self {
            Target::Store(target) => Ok(target.store.order(id).await?),
            Target::Http(target) => target.order(id).await,
        }
    }
}
