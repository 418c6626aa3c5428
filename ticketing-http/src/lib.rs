//! # ticketing-http
//!
//! A REST adapter for any [`InventoryStore`]: an axum [`Router`] with JSON in and out,
//! RFC 9457 problem documents carrying the core's stable error codes, Server-Sent Events for
//! the change log, an ETag'd seat map, Prometheus metrics and an OpenAPI 3.1 document.
//!
//! ```no_run
//! use std::sync::Arc;
//! use ticketing_core::MemoryStore;
//! use ticketing_http::{HttpConfig, router};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let app = router(Arc::new(MemoryStore::new()), HttpConfig::default().admin_key("s3cret"));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await
//! # }
//! ```
//!
//! Serve it `into_make_service_with_connect_info::<SocketAddr>()` so that per-client rate
//! limits key on the peer address (without it every client shares one bucket).
//!
//! ## Routes
//!
//! | route | purpose | success |
//! |---|---|---|
//! | `POST /v1/events` | create an event (admin) | 201 |
//! | `GET /v1/events?after=&limit=` | list events | 200 |
//! | `GET /v1/events/{id}/seatmap` | layout, live status, pool counts, `seq` (ETag) | 200 / 304 |
//! | `GET /v1/events/{id}/changes?after=` | change log as SSE, then live | stream |
//! | `POST /v1/events/{id}/block` | block or unblock seats (admin) | 204 |
//! | `PUT /v1/events/{id}/pools/{pool}` | resize a pool or set its blocked units (admin) | 204 |
//! | `POST /v1/events/{id}/reservations` | reserve (token returned once) | 201 |
//! | `GET /v1/reservations/{id}` | reservation status | 200 |
//! | `POST /v1/reservations/{id}/commit` | commit (Idempotency-Key) | 200 |
//! | `POST /v1/reservations/{id}/extend` | extend the hold | 200 |
//! | `POST /v1/reservations/{id}/cancel`, `DELETE /v1/reservations/{id}` | cancel | 204 |
//! | `GET /v1/orders/{id}` | an order and its tickets | 200 |
//! | `POST /v1/orders/{id}/refund` | refund (admin) | 200 |
//! | `POST /v1/tickets/{id}/transfer` | transfer a ticket | 200 |
//! | `POST /v1/tickets/check-in` | gate scan, once | 200 |
//! | `POST /v1/events/{id}/queue` | join the waiting room (or get one's place back) | 200 |
//! | `GET /v1/events/{id}/queue`, `PUT` (admin) | a room's settings and counts; gate an event | 200 |
//! | `GET /v1/queue/{ticket}`, `DELETE` | position and wait, or the admission pass; leave | 200 / 204 |
//! | `POST /v1/events/{id}/waitlist` | join the waitlist (the token once), or one's open entry | 201 / 200 |
//! | `GET /v1/events/{id}/waitlist/{entry}`, `DELETE` | position, or the offer's reservation; leave | 200 / 204 |
//! | `GET /healthz`, `/readyz`, `/metrics`, `/openapi.json` | operations | 200 |
//!
//! ## Status codes
//!
//! 400 malformed or invalid (`invalid_request`), 401 missing reservation token, JWT or admin
//! key (`missing_token`, `unauthorized`, `missing_admin_key`), 403 wrong ones
//! (`invalid_token`, `invalid_admin_key`, `forbidden`), 404 `not_found`, 409 conflicts
//! (`seat_unavailable` with `seat_ids`, `sold_out` with `pool` and `remaining`,
//! `limit_exceeded`, `not_on_sale`, `reservation_not_active`, `conflict`,
//! `idempotency_in_flight`), 410 `reservation_expired` with `expired_at`, 413
//! `payload_too_large`, 415 `unsupported_media_type`, 422 `idempotency_mismatch`, 429
//! `rate_limited` with `Retry-After`, 503 `backend`, `overloaded` or `timeout`.
//!
//! ## Identity
//!
//! With [`HttpConfig::jwt`], the holder is the verified JWT's `sub`; without it
//! (development mode, logged at start) the holder is the reserve body's `user_id`. The
//! reservation token, returned once at creation, goes back in the `Reservation-Token`
//! header on commit, extend and cancel. Admin routes need the `X-Admin-Key` header.
//!
//! ## Waiting rooms
//!
//! With [`HttpConfig::waiting_room`], an event gated by a room (configured with `PUT
//! /v1/events/{id}/queue`) takes reservations only from holders presenting an admission
//! pass in the `Admission-Pass` header: the pass the visitor's ticket poll returns once
//! admitted, signed for that visitor and event. A missing, forged, moved or lapsed pass is
//! 403 (`pass_required`, `invalid_pass`, `pass_expired`) and changes nothing. Run
//! [`spawn_room_sweeper`] to admit visitors.
//!
//! ## Waitlists
//!
//! With [`HttpConfig::waitlist`] (a store that serves waitlists) and an event whose policy
//! turns the waitlist on, holders join with `POST /v1/events/{id}/waitlist` and get a
//! token once. Inventory freed later is offered in the same atomic step as the release:
//! a reservation in the holder's name whose `Reservation-Token` is that token, committed
//! like any other. The entry's view names the reservation; the change stream carries an
//! `offer_made` change.
//!
//! ## Idempotency
//!
//! Commit needs an `Idempotency-Key` header (or the seeds' `idempotency_key` field; both
//! and different is 400); reserve accepts one. As the IETF draft has it, a repeat with the
//! same key and body gets the first response (marked `Idempotent-Replayed: true`), another
//! body is 422, and a repeat while the first is still running is 409. Keys are scoped to
//! the holder (reserve) or to the reservation token (commit), so nobody else's key replays
//! for you. A replayed reserve returns the token again: the key's owner is the token's.

