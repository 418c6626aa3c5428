//! The reference model: the semantics page, written down as naively as possible.
//!
//! Nothing here is clever. State is a few `BTreeMap`s of whole records; a seat's status is
//! *derived* every time by scanning tickets and reservations, so there is no count or index
//! that could drift. It is written apart from the in-memory store on purpose: when the two
//! disagree, one of them has a bug, and the semantics page (`docs/semantics.md`) says which.
//!
//! The model is synchronous and takes the time as an argument; ids, tokens and ticket codes
//! are its own (the conformance kit maps them to the store's).

use std::collections::{BTreeMap, BTreeSet};

use crate::validate;
use crate::waitlist::{WaitlistEntry, WaitlistJoined, WaitlistRequest, WaitlistState};
use crate::{
    Availability, BestAvailable, ClientReservationId, CommitRequest, ConflictReason, Entity, Error,
    Event, EventId, EventSpec, EventSummary, GaRequest, HolderId, HolderLimit, IdempotencyKey,
    LateCommit, Order, OrderId, Page, PaymentId, PoolAvailability, PoolId, Refund, RefundTo,
    Reservation, ReservationId, ReservationStatus, ReservationToken, ReserveRequest, Result,
    SeatId, SeatStatus, Ticket, TicketCode, TicketId, TicketItem, TicketStatus, Timestamp,
    WaitlistEntryId,
};

/// The in-memory store's default idempotency retention, in milliseconds.
pub const DEFAULT_RETENTION_MS: u64 = 24 * 60 * 60 * 1000;

#[derive(Debug, Clone)]
struct ModelEvent {
    event: Event,
    blocked_seats: BTreeSet<SeatId>,
    /// Pool id → (capacity, blocked).
    pools: BTreeMap<PoolId, (u32, u32)>,
    /// Every waitlist entry, in join order.
    waitlist: Vec<ModelEntry>,
}

#[derive(Debug, Clone)]
struct ModelEntry {
    id: WaitlistEntryId,
    request: WaitlistRequest,
    joined_at: Timestamp,
    token: ReservationToken,
    state: EntryState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum EntryState {
    Waiting,
    Offered(ReservationId),
    Left,
}

#[derive(Debug, Clone)]
struct ModelReservation {
    /// Stored as made; `status` is Active, Committed or Cancelled here — "expired" is read
    /// from the clock — except that on an event with a waitlist the model finalizes lapsed
    /// reservations (status Expired) as the store must, since that is when their items are
    /// offered.
    reservation: Reservation,
    token: ReservationToken,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ReservePayload {
    holder: HolderId,
    seats: Vec<SeatId>,
    ga: Vec<GaRequest>,
    best_available: Option<BestAvailable>,
    ttl_seconds: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct CommitPayload {
    reservation: ReservationId,
    payment_id: Option<PaymentId>,
    seats: Option<Vec<SeatId>>,
    ga: Option<Vec<GaRequest>>,
}

#[derive(Debug, Clone)]
struct Record<P, T> {
    at: Timestamp,
    payload: P,
    outcome: Result<T>,
}

/// The reference model of an [`InventoryStore`](crate::InventoryStore).
#[derive(Debug, Clone)]
pub struct Model {
    retention_ms: u64,
    events: BTreeMap<EventId, ModelEvent>,
    reservations: BTreeMap<ReservationId, ModelReservation>,
    orders: BTreeMap<OrderId, Order>,
    /// Every ticket ever issued, as it is now.
    tickets: BTreeMap<TicketId, Ticket>,
    reserve_records:
        BTreeMap<(EventId, ClientReservationId), Record<ReservePayload, ReservationId>>,
    commit_records: BTreeMap<(EventId, IdempotencyKey), Record<CommitPayload, OrderId>>,
}

impl Default for Model {
    fn default() -> Self {
        Self::new(DEFAULT_RETENTION_MS)
    }
}

fn not_found(entity: Entity, id: impl std::fmt::Display) -> Error {
    Error::not_found(entity, id)
}

fn units(ga: &[GaRequest], pool: &PoolId) -> u32 {
    ga.iter()
        .filter(|request| &request.pool == pool)
        .map(|request| request.quantity)
        .sum()
}

impl Model {
    /// An empty model remembering idempotency records for `retention_ms`.
    pub fn new(retention_ms: u64) -> Self {
        Self {
            retention_ms,
            events: BTreeMap::new(),
            reservations: BTreeMap::new(),
            orders: BTreeMap::new(),
            tickets: BTreeMap::new(),
            reserve_records: BTreeMap::new(),
            commit_records: BTreeMap::new(),
        }
    }

    fn fresh(&self, at: Timestamp, now: Timestamp) -> bool {
        now.as_millis().saturating_sub(at.as_millis()) < self.retention_ms
    }

    // ---- derived state ------------------------------------------------------------------

    fn live(reservation: &Reservation, now: Timestamp) -> bool {
        reservation.status == ReservationStatus::Active && now < reservation.expires_at
    }

    fn status_now(reservation: &Reservation, now: Timestamp) -> ReservationStatus {
        if reservation.status == ReservationStatus::Active && now >= reservation.expires_at {
            ReservationStatus::Expired
        } else {
            reservation.status
        }
    }

    fn live_reservations<'a>(
        &'a self,
        event: &'a EventId,
        now: Timestamp,
    ) -> impl Iterator<Item = &'a Reservation> + 'a {
        self.reservations
            .values()
            .map(|stored| &stored.reservation)
            .filter(move |reservation| &reservation.event == event && Self::live(reservation, now))
    }

    fn owned_tickets<'a>(&'a self, event: &'a EventId) -> impl Iterator<Item = &'a Ticket> + 'a {
        self.tickets
            .values()
            .filter(move |ticket| &ticket.event == event && ticket.status != TicketStatus::Refunded)
    }

