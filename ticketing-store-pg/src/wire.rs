//! The jsonb documents the store's SQL functions answer: `{"ok": value}` or
//! `{"error": {"code": …, …data}}`, turned into values and core errors.

use serde::de::DeserializeOwned;
use serde_json::Value;
use ticketing_core::{Error, Result};

use crate::error::PgFailure;

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
    Error::from_document(error).unwrap_or_else(|| {
        malformed(
            operation,
            &format!("unknown error code {:?}", error.get("code")),
        )
    })
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