#![deny(missing_docs)]

mod config;
mod events;
mod extract;
mod handlers;
mod idempotency;
mod metrics;
mod openapi;
mod problem;
mod queue;
mod sse;
mod state;
mod sweeper;
#[cfg(feature = "testkit")]
pub mod testkit;
mod waitlist;
pub mod wire;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post, put};
use ticketing_core::InventoryStore;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;

pub use config::{
    BODY_LIMIT_BYTES_DEFAULT, EVENT_BODY_LIMIT_BYTES_DEFAULT, HttpConfig, JwtConfig, RateLimit,
};
pub use extract::{ADMIN_KEY, IDEMPOTENCY_KEY, RESERVATION_TOKEN};
pub use metrics::Metrics;
pub use openapi::{ApiDoc, openapi};
pub use problem::{ApiError, PROBLEM_JSON, status_of};
pub use queue::{ADMISSION_PASS, JoinBody, QueueView, RoomView, WaitingRoomConfig};
pub use sweeper::{Sweeper, spawn_room_sweeper, spawn_sweeper};
pub use waitlist::{WaitlistJoinBody, WaitlistView};

use handlers::Shared;
use state::AppState;

/// The request id header, set when absent and echoed on the response.
pub const REQUEST_ID: &str = "x-request-id";

/// Every route: method, path (axum syntax), handler. The router is built from this table
/// and a test checks it against the OpenAPI document both ways.
fn table() -> Vec<(Method, &'static str, MethodRouter<Shared>)> {
    vec![
        (Method::POST, "/v1/events", post(events::create_event)),
        (Method::GET, "/v1/events", get(events::list_events)),
        (Method::GET, "/v1/events/{id}/seatmap", get(events::seatmap)),
        (Method::GET, "/v1/events/{id}/changes", get(sse::changes)),
        (Method::POST, "/v1/events/{id}/block", post(events::block)),
        (
            Method::PUT,
            "/v1/events/{id}/pools/{pool}",
            put(events::update_pool),
        ),
        (
            Method::POST,
            "/v1/events/{id}/reservations",
            post(handlers::reserve),
        ),
        (
            Method::GET,
            "/v1/reservations/{id}",
            get(handlers::get_reservation),
        ),
        (
            Method::DELETE,
            "/v1/reservations/{id}",
            delete(handlers::delete_reservation),
        ),
        (
            Method::POST,
            "/v1/reservations/{id}/commit",
            post(handlers::commit),
        ),
        (
            Method::POST,
            "/v1/reservations/{id}/extend",
            post(handlers::extend),
        ),
        (
            Method::POST,
            "/v1/reservations/{id}/cancel",
            post(handlers::cancel),
        ),
        (Method::GET, "/v1/orders/{id}", get(handlers::get_order)),
        (
            Method::POST,
            "/v1/orders/{id}/refund",
            post(handlers::refund),
        ),
        (
            Method::POST,
            "/v1/tickets/{id}/transfer",
            post(handlers::transfer),
        ),
        (
            Method::POST,
            "/v1/tickets/check-in",
            post(handlers::check_in),
        ),
        (Method::POST, "/v1/events/{id}/queue", post(queue::join)),
        (Method::GET, "/v1/events/{id}/queue", get(queue::room)),
        (Method::PUT, "/v1/events/{id}/queue", put(queue::configure)),
        (Method::GET, "/v1/queue/{ticket}", get(queue::status)),
        (Method::DELETE, "/v1/queue/{ticket}", delete(queue::leave)),
        (
            Method::POST,
            "/v1/events/{id}/waitlist",
            post(waitlist::join),
        ),
        (
            Method::GET,
            "/v1/events/{id}/waitlist/{entry}",
            get(waitlist::entry),
        ),
        (
            Method::DELETE,
            "/v1/events/{id}/waitlist/{entry}",
            delete(waitlist::leave),
        ),
        (Method::GET, "/healthz", get(events::healthz)),
        (Method::GET, "/readyz", get(events::readyz)),
        (Method::GET, "/metrics", get(events::metrics)),
        (Method::GET, "/openapi.json", get(events::openapi_json)),
    ]
}

