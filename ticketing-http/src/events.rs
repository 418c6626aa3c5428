//! Event routes: creation and administration, listings, the seat map, operations.

use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use ticketing_core::{
    Error, EventId, EventSpec, LateCommit, Page, Policy, PoolId, PoolSpec, Position, RefundTo,
    SaleWindow, Seat, SeatId,
};
use utoipa::IntoParams;

use crate::extract::{json_body, require_admin};
use crate::handlers::{Shared, path_id, respond};
use crate::problem::{ApiError, Stored};
use crate::state::AppState;
use crate::wire::{
    BlockBody, CreateEventBody, EventList, EventView, Health, PolicyBody, PoolUpdateBody, Problem,
    SaleWindowBody, SeatMap, parse_time,
};

fn policy(body: Option<&PolicyBody>) -> Result<Policy, Error> {
    let mut policy = Policy::default();
    let Some(body) = body else {
        return Ok(policy);
    };
    if let Some(ttl) = body.reservation_ttl_seconds {
        policy.reservation_ttl_seconds = ttl;
    }
    if let Some(ttl) = body.reservation_ttl_seconds_max {
        policy.reservation_ttl_seconds_max = ttl;
    }
    policy.holder_seats_max = body.holder_seats_max;
    policy.holder_reservations_max = body.holder_reservations_max;
    policy.late_commit = match body.late_commit.as_deref() {
        None | Some("strict") => LateCommit::Strict,
        Some("if_still_available") => LateCommit::IfStillAvailable,
        Some(_) => {
            return Err(Error::invalid(
                "policy.late_commit",
                "must be strict or if_still_available",
            ));
        }
    };
    if let Some(waitlist) = body.waitlist {
        policy.waitlist = waitlist;
    }
    if let Some(ttl) = body.waitlist_offer_ttl_seconds {
        policy.waitlist_offer_ttl_seconds = ttl;
    }
    policy.refund_to = match body.refund_to.as_deref() {
        None | Some("sale") => RefundTo::Sale,
        Some("blocked") => RefundTo::Blocked,
        Some(_) => {
            return Err(Error::invalid(
                "policy.refund_to",
                "must be sale or blocked",
            ));
        }
    };
    Ok(policy)
}

fn sale_window(body: Option<&SaleWindowBody>) -> Result<Option<SaleWindow>, Error> {
    let Some(body) = body else {
        return Ok(None);
    };
    let opens_at = body
        .opens_at
        .as_deref()
        .map(|text| parse_time("sale_window.opens_at", text))
        .transpose()?;
    let closes_at = body
        .closes_at
        .as_deref()
        .map(|text| parse_time("sale_window.closes_at", text))
        .transpose()?;
    Ok(Some(SaleWindow {
        opens_at,
        closes_at,
    }))
}

