//! Reads: reservation, order, ticket, availability, the change log.

use serde::Deserialize;
use ticketing_core::{
    Availability, Change, ChangeKind, Entity, Error, EventId, Order, OrderId, PoolAvailability,
    PoolId, Reservation, ReservationId, Result, SeatStatus, Ticket, TicketId, Timestamp, validate,
};

use crate::connection::SCRIPTS;
use crate::{RedisStore, Repeat, keys, wire};

#[derive(Deserialize)]
struct Snapshot {
    seq: u64,
    seats: usize,
    /// Flat `[index, state, index, state, …]` of the seats that are not available.
    states: Vec<String>,
    /// `[pool, capacity, held, sold, blocked]` in layout order.
    pools: Vec<(String, u32, u32, u32, u32)>,
}

#[derive(Deserialize)]
struct Entry {
    seq: u64,
    at: u64,
    kind: serde_json::Value,
}

#[derive(Deserialize)]
struct Page {
    entries: Vec<Entry>,
}

impl RedisStore {
    async fn read<T: serde::de::DeserializeOwned>(
        &self,
        what: &'static str,
        id: &str,
        entity: Entity,
    ) -> Result<T> {
        let tag = keys::tag_of(id).ok_or_else(|| Error::not_found(entity, id))?;
        let now = self.now_arg();
        let args: [&[u8]; 3] = [now.as_bytes(), what.as_bytes(), id.as_bytes()];
        let answer = self
            .run(
                what,
                &SCRIPTS.read,
                &self.keys.event(tag),
                &args,
                Repeat::Safe,
            )
            .await?;
        wire::decode(what, wire::parse(what, &answer)?)
    }

    /// A reservation as it reads now, without its token.
    ///
    /// Errors: `not_found`, `backend`.
    pub async fn reservation(&self, reservation: &ReservationId) -> Result<Reservation> {
        self.read("reservation", reservation.as_str(), Entity::Reservation)
            .await
    }

    /// An order with its tickets as they are now.
    ///
    /// Errors: `not_found`, `backend`.
    pub async fn order(&self, order: &OrderId) -> Result<Order> {
        self.read("order", order.as_str(), Entity::Order).await
    }

    /// A ticket as it is now.
    ///
    /// Errors: `not_found`, `backend`.
    pub async fn ticket(&self, ticket: &TicketId) -> Result<Ticket> {
        self.read("ticket", ticket.as_str(), Entity::Ticket).await
    }

    /// The event's inventory and the sequence number it reflects; lapsed holds are
    /// finalized (and logged) first, in the same script.
    ///
    /// Errors: `not_found`, `backend`.
    pub async fn availability(&self, event: &EventId) -> Result<Availability> {
        let now = self.now_arg();
        let args: [&[u8]; 2] = [now.as_bytes(), event.as_str().as_bytes()];
        let keys = self.keys.event(&keys::tag(event));
        let answer = self
            .run(
                "availability",
                &SCRIPTS.availability,
                &keys,
                &args,
                Repeat::Safe,
            )
            .await?;
        let snapshot: Snapshot =
            wire::decode("availability", wire::parse("availability", &answer)?)?;
        let mut seats = vec![SeatStatus::Available; snapshot.seats];
        for pair in snapshot.states.chunks(2) {
            let [index, state] = pair else {
                return Err(wire::malformed("availability", "odd seat state list"));
            };
            let status = match state.as_str() {
                "h" => SeatStatus::Held,
                "s" => SeatStatus::Sold,
                "b" => SeatStatus::Blocked,
                other => {
                    return Err(wire::malformed(
                        "availability",
                        &format!("seat state {other:?}"),
                    ));
                }
            };
            let slot = index
                .parse::<usize>()
                .ok()
                .and_then(|index| index.checked_sub(1))
                .and_then(|index| seats.get_mut(index))
                .ok_or_else(|| wire::malformed("availability", "seat index out of range"))?;
            *slot = status;
        }
        let pools = snapshot
            .pools
            .into_iter()
            .map(|(pool, capacity, held, sold, blocked)| {
                Ok(PoolAvailability {
                    pool: PoolId::new(&pool)?,
                    capacity,
                    held,
                    sold,
                    blocked,
                    available: capacity
                        .saturating_sub(held.saturating_add(sold).saturating_add(blocked)),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Availability {
            event: event.clone(),
            seq: snapshot.seq,
            seats,
            pools,
        })
    }

    /// Up to `limit` changes with sequence numbers after `after`, in order: a range of the
    /// event's stream.
    ///
    /// Errors: `invalid_request` (limit), `not_found`, `changes_pruned` when the stream was
    /// trimmed past `after` (the store never trims it; an operator's `XTRIM` may), `backend`.
    pub async fn changes(&self, event: &EventId, after: u64, limit: usize) -> Result<Vec<Change>> {
        validate::check_changes_limit(limit)?;
        let (after, limit) = (after.to_string(), limit.to_string());
        let args: [&[u8]; 3] = [
            event.as_str().as_bytes(),
            after.as_bytes(),
            limit.as_bytes(),
        ];
        let keys = self.keys.event(&keys::tag(event));
        let answer = self
            .run("changes", &SCRIPTS.changes, &keys, &args, Repeat::Safe)
            .await?;
        let page: Page = wire::decode("changes", wire::parse("changes", &answer)?)?;
        page.entries
            .into_iter()
            .map(|entry| {
                let mut kind = entry.kind;
                wire::empty_objects_as_arrays(&mut kind);
                let kind: ChangeKind = serde_json::from_value(kind).map_err(|error| {
                    wire::malformed("changes", &format!("change {}: {error}", entry.seq))
                })?;
                Ok(Change {
                    event: event.clone(),
                    seq: entry.seq,
                    at: Timestamp::from_millis(entry.at),
                    kind,
                })
            })
            .collect()
    }
}
