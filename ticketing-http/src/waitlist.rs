//! Waitlist routes: join an event's waitlist, see where one's entry stands, leave it.
//!
//! The offer itself needs no route of its own: when inventory frees up, the store makes
//! it as an ordinary reservation in the holder's name whose token is the one `join`
//! returned, so the holder commits it with `POST /v1/reservations/{id}/commit` (the
//! entry's view names the reservation once offered). The change stream carries an
//! `offer_made` change the application can turn into a message.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use ticketing_core::{
    EventId, PoolId, WaitlistEntry, WaitlistEntryId, WaitlistRequest, WaitlistState, WaitlistStore,
};
use utoipa::{IntoParams, ToSchema};

use crate::extract::{json_body, jwt_holder};
use crate::handlers::{Shared, holder_for, respond};
use crate::problem::{ApiError, Stored};
use crate::state::AppState;
use crate::wire::Problem;

/// The store's waitlists, or 404 `waitlist_disabled`.
fn waitlists_of(state: &AppState) -> Result<&Arc<dyn WaitlistStore>, ApiError> {
    state.waitlist.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "waitlist_disabled",
            "Waitlists disabled",
            "this server's store serves no waitlists (HttpConfig::waitlist)",
        )
    })
}

/// The event and the entry from `/v1/events/{id}/waitlist/{entry}`.
fn event_and_entry(
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<(EventId, WaitlistEntryId), ApiError> {
    let Path((event, entry)) =
        path.map_err(|rejection| ApiError::invalid("path", rejection.body_text()))?;
    Ok((event.parse()?, entry.parse()?))
}

/// `POST /v1/events/{id}/waitlist`: who waits (development mode) and for what.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitlistJoinBody {
    /// The holder (development mode only; must match the JWT's `sub` otherwise).
    #[serde(default)]
    pub user_id: Option<String>,
    /// Seats or units wanted, offered all at once or not at all.
    pub quantity: u32,
    /// Seats only: all in one row, consecutive numbers.
    #[serde(default)]
    pub adjacent: bool,
    /// Seats only: from this section.
    #[serde(default)]
    pub section: Option<String>,
    /// Units of this GA pool instead of seats.
    #[serde(default)]
    pub pool: Option<String>,
}

/// A waitlist entry and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WaitlistView {
    /// The entry id: `GET /v1/events/{event_id}/waitlist/{entry_id}`.
    pub entry_id: String,
    /// The event.
    pub event_id: String,
    /// The holder.
    pub user_id: String,
    /// Seats or units wanted.
    pub quantity: u32,
    /// Seats in one row, consecutive.
    pub adjacent: bool,
    /// The section asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
    /// The GA pool asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// When the holder joined.
    pub joined_at: String,
    /// `waiting`, `offered` or `left`.
    pub state: String,
    /// 1 for the first in line (waiting only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    /// The offer: a reservation the holder commits with the entry's token (offered only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reservation_id: Option<String>,
    /// The entry's secret, returned once, by the join that made the entry: the
    /// `Reservation-Token` of the offer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl WaitlistView {
    fn of(entry: &WaitlistEntry, token: Option<String>) -> Self {
        let request = &entry.request;
        let (state, position, reservation_id) = match &entry.state {
            WaitlistState::Waiting { position } => ("waiting", Some(*position), None),
            WaitlistState::Offered { reservation } => {
                ("offered", None, Some(reservation.to_string()))
            }
            WaitlistState::Left => ("left", None, None),
        };
        Self {
            entry_id: entry.id.to_string(),
            event_id: request.event.to_string(),
            user_id: request.holder.to_string(),
            quantity: request.quantity,
            adjacent: request.adjacent,
            section: request.section.clone(),
            pool: request.pool.as_ref().map(ToString::to_string),
            joined_at: entry.joined_at.to_string(),
            state: state.to_owned(),
            position,
            reservation_id,
            token,
        }
    }
}

/// Join an event's waitlist (or get back one's open entry).
#[utoipa::path(
    post, path = "/v1/events/{id}/waitlist", tag = "waitlist",
    params(("id" = String, Path, description = "The event")),
    request_body = WaitlistJoinBody,
    responses(
        (status = 201, description = "A new entry, with its token (returned only here)", body = WaitlistView),
        (status = 200, description = "The holder's open entry for the same request, without its token", body = WaitlistView),
        (status = 400, description = "Invalid request", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "JWT missing or invalid", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown event or pool, or no waitlist", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another open entry, limits, or a full waitlist", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn join(
    State(state): State<Shared>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(
        async {
            let store = waitlists_of(&state)?;
            let event = crate::handlers::path_id::<EventId>(path)?;
            let jwt = jwt_holder(&state, &headers)?;
            let body: WaitlistJoinBody =
                json_body(&headers, body, state.body_limit_bytes, false).await?;
            let holder = holder_for(jwt, body.user_id.as_deref())?;
            if let Some(limiter) = &state.holder_limiter {
                limiter.check(&holder, "holder")?;
            }
            let mut request = WaitlistRequest::seats(event, holder, body.quantity);
            request.adjacent = body.adjacent;
            request.section = body.section;
            request.pool = body.pool.as_deref().map(PoolId::new).transpose()?;
            let joined = store
                .waitlist_join(request)
                .await
                .map_err(|error| state.store_error(error))?;
            let created = joined.token.is_some();
            let token = joined.token.map(|token| token.expose());
            let view = WaitlistView::of(&joined.entry, token);
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(Stored::json(status, &view).into_response())
        }
        .await,
    )
}

/// Where a waitlist entry stands: its position, or the offer made to it.
#[utoipa::path(
    get, path = "/v1/events/{id}/waitlist/{entry}", tag = "waitlist",
    params(
        ("id" = String, Path, description = "The event"),
        ("entry" = String, Path, description = "The waitlist entry"),
    ),
    responses(
        (status = 200, description = "The entry", body = WaitlistView),
        (status = 400, description = "Malformed id", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown event or entry, or no waitlist", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn entry(
    State(state): State<Shared>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Response {
    respond(
        async {
            let store = waitlists_of(&state)?;
            let (event, entry) = event_and_entry(path)?;
            let current = store
                .waitlist_entry(&event, &entry)
                .await
                .map_err(|error| state.store_error(error))?;
            Ok(Stored::json(StatusCode::OK, &WaitlistView::of(&current, None)).into_response())
        }
        .await,
    )
}

/// Who leaves, in development mode (with JWTs, the token's `sub`).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct LeaveQuery {
    /// The holder (development mode only).
    user_id: Option<String>,
}

/// Leave a waitlist. Leaving again changes nothing; an entry already offered is 409
/// (cancel the offer with its token instead).
#[utoipa::path(
    delete, path = "/v1/events/{id}/waitlist/{entry}", tag = "waitlist",
    params(
        ("id" = String, Path, description = "The event"),
        ("entry" = String, Path, description = "The waitlist entry"),
        LeaveQuery,
    ),
    responses(
        (status = 204, description = "Left (or had left)"),
        (status = 400, description = "Malformed id or no holder", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown event, or no entry of this holder", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The entry was offered", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn leave(
    State(state): State<Shared>,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<LeaveQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            let store = waitlists_of(&state)?;
            let (event, entry) = event_and_entry(path)?;
            let Query(query) =
                query.map_err(|rejection| ApiError::invalid("query", rejection.body_text()))?;
            let holder = holder_for(jwt_holder(&state, &headers)?, query.user_id.as_deref())?;
            store
                .waitlist_leave(&event, &entry, &holder)
                .await
                .map_err(|error| state.store_error(error))?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        .await,
    )
}
