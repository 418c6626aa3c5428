//! The one error type: variants in order of precedence, each with a stable code.
//!
//! When a request is wrong in several ways, the error reported is the first in this order
//! (validation before lookup before authorization before state), so every backend answers
//! the same request with the same error. Codes are part of the public contract: never
//! renamed or reused (a retired code stays listed in [`Error::CODES`] history below).

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::domain::ReservationStatus;
use crate::id::{PoolId, SeatId};
use crate::time::Timestamp;

/// What this crate's operations return.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The kinds of thing a lookup can fail to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Entity {
    /// An event.
    Event,
    /// A seat of an event's layout.
    Seat,
    /// A GA pool of an event.
    Pool,
    /// A reservation.
    Reservation,
    /// An order.
    Order,
    /// A ticket (by id or by code).
    Ticket,
    /// An event's waiting room (the event is not gated).
    Room,
    /// A waiting-room ticket.
    QueueTicket,
    /// An event's waitlist (the event's policy has none).
    Waitlist,
    /// A waitlist entry.
    WaitlistEntry,
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Entity::Event => "event",
            Entity::Seat => "seat",
            Entity::Pool => "pool",
            Entity::Reservation => "reservation",
            Entity::Order => "order",
            Entity::Ticket => "ticket",
            Entity::Room => "room",
            Entity::QueueTicket => "queue_ticket",
            Entity::Waitlist => "waitlist",
            Entity::WaitlistEntry => "waitlist_entry",
        })
    }
}

/// Which per-holder limit of an event's policy a request would break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum HolderLimit {
    /// Seats and GA units reserved (in live reservations) plus owned (valid tickets).
    Seats,
    /// Live reservations at once.
    Reservations,
}

/// Why a request conflicts with the current state, beyond seat and pool availability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
#[non_exhaustive]
pub enum ConflictReason {
    /// An event with this id exists already.
    EventExists,
    /// The ticket was checked in already; it cannot be checked in, refunded or transferred.
    TicketCheckedIn,
    /// The ticket was refunded; it is no longer valid.
    TicketRefunded,
    /// The new capacity or blocked count would leave the pool with less than it has out.
    CapacityBelowUsage {
        /// Units held, sold and blocked right now.
        used: u32,
    },
    /// The holder already has an open entry on this event's waitlist, for another request.
    WaitlistEntryExists,
    /// The waitlist entry was offered a reservation already: cancel that instead.
    WaitlistEntryOffered,
    /// The event's waitlist holds as many entries as it may
    /// ([`WAITLIST_ENTRIES_MAX`](crate::validate::WAITLIST_ENTRIES_MAX)).
    WaitlistFull,
}

