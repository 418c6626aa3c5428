//! Waiting room routes, and the admission-pass check reserve makes on a gated event.
//!
//! A visitor joins (`POST /v1/events/{id}/queue`), polls its ticket
//! (`GET /v1/queue/{ticket}`) until admitted, and then gets a signed pass in the poll's
//! answer, which reserve needs in the `Admission-Pass` header while the event is gated.
//! The pass is checked here with the configured key, without a store round trip; only
//! whether the event is gated is read from the room store, cached for a second.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use ticketing_core::{
    Clock, EventId, HolderId, Pass, PassError, PassKey, QueueState, QueueStatus, QueueTicketId,
    RoomSettings, RoomStats, SystemClock, WaitingRoom,
};
use utoipa::ToSchema;

use crate::extract::{json_body, jwt_holder, require_admin};
use crate::handlers::{Shared, holder_for, path_id, respond};
use crate::problem::{ApiError, Stored};
use crate::state::AppState;
use crate::wire::Problem;

/// The header that carries an admission pass on reserve.
pub const ADMISSION_PASS: &str = "admission-pass";

/// How long whether an event is gated is cached.
const GATED_CACHE_TTL: Duration = Duration::from_secs(1);
/// Events whose gating is cached.
const GATED_CACHE_EVENTS_MAX: usize = 4_096;

/// Waiting rooms for the router: where queues live and the key that signs passes.
#[derive(Clone)]
pub struct WaitingRoomConfig {
    /// The room store (in-memory, PostgreSQL or Redis).
    pub rooms: Arc<dyn WaitingRoom>,
    /// Signs and checks admission passes; every instance serving the event needs the same.
    pub pass_key: PassKey,
    /// What "now" is when a pass is checked: the system clock, or the rooms' own clock in
    /// tests and simulations.
    pub clock: Arc<dyn Clock>,
}

impl WaitingRoomConfig {
    /// Rooms in `rooms`, passes signed with `pass_key`, checked against the system clock.
    pub fn new(rooms: Arc<dyn WaitingRoom>, pass_key: PassKey) -> Self {
        Self {
            rooms,
            pass_key,
            clock: Arc::new(SystemClock),
        }
    }

    /// Checks passes against `clock`.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

impl std::fmt::Debug for WaitingRoomConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitingRoomConfig").finish_non_exhaustive()
    }
}

/// The rooms, the key, and a short cache of which events are gated.
pub(crate) struct Rooms {
    config: WaitingRoomConfig,
    gated: Mutex<HashMap<EventId, (Instant, bool)>>,
}

impl Rooms {
    pub(crate) fn new(config: WaitingRoomConfig) -> Self {
        Self {
            config,
            gated: Mutex::new(HashMap::new()),
        }
    }

    async fn is_gated(&self, state: &AppState, event: &EventId) -> Result<bool, ApiError> {
        if let Some((at, gated)) = self.gated.lock().get(event)
            && at.elapsed() < GATED_CACHE_TTL
        {
            return Ok(*gated);
        }
        let gated = self
            .config
            .rooms
            .settings(event)
            .await
            .map_err(|error| state.store_error(error))?
            .is_some();
        let mut cache = self.gated.lock();
        if cache.len() >= GATED_CACHE_EVENTS_MAX {
            cache.clear();
        }
        cache.insert(event.clone(), (Instant::now(), gated));
        Ok(gated)
    }

    fn forget(&self, event: &EventId) {
        self.gated.lock().remove(event);
    }
}

fn pass_problem(error: PassError) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        error.code(),
        "Admission pass refused",
        format!("{error}; join the queue at POST /v1/events/{{id}}/queue"),
    )
}

/// On a gated event, the `Admission-Pass` header must carry a pass for this holder and
/// event: 403 `pass_required`, `invalid_pass` or `pass_expired` otherwise.
pub(crate) async fn check_pass(
    state: &AppState,
    event: &EventId,
    holder: &HolderId,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    let Some(rooms) = &state.rooms else {
        return Ok(());
    };
    if !rooms.is_gated(state, event).await? {
        return Ok(());
    }
    let pass = headers
        .get(ADMISSION_PASS)
        .map(|value| Pass::from_text(value.to_str().unwrap_or_default().trim()))
        .ok_or_else(|| pass_problem(PassError::Missing))?;
    rooms
        .config
        .pass_key
        .verify(&pass, event, holder, rooms.config.clock.now())
        .map(|_| ())
        .map_err(pass_problem)
}

