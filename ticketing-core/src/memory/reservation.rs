//! A reservation's cell: immutable items, locked status, and the releases that end a hold.

use crate::domain::{ChangeKind, Reservation, ReservationStatus, ReserveRequest, SeatStatus};
use crate::error::{Error, Result};
use crate::id::{ClientReservationId, EventId, HolderId, OrderId, PaymentId, ReservationId};
use crate::sync::{Arc, Mutex};
use crate::time::Timestamp;
use crate::token::ReservationToken;

use super::event::{EventState, SeatSlot};

/// The mutable part of a reservation.
#[derive(Debug)]
pub(crate) struct ReservationState {
    /// `Active` until finalized; an active reservation past `expires_at` reads as expired.
    pub(crate) status: ReservationStatus,
    pub(crate) expires_at: Timestamp,
    pub(crate) order: Option<OrderId>,
}

/// A reservation. Its items never change after creation, so they are read without a lock.
#[derive(Debug)]
pub(crate) struct ReservationCell {
    pub(crate) id: ReservationId,
    pub(crate) event: EventId,
    pub(crate) holder: HolderId,
    token: ReservationToken,
    pub(crate) created_at: Timestamp,
    pub(crate) client_reservation_id: Option<ClientReservationId>,
    /// Seat indices in reservation order.
    pub(crate) seats: Box<[u32]>,
    /// (pool index, quantity) in request order.
    pub(crate) ga: Box<[(usize, u32)]>,
    pub(crate) state: Mutex<ReservationState>,
}

/// Why a hold ends without a sale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Release {
    Cancelled,
    Expired,
}

impl ReservationCell {
    pub(crate) fn new(
        request: &ReserveRequest,
        token: ReservationToken,
        now: Timestamp,
        expires_at: Timestamp,
        seats: Box<[u32]>,
        ga: Box<[(usize, u32)]>,
    ) -> Self {
        Self {
            client_reservation_id: request.client_reservation_id.clone(),
            ..Self::offer(
                request.event.clone(),
                request.holder.clone(),
                token,
                now,
                expires_at,
                seats,
                ga,
            )
        }
    }

    /// A reservation offered to a waitlist entry: no client reservation id, the entry's
    /// token.
    pub(crate) fn offer(
        event: EventId,
        holder: HolderId,
        token: ReservationToken,
        now: Timestamp,
        expires_at: Timestamp,
        seats: Box<[u32]>,
        ga: Box<[(usize, u32)]>,
    ) -> Self {
        Self {
            id: ReservationId::generate(now),
            event,
            holder,
            token,
            created_at: now,
            client_reservation_id: None,
            seats,
            ga,
            state: Mutex::new(ReservationState {
                status: ReservationStatus::Active,
                expires_at,
                order: None,
            }),
        }
    }

    /// Seats plus GA units.
    pub(crate) fn item_count(&self) -> u32 {
        self.seats.len() as u32 + self.ga.iter().map(|(_, quantity)| quantity).sum::<u32>()
    }

    /// Whether the reservation is active and not lapsed at `now`.
    pub(crate) fn is_live(&self, now: Timestamp) -> bool {
        let state = self.state.lock();
        state.status == ReservationStatus::Active && state.expires_at > now
    }

    pub(crate) fn check_token(&self, token: &ReservationToken) -> Result<()> {
        if self.token.matches(token) {
            Ok(())
        } else {
            Err(Error::InvalidToken)
        }
    }

    /// Seat indices sorted for locking.
    pub(crate) fn seats_sorted(&self) -> Vec<u32> {
        let mut sorted = self.seats.to_vec();
        sorted.sort_unstable();
        sorted
    }

    /// The public view, with the status as it reads at `now`.
    pub(crate) fn view(
        &self,
        event: &EventState,
        state: &ReservationState,
        now: Timestamp,
        token: Option<ReservationToken>,
    ) -> Reservation {
        let status = match state.status {
            ReservationStatus::Active if state.expires_at <= now => ReservationStatus::Expired,
            status => status,
        };
        Reservation {
            id: self.id.clone(),
            event: self.event.clone(),
            holder: self.holder.clone(),
            status,
            seats: event.seat_ids(&self.seats),
            ga: event.ga_requests(&self.ga),
            created_at: self.created_at,
            expires_at: state.expires_at,
            token,
            client_reservation_id: self.client_reservation_id.clone(),
            order: state.order.clone(),
        }
    }
}