    /// A seat's status, ignoring the holds of `except` (a reservation committing late).
    fn seat_status(
        &self,
        event: &ModelEvent,
        seat: &SeatId,
        now: Timestamp,
        except: Option<&ReservationId>,
    ) -> SeatStatus {
        if event.blocked_seats.contains(seat) {
            SeatStatus::Blocked
        } else if self
            .owned_tickets(&event.event.id)
            .any(|ticket| ticket.item == TicketItem::Seat(seat.clone()))
        {
            SeatStatus::Sold
        } else if self
            .live_reservations(&event.event.id, now)
            .any(|reservation| Some(&reservation.id) != except && reservation.seats.contains(seat))
        {
            SeatStatus::Held
        } else {
            SeatStatus::Available
        }
    }

    fn pool_counts(
        &self,
        event: &ModelEvent,
        pool: &PoolId,
        now: Timestamp,
        except: Option<&ReservationId>,
    ) -> PoolAvailability {
        let (capacity, blocked) = event.pools[pool];
        let held = self
            .live_reservations(&event.event.id, now)
            .filter(|reservation| Some(&reservation.id) != except)
            .map(|reservation| units(&reservation.ga, pool))
            .sum::<u32>();
        let sold = u32::try_from(
            self.owned_tickets(&event.event.id)
                .filter(|ticket| ticket.item == TicketItem::Pool(pool.clone()))
                .count(),
        )
        .unwrap();
        PoolAvailability {
            pool: pool.clone(),
            capacity,
            held,
            sold,
            blocked,
            available: capacity.saturating_sub(held + sold + blocked),
        }
    }

    /// Items of the holder's live reservations plus their valid or checked-in tickets plus
    /// the quantities of their waiting waitlist entries.
    fn holder_items(&self, event: &EventId, holder: &HolderId, now: Timestamp) -> u32 {
        let reserved: u32 = self
            .live_reservations(event, now)
            .filter(|reservation| &reservation.holder == holder)
            .map(Reservation::item_count)
            .sum();
        let owned = self
            .owned_tickets(event)
            .filter(|ticket| &ticket.holder == holder)
            .count();
        let waiting: u32 = self
            .waiting_entries(event)
            .filter(|entry| &entry.request.holder == holder)
            .map(|entry| entry.request.quantity)
            .sum();
        reserved + u32::try_from(owned).unwrap() + waiting
    }

    /// The holder's live reservations plus their waiting waitlist entries.
    fn holder_claims(&self, event: &EventId, holder: &HolderId, now: Timestamp) -> usize {
        let live = self
            .live_reservations(event, now)
            .filter(|reservation| &reservation.holder == holder)
            .count();
        let waiting = self
            .waiting_entries(event)
            .filter(|entry| &entry.request.holder == holder)
            .count();
        live + waiting
    }

    fn event_state(&self, event: &EventId) -> Result<&ModelEvent> {
        self.events
            .get(event)
            .ok_or_else(|| not_found(Entity::Event, event))
    }

    fn reservation_now(&self, id: &ReservationId, now: Timestamp) -> Result<Reservation> {
        let stored = self
            .reservations
            .get(id)
            .ok_or_else(|| not_found(Entity::Reservation, id))?;
        let mut reservation = stored.reservation.clone();
        reservation.status = Self::status_now(&reservation, now);
        Ok(reservation)
    }

    fn order_now(&self, id: &OrderId) -> Result<Order> {
        let mut order = self
            .orders
            .get(id)
            .cloned()
            .ok_or_else(|| not_found(Entity::Order, id))?;
        for ticket in &mut order.tickets {
            *ticket = self.tickets[&ticket.id].clone();
        }
        Ok(order)
    }

    // ---- operations ---------------------------------------------------------------------

    /// [`InventoryStore::create_event`](crate::InventoryStore::create_event).
    pub fn create_event(&mut self, spec: EventSpec, now: Timestamp) -> Result<Event> {
        validate::check_event_spec(&spec)?;
        if self.events.contains_key(&spec.id) {
            return Err(Error::Conflict {
                reason: ConflictReason::EventExists,
            });
        }
        let event = Event::from_spec(spec, now);
        let pools = event
            .pools
            .iter()
            .map(|pool| (pool.id.clone(), (pool.capacity, 0)))
            .collect();
        self.events.insert(
            event.id.clone(),
            ModelEvent {
                event: event.clone(),
                blocked_seats: BTreeSet::new(),
                pools,
                waitlist: Vec::new(),
            },
        );
        Ok(event)
    }

    /// [`InventoryStore::event`](crate::InventoryStore::event).
    pub fn event(&self, event: &EventId) -> Result<Event> {
        Ok(self.event_state(event)?.event.clone())
    }

    /// [`InventoryStore::events`](crate::InventoryStore::events).
    pub fn events(&self, page: &Page) -> Result<Vec<EventSummary>> {
        validate::check_page(page)?;
        Ok(self
            .events
            .values()
            .filter(|state| {
                page.after
                    .as_ref()
                    .is_none_or(|after| &state.event.id > after)
            })
            .take(page.limit as usize)
            .map(|state| state.event.summary())
            .collect())
    }

    fn reserve_unsettled(
        &mut self,
        request: ReserveRequest,
        now: Timestamp,
    ) -> Result<Reservation> {
        validate::check_reserve(&request)?;
        self.event_state(&request.event)?;
        let payload = ReservePayload {
            holder: request.holder.clone(),
            seats: request.seats.clone(),
            ga: request.ga.clone(),
            best_available: request.best_available.clone(),
            ttl_seconds: request.ttl_seconds,
        };
        let record_key = request
            .client_reservation_id
            .clone()
            .map(|client| (request.event.clone(), client));
        if let Some(key) = &record_key
            && let Some(record) = self.reserve_records.get(key)
            && self.fresh(record.at, now)
        {
            let first = &record.payload;
            let differing = if first.holder != payload.holder {
                Some("holder")
            } else if first.seats != payload.seats {
                Some("seat_ids")
            } else if first.ga != payload.ga {
                Some("ga")
            } else if first.best_available != payload.best_available {
                Some("best_available")
            } else if first.ttl_seconds != payload.ttl_seconds {
                Some("ttl_seconds")
            } else {
                None
            };
            if let Some(field) = differing {
                return Err(Error::IdempotencyMismatch { field });
            }
            return match record.outcome.clone() {
                Ok(id) => self.reservation_now(&id, now),
                Err(error) => Err(error),
            };
        }
        let outcome = self.reserve_new(&request, now);
        if let Some(key) = record_key {
            self.reserve_records.insert(
                key,
                Record {
                    at: now,
                    payload,
                    outcome: outcome
                        .as_ref()
                        .map(|made| made.id.clone())
                        .map_err(Clone::clone),
                },
            );
        }
        outcome
    }

