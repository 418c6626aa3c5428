//! What the load generator drives: a store in this process, or a server over HTTP.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ticketing_core::sweeper::{
    RoomSweeperStats, Sweeper, SweeperConfig, spawn_room_sweeper, spawn_sweeper,
};
use ticketing_core::{
    Availability, Change, Clock, CommitRequest, Error, Event, EventId, EventSpec, HolderId,
    IdempotencyKey, InventoryStore, Order, OrderId, Pass, PassError, PassKey, PaymentId,
    QueueState, QueueStatus, QueueTicketId, Reservation, ReservationId, ReservationToken,
    ReserveRequest, RoomSettings, SeatId, SystemClock, WaitingRoom,
};

use super::SaleError;
use super::http::HttpTarget;

/// Changes read per call while fetching the log.
const CHANGES_PAGE: usize = 1_000;
/// Reservations one sweep step expires at most.
const SWEEP_STEP: usize = 1_000;
/// The pause between the admission steps of an in-process room (a server runs its own).
const ROOM_STEP_INTERVAL: Duration = Duration::from_millis(100);

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
    /// The event is gated and the admission pass was missing, forged or lapsed (the
    /// code: `pass_required`, `invalid_pass`, `pass_expired`).
    PassRefused(&'static str),
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
            Failure::PassRefused(code) => f.write_str(code),
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

/// Where a queued buyer stands, as far as it cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Place {
    /// In the queue (or the pre-queue).
    Waiting,
    /// The room has nothing left to sell.
    SoldOut,
    /// Admitted: the pass to send on reserve.
    Admitted(Pass),
    /// The pass lapsed, or the visitor left.
    Gone,
}