/// Everything that can go wrong, in order of precedence.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request is malformed: a field is missing, out of range or inconsistent.
    /// Nothing was changed.
    #[error("invalid {field}: {reason}")]
    InvalidRequest {
        /// The request field at fault, named as in the HTTP API.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The thing named does not exist.
    #[error("{entity} '{id}' not found")]
    NotFound {
        /// What kind of thing.
        entity: Entity,
        /// The id (or code) that was looked up.
        id: String,
    },
    /// The client reservation id or idempotency key was used before with another payload.
    #[error("idempotency key reused with a different {field}")]
    IdempotencyMismatch {
        /// The first field that differs from the first request's.
        field: &'static str,
    },
    /// The reservation token is missing or wrong.
    #[error("invalid reservation token")]
    InvalidToken,
    /// The event is outside its sale window.
    #[error("event is not on sale")]
    NotOnSale {
        /// When the sale opens, if it has not yet.
        opens_at: Option<Timestamp>,
        /// When the sale closed, if it has.
        closed_at: Option<Timestamp>,
    },
    /// The reservation's hold lapsed; its items are no longer guaranteed.
    #[error("reservation expired at {expired_at}")]
    ReservationExpired {
        /// When the hold lapsed.
        expired_at: Timestamp,
    },
    /// The reservation was committed or cancelled already.
    #[error("reservation is {status}, not active")]
    ReservationNotActive {
        /// Its status now.
        status: ReservationStatus,
    },
    /// The request would take the holder over a limit of the event's policy.
    #[error("holder limit exceeded: at most {max} {limit:?}")]
    LimitExceeded {
        /// Which limit.
        limit: HolderLimit,
        /// The limit's value.
        max: u32,
    },
    /// Some of the requested seats are held, sold or blocked.
    #[error("seats unavailable: {seats:?}")]
    SeatUnavailable {
        /// The requested seats that are not free, in request order.
        seats: Vec<SeatId>,
    },
    /// Not enough free units in a GA pool, or not enough matching free seats for a
    /// best-available request.
    #[error("sold out: {remaining} remaining")]
    SoldOut {
        /// The pool, or `None` for a best-available request.
        pool: Option<PoolId>,
        /// How many units (or matching seats) are free right now.
        remaining: u32,
    },
    /// The request conflicts with the current state.
    #[error("conflict: {reason:?}")]
    Conflict {
        /// Why.
        reason: ConflictReason,
    },
    /// The change log no longer holds the sequence numbers asked for: re-read the
    /// availability snapshot and follow the log from its sequence number.
    #[error("changes before {first_retained} were pruned")]
    ChangesPruned {
        /// The oldest sequence number still retained.
        first_retained: u64,
    },
    /// The backend failed (I/O, timeout, unavailable). The operation may or may not have
    /// taken effect if the failure came after it was sent; idempotency keys make a retry
    /// safe. Never carries SQL or secrets.
    #[error("{backend} backend error: {source}")]
    Backend {
        /// Which backend ("postgres", "redis", ...).
        backend: &'static str,
        /// The underlying failure, for logs.
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    /// Every code, in precedence order. Codes are stable: never renamed or reused.
    pub const CODES: &'static [&'static str] = &[
        "invalid_request",
        "not_found",
        "idempotency_mismatch",
        "invalid_token",
        "not_on_sale",
        "reservation_expired",
        "reservation_not_active",
        "limit_exceeded",
        "seat_unavailable",
        "sold_out",
        "conflict",
        "changes_pruned",
        "backend",
    ];

    /// The stable snake_case code of this error, as sent over HTTP.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidRequest { .. } => "invalid_request",
            Error::NotFound { .. } => "not_found",
            Error::IdempotencyMismatch { .. } => "idempotency_mismatch",
            Error::InvalidToken => "invalid_token",
            Error::NotOnSale { .. } => "not_on_sale",
            Error::ReservationExpired { .. } => "reservation_expired",
            Error::ReservationNotActive { .. } => "reservation_not_active",
            Error::LimitExceeded { .. } => "limit_exceeded",
            Error::SeatUnavailable { .. } => "seat_unavailable",
            Error::SoldOut { .. } => "sold_out",
            Error::Conflict { .. } => "conflict",
            Error::ChangesPruned { .. } => "changes_pruned",
            Error::Backend { .. } => "backend",
        }
    }

    /// Whether repeating the very same call may give another answer: only when the backend
    /// failed. Every other error is a decision the store made and will make again.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Backend { .. })
    }

    /// An [`Error::InvalidRequest`] for `field`.
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidRequest {
            field,
            reason: reason.into(),
        }
    }

    /// An [`Error::NotFound`] for `id` of kind `entity`.
    pub fn not_found(entity: Entity, id: impl fmt::Display) -> Self {
        Error::NotFound {
            entity,
            id: id.to_string(),
        }
    }

    /// An [`Error::Backend`] wrapping `source`.
    pub fn backend(
        backend: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Backend {
            backend,
            source: Arc::new(source),
        }
    }
}

