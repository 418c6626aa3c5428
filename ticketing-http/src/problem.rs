//! Errors as RFC 9457 `application/problem+json` documents carrying the core's stable code.

use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use ticketing_core::{ConflictReason, Error};

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A response whose parts can be stored and replayed (idempotency).
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub(crate) status: StatusCode,
    pub(crate) content_type: &'static str,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) body: Bytes,
}

impl Stored {
    /// A JSON response with `status`.
    pub(crate) fn json(status: StatusCode, value: &impl serde::Serialize) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => Self {
                status,
                content_type: "application/json",
                headers: Vec::new(),
                body: Bytes::from(body),
            },
            Err(error) => ApiError::internal(&error).stored(),
        }
    }

    /// Adds a header.
    pub(crate) fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Whether a replay of this response is meaningful: decisions, not transient failures.
    pub(crate) fn is_final(&self) -> bool {
        self.status != StatusCode::TOO_MANY_REQUESTS && !self.status.is_server_error()
    }
}

impl IntoResponse for Stored {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        for (name, value) in self.headers {
            headers.append(name, value);
        }
        response
    }
}

/// An error answer: status, stable code, human detail and machine-readable data.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    title: &'static str,
    detail: String,
    data: Map<String, Value>,
    retry_after: Option<Duration>,
    www_authenticate: bool,
}