    fn reserve_new(&mut self, request: &ReserveRequest, now: Timestamp) -> Result<Reservation> {
        let state = self.event_state(&request.event)?;
        let policy = state.event.policy;
        let ttl = request
            .ttl_seconds
            .unwrap_or(policy.reservation_ttl_seconds);
        if ttl > policy.reservation_ttl_seconds_max {
            return Err(Error::invalid(
                "ttl_seconds",
                format!("at most {}", policy.reservation_ttl_seconds_max),
            ));
        }
        for seat in &request.seats {
            if !state.event.seats.iter().any(|known| &known.id == seat) {
                return Err(not_found(Entity::Seat, seat));
            }
        }
        for ga in &request.ga {
            if !state.pools.contains_key(&ga.pool) {
                return Err(not_found(Entity::Pool, &ga.pool));
            }
        }
        if let Some(window) = &state.event.sale_window {
            if let Some(opens_at) = window.opens_at
                && now < opens_at
            {
                return Err(Error::NotOnSale {
                    opens_at: Some(opens_at),
                    closed_at: None,
                });
            }
            if let Some(closes_at) = window.closes_at
                && now >= closes_at
            {
                return Err(Error::NotOnSale {
                    opens_at: None,
                    closed_at: Some(closes_at),
                });
            }
        }
        if let Some(max) = policy.holder_reservations_max {
            let live = self.holder_claims(&request.event, &request.holder, now);
            if live + 1 > max as usize {
                return Err(Error::LimitExceeded {
                    limit: HolderLimit::Reservations,
                    max,
                });
            }
        }
        if let Some(max) = policy.holder_seats_max {
            let requested = request.seats.len() as u64
                + request
                    .ga
                    .iter()
                    .map(|ga| u64::from(ga.quantity))
                    .sum::<u64>()
                + request
                    .best_available
                    .as_ref()
                    .map_or(0, |best| u64::from(best.count));
            let have = u64::from(self.holder_items(&request.event, &request.holder, now));
            if have + requested > u64::from(max) {
                return Err(Error::LimitExceeded {
                    limit: HolderLimit::Seats,
                    max,
                });
            }
        }
        let taken: Vec<SeatId> = request
            .seats
            .iter()
            .filter(|seat| self.seat_status(state, seat, now, None) != SeatStatus::Available)
            .cloned()
            .collect();
        if !taken.is_empty() {
            return Err(Error::SeatUnavailable { seats: taken });
        }
        for ga in &request.ga {
            let free = self.pool_counts(state, &ga.pool, now, None).available;
            if ga.quantity > free {
                return Err(Error::SoldOut {
                    pool: Some(ga.pool.clone()),
                    remaining: free,
                });
            }
        }
        let mut seats = request.seats.clone();
        if let Some(best) = &request.best_available {
            seats.extend(self.best_available(state, best, &request.seats, now)?);
        }
        let reservation = Reservation {
            id: ReservationId::generate(now),
            event: request.event.clone(),
            holder: request.holder.clone(),
            status: ReservationStatus::Active,
            seats,
            ga: request.ga.clone(),
            created_at: now,
            expires_at: now.saturating_add(std::time::Duration::from_secs(u64::from(ttl))),
            token: None,
            client_reservation_id: request.client_reservation_id.clone(),
            order: None,
        };
        let token = ReservationToken::generate();
        self.reservations.insert(
            reservation.id.clone(),
            ModelReservation {
                reservation: reservation.clone(),
                token: token.clone(),
            },
        );
        Ok(Reservation {
            token: Some(token),
            ..reservation
        })
    }

    fn best_available(
        &self,
        state: &ModelEvent,
        best: &BestAvailable,
        named: &[SeatId],
        now: Timestamp,
    ) -> Result<Vec<SeatId>> {
        let candidate = |seat: &crate::Seat| {
            !named.contains(&seat.id)
                && best
                    .section
                    .as_ref()
                    .is_none_or(|section| &seat.section == section)
                && best
                    .category
                    .as_ref()
                    .is_none_or(|category| &seat.category == category)
                && self.seat_status(state, &seat.id, now, None) == SeatStatus::Available
        };
        let candidates: Vec<&crate::Seat> =
            state.event.seats.iter().filter(|s| candidate(s)).collect();
        let count = best.count as usize;
        let sold_out = || Error::SoldOut {
            pool: None,
            remaining: u32::try_from(candidates.len()).unwrap(),
        };
        if !best.adjacent {
            if candidates.len() < count {
                return Err(sold_out());
            }
            return Ok(candidates[..count]
                .iter()
                .map(|seat| seat.id.clone())
                .collect());
        }
        for start in &candidates {
            let mut run = Vec::new();
            for offset in 0..best.count {
                let Some(number) = start.number.checked_add(offset) else {
                    break;
                };
                let next = candidates.iter().find(|seat| {
                    seat.section == start.section && seat.row == start.row && seat.number == number
                });
                match next {
                    Some(seat) => run.push(seat.id.clone()),
                    None => break,
                }
            }
            if run.len() == count {
                return Ok(run);
            }
        }
        Err(sold_out())
    }