/// Errors are equal when they say the same thing; backend errors compare by backend only,
/// since their sources are opaque.
impl PartialEq for Error {
    fn eq(&self, other: &Self) -> bool {
        use Error::*;
        match (self, other) {
            (
                InvalidRequest {
                    field: a,
                    reason: x,
                },
                InvalidRequest {
                    field: b,
                    reason: y,
                },
            ) => a == b && x == y,
            (NotFound { entity: a, id: x }, NotFound { entity: b, id: y }) => a == b && x == y,
            (IdempotencyMismatch { field: a }, IdempotencyMismatch { field: b }) => a == b,
            (InvalidToken, InvalidToken) => true,
            (
                NotOnSale {
                    opens_at: a,
                    closed_at: x,
                },
                NotOnSale {
                    opens_at: b,
                    closed_at: y,
                },
            ) => a == b && x == y,
            (ReservationExpired { expired_at: a }, ReservationExpired { expired_at: b }) => a == b,
            (ReservationNotActive { status: a }, ReservationNotActive { status: b }) => a == b,
            (LimitExceeded { limit: a, max: x }, LimitExceeded { limit: b, max: y }) => {
                a == b && x == y
            }
            (SeatUnavailable { seats: a }, SeatUnavailable { seats: b }) => a == b,
            (
                SoldOut {
                    pool: a,
                    remaining: x,
                },
                SoldOut {
                    pool: b,
                    remaining: y,
                },
            ) => a == b && x == y,
            (Conflict { reason: a }, Conflict { reason: b }) => a == b,
            (ChangesPruned { first_retained: a }, ChangesPruned { first_retained: b }) => a == b,
            (Backend { backend: a, .. }, Backend { backend: b, .. }) => a == b,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The code of every variant, pinned: changing a row here is a breaking change.
    #[test]
    fn codes_are_stable_and_in_precedence_order() {
        let io = std::io::Error::other("disk on fire");
        let table: Vec<(Error, &str)> = vec![
            (Error::invalid("seat_ids", "empty"), "invalid_request"),
            (Error::not_found(Entity::Event, "e1"), "not_found"),
            (
                Error::IdempotencyMismatch { field: "seat_ids" },
                "idempotency_mismatch",
            ),
            (Error::InvalidToken, "invalid_token"),
            (
                Error::NotOnSale {
                    opens_at: None,
                    closed_at: None,
                },
                "not_on_sale",
            ),
            (
                Error::ReservationExpired {
                    expired_at: Timestamp::EPOCH,
                },
                "reservation_expired",
            ),
            (
                Error::ReservationNotActive {
                    status: ReservationStatus::Cancelled,
                },
                "reservation_not_active",
            ),
            (
                Error::LimitExceeded {
                    limit: HolderLimit::Seats,
                    max: 4,
                },
                "limit_exceeded",
            ),
            (Error::SeatUnavailable { seats: vec![] }, "seat_unavailable"),
            (
                Error::SoldOut {
                    pool: None,
                    remaining: 0,
                },
                "sold_out",
            ),
            (
                Error::Conflict {
                    reason: ConflictReason::EventExists,
                },
                "conflict",
            ),
            (Error::ChangesPruned { first_retained: 9 }, "changes_pruned"),
            (Error::backend("postgres", io), "backend"),
        ];
        let codes: Vec<&str> = table.iter().map(|(error, _)| error.code()).collect();
        let expected: Vec<&str> = table.iter().map(|(_, code)| *code).collect();
        assert_eq!(codes, expected);
        assert_eq!(codes, Error::CODES);
        for (error, _) in &table {
            assert_eq!(error.is_transient(), error.code() == "backend");
            assert!(!error.to_string().is_empty());
        }
    }

    #[test]
    fn backend_errors_do_not_leak_their_source_into_equality() {
        let a = Error::backend("redis", std::io::Error::other("a"));
        let b = Error::backend("redis", std::io::Error::other("b"));
        assert_eq!(a, b);
        assert_ne!(a, Error::backend("postgres", std::io::Error::other("a")));
    }
}
