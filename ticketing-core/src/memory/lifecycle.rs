//! A reservation's life after creation: commit, extend, cancel.

use std::time::Duration;

use crate::domain::{
    ChangeKind, CommitRequest, LateCommit, Order, Reservation, ReservationStatus, SeatStatus,
    TicketItem, TicketStatus,
};
use crate::error::{Error, Result};
use crate::id::{OrderId, ReservationId, TicketCode, TicketId};
use crate::sync::{Arc, Mutex};
use crate::time::Timestamp;
use crate::token::ReservationToken;
use crate::validate;

use super::MemoryStore;
use super::event::{EventState, SeatSlot};
use super::order::{ItemIndex, OrderCell, TicketCell, TicketState};
use super::reservation::{CommitRecord, Release, ReservationCell, ReservationState};

/// What a commit buys and what it lets go, in the reservation's order.
struct Chosen {
    seats: Vec<u32>,
    ga: Vec<(usize, u32)>,
    released_seats: Vec<u32>,
    released_ga: Vec<(usize, u32)>,
}

impl Chosen {
    fn of(event: &EventState, cell: &ReservationCell, request: &CommitRequest) -> Result<Self> {
        let seats = match &request.seats {
            None => cell.seats.to_vec(),
            Some(named) => {
                let mut indices = Vec::with_capacity(named.len());
                for seat in named {
                    match event
                        .seat_index(seat)
                        .ok()
                        .filter(|index| cell.seats.contains(index))
                    {
                        Some(index) => indices.push(index),
                        None => {
                            return Err(Error::invalid(
                                "seat_ids",
                                format!("seat '{seat}' is not in the reservation"),
                            ));
                        }
                    }
                }
                // Tickets follow the reservation's order, whatever order the buyer named them in.
                cell.seats
                    .iter()
                    .copied()
                    .filter(|index| indices.contains(index))
                    .collect()
            }
        };
        let ga = match &request.ga {
            None => cell.ga.to_vec(),
            Some(named) => {
                for entry in named {
                    let held = event
                        .pool_index(&entry.pool)
                        .ok()
                        .and_then(|pool| cell.ga.iter().find(|(held, _)| *held == pool))
                        .map_or(0, |(_, quantity)| *quantity);
                    if entry.quantity > held {
                        return Err(Error::invalid(
                            "ga",
                            format!("the reservation holds {held} of pool '{}'", entry.pool),
                        ));
                    }
                }
                cell.ga
                    .iter()
                    .filter_map(|(pool, _)| {
                        let wanted = named
                            .iter()
                            .find(|entry| event.pool_id(*pool) == entry.pool)?;
                        Some((*pool, wanted.quantity))
                    })
                    .collect()
            }
        };
        if seats.is_empty() && ga.is_empty() {
            return Err(Error::invalid(
                "seat_ids",
                "a commit must buy at least one item; cancel instead",
            ));
        }
        let released_seats = cell
            .seats
            .iter()
            .copied()
            .filter(|index| !seats.contains(index))
            .collect();
        let released_ga = cell
            .ga
            .iter()
            .filter_map(|(pool, held)| {
                let bought = ga
                    .iter()
                    .find(|(chosen, _)| chosen == pool)
                    .map_or(0, |(_, quantity)| *quantity);
                (held > &bought).then(|| (*pool, held - bought))
            })
            .collect();
        Ok(Self {
            seats,
            ga,
            released_seats,
            released_ga,
        })
    }

    fn units(&self) -> u32 {
        self.seats.len() as u32 + self.ga.iter().map(|(_, quantity)| quantity).sum::<u32>()
    }
}

impl MemoryStore {
    pub(super) fn commit_now(
        &self,
        reservation: &ReservationId,
        request: CommitRequest,
    ) -> Result<Order> {
        validate::check_commit(&request)?;
        let cell = self.reservation_cell(reservation)?;
        cell.check_token(&request.token)?;
        let event = self.owning_event(&cell.event);
        let now = self.now();
        let gate = self.enter(&event, now);
        let key = request.idempotency_key.clone();
        let mut keys = event.commit_keys.lock(&key);
        if let Some(record) = keys.get(&key)
            && self.remembered(record.made_at, now)
        {
            if let Some(field) = record.mismatch(reservation, &request) {
                return Err(Error::IdempotencyMismatch { field });
            }
            return match &record.outcome {
                Ok(order) => Ok(self.order_cell(order)?.view()),
                Err(error) => Err(error.clone()),
            };
        }
        let outcome = self.commit_fresh(&event, &cell, &request, now);
        let record = CommitRecord {
            reservation: reservation.clone(),
            payment_id: request.payment_id,
            seats: request.seats,
            ga: request.ga,
            made_at: now,
            outcome: outcome
                .as_ref()
                .map(|order| order.id.clone())
                .map_err(Clone::clone),
        };
        keys.insert(key, record);
        drop(keys);
        // A commit of some of the items released the rest: offer them.
        if gate.serves()
            && let Ok(order) = &outcome
            && (order.tickets.len() as u32) < cell.item_count()
        {
            self.serve(&event, now);
        }
        drop(gate);
        outcome
    }

