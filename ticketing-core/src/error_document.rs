//! Errors read back from the documents backends answer with: `{"code": …, …data}`, the
//! error's stable code beside its data, as the SQL functions and Lua scripts write them.
//! One decoder for every backend, so an error means the same thing whichever store made it.

use serde_json::Value;

use crate::domain::ReservationStatus;
use crate::error::{ConflictReason, Entity, Error, HolderLimit};
use crate::id::{PoolId, SeatId};
use crate::time::Timestamp;

/// The request fields an `invalid_request` document may name (the core's field names).
const FIELDS: &[&str] = &[
    "ttl_seconds",
    "seat_ids",
    "ga",
    "to",
    "ticket_ids",
    "capacity",
    "limit",
    "admit_per_second",
    "active_max",
    "pass_ttl_seconds",
    "seats_per_buyer",
    "quantity",
    "section",
    "adjacent",
    "pool",
];

/// The fields an `idempotency_mismatch` document may name.
const MISMATCH_FIELDS: &[&str] = &[
    "holder",
    "seat_ids",
    "ga",
    "best_available",
    "ttl_seconds",
    "reservation_id",
    "payment_id",
];

impl Error {
    /// The error an error document describes; `None` when its code is not one of the
    /// decisions a store makes (`backend` included: a backend reports its own failures).
    /// Missing or malformed data reads as the variant's neutral value, never a panic.
    pub fn from_document(document: &Value) -> Option<Error> {
        let text = |key: &str| {
            document
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        let number = |key: &str| document.get(key).and_then(Value::as_u64);
        let time = |key: &str| number(key).map(Timestamp::from_millis);
        let u32_of = |key: &str| {
            number(key)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(u32::MAX)
        };
        let error = document;
        Some(match text("code") {
            "invalid_request" => Error::InvalidRequest {
                field: FIELDS
                    .iter()
                    .copied()
                    .find(|field| *field == text("field"))
                    .unwrap_or("request"),
                reason: text("reason").to_owned(),
            },
            "not_found" => {
                let entity = match text("entity") {
                    "event" => Entity::Event,
                    "seat" => Entity::Seat,
                    "pool" => Entity::Pool,
                    "reservation" => Entity::Reservation,
                    "order" => Entity::Order,
                    "room" => Entity::Room,
                    "queue_ticket" => Entity::QueueTicket,
                    "waitlist" => Entity::Waitlist,
                    "waitlist_entry" => Entity::WaitlistEntry,
                    _ => Entity::Ticket,
                };
                Error::not_found(entity, text("id"))
            }
            "idempotency_mismatch" => Error::IdempotencyMismatch {
                field: MISMATCH_FIELDS
                    .iter()
                    .copied()
                    .find(|field| *field == text("field"))
                    .unwrap_or("request"),
            },
            "invalid_token" => Error::InvalidToken,
            "not_on_sale" => Error::NotOnSale {
                opens_at: time("opens_at"),
                closed_at: time("closed_at"),
            },
            "reservation_expired" => Error::ReservationExpired {
                expired_at: time("expired_at").unwrap_or(Timestamp::EPOCH),
            },
            "reservation_not_active" => Error::ReservationNotActive {
                status: match text("status") {
                    "committed" => ReservationStatus::Committed,
                    "cancelled" => ReservationStatus::Cancelled,
                    "expired" => ReservationStatus::Expired,
                    _ => ReservationStatus::Active,
                },
            },
            "limit_exceeded" => Error::LimitExceeded {
                limit: if text("limit") == "reservations" {
                    HolderLimit::Reservations
                } else {
                    HolderLimit::Seats
                },
                max: u32_of("max"),
            },
            "seat_unavailable" => Error::SeatUnavailable {
                seats: error
                    .get("seats")
                    .and_then(Value::as_array)
                    .map(|seats| {
                        seats
                            .iter()
                            .filter_map(Value::as_str)
                            .filter_map(|seat| SeatId::new(seat).ok())
                            .collect()
                    })
                    .unwrap_or_default(),
            },
            "sold_out" => Error::SoldOut {
                pool: error
                    .get("pool")
                    .and_then(Value::as_str)
                    .and_then(|pool| PoolId::new(pool).ok()),
                remaining: u32_of("remaining"),
            },
            "conflict" => Error::Conflict {
                reason: match text("reason") {
                    "event_exists" => ConflictReason::EventExists,
                    "ticket_checked_in" => ConflictReason::TicketCheckedIn,
                    "ticket_refunded" => ConflictReason::TicketRefunded,
                    "waitlist_entry_exists" => ConflictReason::WaitlistEntryExists,
                    "waitlist_entry_offered" => ConflictReason::WaitlistEntryOffered,
                    "waitlist_full" => ConflictReason::WaitlistFull,
                    _ => ConflictReason::CapacityBelowUsage {
                        used: u32_of("used"),
                    },
                },
            },
            "changes_pruned" => Error::ChangesPruned {
                first_retained: number("first_retained").unwrap_or(0),
            },
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn documents_read_back_as_errors() {
        let sold_out = serde_json::json!({"code": "sold_out", "pool": "p", "remaining": 2});
        assert_eq!(
            Error::from_document(&sold_out),
            Some(Error::SoldOut {
                pool: Some(PoolId::new("p").unwrap()),
                remaining: 2
            })
        );
        let taken = serde_json::json!({"code": "seat_unavailable", "seats": ["A-1", 7]});
        assert_eq!(
            Error::from_document(&taken),
            Some(Error::SeatUnavailable {
                seats: vec![SeatId::new("A-1").unwrap()]
            })
        );
        let unknown_field = serde_json::json!({"code": "invalid_request", "field": "evil"});
        assert_eq!(
            Error::from_document(&unknown_field).unwrap().code(),
            "invalid_request"
        );
        let waitlist = [
            (
                serde_json::json!({"code": "conflict", "reason": "waitlist_entry_exists"}),
                Error::Conflict {
                    reason: ConflictReason::WaitlistEntryExists,
                },
            ),
            (
                serde_json::json!({"code": "conflict", "reason": "waitlist_entry_offered"}),
                Error::Conflict {
                    reason: ConflictReason::WaitlistEntryOffered,
                },
            ),
            (
                serde_json::json!({"code": "conflict", "reason": "waitlist_full"}),
                Error::Conflict {
                    reason: ConflictReason::WaitlistFull,
                },
            ),
            (
                serde_json::json!({"code": "not_found", "entity": "waitlist", "id": "e"}),
                Error::not_found(Entity::Waitlist, "e"),
            ),
            (
                serde_json::json!({"code": "not_found", "entity": "waitlist_entry", "id": "w_1"}),
                Error::not_found(Entity::WaitlistEntry, "w_1"),
            ),
            (
                serde_json::json!({"code": "invalid_request", "field": "quantity"}),
                Error::invalid("quantity", ""),
            ),
        ];
        for (document, error) in waitlist {
            assert_eq!(Error::from_document(&document), Some(error), "{document}");
        }
        assert_eq!(
            Error::from_document(&serde_json::json!({"code": "backend"})),
            None
        );
        assert_eq!(Error::from_document(&serde_json::json!([1, 2])), None);
    }
}