fn event_spec(body: CreateEventBody) -> Result<EventSpec, Error> {
    let seats = body
        .seats
        .into_iter()
        .map(|seat| {
            Ok(Seat {
                id: SeatId::new(&seat.seat_id)?,
                section: seat.section,
                row: seat.row,
                number: seat.number,
                category: seat.category,
                accessible: seat.accessible,
                position: Position {
                    x: seat.x,
                    y: seat.y,
                },
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let pools = body
        .pools
        .into_iter()
        .map(|pool| {
            Ok(PoolSpec {
                id: PoolId::new(&pool.pool)?,
                name: pool.name,
                capacity: pool.capacity,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(EventSpec {
        id: EventId::new(&body.event_id)?,
        name: body.name,
        seats,
        pools,
        sale_window: sale_window(body.sale_window.as_ref())?,
        policy: policy(body.policy.as_ref())?,
    })
}

/// Create an event with its layout and GA pools (admin).
#[utoipa::path(
    post, path = "/v1/events", tag = "events",
    params(("X-Admin-Key" = String, Header, description = "The admin key")),
    request_body = CreateEventBody,
    responses(
        (status = 201, description = "Created", body = EventView),
        (status = 400, description = "Invalid layout", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Admin key missing", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Wrong admin key", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The event exists", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn create_event(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(
        async {
            require_admin(&state, &headers)?;
            let body: CreateEventBody =
                json_body(&headers, body, state.event_body_limit_bytes, false).await?;
            let spec = event_spec(body)?;
            let event = state
                .store
                .create_event(spec)
                .await
                .map_err(|error| state.store_error(error))?;
            let view = EventView::from_summary(&event.summary());
            let mut stored = Stored::json(StatusCode::CREATED, &view);
            if let Ok(location) = HeaderValue::try_from(format!("/v1/events/{}", event.id)) {
                stored = stored.header(header::LOCATION, location);
            }
            Ok(stored.into_response())
        }
        .await,
    )
}

/// The cursor of an event listing.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    /// The last event id of the previous page.
    after: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    limit: Option<u32>,
}

/// List events by id, a page at a time.
#[utoipa::path(
    get, path = "/v1/events", tag = "events",
    params(ListQuery),
    responses(
        (status = 200, description = "A page", body = EventList),
        (status = 400, description = "Bad cursor or limit", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn list_events(
    State(state): State<Shared>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    respond(
        async {
            let Query(query) =
                query.map_err(|rejection| ApiError::invalid("query", rejection.body_text()))?;
            let page = Page {
                after: query.after.as_deref().map(EventId::new).transpose()?,
                limit: query.limit.unwrap_or(Page::default().limit),
            };
            let limit = page.limit as usize;
            let events = state
                .store
                .events(page)
                .await
                .map_err(|error| state.store_error(error))?;
            let next_cursor = if events.len() == limit {
                events.last().map(|event| event.id.to_string())
            } else {
                None
            };
            let list = EventList {
                events: events.iter().map(EventView::from_summary).collect(),
                next_cursor,
            };
            Ok(Stored::json(StatusCode::OK, &list).into_response())
        }
        .await,
    )
}

/// Block or unblock seats (admin), all or nothing.
#[utoipa::path(
    post, path = "/v1/events/{id}/block", tag = "events",
    params(
        ("id" = String, Path, description = "The event"),
        ("X-Admin-Key" = String, Header, description = "The admin key"),
    ),
    request_body = BlockBody,
    responses(
        (status = 204, description = "Done"),
        (status = 401, description = "Admin key missing", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Wrong admin key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown event or seat", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A seat is held or sold", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn block(
    State(state): State<Shared>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(
        async {
            require_admin(&state, &headers)?;
            let event = path_id::<EventId>(path)?;
            let body: BlockBody = json_body(&headers, body, state.body_limit_bytes, false).await?;
            let seats = crate::wire::seat_ids(&body.seat_ids)?;
            state
                .store
                .block(&event, &seats, body.blocked)
                .await
                .map_err(|error| state.store_error(error))?;
            state.notifier.notify(&event);
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        .await,
    )
}

/// Resize a GA pool or set how many of its units are off sale (admin).
#[utoipa::path(
    put, path = "/v1/events/{id}/pools/{pool}", tag = "events",
    params(
        ("id" = String, Path, description = "The event"),
        ("pool" = String, Path, description = "The pool"),
        ("X-Admin-Key" = String, Header, description = "The admin key"),
    ),
    request_body = PoolUpdateBody,
    responses(
        (status = 204, description = "Done"),
        (status = 400, description = "Nothing to set, or out of range", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Admin key missing", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Wrong admin key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown event or pool", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Below what is held, sold and blocked", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn update_pool(
    State(state): State<Shared>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(
        async {
            require_admin(&state, &headers)?;
            let Path((event, pool)) =
                path.map_err(|rejection| ApiError::invalid("path", rejection.body_text()))?;
            let (event, pool) = (EventId::new(&event)?, PoolId::new(&pool)?);
            let body: PoolUpdateBody =
                json_body(&headers, body, state.body_limit_bytes, false).await?;
            if body.capacity.is_none() && body.blocked.is_none() {
                return Err(ApiError::invalid(
                    "capacity",
                    "set capacity, blocked or both",
                ));
            }
            let store = &state.store;
            if let Some(capacity) = body.capacity {
                let resized = store.resize_pool(&event, &pool, capacity).await;
                resized.map_err(|error| state.store_error(error))?;
            }
            if let Some(blocked) = body.blocked {
                let set = store.set_pool_blocked(&event, &pool, blocked).await;
                set.map_err(|error| state.store_error(error))?;
            }
            state.notifier.notify(&event);
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        .await,
    )
}

/// Whether `If-None-Match` names `etag` (weak comparison, `*` matches).
fn matches_etag(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == "*" || tag == etag)
}

/// The seat map: layout, live statuses, pool counts and the sequence number they reflect.
#[utoipa::path(
    get, path = "/v1/events/{id}/seatmap", tag = "events",
    params(
        ("id" = String, Path, description = "The event"),
        ("If-None-Match" = Option<String>, Header, description = "A previous ETag: 304 when unchanged"),
    ),
    responses(
        (status = 200, description = "The seat map, with an ETag", body = SeatMap),
        (status = 304, description = "Unchanged since the ETag sent"),
        (status = 404, description = "Unknown event", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn seatmap(
    State(state): State<Shared>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    respond(seatmap_inner(&state, path, &headers).await)
}

async fn seatmap_inner(
    state: &AppState,
    path: Result<Path<String>, PathRejection>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let id = path_id::<EventId>(path)?;
    let entry = state.seatmap_entry(&id).await?;
    let availability = state
        .store
        .availability(&id)
        .await
        .map_err(|error| state.store_error(error))?;
    let etag = format!(
        "\"{}-{}\"",
        entry.event.created_at.as_millis(),
        availability.seq
    );
    let etag_value =
        HeaderValue::try_from(etag.as_str()).map_err(|error| ApiError::internal(&error))?;
    let cache_control = HeaderValue::from_static("no-cache");
    if matches_etag(headers, &etag) {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        response.headers_mut().insert(header::ETAG, etag_value);
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, cache_control);
        return Ok(response);
    }
    let body = match &entry.last {
        Some((cached, body)) if *cached == etag => body.clone(),
        _ => {
            let map = SeatMap::build(&entry.event, &availability);
            let body = Bytes::from(serde_json::to_vec(&map).map_err(|e| ApiError::internal(&e))?);
            state.remember_seatmap(&id, &etag, &body);
            body
        }
    };
    let stored = Stored {
        status: StatusCode::OK,
        content_type: "application/json",
        headers: vec![
            (header::ETAG, etag_value),
            (header::CACHE_CONTROL, cache_control),
        ],
        body,
    };
    Ok(stored.into_response())
}

/// Liveness: the process answers.
#[utoipa::path(
    get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = Health))
)]
pub(crate) async fn healthz() -> Response {
    Stored::json(
        StatusCode::OK,
        &Health {
            status: "ok".to_owned(),
        },
    )
    .into_response()
}

/// Readiness: the store answers a listing.
#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "The store does not answer", body = Health),
    )
)]
pub(crate) async fn readyz(State(state): State<Shared>) -> Response {
    let page = Page {
        after: None,
        limit: 1,
    };
    let (status, text) = match state.store.events(page).await {
        Ok(_) => (StatusCode::OK, "ok".to_owned()),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("store unavailable: {}", error.code()),
            )
        }
    };
    Stored::json(status, &Health { status: text }).into_response()
}

/// Prometheus metrics (OpenMetrics text).
#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Metrics", body = String, content_type = "application/openmetrics-text"))
)]
pub(crate) async fn metrics(State(state): State<Shared>) -> Response {
    let mut response = state.metrics.encode().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

/// This document.
#[utoipa::path(
    get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json"))
)]
pub(crate) async fn openapi_json() -> Response {
    match crate::openapi::document_json() {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        Err(error) => ApiError::internal(&error).into_response(),
    }
}
