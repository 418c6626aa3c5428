//! The in-memory store: the embedded default.
//!
//! Buyers of different seats of one event do not wait for each other: each seat has its own
//! lock, claims take them in ascending order (so there are no deadlocks) and check
//! everything before changing anything (so a failed claim leaves nothing behind). The one
//! event-wide lock, the journal, is held only to decide GA counts and append the change.

mod admin;
mod event;
mod lifecycle;
mod order;
mod reservation;
mod reserve;
mod shards;
#[cfg(all(test, not(loom)))]
mod tests;
mod tickets;
mod waitlist;

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::domain::{
    Availability, Change, CommitRequest, Event, EventSpec, EventSummary, Order, Page, Refund,
    Reservation, ReserveRequest, Ticket,
};
use crate::error::{Entity, Error, Result};
use crate::id::{
    EventId, HolderId, OrderId, PoolId, ReservationId, SeatId, TicketCode, TicketId,
    WaitlistEntryId,
};
use crate::store::InventoryStore;
use crate::sync::{Arc, RwLock, StdArc};
use crate::time::{Clock, SystemClock, Timestamp};
use crate::token::ReservationToken;
use crate::validate;
use crate::waitlist::{WaitlistEntry, WaitlistJoined, WaitlistRequest, WaitlistStore};

use event::EventState;
use order::{OrderCell, TicketCell};
use reservation::ReservationCell;
use shards::Shards;

/// Settings of a [`MemoryStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryStoreConfig {
    /// How long client reservation ids and commit idempotency keys are remembered.
    pub idempotency_retention_seconds: u64,
    /// How many changes each event's log keeps; older ones are pruned
    /// (`changes` then answers `changes_pruned`).
    pub change_retention: usize,
}

impl Default for MemoryStoreConfig {
    fn default() -> Self {
        Self {
            idempotency_retention_seconds: 24 * 60 * 60,
            change_retention: 1_000_000,
        }
    }
}

impl MemoryStoreConfig {
    /// Sets how long idempotency records are kept.
    pub fn idempotency_retention_seconds(mut self, seconds: u64) -> Self {
        self.idempotency_retention_seconds = seconds;
        self
    }

    /// Sets how many changes each event keeps.
    pub fn change_retention(mut self, changes: usize) -> Self {
        self.change_retention = changes;
        self
    }
}

/// The in-memory [`InventoryStore`] and [`WaitlistStore`]: everything in this process,
/// nothing durable.
///
/// Use it embedded in one process, in tests, and as the reference for what other backends
/// must do. Every method completes without waiting on I/O; the `async` methods are ready at
/// once.
#[derive(Debug)]
pub struct MemoryStore {
    clock: StdArc<dyn Clock>,
    config: MemoryStoreConfig,
    events: RwLock<BTreeMap<EventId, Arc<EventState>>>,
    reservations: Shards<ReservationId, Arc<ReservationCell>>,
    orders: Shards<OrderId, Arc<OrderCell>>,
    tickets: Shards<TicketId, Arc<TicketCell>>,
    codes: Shards<TicketCode, Arc<TicketCell>>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// A store on the system clock with default settings.
    pub fn new() -> Self {
        Self::with_config(StdArc::new(SystemClock), MemoryStoreConfig::default())
    }

    /// A store on `clock` (a [`crate::ManualClock`] in tests) with default settings.
    pub fn with_clock(clock: StdArc<dyn Clock>) -> Self {
        Self::with_config(clock, MemoryStoreConfig::default())
    }

    /// A store on `clock` with `config`.
    pub fn with_config(clock: StdArc<dyn Clock>, config: MemoryStoreConfig) -> Self {
        Self {
            clock,
            config,
            events: RwLock::new(BTreeMap::new()),
            reservations: Shards::new(),
            orders: Shards::new(),
            tickets: Shards::new(),
            codes: Shards::new(),
        }
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn event_state(&self, event: &EventId) -> Result<Arc<EventState>> {
        self.events
            .read()
            .get(event)
            .cloned()
            .ok_or_else(|| Error::not_found(Entity::Event, event))
    }

    fn reservation_cell(&self, reservation: &ReservationId) -> Result<Arc<ReservationCell>> {
        self.reservations
            .get(reservation)
            .ok_or_else(|| Error::not_found(Entity::Reservation, reservation))
    }

    fn order_cell(&self, order: &OrderId) -> Result<Arc<OrderCell>> {
        self.orders
            .get(order)
            .ok_or_else(|| Error::not_found(Entity::Order, order))
    }

    fn ticket_cell(&self, ticket: &TicketId) -> Result<Arc<TicketCell>> {
        self.tickets
            .get(ticket)
            .ok_or_else(|| Error::not_found(Entity::Ticket, ticket))
    }

    /// The event of a reservation, order or ticket (events are never removed).
    fn owning_event(&self, event: &EventId) -> Arc<EventState> {
        match self.event_state(event) {
            Ok(state) => state,
            Err(_) => unreachable!("events are never removed, and every cell names one"),
        }
    }

    fn idempotency_retention_ms(&self) -> u64 {
        self.config
            .idempotency_retention_seconds
            .saturating_mul(1_000)
    }

    /// Whether an idempotency record made at `made_at` is still remembered at `now`.
    fn remembered(&self, made_at: Timestamp, now: Timestamp) -> bool {
        now.as_millis()
            < made_at
                .as_millis()
                .saturating_add(self.idempotency_retention_ms())
    }

    fn reservation_now(&self, reservation: &ReservationId) -> Result<Reservation> {
        let cell = self.reservation_cell(reservation)?;
        let event = self.owning_event(&cell.event);
        let state = cell.state.lock();
        Ok(cell.view(&event, &state, self.now(), None))
    }

    fn expire_due_now(&self, limit: usize) -> usize {
        let now = self.now();
        let events: Vec<Arc<EventState>> = self.events.read().values().cloned().collect();
        let mut expired = 0;
        for event in &events {
            if expired >= limit {
                break;
            }
            if event.may_have_due(now) {
                let gate = event.gate();
                expired += if gate.is_gated() {
                    self.finalize_lapsed(event, &gate, now, limit - expired)
                } else {
                    event.sweep(now, limit - expired)
                };
            }
        }
        let cutoff = Timestamp::from_millis(
            now.as_millis()
                .saturating_sub(self.idempotency_retention_ms()),
        );
        for event in &events {
            event.prune_idempotency(cutoff);
        }
        expired
    }
}

#[async_trait]
impl InventoryStore for MemoryStore {
    async fn create_event(&self, spec: EventSpec) -> Result<Event> {
        self.create_event_now(spec)
    }