/// Whether `cell` is active and lapsed by `now` (not yet finalized).
pub(crate) fn is_lapsed(cell: &ReservationCell, now: Timestamp) -> bool {
    let state = cell.state.lock();
    state.status == ReservationStatus::Active && state.expires_at <= now
}

/// Finalizes `cell` as expired if it is active and lapsed by `now`.
pub(crate) fn expire_if_lapsed(
    cell: &Arc<ReservationCell>,
    event: &EventState,
    now: Timestamp,
) -> bool {
    let mut state = cell.state.lock();
    if state.status != ReservationStatus::Active || state.expires_at > now {
        return false;
    }
    release(cell, event, &mut state, Release::Expired, now);
    true
}

/// Ends an active hold: every item back to free, the holder's count updated, logged.
/// The caller holds the reservation's lock (`state`).
pub(crate) fn release(
    cell: &Arc<ReservationCell>,
    event: &EventState,
    state: &mut ReservationState,
    why: Release,
    now: Timestamp,
) {
    assert_eq!(state.status, ReservationStatus::Active);
    if let Some(mut holders) = event.holder_shard(&cell.holder)
        && let Some(account) = holders.get_mut(&cell.holder)
    {
        account.forget(cell);
    }
    let sorted = cell.seats_sorted();
    let mut guards = event.lock_seats(&sorted);
    for guard in &mut guards {
        assert!(
            guard.is_held_by(cell),
            "an active reservation holds its seats"
        );
        **guard = SeatSlot::Free;
    }
    let mut journal = event.journal.lock();
    for (pool, quantity) in cell.ga.iter() {
        let counts = journal.pool_mut(*pool);
        assert!(
            counts.held >= *quantity,
            "an active reservation holds its units"
        );
        counts.held -= quantity;
    }
    let (seats, ga) = (event.seat_ids(&cell.seats), event.ga_requests(&cell.ga));
    let reservation = cell.id.clone();
    let kind = match why {
        Release::Cancelled => ChangeKind::Cancelled {
            reservation,
            seats,
            ga,
        },
        Release::Expired => ChangeKind::Expired {
            reservation,
            seats,
            ga,
        },
    };
    let freed = sorted.iter().map(|index| (*index, SeatStatus::Available));
    journal.append(event, now, kind, freed);
    drop(journal);
    drop(guards);
    state.status = match why {
        Release::Cancelled => ReservationStatus::Cancelled,
        Release::Expired => ReservationStatus::Expired,
    };
}

/// What a reservation request is compared on when its client id comes again.
#[derive(Debug, Clone)]
pub(crate) struct ReserveRecord {
    pub(crate) request: ReserveRequest,
    pub(crate) made_at: Timestamp,
    pub(crate) outcome: Result<ReservationId>,
}

impl ReserveRecord {
    /// The first field in which `request` differs from the recorded one.
    pub(crate) fn mismatch(&self, request: &ReserveRequest) -> Option<&'static str> {
        let first = &self.request;
        if first.holder != request.holder {
            Some("holder")
        } else if first.seats != request.seats {
            Some("seat_ids")
        } else if first.ga != request.ga {
            Some("ga")
        } else if first.best_available != request.best_available {
            Some("best_available")
        } else if first.ttl_seconds != request.ttl_seconds {
            Some("ttl_seconds")
        } else {
            None
        }
    }
}

/// What a commit is compared on when its idempotency key comes again.
#[derive(Debug, Clone)]
pub(crate) struct CommitRecord {
    pub(crate) reservation: ReservationId,
    pub(crate) payment_id: Option<PaymentId>,
    pub(crate) seats: Option<Vec<crate::id::SeatId>>,
    pub(crate) ga: Option<Vec<crate::domain::GaRequest>>,
    pub(crate) made_at: Timestamp,
    pub(crate) outcome: Result<OrderId>,
}

impl CommitRecord {
    /// The first field in which this commit differs from the recorded one.
    pub(crate) fn mismatch(
        &self,
        reservation: &ReservationId,
        request: &crate::domain::CommitRequest,
    ) -> Option<&'static str> {
        if &self.reservation != reservation {
            Some("reservation_id")
        } else if self.payment_id != request.payment_id {
            Some("payment_id")
        } else if self.seats != request.seats {
            Some("seat_ids")
        } else if self.ga != request.ga {
            Some("ga")
        } else {
            None
        }
    }
}
