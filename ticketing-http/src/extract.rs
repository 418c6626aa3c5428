//! Reading requests: JSON bodies with limits, credentials, and well-known headers.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;
use ticketing_core::{HolderId, IdempotencyKey, ReservationToken};

use crate::problem::ApiError;
use crate::state::AppState;

/// The header that carries the reservation token.
pub const RESERVATION_TOKEN: &str = "reservation-token";
/// The header that carries the admin key.
pub const ADMIN_KEY: &str = "x-admin-key";
/// The idempotency header (IETF draft).
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Reads the body as JSON: 415 for another media type, 413 over `limit` bytes, 400 for
/// anything serde refuses. An empty body reads as `{}` when `empty_ok`.
pub(crate) async fn json_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    empty_ok: bool,
) -> Result<T, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large(limit));
    }
    let bytes = read_limited(body, limit).await?;
    if bytes.is_empty() && empty_ok {
        return parse_json(b"{}");
    }
    if !is_json(headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Unsupported media type",
            "send the body as application/json",
        ));
    }
    parse_json(&bytes)
}

async fn read_limited(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => Ok(bytes),
        Err(error) => {
            let source = error.into_inner();
            if source
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(too_large(limit))
            } else {
                Err(ApiError::invalid("body", "the body could not be read"))
            }
        }
    }
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|error| ApiError::invalid("body", format!("malformed JSON: {error}")))
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "Payload too large",
        format!("the body may be at most {limit} bytes"),
    )
    .with("limit_bytes", limit)
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The verified holder of the bearer JWT when JWT authentication is configured;
/// `Ok(None)` in development mode.
pub(crate) fn jwt_holder(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<HolderId>, ApiError> {
    let Some(jwt) = &state.jwt else {
        return Ok(None);
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
        })
        .ok_or_else(|| ApiError::unauthorized("send Authorization: Bearer <JWT>"))?;
    #[derive(serde::Deserialize)]
    struct Claims {
        sub: String,
    }
    let data = jsonwebtoken::decode::<Claims>(token.trim(), &jwt.key, &jwt.validation)
        .map_err(|error| ApiError::unauthorized(format!("the JWT does not verify: {error}")))?;
    HolderId::new(&data.claims.sub)
        .map(Some)
        .map_err(|_| ApiError::unauthorized("the JWT's sub is not a valid holder id"))
}

/// Checks the `X-Admin-Key` header: 401 when missing, 403 when wrong or when no admin key
/// is configured.
pub(crate) fn require_admin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = &state.admin_key else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "admin_disabled",
            "Admin routes disabled",
            "no admin key is configured on this server",
        ));
    };
    let Some(given) = headers.get(ADMIN_KEY) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing_admin_key",
            "Admin key required",
            "send the admin key in the X-Admin-Key header",
        ));
    };
    if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "invalid_admin_key",
            "Wrong admin key",
            "the X-Admin-Key header does not match",
        ))
    }
}

/// Whether the request carries the right admin key (no error when not).
pub(crate) fn is_admin(state: &AppState, headers: &HeaderMap) -> bool {
    headers.contains_key(ADMIN_KEY) && require_admin(state, headers).is_ok()
}

/// The `Reservation-Token` header: 401 when missing, 403 when malformed (a wrong token).
pub(crate) fn reservation_token(headers: &HeaderMap) -> Result<ReservationToken, ApiError> {
    let value = headers.get(RESERVATION_TOKEN).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing_token",
            "Reservation token required",
            "send the token returned at reservation in the Reservation-Token header",
        )
    })?;
    let text = value.to_str().unwrap_or_default().trim();
    ReservationToken::parse(text).map_err(ApiError::from)
}

/// The `Idempotency-Key` header, if any (a structured-field string, quotes optional).
pub(crate) fn idempotency_header(headers: &HeaderMap) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::invalid("idempotency_key", "the header is not ASCII"))?
        .trim();
    let unquoted = text
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or(text);
    IdempotencyKey::new(unquoted)
        .map(Some)
        .map_err(ApiError::from)
}

/// The client's address for rate limiting: the peer, or the first `X-Forwarded-For` entry
/// when trusted; unspecified when neither is known (in-process calls).
pub(crate) fn client_ip(
    trust_forwarded_for: bool,
    headers: &HeaderMap,
    peer: Option<&ConnectInfo<SocketAddr>>,
) -> IpAddr {
    if trust_forwarded_for {
        let forwarded = headers
            .get("x-forwarded-for")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(',').next())
            .and_then(|first| first.trim().parse::<IpAddr>().ok());
        if let Some(ip) = forwarded {
            return ip;
        }
    }
    peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip())
}
