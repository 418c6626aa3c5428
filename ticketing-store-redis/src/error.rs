//! Backend failures, described without keys, arguments or secrets.

use std::fmt;

use ticketing_core::Error;

/// What went wrong talking to Redis: the store operation and what happened (the client's
/// or server's description, never the script's arguments).
#[derive(Debug)]
pub struct RedisFailure {
    /// The store operation that failed ("reserve", "connect", …).
    pub operation: &'static str,
    /// What happened.
    pub message: String,
}

impl RedisFailure {
    pub(crate) fn new(operation: &'static str, message: impl Into<String>) -> Self {
        Self {
            operation,
            message: message.into(),
        }
    }
}

impl fmt::Display for RedisFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.operation, self.message)
    }
}

impl std::error::Error for RedisFailure {}

/// The core's `backend` error for a redis-rs error of `operation`.
pub(crate) fn backend(operation: &'static str, error: &redis::RedisError) -> Error {
    Error::backend("redis", RedisFailure::new(operation, error.to_string()))
}