/// Every route the router serves, as (method, path) with `{param}` segments.
pub fn routes() -> Vec<(Method, &'static str)> {
    table()
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect()
}

/// The REST adapter over `store`. See the crate documentation for routes and statuses.
pub fn router(store: Arc<dyn InventoryStore>, config: HttpConfig) -> Router {
    if config.jwt.is_none() {
        tracing::warn!(
            "no JWT key configured: development mode, holders are taken from the body's user_id"
        );
    }
    if config.admin_key.is_none() {
        tracing::info!("no admin key configured: admin routes answer 403");
    }
    let timeout = config.request_timeout;
    let concurrency_limit = config.concurrency_limit.max(1);
    let cors = cors(&config.cors_allowed_origins);
    let state: Shared = Arc::new(AppState::new(store, config));
    let mut router = Router::new();
    for (_, path, handler) in table() {
        router = router.route(path, handler);
    }
    let overload = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
            overloaded()
        }))
        .load_shed()
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            concurrency_limit,
        ));
    let router = router
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), client_limit))
        .layer(middleware::from_fn_with_state(timeout, request_timeout))
        .layer(overload)
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .with_state(state);
    let request_id = HeaderName::from_static(REQUEST_ID);
    let router = router.layer(
        ServiceBuilder::new()
            .layer(CatchPanicLayer::custom(|_| {
                ApiError::internal(&"a handler panicked").into_response()
            }))
            .layer(SetRequestIdLayer::new(request_id.clone(), UlidRequestId))
            .layer(TraceLayer::new_for_http().make_span_with(span))
            .layer(PropagateRequestIdLayer::new(request_id)),
    );
    match cors {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

fn span(request: &Request<Body>) -> tracing::Span {
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %id,
    )
}

fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|origin| origin == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|origin| HeaderValue::from_str(origin).ok()),
        )
    };
    let headers = [
        "content-type",
        "authorization",
        IDEMPOTENCY_KEY,
        RESERVATION_TOKEN,
        ADMIN_KEY,
        "last-event-id",
        "if-none-match",
    ]
    .map(HeaderName::from_static);
    let exposed = ["etag", "location", "retry-after", REQUEST_ID].map(HeaderName::from_static);
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
            .allow_headers(headers)
            .expose_headers(exposed)
            .max_age(Duration::from_secs(600)),
    )
}

/// Request ids are ULIDs: sortable by time, unique without coordination.
#[derive(Clone, Copy)]
struct UlidRequestId;

impl MakeRequestId for UlidRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&ulid::Ulid::new().to_string())
            .ok()
            .map(RequestId::new)
    }
}

fn overloaded() -> Response {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "overloaded",
        "Overloaded",
        "too many requests in progress; retry shortly",
    )
    .retry_after(Duration::from_secs(1))
    .into_response()
}

async fn no_route() -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_route",
        "No such route",
        "see /openapi.json for the routes",
    )
    .into_response()
}

async fn method_not_allowed() -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "Method not allowed",
        "see /openapi.json for the methods of this route",
    )
    .into_response()
}

/// Records every request's status and latency under its route template.
async fn track(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    // Known methods only: arbitrary ones must not grow the label set.
    let method = match *request.method() {
        Method::GET | Method::POST | Method::PUT | Method::DELETE | Method::PATCH => {
            request.method().as_str().to_owned()
        }
        Method::HEAD | Method::OPTIONS => request.method().as_str().to_owned(),
        _ => "OTHER".to_owned(),
    };
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    state.metrics.request(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// The per-client rate limit, on `/v1` routes.
async fn client_limit(State(state): State<Shared>, request: Request, next: Next) -> Response {
    if let Some(limiter) = &state.client_limiter
        && request.uri().path().starts_with("/v1/")
    {
        let peer = request
            .extensions()
            .get::<ConnectInfo<std::net::SocketAddr>>();
        let ip = extract::client_ip(state.trust_forwarded_for, request.headers(), peer);
        if let Err(error) = limiter.check(&ip, "client") {
            return error.into_response();
        }
    }
    next.run(request).await
}

/// Answers 503 `timeout` when the response head takes longer than the configured timeout
/// (streams are not cut: their head comes at once).
async fn request_timeout(
    State(timeout): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "Timed out",
            "the request took too long; retry with the same idempotency key",
        )
        .retry_after(Duration::from_secs(1))
        .into_response(),
    }
}