/// A pass refused for `error`, as a failure.
fn refused(error: PassError) -> Failure {
    Failure::PassRefused(error.code())
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

/// A store in this process (any backend, optionally behind `Coalescing`), and the waiting
/// rooms on the same backend when `--queue` needs them.
#[derive(Clone)]
pub struct StoreTarget {
    store: Arc<dyn InventoryStore>,
    label: String,
    rooms: Option<Arc<dyn WaitingRoom>>,
    /// Signs the passes of admitted buyers and checks them on reserve, as an embedding
    /// application (or the HTTP adapter) does.
    pass_key: Arc<PassKey>,
    /// The event gated by a room, once [`Target::configure_room`] gated it.
    gated: Arc<OnceLock<EventId>>,
}

impl std::fmt::Debug for StoreTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreTarget")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

impl StoreTarget {
    fn rooms(&self) -> Result<&Arc<dyn WaitingRoom>, Failure> {
        self.rooms
            .as_ref()
            .ok_or_else(|| Failure::Other("this store target has no waiting room".to_owned()))
    }

    /// Where `state` stands; an admitted visitor gets its pass, signed here.
    fn place(&self, state: &QueueState) -> Place {
        match state.status {
            QueueStatus::PreQueue { .. } | QueueStatus::Waiting { .. } => Place::Waiting,
            QueueStatus::SoldOut => Place::SoldOut,
            QueueStatus::Admitted { pass_expires_at } => Place::Admitted(self.pass_key.sign(
                &state.ticket.event,
                &state.ticket.visitor,
                pass_expires_at,
            )),
            QueueStatus::Lapsed | QueueStatus::Left => Place::Gone,
        }
    }

    /// On the gated event, `pass` must admit the request's holder now.
    fn check_pass(&self, request: &ReserveRequest, pass: Option<&Pass>) -> Result<(), Failure> {
        if self.gated.get() != Some(&request.event) {
            return Ok(());
        }
        let pass = pass.ok_or(refused(PassError::Missing))?;
        self.pass_key
            .verify(pass, &request.event, &request.holder, SystemClock.now())
            .map(|_| ())
            .map_err(refused)
    }

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
            rooms: None,
            pass_key: Arc::new(PassKey::random()),
            gated: Arc::new(OnceLock::new()),
        })
    }

    /// For a store in this process, the waiting rooms `--queue` sends the buyers through:
    /// on the same backend (`MemoryWaitingRoom`, `PgStore::waiting_room`,
    /// `RedisWaitingRoom`). The sale gates its event, runs the rooms' admission steps
    /// (`ticketing_core::sweeper::spawn_room_sweeper`), signs the passes of admitted buyers
    /// and checks them on reserve. A server over HTTP has rooms of its own: there this
    /// changes nothing.
    pub fn with_rooms(self, rooms: Arc<dyn WaitingRoom>) -> Self {
        match self {
            Target::Store(target) => Target::Store(StoreTarget {
                rooms: Some(rooms),
                ..target
            }),
            Target::Http(target) => Target::Http(target),
        }
    }

    /// Gates `event` with a room of `settings`: in this process, or on the server (its
    /// admin route).
    pub(crate) async fn configure_room(
        &self,
        event: &EventId,
        settings: &RoomSettings,
    ) -> Result<(), SaleError> {
        match self {
            Target::Store(target) => {
                let rooms = target.rooms.as_ref().ok_or_else(|| {
                    SaleError::Invalid(
                        "--queue: this in-process store has no waiting room (Target::with_rooms)"
                            .to_owned(),
                    )
                })?;
                rooms.configure(event, *settings).await?;
                if target.gated.set(event.clone()).is_err() {
                    return Err(SaleError::Invalid(
                        "a target gates one sale's event: open a new one per sale".to_owned(),
                    ));
                }
                Ok(())
            }
            Target::Http(target) => target.configure_room(event, settings).await,
        }
    }

    /// For a store in this process whose event is gated, the rooms' admission steps; a
    /// server runs its own.
    pub(crate) fn spawn_room_sweeper(&self) -> Option<Sweeper<RoomSweeperStats>> {
        let Target::Store(target) = self else {
            return None;
        };
        let rooms = target.rooms.as_ref()?;
        target.gated.get()?;
        Some(spawn_room_sweeper(
            Arc::clone(rooms),
            Arc::clone(&target.store),
            ROOM_STEP_INTERVAL,
            |_, _| {},
        ))
    }

    /// Joins `event`'s room as `visitor`: the ticket, and where it stands.
    pub(crate) async fn join(
        &self,
        event: &EventId,
        visitor: &HolderId,
    ) -> Result<(QueueTicketId, Place), Failure> {
        match self {
            Target::Store(target) => {
                let rooms = target.rooms()?;
                let ticket = rooms.join(event, visitor).await?;
                let state = rooms.status(&ticket.id).await?;
                Ok((ticket.id, target.place(&state)))
            }
            Target::Http(target) => target.join(event, visitor).await,
        }
    }

    /// Where a queue ticket stands.
    pub(crate) async fn queue_status(&self, ticket: &QueueTicketId) -> Result<Place, Failure> {
        match self {
            Target::Store(target) => {
                let state = target.rooms()?.status(ticket).await?;
                Ok(target.place(&state))
            }
            Target::Http(target) => target.queue_status(ticket).await,
        }
    }

    /// Leaves the queue, or gives the pass back.
    pub(crate) async fn leave(&self, ticket: &QueueTicketId) -> Result<(), Failure> {
        match self {
            Target::Store(target) => Ok(target.rooms()?.leave(ticket).await?),
            Target::Http(target) => target.leave(ticket).await,
        }
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

    /// Reserves; `pass` is the buyer's admission pass when the event is gated.
    pub(crate) async fn reserve(
        &self,
        request: &ReserveRequest,
        pass: Option<&Pass>,
    ) -> Result<Hold, Failure> {
        match self {
            Target::Store(target) => {
                target.check_pass(request, pass)?;
                target
                    .store
                    .reserve(request.clone())
                    .await
                    .map(Hold::from_reservation)
                    .map_err(Failure::from)
            }
            Target::Http(target) => target.reserve(request, pass).await,
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
