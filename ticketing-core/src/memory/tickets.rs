//! After the sale: refunds, transfers, check-in.

use crate::domain::{ChangeKind, GaRequest, Refund, RefundTo, SeatStatus, Ticket, TicketStatus};
use crate::error::{ConflictReason, Entity, Error, HolderLimit, Result};
use crate::id::{HolderId, OrderId, TicketCode, TicketId};
use crate::validate;

use super::MemoryStore;
use super::event::{EventState, SeatSlot};
use super::order::{ItemIndex, OrderCell, TicketState};
use crate::time::Timestamp;

/// Why a ticket that is not valid cannot be refunded, transferred or checked in.
fn not_valid(status: TicketStatus) -> Option<Error> {
    let reason = match status {
        TicketStatus::Valid => return None,
        TicketStatus::CheckedIn => ConflictReason::TicketCheckedIn,
        TicketStatus::Refunded => ConflictReason::TicketRefunded,
    };
    Some(Error::Conflict { reason })
}

impl MemoryStore {
    pub(super) fn refund_now(&self, order: &OrderId, named: Option<&[TicketId]>) -> Result<Refund> {
        validate::check_refund(named)?;
        let order = self.order_cell(order)?;
        let event = self.owning_event(&order.event);
        let positions: Option<Vec<usize>> = named
            .map(|named| {
                named
                    .iter()
                    .map(|id| {
                        order
                            .tickets
                            .iter()
                            .position(|ticket| &ticket.id == id)
                            .ok_or_else(|| Error::not_found(Entity::Ticket, id))
                    })
                    .collect::<Result<_>>()
            })
            .transpose()?;
        let now = self.now();
        let gate = self.enter(&event, now);
        let refund = self.refund_positions(&order, &event, positions, now)?;
        if gate.serves() && refund.to == RefundTo::Sale {
            self.serve(&event, now);
        }
        drop(gate);
        Ok(refund)
    }

    /// Refunds the tickets at `positions` of `order` (all valid ones for `None`).
    fn refund_positions(
        &self,
        order: &OrderCell,
        event: &EventState,
        positions: Option<Vec<usize>>,
        now: Timestamp,
    ) -> Result<Refund> {
        // Tickets are locked in the order's order: the same order for every refund.
        let mut states: Vec<_> = order
            .tickets
            .iter()
            .map(|ticket| ticket.state.lock())
            .collect();
        let mut targets: Vec<usize> = match positions {
            Some(positions) => {
                if let Some(error) = positions
                    .iter()
                    .find_map(|position| not_valid(states[*position].status))
                {
                    return Err(error);
                }
                positions
            }
            None => {
                let valid: Vec<usize> = (0..states.len())
                    .filter(|position| states[*position].status == TicketStatus::Valid)
                    .collect();
                if valid.is_empty() {
                    return Err(states
                        .first()
                        .and_then(|first| not_valid(first.status))
                        .unwrap_or_else(|| Error::Conflict {
                            reason: ConflictReason::TicketRefunded,
                        }));
                }
                valid
            }
        };
        targets.sort_unstable();
        let to = event.event.policy.refund_to;
        let holder_ids: Vec<HolderId> = targets
            .iter()
            .map(|position| states[*position].holder.clone())
            .collect();
        let mut holders = event
            .holders
            .as_ref()
            .map(|holders| holders.lock_many(holder_ids.iter()));
        let mut seats: Vec<u32> = targets
            .iter()
            .filter_map(|position| match order.tickets[*position].index {
                ItemIndex::Seat(index) => Some(index),
                ItemIndex::Pool(_) => None,
            })
            .collect();
        seats.sort_unstable();
        let mut guards = event.lock_seats(&seats);
        let mut journal = event.journal.lock();
        let mut ga: Vec<GaRequest> = Vec::new();
        let (seat_slot, seat_status) = match to {
            RefundTo::Sale => (SeatSlot::Free, SeatStatus::Available),
            RefundTo::Blocked => (SeatSlot::Blocked, SeatStatus::Blocked),
        };
        for guard in guards.iter_mut() {
            assert!(
                matches!(**guard, SeatSlot::Sold),
                "a valid ticket's seat is sold"
            );
            **guard = seat_slot.clone();
        }
        for position in &targets {
            let ticket = &order.tickets[*position];
            if let ItemIndex::Pool(pool) = ticket.index {
                let counts = journal.pool_mut(pool);
                counts.sold -= 1;
                if to == RefundTo::Blocked {
                    counts.blocked += 1;
                }
                match ga
                    .iter_mut()
                    .find(|entry| entry.pool == event.pool_id(pool))
                {
                    Some(entry) => entry.quantity += 1,
                    None => ga.push(GaRequest {
                        pool: event.pool_id(pool),
                        quantity: 1,
                    }),
                }
            }
            let state = &mut states[*position];
            state.status = TicketStatus::Refunded;
            if let Some(holders) = holders.as_mut()
                && let Some(account) = holders.shard(&state.holder).get_mut(&state.holder)
            {
                account.tickets -= 1;
            }
        }
        journal.assert_pools();
        let tickets: Vec<TicketId> = targets
            .iter()
            .map(|position| order.tickets[*position].id.clone())
            .collect();
        let kind = ChangeKind::Refunded {
            order: order.id.clone(),
            tickets: tickets.clone(),
            seats: event.seat_ids(&seats),
            ga,
            to,
        };
        journal.append(
            event,
            now,
            kind,
            seats.iter().map(|index| (*index, seat_status)),
        );
        Ok(Refund {
            order: order.id.clone(),
            tickets,
            to,
            refunded_at: now,
        })
    }