    fn commit_unsettled(
        &mut self,
        reservation: &ReservationId,
        request: CommitRequest,
        now: Timestamp,
    ) -> Result<Order> {
        validate::check_commit(&request)?;
        let stored = self
            .reservations
            .get(reservation)
            .ok_or_else(|| not_found(Entity::Reservation, reservation))?;
        if stored.token != request.token {
            return Err(Error::InvalidToken);
        }
        let event = stored.reservation.event.clone();
        let payload = CommitPayload {
            reservation: reservation.clone(),
            payment_id: request.payment_id.clone(),
            seats: request.seats.clone(),
            ga: request.ga.clone(),
        };
        let key = (event, request.idempotency_key.clone());
        if let Some(record) = self.commit_records.get(&key)
            && self.fresh(record.at, now)
        {
            let first = &record.payload;
            let differing = if first.reservation != payload.reservation {
                Some("reservation_id")
            } else if first.payment_id != payload.payment_id {
                Some("payment_id")
            } else if first.seats != payload.seats {
                Some("seat_ids")
            } else if first.ga != payload.ga {
                Some("ga")
            } else {
                None
            };
            if let Some(field) = differing {
                return Err(Error::IdempotencyMismatch { field });
            }
            return match record.outcome.clone() {
                Ok(order) => self.order_now(&order),
                Err(error) => Err(error),
            };
        }
        let outcome = self.commit_new(reservation, &request, now);
        self.commit_records.insert(
            key,
            Record {
                at: now,
                payload,
                outcome: outcome
                    .as_ref()
                    .map(|order| order.id.clone())
                    .map_err(Clone::clone),
            },
        );
        outcome
    }

    fn commit_new(
        &mut self,
        id: &ReservationId,
        request: &CommitRequest,
        now: Timestamp,
    ) -> Result<Order> {
        let reservation = self.reservations[id].reservation.clone();
        if matches!(
            reservation.status,
            ReservationStatus::Committed | ReservationStatus::Cancelled
        ) {
            return Err(Error::ReservationNotActive {
                status: reservation.status,
            });
        }
        if let Some(seats) = &request.seats
            && seats.iter().any(|seat| !reservation.seats.contains(seat))
        {
            return Err(Error::invalid("seat_ids", "not in the reservation"));
        }
        if let Some(ga) = &request.ga
            && ga.iter().any(|chosen| {
                chosen.quantity > units(&reservation.ga, &chosen.pool)
                    || !reservation.ga.iter().any(|held| held.pool == chosen.pool)
            })
        {
            return Err(Error::invalid("ga", "not in the reservation"));
        }
        let chosen_seats: Vec<SeatId> = reservation
            .seats
            .iter()
            .filter(|seat| {
                request
                    .seats
                    .as_ref()
                    .is_none_or(|chosen| chosen.contains(seat))
            })
            .cloned()
            .collect();
        let chosen_ga: Vec<GaRequest> = reservation
            .ga
            .iter()
            .filter_map(|held| {
                let quantity = match &request.ga {
                    None => held.quantity,
                    Some(chosen) => units(chosen, &held.pool),
                };
                (quantity > 0).then(|| GaRequest {
                    pool: held.pool.clone(),
                    quantity,
                })
            })
            .collect();
        if chosen_seats.is_empty() && chosen_ga.is_empty() {
            return Err(Error::invalid("seat_ids", "nothing to commit"));
        }
        let state = &self.events[&reservation.event];
        if now >= reservation.expires_at {
            let still_free = state.event.policy.late_commit == LateCommit::IfStillAvailable
                && chosen_seats.iter().all(|seat| {
                    self.seat_status(state, seat, now, Some(id)) == SeatStatus::Available
                })
                && chosen_ga.iter().all(|ga| {
                    self.pool_counts(state, &ga.pool, now, Some(id)).available >= ga.quantity
                });
            if !still_free {
                return Err(Error::ReservationExpired {
                    expired_at: reservation.expires_at,
                });
            }
        }
        let order_id = OrderId::generate(now);
        let items = chosen_seats
            .iter()
            .map(|seat| TicketItem::Seat(seat.clone()))
            .chain(chosen_ga.iter().flat_map(|ga| {
                std::iter::repeat_n(TicketItem::Pool(ga.pool.clone()), ga.quantity as usize)
            }));
        let tickets: Vec<Ticket> = items
            .map(|item| Ticket {
                id: TicketId::generate(now),
                order: order_id.clone(),
                event: reservation.event.clone(),
                holder: reservation.holder.clone(),
                item,
                code: TicketCode::generate(),
                status: TicketStatus::Valid,
            })
            .collect();
        for ticket in &tickets {
            self.tickets.insert(ticket.id.clone(), ticket.clone());
        }
        let order = Order {
            id: order_id.clone(),
            event: reservation.event.clone(),
            reservation: id.clone(),
            holder: reservation.holder.clone(),
            payment_id: request.payment_id.clone(),
            tickets,
            created_at: now,
        };
        self.orders.insert(order_id.clone(), order.clone());
        let stored = self.reservations.get_mut(id).unwrap();
        stored.reservation.status = ReservationStatus::Committed;
        stored.reservation.order = Some(order_id);
        Ok(order)
    }

    /// The stored reservation after the not-found and token checks shared by extend and
    /// cancel.
    fn authorized(&self, id: &ReservationId, token: &ReservationToken) -> Result<&Reservation> {
        let stored = self
            .reservations
            .get(id)
            .ok_or_else(|| not_found(Entity::Reservation, id))?;
        if &stored.token != token {
            return Err(Error::InvalidToken);
        }
        Ok(&stored.reservation)
    }

    fn extend_unsettled(
        &mut self,
        id: &ReservationId,
        token: &ReservationToken,
        ttl_seconds: u32,
        now: Timestamp,
    ) -> Result<Reservation> {
        validate::check_ttl_seconds(ttl_seconds)?;
        let reservation = self.authorized(id, token)?;
        if matches!(
            reservation.status,
            ReservationStatus::Committed | ReservationStatus::Cancelled
        ) {
            return Err(Error::ReservationNotActive {
                status: reservation.status,
            });
        }
        if now >= reservation.expires_at {
            return Err(Error::ReservationExpired {
                expired_at: reservation.expires_at,
            });
        }
        let max = self.events[&reservation.event]
            .event
            .policy
            .reservation_ttl_seconds_max;
        let expires_at = now.saturating_add(std::time::Duration::from_secs(u64::from(ttl_seconds)));
        let limit = reservation
            .created_at
            .saturating_add(std::time::Duration::from_secs(u64::from(max)));
        if expires_at > limit {
            return Err(Error::invalid("ttl_seconds", "past the maximum hold"));
        }
        let stored = self.reservations.get_mut(id).unwrap();
        stored.reservation.expires_at = expires_at;
        Ok(stored.reservation.clone())
    }

