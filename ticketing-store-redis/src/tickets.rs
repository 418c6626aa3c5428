//! Tickets and administration: refund, transfer, check-in, block, pool settings, and the
//! sweeper step.

use std::collections::BTreeMap;

use serde::Deserialize;
use ticketing_core::{
    Entity, Error, EventId, HolderId, OrderId, PoolId, Refund, Result, SeatId, Ticket, TicketCode,
    TicketId, validate,
};

use crate::connection::SCRIPTS;
use crate::events::json_text;
use crate::{RedisStore, Repeat, keys, wire};

#[derive(Deserialize)]
struct Peek {
    due: Vec<(u64, String)>,
    stale: bool,
}

#[derive(Deserialize)]
struct Swept {
    expired: usize,
}

impl RedisStore {
    /// Refunds some (`Some`) or all still-valid (`None`) tickets of an order, with the
    /// semantics of [`InventoryStore::refund`](ticketing_core::InventoryStore::refund).
    ///
    /// Errors: as the trait documents, and `backend`.
    pub async fn refund(&self, order: &OrderId, tickets: Option<&[TicketId]>) -> Result<Refund> {
        validate::check_refund(tickets)?;
        let tag =
            keys::tag_of(order.as_str()).ok_or_else(|| Error::not_found(Entity::Order, order))?;
        let named = match tickets {
            Some(tickets) => json_text(&tickets)?,
            None => String::new(),
        };
        let now = self.now_arg();
        let args: [&[u8]; 3] = [now.as_bytes(), order.as_str().as_bytes(), named.as_bytes()];
        let answer = self
            .run(
                "refund",
                &SCRIPTS.refund,
                &self.keys.event(tag),
                &args,
                Repeat::Unsafe,
            )
            .await?;
        wire::decode("refund", wire::parse("refund", &answer)?)
    }

    /// Gives a valid ticket to another holder with a new code, with the semantics of
    /// [`InventoryStore::transfer`](ticketing_core::InventoryStore::transfer).
    ///
    /// Errors: as the trait documents, and `backend`.
    pub async fn transfer(&self, ticket: &TicketId, to: &HolderId) -> Result<Ticket> {
        let tag = keys::tag_of(ticket.as_str())
            .ok_or_else(|| Error::not_found(Entity::Ticket, ticket))?;
        let code = keys::ticket_code(tag)?;
        let now = self.now_arg();
        let args: [&[u8]; 4] = [
            now.as_bytes(),
            ticket.as_str().as_bytes(),
            to.as_str().as_bytes(),
            code.as_str().as_bytes(),
        ];
        let answer = self
            .run(
                "transfer",
                &SCRIPTS.transfer,
                &self.keys.event(tag),
                &args,
                Repeat::Unsafe,
            )
            .await?;
        wire::decode("transfer", wire::parse("transfer", &answer)?)
    }

    /// Admits the ticket with this code, once.
    ///
    /// Errors: `not_found`, `conflict`, `backend`.
    pub async fn check_in(&self, code: &TicketCode) -> Result<Ticket> {
        let tag =
            keys::tag_of(code.as_str()).ok_or_else(|| Error::not_found(Entity::Ticket, code))?;
        let now = self.now_arg();
        let args: [&[u8]; 2] = [now.as_bytes(), code.as_str().as_bytes()];
        let answer = self
            .run(
                "check_in",
                &SCRIPTS.check_in,
                &self.keys.event(tag),
                &args,
                Repeat::Unsafe,
            )
            .await?;
        wire::decode("check_in", wire::parse("check_in", &answer)?)
    }

