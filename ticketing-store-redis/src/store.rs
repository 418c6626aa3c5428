//! [`InventoryStore`] for [`RedisStore`]: each method is the inherent method of the same name.

use async_trait::async_trait;
use ticketing_core::{
    Availability, Change, CommitRequest, Event, EventId, EventSpec, EventSummary, HolderId,
    InventoryStore, Order, OrderId, Page, PoolId, Refund, Reservation, ReservationId,
    ReservationToken, ReserveRequest, Result, SeatId, Ticket, TicketCode, TicketId,
};

use crate::RedisStore;

#[async_trait]
impl InventoryStore for RedisStore {
    async fn create_event(&self, spec: EventSpec) -> Result<Event> {
        RedisStore::create_event(self, spec).await
    }

    async fn event(&self, event: &EventId) -> Result<Event> {
        RedisStore::event(self, event).await
    }

    async fn events(&self, page: Page) -> Result<Vec<EventSummary>> {
        RedisStore::events(self, page).await
    }

    async fn resize_pool(&self, event: &EventId, pool: &PoolId, capacity: u32) -> Result<()> {
        RedisStore::resize_pool(self, event, pool, capacity).await
    }

    async fn set_pool_blocked(&self, event: &EventId, pool: &PoolId, blocked: u32) -> Result<()> {
        RedisStore::set_pool_blocked(self, event, pool, blocked).await
    }

    async fn block(&self, event: &EventId, seats: &[SeatId], blocked: bool) -> Result<()> {
        RedisStore::block(self, event, seats, blocked).await
    }

    async fn reserve(&self, request: ReserveRequest) -> Result<Reservation> {
        RedisStore::reserve(self, request).await
    }

    async fn reserve_batch(&self, requests: Vec<ReserveRequest>) -> Vec<Result<Reservation>> {
        RedisStore::reserve_batch(self, requests).await
    }

    async fn commit(&self, reservation: &ReservationId, request: CommitRequest) -> Result<Order> {
        RedisStore::commit(self, reservation, request).await
    }

    async fn extend(
        &self,
        reservation: &ReservationId,
        token: &ReservationToken,
        ttl_seconds: u32,
    ) -> Result<Reservation> {
        RedisStore::extend(self, reservation, token, ttl_seconds).await
    }

    async fn cancel(&self, reservation: &ReservationId, token: &ReservationToken) -> Result<()> {
        RedisStore::cancel(self, reservation, token).await
    }

    async fn refund(&self, order: &OrderId, tickets: Option<&[TicketId]>) -> Result<Refund> {
        RedisStore::refund(self, order, tickets).await
    }

    async fn transfer(&self, ticket: &TicketId, to: &HolderId) -> Result<Ticket> {
        RedisStore::transfer(self, ticket, to).await
    }

    async fn check_in(&self, code: &TicketCode) -> Result<Ticket> {
        RedisStore::check_in(self, code).await
    }

    async fn expire_due(&self, limit: usize) -> Result<usize> {
        RedisStore::expire_due(self, limit).await
    }

    async fn availability(&self, event: &EventId) -> Result<Availability> {
        RedisStore::availability(self, event).await
    }

    async fn changes(&self, event: &EventId, after: u64, limit: usize) -> Result<Vec<Change>> {
        RedisStore::changes(self, event, after, limit).await
    }

    async fn reservation(&self, reservation: &ReservationId) -> Result<Reservation> {
        RedisStore::reservation(self, reservation).await
    }

    async fn order(&self, order: &OrderId) -> Result<Order> {
        RedisStore::order(self, order).await
    }

    async fn ticket(&self, ticket: &TicketId) -> Result<Ticket> {
        RedisStore::ticket(self, ticket).await
    }
}