    fn cancel_unsettled(
        &mut self,
        id: &ReservationId,
        token: &ReservationToken,
        now: Timestamp,
    ) -> Result<()> {
        let reservation = self.authorized(id, token)?;
        match reservation.status {
            ReservationStatus::Cancelled => return Ok(()),
            ReservationStatus::Committed => {
                return Err(Error::ReservationNotActive {
                    status: ReservationStatus::Committed,
                });
            }
            _ => {}
        }
        if now >= reservation.expires_at {
            return Err(Error::ReservationExpired {
                expired_at: reservation.expires_at,
            });
        }
        self.reservations.get_mut(id).unwrap().reservation.status = ReservationStatus::Cancelled;
        Ok(())
    }

    fn refund_unsettled(
        &mut self,
        order: &OrderId,
        tickets: Option<&[TicketId]>,
        now: Timestamp,
    ) -> Result<Refund> {
        validate::check_refund(tickets)?;
        let order = self.order_now(order)?;
        let chosen: Vec<&Ticket> = match tickets {
            Some(named) => {
                let mut chosen = Vec::new();
                for id in named {
                    let ticket = order
                        .tickets
                        .iter()
                        .find(|ticket| &ticket.id == id)
                        .ok_or_else(|| not_found(Entity::Ticket, id))?;
                    chosen.push(ticket);
                }
                for ticket in &chosen {
                    Self::refundable(ticket)?;
                }
                order
                    .tickets
                    .iter()
                    .filter(|ticket| named.contains(&ticket.id))
                    .collect()
            }
            None => {
                let valid: Vec<&Ticket> = order
                    .tickets
                    .iter()
                    .filter(|ticket| ticket.status == TicketStatus::Valid)
                    .collect();
                if valid.is_empty() {
                    Self::refundable(&order.tickets[0])?;
                }
                valid
            }
        };
        let state = self.events.get_mut(&order.event).unwrap();
        let to = state.event.policy.refund_to;
        for ticket in &chosen {
            if to == RefundTo::Blocked {
                match &ticket.item {
                    TicketItem::Seat(seat) => {
                        state.blocked_seats.insert(seat.clone());
                    }
                    TicketItem::Pool(pool) => state.pools.get_mut(pool).unwrap().1 += 1,
                }
            }
        }
        let ids: Vec<TicketId> = chosen.iter().map(|ticket| ticket.id.clone()).collect();
        for id in &ids {
            self.tickets.get_mut(id).unwrap().status = TicketStatus::Refunded;
        }
        Ok(Refund {
            order: order.id.clone(),
            tickets: ids,
            to,
            refunded_at: now,
        })
    }

    fn refundable(ticket: &Ticket) -> Result<()> {
        let reason = match ticket.status {
            TicketStatus::Valid => return Ok(()),
            TicketStatus::Refunded => ConflictReason::TicketRefunded,
            TicketStatus::CheckedIn => ConflictReason::TicketCheckedIn,
        };
        Err(Error::Conflict { reason })
    }

    /// [`InventoryStore::transfer`](crate::InventoryStore::transfer).
    pub fn transfer(&mut self, id: &TicketId, to: &HolderId, now: Timestamp) -> Result<Ticket> {
        let ticket = self
            .tickets
            .get(id)
            .ok_or_else(|| not_found(Entity::Ticket, id))?;
        if &ticket.holder == to {
            return Err(Error::invalid("to", "the ticket's holder already"));
        }
        Self::refundable(ticket)?;
        let policy = self.events[&ticket.event].event.policy;
        if let Some(max) = policy.holder_seats_max
            && self.holder_items(&ticket.event, to, now) + 1 > max
        {
            return Err(Error::LimitExceeded {
                limit: HolderLimit::Seats,
                max,
            });
        }
        let ticket = self.tickets.get_mut(id).unwrap();
        ticket.holder = to.clone();
        ticket.code = TicketCode::generate();
        Ok(ticket.clone())
    }

    /// [`InventoryStore::check_in`](crate::InventoryStore::check_in).
    pub fn check_in(&mut self, code: &TicketCode) -> Result<Ticket> {
        let ticket = self
            .tickets
            .values_mut()
            .find(|ticket| &ticket.code == code)
            .ok_or_else(|| not_found(Entity::Ticket, code))?;
        Self::refundable(ticket)?;
        ticket.status = TicketStatus::CheckedIn;
        Ok(ticket.clone())
    }

    fn block_unsettled(
        &mut self,
        event: &EventId,
        seats: &[SeatId],
        blocked: bool,
        now: Timestamp,
    ) -> Result<()> {
        validate::check_block(seats)?;
        let state = self.event_state(event)?;
        for seat in seats {
            if !state.event.seats.iter().any(|known| &known.id == seat) {
                return Err(not_found(Entity::Seat, seat));
            }
        }
        if blocked {
            let taken: Vec<SeatId> = seats
                .iter()
                .filter(|seat| {
                    !matches!(
                        self.seat_status(state, seat, now, None),
                        SeatStatus::Available | SeatStatus::Blocked
                    )
                })
                .cloned()
                .collect();
            if !taken.is_empty() {
                return Err(Error::SeatUnavailable { seats: taken });
            }
        }
        let state = self.events.get_mut(event).unwrap();
        for seat in seats {
            if blocked {
                state.blocked_seats.insert(seat.clone());
            } else {
                state.blocked_seats.remove(seat);
            }
        }
        Ok(())
    }

    /// [`InventoryStore::resize_pool`](crate::InventoryStore::resize_pool).
    pub fn resize_pool(
        &mut self,
        event: &EventId,
        pool: &PoolId,
        capacity: u32,
        now: Timestamp,
    ) -> Result<()> {
        self.settled(Some(event.clone()), now, |model| {
            model.set_pool_unsettled(event, pool, capacity, now, true)
        })
    }