fn rooms_of(state: &AppState) -> Result<&Rooms, ApiError> {
    state.rooms.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "rooms_disabled",
            "Waiting rooms disabled",
            "this server has no waiting room store configured",
        )
    })
}

/// Join body: the holder, in development mode (with JWTs, the token's `sub`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinBody {
    /// The visitor (development mode only; must match the JWT's `sub` otherwise).
    #[serde(default)]
    pub user_id: Option<String>,
}

/// A queue ticket and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QueueView {
    /// The ticket id: poll `GET /v1/queue/{ticket_id}`.
    pub ticket_id: String,
    /// The event.
    pub event_id: String,
    /// The visitor.
    pub user_id: String,
    /// When the visitor joined.
    pub joined_at: String,
    /// `pre_queue`, `waiting`, `sold_out`, `admitted`, `lapsed` or `left`.
    pub status: String,
    /// 1 for the next to be admitted (waiting only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    /// Seconds until admission at the measured rate (waiting only, when known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_wait_seconds: Option<u64>,
    /// When the pre-queue is shuffled and admission begins (pre_queue only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opens_at: Option<String>,
    /// The admission pass for the `Admission-Pass` header (admitted only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass: Option<String>,
    /// When the pass lapses (admitted only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass_expires_at: Option<String>,
    /// When sold out: the event has nothing left; a waitlist may take the visitor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl QueueView {
    fn of(state: &QueueState, key: &PassKey) -> Self {
        let ticket = &state.ticket;
        let mut view = Self {
            ticket_id: ticket.id.to_string(),
            event_id: ticket.event.to_string(),
            user_id: ticket.visitor.to_string(),
            joined_at: ticket.joined_at.to_string(),
            status: String::new(),
            position: None,
            estimated_wait_seconds: None,
            opens_at: None,
            pass: None,
            pass_expires_at: None,
            hint: None,
        };
        view.status = match state.status {
            QueueStatus::PreQueue { opens_at } => {
                view.opens_at = Some(opens_at.to_string());
                "pre_queue"
            }
            QueueStatus::Waiting {
                position,
                estimated_wait_seconds,
            } => {
                view.position = Some(position);
                view.estimated_wait_seconds = estimated_wait_seconds;
                "waiting"
            }
            QueueStatus::SoldOut => {
                view.hint = Some("sold out: nothing is left to sell right now".into());
                "sold_out"
            }
            QueueStatus::Admitted { pass_expires_at } => {
                let pass = key.sign(&ticket.event, &ticket.visitor, pass_expires_at);
                view.pass = Some(pass.as_str().to_owned());
                view.pass_expires_at = Some(pass_expires_at.to_string());
                "admitted"
            }
            QueueStatus::Lapsed => "lapsed",
            QueueStatus::Left => "left",
        }
        .to_owned();
        view
    }
}

/// A room's settings and counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RoomView {
    /// The event.
    pub event_id: String,
    /// How the room admits.
    #[schema(value_type = Object)]
    pub settings: RoomSettings,
    /// Visitors waiting (pre-queue included).
    pub waiting: u64,
    /// Live passes.
    pub active: u64,
    /// Visitors admitted since the room was configured.
    pub admitted_total: u64,
    /// Whether the last admission step found the event sold out.
    pub sold_out: bool,
    /// When admission began, if it has.
    pub opened_at: Option<String>,
}

impl RoomView {
    fn of(event: &EventId, settings: RoomSettings, stats: RoomStats) -> Self {
        Self {
            event_id: event.to_string(),
            settings,
            waiting: stats.waiting,
            active: stats.active,
            admitted_total: stats.admitted_total,
            sold_out: stats.sold_out,
            opened_at: stats.opened_at.map(|at| at.to_string()),
        }
    }
}

/// Join an event's waiting room (or get back one's place).
#[utoipa::path(
    post, path = "/v1/events/{id}/queue", tag = "waiting room",
    params(("id" = String, Path, description = "The event")),
    request_body = JoinBody,
    responses(
        (status = 200, description = "The visitor's ticket and place", body = QueueView),
        (status = 400, description = "Invalid request", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "JWT missing or invalid", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The event has no waiting room", body = Problem, content_type = "application/problem+json"),
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
            let rooms = rooms_of(&state)?;
            let event = path_id::<EventId>(path)?;
            let jwt = jwt_holder(&state, &headers)?;
            let body: JoinBody = json_body(&headers, body, state.body_limit_bytes, true).await?;
            let visitor = holder_for(jwt, body.user_id.as_deref())?;
            if let Some(limiter) = &state.holder_limiter {
                limiter.check(&visitor, "holder")?;
            }
            let room = &rooms.config.rooms;
            let ticket = room
                .join(&event, &visitor)
                .await
                .map_err(|error| state.store_error(error))?;
            state.metrics.queue_joined();
            let current = room
                .status(&ticket.id)
                .await
                .map_err(|error| state.store_error(error))?;
            let view = QueueView::of(&current, &rooms.config.pass_key);
            Ok(Stored::json(StatusCode::OK, &view).into_response())
        }
        .await,
    )
}

