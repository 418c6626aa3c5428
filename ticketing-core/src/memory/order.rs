//! Orders and tickets.

use crate::domain::{Order, Ticket, TicketItem, TicketStatus};
use crate::id::{EventId, HolderId, OrderId, PaymentId, ReservationId, TicketCode, TicketId};
use crate::sync::{Arc, Mutex};
use crate::time::Timestamp;

/// The mutable part of a ticket.
#[derive(Debug)]
pub(crate) struct TicketState {
    pub(crate) holder: HolderId,
    pub(crate) code: TicketCode,
    pub(crate) status: TicketStatus,
}

#[derive(Debug)]
pub(crate) struct TicketCell {
    pub(crate) id: TicketId,
    pub(crate) order: OrderId,
    pub(crate) event: EventId,
    pub(crate) item: TicketItem,
    /// The seat index or pool index of `item`.
    pub(crate) index: ItemIndex,
    pub(crate) state: Mutex<TicketState>,
}

/// Where a ticket's item lives in its event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ItemIndex {
    Seat(u32),
    Pool(usize),
}

impl TicketCell {
    pub(crate) fn view(&self, state: &TicketState) -> Ticket {
        Ticket {
            id: self.id.clone(),
            order: self.order.clone(),
            event: self.event.clone(),
            holder: state.holder.clone(),
            item: self.item.clone(),
            code: state.code.clone(),
            status: state.status,
        }
    }

    pub(crate) fn snapshot(&self) -> Ticket {
        self.view(&self.state.lock())
    }
}

#[derive(Debug)]
pub(crate) struct OrderCell {
    pub(crate) id: OrderId,
    pub(crate) event: EventId,
    pub(crate) reservation: ReservationId,
    pub(crate) holder: HolderId,
    pub(crate) payment_id: Option<PaymentId>,
    pub(crate) created_at: Timestamp,
    pub(crate) tickets: Vec<Arc<TicketCell>>,
}

impl OrderCell {
    pub(crate) fn view(&self) -> Order {
        Order {
            id: self.id.clone(),
            event: self.event.clone(),
            reservation: self.reservation.clone(),
            holder: self.holder.clone(),
            payment_id: self.payment_id.clone(),
            tickets: self
                .tickets
                .iter()
                .map(|ticket| ticket.snapshot())
                .collect(),
            created_at: self.created_at,
        }
    }
}