    /// [`InventoryStore::set_pool_blocked`](crate::InventoryStore::set_pool_blocked).
    pub fn set_pool_blocked(
        &mut self,
        event: &EventId,
        pool: &PoolId,
        blocked: u32,
        now: Timestamp,
    ) -> Result<()> {
        self.settled(Some(event.clone()), now, |model| {
            model.set_pool_unsettled(event, pool, blocked, now, false)
        })
    }

    fn set_pool_unsettled(
        &mut self,
        event: &EventId,
        pool: &PoolId,
        value: u32,
        now: Timestamp,
        capacity: bool,
    ) -> Result<()> {
        validate::check_capacity(value)?;
        let state = self.event_state(event)?;
        if !state.pools.contains_key(pool) {
            return Err(not_found(Entity::Pool, pool));
        }
        let counts = self.pool_counts(state, pool, now, None);
        let used = counts.held + counts.sold + counts.blocked;
        let (new_capacity, new_blocked) = if capacity {
            (value, counts.blocked)
        } else {
            (counts.capacity, value)
        };
        if counts.held + counts.sold + new_blocked > new_capacity {
            return Err(Error::Conflict {
                reason: ConflictReason::CapacityBelowUsage { used },
            });
        }
        *self
            .events
            .get_mut(event)
            .unwrap()
            .pools
            .get_mut(pool)
            .unwrap() = (new_capacity, new_blocked);
        Ok(())
    }

    // ---- the waitlist ------------------------------------------------------------------

    /// The waiting entries of `event`, in join order.
    fn waiting_entries<'a>(&'a self, event: &EventId) -> impl Iterator<Item = &'a ModelEntry> + 'a {
        self.events
            .get(event)
            .into_iter()
            .flat_map(|state| state.waitlist.iter())
            .filter(|entry| entry.state == EntryState::Waiting)
    }

    fn has_waitlist(&self, event: &EventId) -> bool {
        self.events
            .get(event)
            .is_some_and(|state| state.event.policy.waitlist)
    }

    /// Finalizes up to `limit` lapsed reservations of `event` (the earliest first; which
    /// ones is not observable) and returns how many.
    fn finalize_lapsed(&mut self, event: &EventId, now: Timestamp, limit: usize) -> usize {
        let mut lapsed: Vec<(Timestamp, ReservationId)> = self
            .reservations
            .values()
            .map(|stored| &stored.reservation)
            .filter(|reservation| {
                &reservation.event == event
                    && reservation.status == ReservationStatus::Active
                    && now >= reservation.expires_at
            })
            .map(|reservation| (reservation.expires_at, reservation.id.clone()))
            .collect();
        lapsed.sort();
        lapsed.truncate(limit);
        for (_, id) in &lapsed {
            self.reservations.get_mut(id).unwrap().reservation.status = ReservationStatus::Expired;
        }
        lapsed.len()
    }

    /// What every operation on an event with a waitlist does first: finalize its lapsed
    /// reservations and, if that freed anything, serve the waitlist.
    fn settle(&mut self, event: &EventId, now: Timestamp) {
        if self.has_waitlist(event) && self.finalize_lapsed(event, now, usize::MAX) > 0 {
            self.serve(event, now);
        }
    }

    /// Runs `operation` as the store runs an operation on `event`: settled first, and the
    /// waitlist served after it (a no-op unless the operation freed something).
    fn settled<T>(
        &mut self,
        event: Option<EventId>,
        now: Timestamp,
        operation: impl FnOnce(&mut Self) -> Result<T>,
    ) -> Result<T> {
        if let Some(event) = &event {
            self.settle(event, now);
        }
        let outcome = operation(self);
        if let Some(event) = &event {
            self.serve(event, now);
        }
        outcome
    }

    /// Offers free inventory to every waiting entry of `event` it satisfies, in join order.
    fn serve(&mut self, event: &EventId, now: Timestamp) {
        if !self.has_waitlist(event) {
            return;
        }
        let count = self.events[event].waitlist.len();
        for index in 0..count {
            let entry = self.events[event].waitlist[index].clone();
            if entry.state != EntryState::Waiting {
                continue;
            }
            let Some((seats, ga)) = self.offerable(event, &entry.request, now) else {
                continue;
            };
            let state = &self.events[event];
            let ttl = state.event.policy.waitlist_offer_ttl_seconds;
            let reservation = Reservation {
                id: ReservationId::generate(now),
                event: event.clone(),
                holder: entry.request.holder.clone(),
                status: ReservationStatus::Active,
                seats,
                ga,
                created_at: now,
                expires_at: now.saturating_add(std::time::Duration::from_secs(u64::from(ttl))),
                token: None,
                client_reservation_id: None,
                order: None,
            };
            self.events.get_mut(event).unwrap().waitlist[index].state =
                EntryState::Offered(reservation.id.clone());
            self.reservations.insert(
                reservation.id.clone(),
                ModelReservation {
                    reservation,
                    token: entry.token.clone(),
                },
            );
        }
    }

    /// The items free inventory gives `request` now, if it satisfies it in full.
    fn offerable(
        &self,
        event: &EventId,
        request: &WaitlistRequest,
        now: Timestamp,
    ) -> Option<(Vec<SeatId>, Vec<GaRequest>)> {
        let state = &self.events[event];
        if let Some(pool) = &request.pool {
            let free = self.pool_counts(state, pool, now, None).available;
            let ga = GaRequest {
                pool: pool.clone(),
                quantity: request.quantity,
            };
            return (free >= request.quantity).then(|| (Vec::new(), vec![ga]));
        }
        let best = BestAvailable {
            count: request.quantity,
            adjacent: request.adjacent,
            section: request.section.clone(),
            category: None,
        };
        let seats = self.best_available(state, &best, &[], now).ok()?;
        Some((seats, Vec::new()))
    }

