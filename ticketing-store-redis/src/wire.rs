//! The JSON documents the scripts answer: `{"ok": value}` or `{"error": {"code": …, …data}}`,
//! turned into values and core errors.
//!
//! Redis's cjson writes an empty Lua table as `{}`; no value the scripts return has an empty
//! object where it means one, so [`decode`] reads every `{}` inside `ok` as `[]`.

use serde::de::DeserializeOwned;
use serde_json::Value;
use ticketing_core::{
    ConflictReason, Entity, Error, HolderLimit, PoolId, ReservationStatus, Result, SeatId,
    Timestamp,
};

use crate::error::RedisFailure;

/// The request fields an `invalid_request` from a script may name (the core's names).
const FIELDS: &[&str] = &["ttl_seconds", "seat_ids", "ga", "to"];

/// The fields an `idempotency_mismatch` may name.
const MISMATCH_FIELDS: &[&str] = &[
    "holder",
    "seat_ids",
    "ga",
    "best_available",
    "ttl_seconds",
    "reservation_id",
    "payment_id",
];

/// Parses a script's answer text.
pub(crate) fn parse(operation: &'static str, text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|error| malformed(operation, &error.to_string()))
}

/// The value of an `{"ok": …}` document, or the error of an `{"error": …}` one.
pub(crate) fn decode<T: DeserializeOwned>(operation: &'static str, answer: Value) -> Result<T> {
    let Value::Object(mut answer) = answer else {
        return Err(malformed(operation, "not an object"));
    };
    if let Some(mut value) = answer.remove("ok") {
        empty_objects_as_arrays(&mut value);
        return serde_json::from_value(value)
            .map_err(|error| malformed(operation, &error.to_string()));
    }
    match answer.remove("error") {
        Some(error) => Err(to_error(operation, &error)),
        None => Err(malformed(operation, "neither ok nor error")),
    }
}

/// Reads every `{}` in `value` as `[]` (cjson cannot tell an empty array from an empty map).
pub(crate) fn empty_objects_as_arrays(value: &mut Value) {
    match value {
        Value::Object(map) if map.is_empty() => *value = Value::Array(Vec::new()),
        Value::Object(map) => map.values_mut().for_each(empty_objects_as_arrays),
        Value::Array(items) => items.iter_mut().for_each(empty_objects_as_arrays),
        _ => {}
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
                _ => ConflictReason::CapacityBelowUsage {
                    used: u32_of("used"),
                },
            },
        },
        "changes_pruned" => Error::ChangesPruned {
            first_retained: number("first_retained").unwrap_or(0),
        },
        "tag_collision" => Error::backend(
            "redis",
            RedisFailure::new(
                operation,
                format!(
                    "the event id shares its 80-bit key tag with event '{}'; choose another id",
                    text("id")
                ),
            ),
        ),
        other => malformed(operation, &format!("unknown error code {other:?}")),
    }
}

/// An answer this version cannot read: a `backend` error.
pub(crate) fn malformed(operation: &'static str, what: &str) -> Error {
    Error::backend(
        "redis",
        RedisFailure::new(
            operation,
            format!("unexpected answer from a script: {what}"),
        ),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn empty_tables_read_as_empty_lists_and_errors_keep_their_data() {
        let answer = parse(
            "t",
            r#"{"ok":{"seats":{},"ga":[{"pool":"p","quantity":1}]}}"#,
        )
        .unwrap();
        let value: Value = decode("t", answer).unwrap();
        assert_eq!(value["seats"], Value::Array(vec![]));
        let answer = parse(
            "t",
            r#"{"error":{"code":"sold_out","pool":"p","remaining":2}}"#,
        )
        .unwrap();
        let error = decode::<Value>("t", answer).unwrap_err();
        assert_eq!(
            error,
            Error::SoldOut {
                pool: Some(PoolId::new("p").unwrap()),
                remaining: 2
            }
        );
        let answer = parse("t", r#"{"error":{"code":"tag_collision","id":"x"}}"#).unwrap();
        assert_eq!(decode::<Value>("t", answer).unwrap_err().code(), "backend");
        assert_eq!(
            decode::<Value>("t", Value::Null).unwrap_err().code(),
            "backend"
        );
    }
}