    fn commit_fresh(
        &self,
        event: &EventState,
        cell: &Arc<ReservationCell>,
        request: &CommitRequest,
        now: Timestamp,
    ) -> Result<Order> {
        let mut swept = false;
        loop {
            let mut state = cell.state.lock();
            if matches!(
                state.status,
                ReservationStatus::Committed | ReservationStatus::Cancelled
            ) {
                return Err(Error::ReservationNotActive {
                    status: state.status,
                });
            }
            let chosen = Chosen::of(event, cell, request)?;
            let lapsed = state.status == ReservationStatus::Expired || state.expires_at <= now;
            if lapsed {
                if event.event.policy.late_commit == LateCommit::Strict {
                    return Err(Error::ReservationExpired {
                        expired_at: state.expires_at,
                    });
                }
                // A late commit decides on free items: finalize what has lapsed first.
                if !swept && event.may_have_due(now) {
                    drop(state);
                    event.sweep(now, usize::MAX);
                    swept = true;
                    continue;
                }
            }
            return self.sell(event, cell, &mut state, &chosen, request, now, lapsed);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn sell(
        &self,
        event: &EventState,
        cell: &Arc<ReservationCell>,
        state: &mut ReservationState,
        chosen: &Chosen,
        request: &CommitRequest,
        now: Timestamp,
        lapsed: bool,
    ) -> Result<Order> {
        let after_expiry = state.status == ReservationStatus::Expired;
        let expired = || Error::ReservationExpired {
            expired_at: state.expires_at,
        };
        let mut holders = event.holder_shard(&cell.holder);
        let sorted = cell.seats_sorted();
        let mut guards = event.lock_seats(&sorted);
        let slot = |index: u32| {
            sorted
                .binary_search(&index)
                .unwrap_or_else(|_| unreachable!("locked"))
        };
        if lapsed
            && chosen.seats.iter().any(|index| {
                let seat = &guards[slot(*index)];
                !(seat.is_free() || seat.is_held_by(cell))
            })
        {
            return Err(expired());
        }
        let mut journal = event.journal.lock();
        if after_expiry
            && chosen
                .ga
                .iter()
                .any(|(pool, quantity)| journal.pools[*pool].free() < *quantity)
        {
            return Err(expired());
        }
        let order_id = OrderId::generate(now);
        let tickets = self.issue_tickets(event, cell, &order_id, chosen, now);
        let mut seat_changes = Vec::with_capacity(cell.seats.len());
        for index in &chosen.seats {
            *guards[slot(*index)] = SeatSlot::Sold;
            seat_changes.push((*index, SeatStatus::Sold));
        }
        for index in &chosen.released_seats {
            let guard = &mut guards[slot(*index)];
            if guard.is_held_by(cell) {
                **guard = SeatSlot::Free;
                seat_changes.push((*index, SeatStatus::Available));
            }
        }
        if !after_expiry {
            for (pool, quantity) in cell.ga.iter() {
                journal.pool_mut(*pool).held -= quantity;
            }
        }
        for (pool, quantity) in &chosen.ga {
            journal.pool_mut(*pool).sold += quantity;
        }
        journal.assert_pools();
        let kind = ChangeKind::Committed {
            reservation: cell.id.clone(),
            order: order_id.clone(),
            seats: event.seat_ids(&chosen.seats),
            ga: event.ga_requests(&chosen.ga),
            released_seats: if after_expiry {
                Vec::new()
            } else {
                event.seat_ids(&chosen.released_seats)
            },
            released_ga: if after_expiry {
                Vec::new()
            } else {
                event.ga_requests(&chosen.released_ga)
            },
            after_expiry,
        };
        journal.append(event, now, kind, seat_changes);
        drop(journal);
        drop(guards);
        if let Some(holders) = holders.as_deref_mut() {
            let account = holders.entry(cell.holder.clone()).or_default();
            account.forget(cell);
            account.tickets += chosen.units();
        }
        drop(holders);
        state.status = ReservationStatus::Committed;
        state.order = Some(order_id.clone());
        let order = OrderCell {
            id: order_id,
            event: cell.event.clone(),
            reservation: cell.id.clone(),
            holder: cell.holder.clone(),
            payment_id: request.payment_id.clone(),
            created_at: now,
            tickets,
        };
        let view = order.view();
        for ticket in &order.tickets {
            self.tickets.insert(ticket.id.clone(), ticket.clone());
            self.codes
                .insert(ticket.state.lock().code.clone(), ticket.clone());
        }
        self.orders.insert(order.id.clone(), Arc::new(order));
        Ok(view)
    }

    fn issue_tickets(
        &self,
        event: &EventState,
        cell: &ReservationCell,
        order: &OrderId,
        chosen: &Chosen,
        now: Timestamp,
    ) -> Vec<Arc<TicketCell>> {
        let seats = chosen.seats.iter().map(|index| {
            (
                TicketItem::Seat(event.seat_id(*index)),
                ItemIndex::Seat(*index),
            )
        });
        let units = chosen.ga.iter().flat_map(|(pool, quantity)| {
            (0..*quantity).map(move |_| {
                (
                    TicketItem::Pool(event.pool_id(*pool)),
                    ItemIndex::Pool(*pool),
                )
            })
        });
        seats
            .chain(units)
            .map(|(item, index)| {
                Arc::new(TicketCell {
                    id: TicketId::generate(now),
                    order: order.clone(),
                    event: cell.event.clone(),
                    item,
                    index,
                    state: Mutex::new(TicketState {
                        holder: cell.holder.clone(),
                        code: TicketCode::generate(),
                        status: TicketStatus::Valid,
                    }),
                })
            })
            .collect()
    }

    pub(super) fn extend_now(
        &self,
        reservation: &ReservationId,
        token: &ReservationToken,
        ttl_seconds: u32,
    ) -> Result<Reservation> {
        validate::check_ttl_seconds(ttl_seconds)?;
        let cell = self.reservation_cell(reservation)?;
        cell.check_token(token)?;
        let event = self.owning_event(&cell.event);
        let now = self.now();
        let _gate = self.enter(&event, now);
        let mut state = cell.state.lock();
        check_active(&state, now)?;
        let expires_at = now.saturating_add(Duration::from_secs(u64::from(ttl_seconds)));
        let hold_max =
            Duration::from_secs(u64::from(event.event.policy.reservation_ttl_seconds_max));
        if expires_at > cell.created_at.saturating_add(hold_max) {
            return Err(Error::invalid(
                "ttl_seconds",
                format!(
                    "a hold may last at most {} seconds from its creation",
                    hold_max.as_secs()
                ),
            ));
        }
        if let Some(mut holders) = event.holder_shard(&cell.holder)
            && let Some(account) = holders.get_mut(&cell.holder)
            && let Some(hold) = account
                .holds
                .iter_mut()
                .find(|(held, _, _)| Arc::ptr_eq(held, &cell))
        {
            hold.1 = expires_at;
        }
        let mut journal = event.journal.lock();
        journal.append(
            &event,
            now,
            ChangeKind::Extended {
                reservation: cell.id.clone(),
                expires_at,
            },
            [],
        );
        journal.push_due(&event, cell.clone(), expires_at);
        drop(journal);
        state.expires_at = expires_at;
        Ok(cell.view(&event, &state, now, None))
    }

    pub(super) fn cancel_now(
        &self,
        reservation: &ReservationId,
        token: &ReservationToken,
    ) -> Result<()> {
        let cell = self.reservation_cell(reservation)?;
        cell.check_token(token)?;
        let event = self.owning_event(&cell.event);
        let now = self.now();
        let gate = self.enter(&event, now);
        let mut state = cell.state.lock();
        if state.status == ReservationStatus::Cancelled {
            return Ok(());
        }
        check_active(&state, now)?;
        super::reservation::release(&cell, &event, &mut state, Release::Cancelled, now);
        drop(state);
        if gate.serves() {
            self.serve(&event, now);
        }
        drop(gate);
        Ok(())
    }
}

/// An operation on a hold needs it live: not committed or cancelled, not lapsed.
fn check_active(state: &ReservationState, now: Timestamp) -> Result<()> {
    match state.status {
        ReservationStatus::Committed | ReservationStatus::Cancelled => {
            Err(Error::ReservationNotActive {
                status: state.status,
            })
        }
        ReservationStatus::Expired => Err(Error::ReservationExpired {
            expired_at: state.expires_at,
        }),
        ReservationStatus::Active if state.expires_at <= now => Err(Error::ReservationExpired {
            expired_at: state.expires_at,
        }),
        ReservationStatus::Active => Ok(()),
    }
}