    fn entry_view(state: &ModelEvent, index: usize) -> WaitlistEntry {
        let entry = &state.waitlist[index];
        let state = match &entry.state {
            EntryState::Waiting => WaitlistState::Waiting {
                position: 1 + state.waitlist[..index]
                    .iter()
                    .filter(|earlier| earlier.state == EntryState::Waiting)
                    .count() as u64,
            },
            EntryState::Offered(reservation) => WaitlistState::Offered {
                reservation: reservation.clone(),
            },
            EntryState::Left => WaitlistState::Left,
        };
        WaitlistEntry {
            id: entry.id.clone(),
            request: entry.request.clone(),
            joined_at: entry.joined_at,
            state,
        }
    }

    fn waitlist_event(&self, event: &EventId) -> Result<&ModelEvent> {
        let state = self.event_state(event)?;
        if !state.event.policy.waitlist {
            return Err(not_found(Entity::Waitlist, event));
        }
        Ok(state)
    }

    /// Whether the layout could ever give `request` (seats only): `invalid_request` names
    /// what it never could.
    fn check_layout_can_satisfy(state: &ModelEvent, request: &WaitlistRequest) -> Result<()> {
        let seats = &state.event.seats;
        if seats.is_empty() {
            return Err(Error::invalid("pool", "the event has no seats"));
        }
        let in_section: Vec<&crate::Seat> = seats
            .iter()
            .filter(|seat| {
                request
                    .section
                    .as_ref()
                    .is_none_or(|section| &seat.section == section)
            })
            .collect();
        if in_section.is_empty() {
            return Err(Error::invalid("section", "no seat is in this section"));
        }
        if in_section.len() < request.quantity as usize {
            return Err(Error::invalid("quantity", "not that many seats"));
        }
        let run_exists = in_section.iter().any(|start| {
            (0..request.quantity).all(|offset| {
                in_section.iter().any(|seat| {
                    seat.section == start.section
                        && seat.row == start.row
                        && Some(seat.number) == start.number.checked_add(offset)
                })
            })
        });
        if request.adjacent && !run_exists {
            return Err(Error::invalid("quantity", "no row has that many adjacent"));
        }
        Ok(())
    }

    /// [`WaitlistStore::waitlist_join`](crate::WaitlistStore::waitlist_join).
    pub fn waitlist_join(
        &mut self,
        request: WaitlistRequest,
        now: Timestamp,
    ) -> Result<WaitlistJoined> {
        validate::check_waitlist_request(&request)?;
        self.waitlist_event(&request.event)?;
        let event = request.event.clone();
        self.settle(&event, now);
        let state = &self.events[&event];
        let open = state.waitlist.iter().rposition(|entry| {
            entry.request.holder == request.holder
                && match &entry.state {
                    EntryState::Waiting => true,
                    EntryState::Offered(id) => Self::live(&self.reservations[id].reservation, now),
                    EntryState::Left => false,
                }
        });
        if let Some(index) = open {
            if state.waitlist[index].request != request {
                return Err(Error::Conflict {
                    reason: ConflictReason::WaitlistEntryExists,
                });
            }
            return Ok(WaitlistJoined {
                entry: Self::entry_view(state, index),
                token: None,
            });
        }
        match &request.pool {
            Some(pool) if !state.pools.contains_key(pool) => {
                return Err(not_found(Entity::Pool, pool));
            }
            Some(_) => {}
            None => Self::check_layout_can_satisfy(state, &request)?,
        }
        if let Some(window) = &state.event.sale_window {
            if let Some(opens_at) = window.opens_at
                && now < opens_at
            {
                return Err(Error::NotOnSale {
                    opens_at: Some(opens_at),
                    closed_at: None,
                });
            }
            if let Some(closes_at) = window.closes_at
                && now >= closes_at
            {
                return Err(Error::NotOnSale {
                    opens_at: None,
                    closed_at: Some(closes_at),
                });
            }
        }
        let policy = state.event.policy;
        if let Some(max) = policy.holder_reservations_max
            && self.holder_claims(&event, &request.holder, now) + 1 > max as usize
        {
            return Err(Error::LimitExceeded {
                limit: HolderLimit::Reservations,
                max,
            });
        }
        if let Some(max) = policy.holder_seats_max
            && u64::from(self.holder_items(&event, &request.holder, now))
                + u64::from(request.quantity)
                > u64::from(max)
        {
            return Err(Error::LimitExceeded {
                limit: HolderLimit::Seats,
                max,
            });
        }
        if self.waiting_entries(&event).count() >= validate::WAITLIST_ENTRIES_MAX {
            return Err(Error::Conflict {
                reason: ConflictReason::WaitlistFull,
            });
        }
        let token = ReservationToken::generate();
        let waitlist = &mut self.events.get_mut(&event).unwrap().waitlist;
        waitlist.push(ModelEntry {
            id: WaitlistEntryId::generate(now),
            request,
            joined_at: now,
            token: token.clone(),
            state: EntryState::Waiting,
        });
        let index = waitlist.len() - 1;
        self.serve(&event, now);
        Ok(WaitlistJoined {
            entry: Self::entry_view(&self.events[&event], index),
            token: Some(token),
        })
    }

    /// [`WaitlistStore::waitlist_entry`](crate::WaitlistStore::waitlist_entry).
    pub fn waitlist_entry(
        &mut self,
        event: &EventId,
        entry: &WaitlistEntryId,
        now: Timestamp,
    ) -> Result<WaitlistEntry> {
        self.waitlist_event(event)?;
        self.settle(event, now);
        let state = &self.events[event];
        let index = state
            .waitlist
            .iter()
            .position(|known| &known.id == entry)
            .ok_or_else(|| not_found(Entity::WaitlistEntry, entry))?;
        Ok(Self::entry_view(state, index))
    }