impl ApiError {
    /// An error with `status`, `code`, a short `title` and a `detail` for people.
    pub fn new(
        status: StatusCode,
        code: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code,
            title,
            detail: detail.into(),
            data: Map::new(),
            retry_after: None,
            www_authenticate: false,
        }
    }

    /// Adds an extension member to the problem document.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.data.insert(key.to_owned(), value.into());
        self
    }

    /// Sets `Retry-After` (whole seconds, rounded up).
    pub fn retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// 400 `invalid_request` for `field`.
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::from(Error::invalid(field, reason))
    }

    /// 401 `unauthorized`: a bearer JWT is missing or does not verify.
    pub(crate) fn unauthorized(detail: impl Into<String>) -> Self {
        let mut error = Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Authentication required",
            detail,
        );
        error.www_authenticate = true;
        error
    }

    /// 500 `internal`: a bug; the cause goes to the log, not to the client.
    pub(crate) fn internal(error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the server failed to answer; the failure was logged",
        )
    }

    /// The document's JSON.
    fn document(&self) -> Value {
        let mut body = Map::new();
        body.insert("type".into(), format!("urn:ticketing:{}", self.code).into());
        body.insert("title".into(), self.title.into());
        body.insert("status".into(), self.status.as_u16().into());
        body.insert("detail".into(), self.detail.clone().into());
        body.insert("code".into(), self.code.into());
        for (key, value) in &self.data {
            body.insert(key.clone(), value.clone());
        }
        Value::Object(body)
    }

    /// The response, as stored parts.
    pub(crate) fn stored(&self) -> Stored {
        let body = serde_json::to_vec(&self.document()).unwrap_or_default();
        let mut headers = Vec::new();
        if let Some(wait) = self.retry_after {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            headers.push((header::RETRY_AFTER, HeaderValue::from(seconds.max(1))));
        }
        if self.www_authenticate {
            headers.push((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        Stored {
            status: self.status,
            content_type: PROBLEM_JSON,
            headers,
            body: Bytes::from(body),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.stored().into_response()
    }
}

/// The status each core code answers with.
pub fn status_of(error: &Error) -> StatusCode {
    match error {
        Error::InvalidRequest { .. } => StatusCode::BAD_REQUEST,
        Error::NotFound { .. } => StatusCode::NOT_FOUND,
        Error::IdempotencyMismatch { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        Error::InvalidToken => StatusCode::FORBIDDEN,
        Error::ReservationExpired { .. } | Error::ChangesPruned { .. } => StatusCode::GONE,
        Error::NotOnSale { .. }
        | Error::ReservationNotActive { .. }
        | Error::LimitExceeded { .. }
        | Error::SeatUnavailable { .. }
        | Error::SoldOut { .. }
        | Error::Conflict { .. } => StatusCode::CONFLICT,
        Error::Backend { .. } => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn title_of(error: &Error) -> &'static str {
    match error {
        Error::InvalidRequest { .. } => "Invalid request",
        Error::NotFound { .. } => "Not found",
        Error::IdempotencyMismatch { .. } => "Idempotency key reused with another payload",
        Error::InvalidToken => "Wrong reservation token",
        Error::NotOnSale { .. } => "Not on sale",
        Error::ReservationExpired { .. } => "Reservation expired",
        Error::ReservationNotActive { .. } => "Reservation not active",
        Error::LimitExceeded { .. } => "Holder limit exceeded",
        Error::SeatUnavailable { .. } => "Seats unavailable",
        Error::SoldOut { .. } => "Sold out",
        Error::Conflict { .. } => "Conflict",
        Error::ChangesPruned { .. } => "Changes no longer retained",
        Error::Backend { .. } => "Store unavailable",
        _ => "Error",
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        let status = status_of(&error);
        let detail = match &error {
            Error::Backend { .. } => {
                tracing::error!(%error, "store failed");
                "the store is unavailable; retry with the same idempotency key".to_owned()
            }
            other => other.to_string(),
        };
        let mut problem = ApiError::new(status, error.code(), title_of(&error), detail);
        problem.data = data_of(&error);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            problem.retry_after = Some(Duration::from_secs(1));
        }
        problem
    }
}

/// The machine-readable data of a core error, as problem extension members.
fn data_of(error: &Error) -> Map<String, Value> {
    let value = match error {
        Error::InvalidRequest { field, reason } => json!({"field": field, "reason": reason}),
        Error::NotFound { entity, id } => json!({"entity": entity, "id": id}),
        Error::IdempotencyMismatch { field } => json!({"field": field}),
        Error::NotOnSale {
            opens_at,
            closed_at,
        } => json!({
            "opens_at": opens_at.map(|at| at.to_string()),
            "closed_at": closed_at.map(|at| at.to_string()),
        }),
        Error::ReservationExpired { expired_at } => {
            json!({"expired_at": expired_at.to_string()})
        }
        Error::ReservationNotActive { status } => json!({"reservation_status": status}),
        Error::LimitExceeded { limit, max } => json!({"limit": limit, "max": max}),
        Error::SeatUnavailable { seats } => json!({"seat_ids": seats}),
        Error::SoldOut { pool, remaining } => json!({"pool": pool, "remaining": remaining}),
        Error::Conflict { reason } => conflict_data(*reason),
        Error::ChangesPruned { first_retained } => json!({"first_retained": first_retained}),
        _ => json!({}),
    };
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn conflict_data(reason: ConflictReason) -> Value {
    match reason {
        ConflictReason::CapacityBelowUsage { used } => {
            json!({"reason": "capacity_below_usage", "used": used})
        }
        other => match serde_json::to_value(other) {
            Ok(value) => value,
            Err(_) => json!({}),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticketing_core::{Entity, PoolId, ReservationStatus, SeatId, Timestamp};

    /// Every core code with the status it answers; one row per code, in precedence order.
    #[test]
    fn every_core_code_maps_to_its_status() -> Result<(), Error> {
        let rows: Vec<(Error, u16)> = vec![
            (Error::invalid("seat_ids", "empty"), 400),
            (Error::not_found(Entity::Event, "e"), 404),
            (Error::IdempotencyMismatch { field: "seat_ids" }, 422),
            (Error::InvalidToken, 403),
            (
                Error::NotOnSale {
                    opens_at: None,
                    closed_at: None,
                },
                409,
            ),
            (
                Error::ReservationExpired {
                    expired_at: Timestamp::EPOCH,
                },
                410,
            ),
            (
                Error::ReservationNotActive {
                    status: ReservationStatus::Cancelled,
                },
                409,
            ),
            (
                Error::LimitExceeded {
                    limit: ticketing_core::HolderLimit::Seats,
                    max: 2,
                },
                409,
            ),
            (
                Error::SeatUnavailable {
                    seats: vec![SeatId::new("A-1")?],
                },
                409,
            ),
            (
                Error::SoldOut {
                    pool: Some(PoolId::new("ga")?),
                    remaining: 1,
                },
                409,
            ),
            (
                Error::Conflict {
                    reason: ConflictReason::CapacityBelowUsage { used: 3 },
                },
                409,
            ),
            (Error::ChangesPruned { first_retained: 4 }, 410),
            (Error::backend("memory", std::io::Error::other("x")), 503),
        ];
        let codes: Vec<&str> = rows.iter().map(|(error, _)| error.code()).collect();
        assert_eq!(codes, Error::CODES);
        for (error, status) in rows {
            let problem = ApiError::from(error.clone());
            assert_eq!(problem.status().as_u16(), status, "{}", error.code());
            assert_eq!(problem.code(), error.code());
            let document = problem.document();
            assert_eq!(document["code"], error.code());
            assert_eq!(document["status"], status);
        }
        Ok(())
    }

    #[test]
    fn backend_details_do_not_leak() {
        let error = Error::backend("postgres", std::io::Error::other("password=hunter2"));
        let stored = ApiError::from(error).stored();
        let text = String::from_utf8_lossy(&stored.body);
        assert!(!text.contains("hunter2"));
        assert!(
            stored
                .headers
                .iter()
                .any(|(name, _)| name == header::RETRY_AFTER)
        );
    }
}
