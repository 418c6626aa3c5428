//! The JSON documents the scripts answer: `{"ok": value}` or `{"error": {"code": …, …data}}`,
//! turned into values and core errors.
//!
//! Redis's cjson writes an empty Lua table as `{}`; no value the scripts return has an empty
//! object where it means one, so [`decode`] reads every `{}` inside `ok` as `[]`.

use serde::de::DeserializeOwned;
use serde_json::Value;
use ticketing_core::{Error, Result};

use crate::error::RedisFailure;

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
    if error.get("code").and_then(Value::as_str) == Some("tag_collision") {
        let other = error.get("id").and_then(Value::as_str).unwrap_or_default();
        return Error::backend(
            "redis",
            RedisFailure::new(
                operation,
                format!(
                    "the event id shares its 80-bit key tag with event '{other}'; choose another id"
                ),
            ),
        );
    }
    Error::from_document(error).unwrap_or_else(|| {
        malformed(
            operation,
            &format!("unknown error code {:?}", error.get("code")),
        )
    })
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
    use ticketing_core::PoolId;

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