    /// [`WaitlistStore::waitlist_leave`](crate::WaitlistStore::waitlist_leave).
    pub fn waitlist_leave(
        &mut self,
        event: &EventId,
        entry: &WaitlistEntryId,
        holder: &HolderId,
        now: Timestamp,
    ) -> Result<()> {
        self.waitlist_event(event)?;
        self.settle(event, now);
        let known = self
            .events
            .get_mut(event)
            .unwrap()
            .waitlist
            .iter_mut()
            .find(|known| &known.id == entry && &known.request.holder == holder)
            .ok_or_else(|| not_found(Entity::WaitlistEntry, entry))?;
        match known.state {
            EntryState::Left => Ok(()),
            EntryState::Offered(_) => Err(Error::Conflict {
                reason: ConflictReason::WaitlistEntryOffered,
            }),
            EntryState::Waiting => {
                known.state = EntryState::Left;
                Ok(())
            }
        }
    }

    /// [`InventoryStore::expire_due`](crate::InventoryStore::expire_due) as far as the
    /// model can tell: events with a waitlist are finalized as the store must (in id
    /// order, up to `limit` in all, the waitlist served once none is left lapsed); returns
    /// how many of their reservations it finalized. Events without a waitlist are
    /// finalized lazily by the store and never by the model.
    pub fn expire_due(&mut self, limit: usize, now: Timestamp) -> usize {
        let events: Vec<EventId> = self
            .events
            .keys()
            .filter(|event| self.has_waitlist(event))
            .cloned()
            .collect();
        let mut expired = 0;
        for event in events {
            let finalized = self.finalize_lapsed(&event, now, limit - expired);
            expired += finalized;
            if finalized > 0 && !self.any_lapsed(&event, now) {
                self.serve(&event, now);
            }
        }
        expired
    }

    fn any_lapsed(&self, event: &EventId, now: Timestamp) -> bool {
        self.reservations.values().any(|stored| {
            let reservation = &stored.reservation;
            &reservation.event == event
                && reservation.status == ReservationStatus::Active
                && now >= reservation.expires_at
        })
    }

    // ---- the inventory, each operation settled ------------------------------------------

    /// [`InventoryStore::reserve`](crate::InventoryStore::reserve).
    pub fn reserve(&mut self, request: ReserveRequest, now: Timestamp) -> Result<Reservation> {
        let event = Some(request.event.clone());
        self.settled(event, now, |model| model.reserve_unsettled(request, now))
    }

    /// The event of a reservation the model knows.
    fn event_of(&self, reservation: &ReservationId) -> Option<EventId> {
        self.reservations
            .get(reservation)
            .map(|stored| stored.reservation.event.clone())
    }

    /// [`InventoryStore::commit`](crate::InventoryStore::commit).
    pub fn commit(
        &mut self,
        reservation: &ReservationId,
        request: CommitRequest,
        now: Timestamp,
    ) -> Result<Order> {
        let event = self.event_of(reservation);
        self.settled(event, now, |model| {
            model.commit_unsettled(reservation, request, now)
        })
    }

    /// [`InventoryStore::extend`](crate::InventoryStore::extend).
    pub fn extend(
        &mut self,
        reservation: &ReservationId,
        token: &ReservationToken,
        ttl_seconds: u32,
        now: Timestamp,
    ) -> Result<Reservation> {
        let event = self.event_of(reservation);
        self.settled(event, now, |model| {
            model.extend_unsettled(reservation, token, ttl_seconds, now)
        })
    }

    /// [`InventoryStore::cancel`](crate::InventoryStore::cancel).
    pub fn cancel(
        &mut self,
        reservation: &ReservationId,
        token: &ReservationToken,
        now: Timestamp,
    ) -> Result<()> {
        let event = self.event_of(reservation);
        self.settled(event, now, |model| {
            model.cancel_unsettled(reservation, token, now)
        })
    }

    /// [`InventoryStore::refund`](crate::InventoryStore::refund).
    pub fn refund(
        &mut self,
        order: &OrderId,
        tickets: Option<&[TicketId]>,
        now: Timestamp,
    ) -> Result<Refund> {
        let event = self.orders.get(order).map(|order| order.event.clone());
        self.settled(event, now, |model| {
            model.refund_unsettled(order, tickets, now)
        })
    }

    /// [`InventoryStore::block`](crate::InventoryStore::block).
    pub fn block(
        &mut self,
        event: &EventId,
        seats: &[SeatId],
        blocked: bool,
        now: Timestamp,
    ) -> Result<()> {
        self.settled(Some(event.clone()), now, |model| {
            model.block_unsettled(event, seats, blocked, now)
        })
    }

    /// [`InventoryStore::availability`](crate::InventoryStore::availability), with `seq` 0
    /// (the model keeps no log).
    pub fn availability(&mut self, event: &EventId, now: Timestamp) -> Result<Availability> {
        self.settle(event, now);
        let state = self.event_state(event)?;
        Ok(Availability {
            event: event.clone(),
            seq: 0,
            seats: state
                .event
                .seats
                .iter()
                .map(|seat| self.seat_status(state, &seat.id, now, None))
                .collect(),
            pools: state
                .event
                .pools
                .iter()
                .map(|pool| self.pool_counts(state, &pool.id, now, None))
                .collect(),
        })
    }

    /// [`InventoryStore::reservation`](crate::InventoryStore::reservation).
    pub fn reservation(&self, id: &ReservationId, now: Timestamp) -> Result<Reservation> {
        self.reservation_now(id, now)
    }

    /// [`InventoryStore::order`](crate::InventoryStore::order).
    pub fn order(&self, id: &OrderId) -> Result<Order> {
        self.order_now(id)
    }

    /// [`InventoryStore::ticket`](crate::InventoryStore::ticket).
    pub fn ticket(&self, id: &TicketId) -> Result<Ticket> {
        self.tickets
            .get(id)
            .cloned()
            .ok_or_else(|| not_found(Entity::Ticket, id))
    }

    /// How many active reservations have lapsed and are not yet finalized — in the model,
    /// every lapsed one of an event without a waitlist, since it never finalizes those (an
    /// upper bound for `expire_due`).
    pub fn lapsed(&self, now: Timestamp) -> usize {
        self.reservations
            .values()
            .filter(|stored| {
                let reservation = &stored.reservation;
                reservation.status == ReservationStatus::Active && now >= reservation.expires_at
            })
            .count()
    }
}
