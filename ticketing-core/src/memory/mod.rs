//! The in-memory store (stub while under construction).
use crate::*;
use async_trait::async_trait;
use std::sync::Arc;

/// Settings of a [`MemoryStore`].
#[derive(Debug, Clone)]
pub struct MemoryStoreConfig {
    /// How long idempotency records are kept.
    pub idempotency_retention_seconds: u64,
    /// Changes kept per event.
    pub change_retention: usize,
}

/// The in-memory store.
#[derive(Debug)]
pub struct MemoryStore {
    clock: Arc<dyn Clock>,
}

impl MemoryStore {
    /// A store on the system clock.
    pub fn new() -> Self {
        Self {
            clock: Arc::new(SystemClock),
        }
    }
    /// A store on `clock`.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self { clock }
    }
}
impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

fn stub<T>() -> Result<T> {
    Err(Error::invalid("stub", "under construction"))
}

#[async_trait]
impl InventoryStore for MemoryStore {
    async fn create_event(&self, _spec: EventSpec) -> Result<Event> {
        let _ = &self.clock;
        stub()
    }
    async fn event(&self, _e: &EventId) -> Result<Event> {
        stub()
    }
    async fn events(&self, _p: Page) -> Result<Vec<EventSummary>> {
        stub()
    }
    async fn resize_pool(&self, _e: &EventId, _p: &PoolId, _c: u32) -> Result<()> {
        stub()
    }
    async fn set_pool_blocked(&self, _e: &EventId, _p: &PoolId, _c: u32) -> Result<()> {
        stub()
    }
    async fn block(&self, _e: &EventId, _s: &[SeatId], _b: bool) -> Result<()> {
        stub()
    }
    async fn reserve(&self, _r: ReserveRequest) -> Result<Reservation> {
        stub()
    }
    async fn commit(&self, _r: &ReservationId, _c: CommitRequest) -> Result<Order> {
        stub()
    }
    async fn extend(
        &self,
        _r: &ReservationId,
        _t: &ReservationToken,
        _s: u32,
    ) -> Result<Reservation> {
        stub()
    }
    async fn cancel(&self, _r: &ReservationId, _t: &ReservationToken) -> Result<()> {
        stub()
    }
    async fn refund(&self, _o: &OrderId, _t: Option<&[TicketId]>) -> Result<Refund> {
        stub()
    }
    async fn transfer(&self, _t: &TicketId, _h: &HolderId) -> Result<Ticket> {
        stub()
    }
    async fn check_in(&self, _c: &TicketCode) -> Result<Ticket> {
        stub()
    }
    async fn expire_due(&self, _l: usize) -> Result<usize> {
        stub()
    }
    async fn availability(&self, _e: &EventId) -> Result<Availability> {
        stub()
    }
    async fn changes(&self, _e: &EventId, _a: u64, _l: usize) -> Result<Vec<Change>> {
        stub()
    }
    async fn reservation(&self, _r: &ReservationId) -> Result<Reservation> {
        stub()
    }
    async fn order(&self, _o: &OrderId) -> Result<Order> {
        stub()
    }
    async fn ticket(&self, _t: &TicketId) -> Result<Ticket> {
        stub()
    }
}
