//! [`InventoryStore`] for [`PgStore`]: each method is the inherent method of the same name.

use async_trait::async_trait;
use ticketing_core::{
    Availability, Change, CommitRequest, Event, EventId, EventSpec, EventSummary, HolderId,
    InventoryStore, Order, OrderId, Page, PoolId, Refund, Reservation, ReservationId,
    ReservationToken, ReserveRequest, Result, SeatId, Ticket, TicketCode, TicketId,
};

use crate::PgStore;

#[async_trait]
impl InventoryStore for PgStore {
    async fn create_event(&self, spec: EventSpec) -> Result<Event> {
        PgStore::create_event(self, spec).await
    }

    async fn event(&self, event: &EventId) -> Result<Event> {
        PgStore::event(self, event).await
    }

    async fn events(&self, page: Page) -> Result<Vec<EventSummary>> {
        PgStore::events(self, page).await
    }

    async fn resize_pool(&self, event: &EventId, pool: &PoolId, capacity: u32) -> Result<()> {
        PgStore::resize_pool(self, event, pool, capacity).await
    }

    async fn set_pool_blocked(&self, event: &EventId, pool: &PoolId, blocked: u32) -> Result<()> {
        PgStore::set_pool_blocked(self, event, pool, blocked).await
    }

    async fn block(&self, event: &EventId, seats: &[SeatId], blocked: bool) -> Result<()> {
        PgStore::block(self, event, seats, blocked).await
    }

    async fn reserve(&self, request: ReserveRequest) -> Result<Reservation> {
        PgStore::reserve(self, request).await
    }

    async fn reserve_batch(&self, requests: Vec<ReserveRequest>) -> Vec<Result<Reservation>> {
        PgStore::reserve_batch(self, requests).await
    }

    async fn commit(&self, reservation: &ReservationId, request: CommitRequest) -> Result<Order> {
        PgStore::commit(self, reservation, request).await
    }

    async fn commit_batch(
        &self,
        commits: Vec<(ReservationId, CommitRequest)>,
    ) -> Vec<Result<Order>> {
        PgStore::commit_batch(self, commits).await
    }

    fn batches_commits(&self) -> bool {
        true
    }

    async fn extend(
        &self,
        reservation: &ReservationId,
        token: &ReservationToken,
        ttl_seconds: u32,
    ) -> Result<Reservation> {
        PgStore::extend(self, reservation, token, ttl_seconds).await
    }

    async fn cancel(&self, reservation: &ReservationId, token: &ReservationToken) -> Result<()> {
        PgStore::cancel(self, reservation, token).await
    }

    async fn refund(&self, order: &OrderId, tickets: Option<&[TicketId]>) -> Result<Refund> {
        PgStore::refund(self, order, tickets).await
    }

    async fn transfer(&self, ticket: &TicketId, to: &HolderId) -> Result<Ticket> {
        PgStore::transfer(self, ticket, to).await
    }

    async fn check_in(&self, code: &TicketCode) -> Result<Ticket> {
        PgStore::check_in(self, code).await
    }

    async fn expire_due(&self, limit: usize) -> Result<usize> {
        PgStore::expire_due(self, limit).await
    }

    async fn availability(&self, event: &EventId) -> Result<Availability> {
        PgStore::availability(self, event).await
    }

    async fn changes(&self, event: &EventId, after: u64, limit: usize) -> Result<Vec<Change>> {
        PgStore::changes(self, event, after, limit).await
    }

    async fn reservation(&self, reservation: &ReservationId) -> Result<Reservation> {
        PgStore::reservation(self, reservation).await
    }

    async fn order(&self, order: &OrderId) -> Result<Order> {
        PgStore::order(self, order).await
    }

    async fn ticket(&self, ticket: &TicketId) -> Result<Ticket> {
        PgStore::ticket(self, ticket).await
    }
}