    async fn event(&self, event: &EventId) -> Result<Event> {
        Ok(self.event_state(event)?.event.clone())
    }

    async fn events(&self, page: Page) -> Result<Vec<EventSummary>> {
        validate::check_page(&page)?;
        let events = self.events.read();
        let lower = match &page.after {
            Some(after) => std::ops::Bound::Excluded(after),
            None => std::ops::Bound::Unbounded,
        };
        Ok(events
            .range((lower, std::ops::Bound::Unbounded))
            .take(page.limit as usize)
            .map(|(_, state)| state.event.summary())
            .collect())
    }

    async fn resize_pool(&self, event: &EventId, pool: &PoolId, capacity: u32) -> Result<()> {
        self.set_pool_now(event, pool, admin::PoolField::Capacity, capacity)
    }

    async fn set_pool_blocked(&self, event: &EventId, pool: &PoolId, blocked: u32) -> Result<()> {
        self.set_pool_now(event, pool, admin::PoolField::Blocked, blocked)
    }

    async fn block(&self, event: &EventId, seats: &[SeatId], blocked: bool) -> Result<()> {
        self.block_now(event, seats, blocked)
    }

    async fn reserve(&self, request: ReserveRequest) -> Result<Reservation> {
        self.reserve_now(request)
    }

    async fn reserve_batch(&self, requests: Vec<ReserveRequest>) -> Vec<Result<Reservation>> {
        if let Err(error) = validate::check_batch_size(requests.len()) {
            return requests.iter().map(|_| Err(error.clone())).collect();
        }
        requests
            .into_iter()
            .map(|request| self.reserve_now(request))
            .collect()
    }

    async fn commit(&self, reservation: &ReservationId, request: CommitRequest) -> Result<Order> {
        self.commit_now(reservation, request)
    }

    async fn extend(
        &self,
        reservation: &ReservationId,
        token: &ReservationToken,
        ttl_seconds: u32,
    ) -> Result<Reservation> {
        self.extend_now(reservation, token, ttl_seconds)
    }

    async fn cancel(&self, reservation: &ReservationId, token: &ReservationToken) -> Result<()> {
        self.cancel_now(reservation, token)
    }

    async fn refund(&self, order: &OrderId, tickets: Option<&[TicketId]>) -> Result<Refund> {
        self.refund_now(order, tickets)
    }

    async fn transfer(&self, ticket: &TicketId, to: &HolderId) -> Result<Ticket> {
        self.transfer_now(ticket, to)
    }

    async fn check_in(&self, code: &TicketCode) -> Result<Ticket> {
        self.check_in_now(code)
    }

    async fn expire_due(&self, limit: usize) -> Result<usize> {
        Ok(self.expire_due_now(limit))
    }

    async fn availability(&self, event: &EventId) -> Result<Availability> {
        let state = self.event_state(event)?;
        let now = self.now();
        let gate = self.enter_read(&state, now);
        if !gate.is_gated() {
            state.sweep_if_due(now);
        }
        let availability = state.availability();
        drop(gate);
        Ok(availability)
    }

    async fn changes(&self, event: &EventId, after: u64, limit: usize) -> Result<Vec<Change>> {
        validate::check_changes_limit(limit)?;
        self.event_state(event)?.changes(after, limit)
    }

    async fn reservation(&self, reservation: &ReservationId) -> Result<Reservation> {
        self.reservation_now(reservation)
    }

    async fn order(&self, order: &OrderId) -> Result<Order> {
        Ok(self.order_cell(order)?.view())
    }

    async fn ticket(&self, ticket: &TicketId) -> Result<Ticket> {
        Ok(self.ticket_cell(ticket)?.snapshot())
    }
}

#[async_trait]
impl WaitlistStore for MemoryStore {
    async fn waitlist_join(&self, request: WaitlistRequest) -> Result<WaitlistJoined> {
        self.waitlist_join_now(request)
    }

    async fn waitlist_entry(
        &self,
        event: &EventId,
        entry: &WaitlistEntryId,
    ) -> Result<WaitlistEntry> {
        self.waitlist_entry_now(event, entry)
    }

    async fn waitlist_leave(
        &self,
        event: &EventId,
        entry: &WaitlistEntryId,
        holder: &HolderId,
    ) -> Result<()> {
        self.waitlist_leave_now(event, entry, holder)
    }
}