/// Where a queue ticket stands; the admission pass once admitted.
#[utoipa::path(
    get, path = "/v1/queue/{ticket}", tag = "waiting room",
    params(("ticket" = String, Path, description = "The queue ticket")),
    responses(
        (status = 200, description = "Position and estimated wait, or the pass", body = QueueView),
        (status = 400, description = "Malformed ticket id", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown ticket", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn status(
    State(state): State<Shared>,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    respond(
        async {
            let rooms = rooms_of(&state)?;
            let ticket = path_id::<QueueTicketId>(path)?;
            let current = rooms
                .config
                .rooms
                .status(&ticket)
                .await
                .map_err(|error| state.store_error(error))?;
            let view = QueueView::of(&current, &rooms.config.pass_key);
            Ok(Stored::json(StatusCode::OK, &view).into_response())
        }
        .await,
    )
}

/// Leave the queue, or give back a pass.
#[utoipa::path(
    delete, path = "/v1/queue/{ticket}", tag = "waiting room",
    params(("ticket" = String, Path, description = "The queue ticket")),
    responses(
        (status = 204, description = "Left (or had left)"),
        (status = 404, description = "Unknown ticket", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn leave(
    State(state): State<Shared>,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    respond(
        async {
            let rooms = rooms_of(&state)?;
            let ticket = path_id::<QueueTicketId>(path)?;
            rooms
                .config
                .rooms
                .leave(&ticket)
                .await
                .map_err(|error| state.store_error(error))?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        .await,
    )
}

async fn room_view(state: &AppState, rooms: &Rooms, event: &EventId) -> Result<Response, ApiError> {
    let room = &rooms.config.rooms;
    let settings = room
        .settings(event)
        .await
        .map_err(|error| state.store_error(error))?
        .ok_or_else(|| {
            ApiError::from(ticketing_core::Error::not_found(
                ticketing_core::Entity::Room,
                event,
            ))
        })?;
    let stats = room
        .stats(event)
        .await
        .map_err(|error| state.store_error(error))?;
    let view = RoomView::of(event, settings, stats);
    Ok(Stored::json(StatusCode::OK, &view).into_response())
}

/// A waiting room's settings and counts.
#[utoipa::path(
    get, path = "/v1/events/{id}/queue", tag = "waiting room",
    params(("id" = String, Path, description = "The event")),
    responses(
        (status = 200, description = "Settings and counts", body = RoomView),
        (status = 404, description = "The event has no waiting room", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn room(
    State(state): State<Shared>,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    respond(
        async {
            let rooms = rooms_of(&state)?;
            let event = path_id::<EventId>(path)?;
            room_view(&state, rooms, &event).await
        }
        .await,
    )
}

/// Gate an event with a waiting room, or change its rate, cap and pass lifetime (admin).
#[utoipa::path(
    put, path = "/v1/events/{id}/queue", tag = "waiting room",
    params(
        ("id" = String, Path, description = "The event"),
        ("X-Admin-Key" = String, Header, description = "The admin key"),
    ),
    request_body(content = Object, description = "admit_per_second, active_max, pass_ttl_seconds, seats_per_buyer, opens_at (ms), shuffle_seed"),
    responses(
        (status = 200, description = "The room now", body = RoomView),
        (status = 400, description = "Invalid settings", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Admin key missing", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Wrong admin key", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn configure(
    State(state): State<Shared>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(
        async {
            require_admin(&state, &headers)?;
            let rooms = rooms_of(&state)?;
            let event = path_id::<EventId>(path)?;
            let settings: RoomSettings =
                json_body(&headers, body, state.body_limit_bytes, false).await?;
            rooms
                .config
                .rooms
                .configure(&event, settings)
                .await
                .map_err(|error| state.store_error(error))?;
            rooms.forget(&event);
            room_view(&state, rooms, &event).await
        }
        .await,
    )
}
