//! The jsonb documents the store's SQL functions answer: `{"ok": value}` or
//! `{"error": {"code": …, …data}}`, turned into values and core errors.

use serde::de::DeserializeOwned;
use serde_json::Value;
use ticketing_core::{
    ConflictReason, Entity, Error, HolderLimit, PoolId, ReservationStatus, Result, SeatId,
    Timestamp,
};

use crate::error::PgFailure;

/// The request fields an `invalid_request` from SQL may name (the core's field names).
const FIELDS: &[&str] = &[
    "ttl_seconds",
    "seat_ids",
    "ga",
    "to",
    "ticket_ids",
    "capacity",
    "limit",
];

/// The value of an `{"ok": …}` document, or the error of an `{"error": …}` one.
pub(crate) fn decode<T: DeserializeOwned>(operation: &'static str, answer: Value) -> Result<T> {
    let Value::Object(mut answer) = answer else {
        return Err(malformed(operation, "not an object"));
    };
    if let Some(value) = answer.remove("ok") {
        return serde_json::from_value(value)
            .map_err(|error| malformed(operation, &error.to_string()));
    }
    match answer.remove("error") {
        Some(error) => Err(to_error(operation, &error)),
        None => Err(malformed(operation, "neither ok nor error")),
    }
}

fn to_error(operation: &'static str, error: &Value) -> Error {
    let text = |key: &str| error.get(key).and_then(Value::as_str).unwrap_or_default();
    let number = |key: &str| error.get(key).and_then(Value::as_u64);
    let time = |key: &str| number(key).map(Timestamp::from_millis);
    let u32_of = |key: &str| {
        number(key)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(u32::MAX)
    };
    match text("code") {
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
                _ => Entity::Ticket,
            };
            Error::not_found(entity, text("id"))
        }
        "idempotency_mismatch" => Error::IdempotencyMismatch {
            field: [
                "holder",
                "seat_ids",
                "ga",
                "best_available",
                "ttl_seconds",
                "reservation_id",
                "payment_id",
            ]
            .into_iter()
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
                _ => ConflictReason::CapacityBelowUsage {
                    used: u32_of("used"),
                },
            },
        },
        other => malformed(operation, &format!("unknown error code {other:?}")),
    }
}

fn malformed(operation: &'static str, what: &str) -> Error {
    Error::backend(
        "postgres",
        PgFailure {
            operation,
            sqlstate: None,
            message: format!("unexpected answer from the database: {what}"),
        },
    )
}