    pub(super) fn transfer_now(&self, ticket: &TicketId, to: &HolderId) -> Result<Ticket> {
        let cell = self.ticket_cell(ticket)?;
        let event = self.owning_event(&cell.event);
        let now = self.now();
        let mut state = cell.state.lock();
        if &state.holder == to {
            return Err(Error::invalid(
                "to",
                "the ticket already belongs to this holder",
            ));
        }
        if let Some(error) = not_valid(state.status) {
            return Err(error);
        }
        let from = state.holder.clone();
        let mut holders = event
            .holders
            .as_ref()
            .map(|holders| holders.lock_many([&from, to]));
        if let Some(holders) = holders.as_mut() {
            let recipient = holders.shard(to).entry(to.clone()).or_default();
            if let Some(max) = event.event.policy.holder_seats_max
                && recipient.items(now) + 1 > max
            {
                return Err(Error::LimitExceeded {
                    limit: HolderLimit::Seats,
                    max,
                });
            }
            recipient.tickets += 1;
            if let Some(giver) = holders.shard(&from).get_mut(&from) {
                giver.tickets -= 1;
            }
        }
        let kind = ChangeKind::Transferred {
            ticket: cell.id.clone(),
            from,
            to: to.clone(),
        };
        event.journal.lock().append(&event, now, kind, []);
        drop(holders);
        let old_code = std::mem::replace(&mut state.code, TicketCode::generate());
        state.holder = to.clone();
        self.codes.remove(&old_code);
        self.codes.insert(state.code.clone(), cell.clone());
        Ok(cell.view(&state))
    }

    pub(super) fn check_in_now(&self, code: &TicketCode) -> Result<Ticket> {
        let not_found = || Error::not_found(Entity::Ticket, code);
        let cell = self.codes.get(code).ok_or_else(not_found)?;
        let event = self.owning_event(&cell.event);
        let now = self.now();
        let mut state: crate::sync::MutexGuard<'_, TicketState> = cell.state.lock();
        // A transfer replaces the code; the map may briefly still point here from the old one.
        if &state.code != code {
            return Err(not_found());
        }
        if let Some(error) = not_valid(state.status) {
            return Err(error);
        }
        state.status = TicketStatus::CheckedIn;
        event.journal.lock().append(
            &event,
            now,
            ChangeKind::CheckedIn {
                ticket: cell.id.clone(),
            },
            [],
        );
        Ok(cell.view(&state))
    }
}
