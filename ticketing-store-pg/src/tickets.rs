//! Tickets and administration: refund, transfer, check-in, block, pool resizes, and the
//! sweeper step. Each is one statement calling a function of the migrations.

use ticketing_core::{
    EventId, HolderId, OrderId, PoolId, Refund, Result, SeatId, Ticket, TicketCode, TicketId,
    Timestamp, validate,
};

use crate::reservations::retrying;
use crate::wire::decode;
use crate::{PgStore, to_db};

impl PgStore {
    /// Refunds some (`Some`) or all still-valid (`None`) tickets of an order, with the
    /// semantics of [`InventoryStore::refund`](ticketing_core::InventoryStore::refund).
    ///
    /// Errors: as the trait documents, and `backend`.
    pub async fn refund(&self, order: &OrderId, tickets: Option<&[TicketId]>) -> Result<Refund> {
        validate::check_refund(tickets)?;
        let tickets: Option<Vec<&str>> =
            tickets.map(|tickets| tickets.iter().map(TicketId::as_str).collect());
        let answer = self
            .call("refund", || {
                sqlx::query("SELECT ticketing_refund($1, $2, $3) AS answer")
                    .bind(self.now_param())
                    .bind(order.as_str())
                    .bind(tickets.clone())
            })
            .await?;
        decode("refund", answer)
    }

    /// Gives a valid ticket to another holder with a new code, with the semantics of
    /// [`InventoryStore::transfer`](ticketing_core::InventoryStore::transfer).
    ///
    /// Errors: as the trait documents, and `backend`.
    pub async fn transfer(&self, ticket: &TicketId, to: &HolderId) -> Result<Ticket> {
        let answer = self
            .call("transfer", || {
                sqlx::query("SELECT ticketing_transfer($1, $2, $3) AS answer")
                    .bind(self.now_param())
                    .bind(ticket.as_str())
                    .bind(to.as_str())
            })
            .await?;
        decode("transfer", answer)
    }

    /// Admits the ticket with this code, once.
    ///
    /// Errors: `not_found`, `conflict`, `backend`.
    pub async fn check_in(&self, code: &TicketCode) -> Result<Ticket> {
        let answer = self
            .call("check_in", || {
                sqlx::query("SELECT ticketing_check_in($1, $2) AS answer")
                    .bind(self.now_param())
                    .bind(code.as_str())
            })
            .await?;
        decode("check_in", answer)
    }

    /// Blocks or unblocks seats, with the semantics of
    /// [`InventoryStore::block`](ticketing_core::InventoryStore::block).
    ///
    /// Errors: as the trait documents, and `backend`.
    pub async fn block(&self, event: &EventId, seats: &[SeatId], blocked: bool) -> Result<()> {
        validate::check_block(seats)?;
        let seats: Vec<&str> = seats.iter().map(SeatId::as_str).collect();
        let answer = self
            .call("block", || {
                sqlx::query("SELECT ticketing_block($1, $2, $3, $4) AS answer")
                    .bind(self.now_param())
                    .bind(event.as_str())
                    .bind(seats.clone())
                    .bind(blocked)
            })
            .await?;
        decode::<Option<()>>("block", answer).map(|_| ())
    }

    /// Sets a pool's capacity; never below what it has held (live), sold and blocked.
    ///
    /// Errors: as [`InventoryStore::resize_pool`](ticketing_core::InventoryStore::resize_pool)
    /// documents, and `backend`.
    pub async fn resize_pool(&self, event: &EventId, pool: &PoolId, capacity: u32) -> Result<()> {
        self.set_pool("resize_pool", event, pool, capacity, true)
            .await
    }

    /// Sets how many of a pool's units are blocked.
    ///
    /// Errors: as [`InventoryStore::set_pool_blocked`](ticketing_core::InventoryStore::set_pool_blocked)
    /// documents, and `backend`.
    pub async fn set_pool_blocked(
        &self,
        event: &EventId,
        pool: &PoolId,
        blocked: u32,
    ) -> Result<()> {
        self.set_pool("set_pool_blocked", event, pool, blocked, false)
            .await
    }

    /// Stripes a GA pool's capacity over `stripes` counter rows (1: the pool's row alone).
    /// Reserves that run beside each other take a pool's units from a stripe no one else
    /// holds, so they do not queue on one row; what they may take never exceeds the pool's
    /// free units (migration 0014). New events get
    /// [`PgStoreConfig::ga_stripes`](crate::PgStoreConfig::ga_stripes).
    ///
    /// Errors: `invalid_request` (stripes outside 1 to [`GA_STRIPES_MAX`](crate::GA_STRIPES_MAX)),
    /// `not_found` (event, pool), `backend`.
    pub async fn set_pool_stripes(
        &self,
        event: &EventId,
        pool: &PoolId,
        stripes: u16,
    ) -> Result<()> {
        let stripes = crate::check_stripes(stripes)?;
        let answer = self
            .call("set_pool_stripes", || {
                sqlx::query("SELECT ticketing_set_pool_stripes($1, $2, $3) AS answer")
                    .bind(event.as_str())
                    .bind(pool.as_str())
                    .bind(i32::from(stripes))
            })
            .await?;
        decode::<Option<()>>("set_pool_stripes", answer).map(|_| ())
    }

    async fn set_pool(
        &self,
        operation: &'static str,
        event: &EventId,
        pool: &PoolId,
        value: u32,
        capacity: bool,
    ) -> Result<()> {
        validate::check_capacity(value)?;
        let value = i32::try_from(value).unwrap_or(i32::MAX);
        let answer = self
            .call(operation, || {
                sqlx::query("SELECT ticketing_set_pool($1, $2, $3, $4, $5) AS answer")
                    .bind(self.now_param())
                    .bind(event.as_str())
                    .bind(pool.as_str())
                    .bind(value)
                    .bind(capacity)
            })
            .await?;
        decode::<Option<()>>(operation, answer).map(|_| ())
    }

    /// Finalizes up to `limit` lapsed reservations, earliest first, forgets idempotency
    /// records past their retention and, with a change retention set, deletes each event's
    /// changes older than it keeps; returns how many reservations it expired. Safe on every instance at
    /// once: an event another transaction holds is skipped.
    ///
    /// Errors: `backend`.
    pub async fn expire_due(&self, limit: usize) -> Result<usize> {
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        let (expired, _pruned): (i32, i64) = retrying("expire_due", || {
            sqlx::query_as("SELECT ticketing_expire_due($1, $2, $3), ticketing_prune_changes($4)")
                .bind(self.now_param())
                .bind(limit)
                .bind(to_db(Timestamp::from_millis(self.idempotency_retention_ms)))
                .bind(self.change_retention)
                .fetch_one(self.pool())
        })
        .await?;
        Ok(usize::try_from(expired).unwrap_or(0))
    }
}