    /// Blocks or unblocks seats, with the semantics of
    /// [`InventoryStore::block`](ticketing_core::InventoryStore::block).
    ///
    /// Errors: as the trait documents, and `backend`.
    pub async fn block(&self, event: &EventId, seats: &[SeatId], blocked: bool) -> Result<()> {
        validate::check_block(seats)?;
        let (now, seats) = (self.now_arg(), json_text(&seats)?);
        let args: [&[u8]; 4] = [
            now.as_bytes(),
            event.as_str().as_bytes(),
            seats.as_bytes(),
            if blocked { b"1" } else { b"0" },
        ];
        let keys = self.keys.event(&keys::tag(event));
        // Blocking blocked seats or unblocking free ones changes nothing: safe to repeat.
        let answer = self
            .run("block", &SCRIPTS.block, &keys, &args, Repeat::Safe)
            .await?;
        wire::decode("block", wire::parse("block", &answer)?)
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

    async fn set_pool(
        &self,
        operation: &'static str,
        event: &EventId,
        pool: &PoolId,
        value: u32,
        capacity: bool,
    ) -> Result<()> {
        validate::check_capacity(value)?;
        let (now, value) = (self.now_arg(), value.to_string());
        let args: [&[u8]; 5] = [
            now.as_bytes(),
            event.as_str().as_bytes(),
            pool.as_str().as_bytes(),
            value.as_bytes(),
            if capacity { b"1" } else { b"0" },
        ];
        let keys = self.keys.event(&keys::tag(event));
        let answer = self
            .run(operation, &SCRIPTS.set_pool, &keys, &args, Repeat::Safe)
            .await?;
        wire::decode(operation, wire::parse(operation, &answer)?)
    }

    /// Finalizes up to `limit` lapsed reservations, earliest first across events, and
    /// forgets idempotency records past their retention; returns how many it expired.
    ///
    /// Two passes over the listed events: a look at each event's earliest lapses (one call
    /// per event), then one sweep call per event with a share of the limit or stale
    /// records. Safe on every instance at once: each sweep re-checks under the script.
    ///
    /// Errors: `backend`.
    pub async fn expire_due(&self, limit: usize) -> Result<usize> {
        let (now, retention) = (self.now_arg(), self.retention_ms.to_string());
        let limit_text = limit.to_string();
        let mut due: Vec<(u64, String, usize)> = Vec::new();
        let mut stale: Vec<bool> = Vec::new();
        let events = self.event_ids().await?;
        for (index, event) in events.iter().enumerate() {
            let args: [&[u8]; 3] = [now.as_bytes(), limit_text.as_bytes(), retention.as_bytes()];
            let keys = self.listed_event_keys(event);
            let answer = self
                .run("expire_due", &SCRIPTS.peek, &keys, &args, Repeat::Safe)
                .await?;
            let peek: Peek = wire::decode("expire_due", wire::parse("expire_due", &answer)?)?;
            due.extend(peek.due.into_iter().map(|(at, id)| (at, id, index)));
            stale.push(peek.stale);
        }
        due.sort();
        due.truncate(limit);
        let mut shares: BTreeMap<usize, usize> = BTreeMap::new();
        for (_, _, index) in &due {
            *shares.entry(*index).or_default() += 1;
        }
        let mut expired = 0;
        for (index, event) in events.iter().enumerate() {
            let share = shares.get(&index).copied().unwrap_or(0);
            if share == 0 && !stale[index] {
                continue;
            }
            let share = share.to_string();
            let args: [&[u8]; 3] = [now.as_bytes(), share.as_bytes(), retention.as_bytes()];
            let keys = self.listed_event_keys(event);
            let answer = self
                .run("expire_due", &SCRIPTS.sweep, &keys, &args, Repeat::Safe)
                .await?;
            let swept: Swept = wire::decode("expire_due", wire::parse("expire_due", &answer)?)?;
            expired += swept.expired;
        }
        Ok(expired)
    }

    /// The keys of a listed event (its id as stored in the listing).
    fn listed_event_keys(&self, event: &str) -> Vec<String> {
        match EventId::new(event) {
            Ok(event) => self.keys.event(&keys::tag(&event)),
            // Only valid ids are ever listed; an unreadable one has no keys to sweep.
            Err(_) => self.keys.event("-"),
        }
    }
}
