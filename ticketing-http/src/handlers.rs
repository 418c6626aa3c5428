//! Reservation, order and ticket routes: what buyers and gates call.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ticketing_core::{
    CommitRequest, Error, EventId, HolderId, IdempotencyKey, OrderId, PaymentId, ReservationId,
    ReserveRequest, TicketCode, TicketId,
};

use crate::extract::{
    idempotency_header, is_admin, json_body, jwt_holder, require_admin, reservation_token,
};
use crate::idempotency::{Begin, Guard, digest};
use crate::problem::{ApiError, Stored};
use crate::state::AppState;
use crate::wire::{
    CheckInBody, CommitBody, ExtendBody, GaItem, OrderView, Problem, RefundBody, RefundView,
    ReservationView, ReserveBody, TicketView, TransferBody,
};

/// The state handlers get.
pub(crate) type Shared = Arc<AppState>;

/// Turns a handler's result into a response.
pub(crate) fn respond(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

/// One id from the path, checked by the core's rules for `T`.
pub(crate) fn path_id<T: std::str::FromStr<Err = Error>>(
    path: Result<Path<String>, PathRejection>,
) -> Result<T, ApiError> {
    let Path(text) = path.map_err(|rejection| ApiError::invalid("path", rejection.body_text()))?;
    text.parse::<T>().map_err(ApiError::from)
}

fn location(path: String) -> Option<HeaderValue> {
    HeaderValue::try_from(path).ok()
}

fn with_location(stored: Stored, path: String) -> Stored {
    match location(path) {
        Some(value) => stored.header(header::LOCATION, value),
        None => stored,
    }
}

fn fingerprint(parts: &[&[u8]], body: &impl serde::Serialize) -> [u8; 32] {
    let body = serde_json::to_vec(body).unwrap_or_default();
    let mut all: Vec<&[u8]> = parts.to_vec();
    all.push(&body);
    digest(&all)
}

/// An idempotent request: run it, or answer at once (a replay or a refusal).
enum Started {
    Run(Guard),
    Answer(Response),
}

fn begin(state: &AppState, scope: [u8; 32], print: [u8; 32]) -> Started {
    match state.idempotency.begin(scope, print) {
        Ok(Begin::Proceed(guard)) => Started::Run(guard),
        Ok(Begin::Replay(stored)) => Started::Answer(stored.into_response()),
        Err(error) => Started::Answer(error.into_response()),
    }
}

fn finish(guard: Option<Guard>, stored: Stored) -> Response {
    if let Some(guard) = guard {
        guard.complete(&stored);
    }
    stored.into_response()
}

/// Wakes change streams of the event that `reservation` belongs to, when anyone listens.
async fn notify_reservation(state: &AppState, reservation: &ReservationId) {
    if let Ok(found) = state.store.reservation(reservation).await {
        state.notifier.notify(&found.event);
    }
}

pub(crate) fn holder_for(
    jwt: Option<HolderId>,
    user_id: Option<&str>,
) -> Result<HolderId, ApiError> {
    match (jwt, user_id) {
        (Some(holder), Some(user)) if holder.as_str() != user => Err(ApiError::invalid(
            "user_id",
            "does not match the authenticated holder (the JWT's sub)",
        )),
        (Some(holder), _) => Ok(holder),
        (None, Some(user)) => HolderId::new(user).map_err(|_| {
            ApiError::invalid(
                "user_id",
                "must be 1 to 64 characters of A-Z a-z 0-9 - _ . : @ | +",
            )
        }),
        (None, None) => Err(ApiError::invalid(
            "user_id",
            "required: no JWT authentication is configured, so the body names the holder",
        )),
    }
}

fn reserve_request(
    event: EventId,
    holder: HolderId,
    body: &ReserveBody,
) -> Result<ReserveRequest, Error> {
    let mut request = ReserveRequest::new(event, holder);
    request.seats = crate::wire::seat_ids(&body.seat_ids)?;
    request.ga = body
        .ga
        .iter()
        .map(GaItem::to_core)
        .collect::<Result<_, _>>()?;
    request.best_available = body.best_available.as_ref().map(|best| best.to_core());
    request.ttl_seconds = body.ttl_seconds;
    if let Some(id) = &body.client_reservation_id {
        request.client_reservation_id = Some(ticketing_core::ClientReservationId::new(id)?);
    }
    Ok(request)
}

/// Reserve seats, GA units and best-available seats, all or nothing.
#[utoipa::path(
    post, path = "/v1/events/{id}/reservations", tag = "reservations",
    params(
        ("id" = String, Path, description = "The event"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for the same key and body"),
        ("Admission-Pass" = Option<String>, Header, description = "The waiting room's pass, required while the event is gated"),
    ),
    request_body = ReserveBody,
    responses(
        (status = 201, description = "Held; the token is returned only here", body = ReservationView),
        (status = 400, description = "Invalid request", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "JWT missing or invalid", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Gated event: admission pass missing (pass_required), forged or for someone else (invalid_pass), or lapsed (pass_expired)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown event, seat or pool", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "seat_unavailable, sold_out, limit_exceeded, not_on_sale, or a duplicate in flight", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Idempotency key or client reservation id reused with another payload", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited (Retry-After)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn reserve(
    State(state): State<Shared>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(reserve_inner(&state, path, &headers, body).await)
}

async fn reserve_inner(
    state: &AppState,
    path: Result<Path<String>, PathRejection>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let event = path_id::<EventId>(path)?;
    let jwt = jwt_holder(state, headers)?;
    let body: ReserveBody = json_body(headers, body, state.body_limit_bytes, false).await?;
    let holder = holder_for(jwt, body.user_id.as_deref())?;
    if let Some(limiter) = &state.holder_limiter {
        limiter.check(&holder, "holder")?;
    }
    crate::queue::check_pass(state, &event, &holder, headers).await?;
    let request = reserve_request(event, holder, &body)?;
    let guard = match idempotency_header(headers)? {
        Some(key) => {
            let scope = digest(&[
                b"reserve",
                request.event.as_str().as_bytes(),
                request.holder.as_str().as_bytes(),
                key.as_str().as_bytes(),
            ]);
            match begin(state, scope, fingerprint(&[], &body)) {
                Started::Run(guard) => Some(guard),
                Started::Answer(response) => return Ok(response),
            }
        }
        None => None,
    };
    let event = request.event.clone();
    let stored = match state.store.reserve(request).await {
        Ok(reservation) => {
            if reservation.token.is_some() {
                state.metrics.reservations("created", 1);
                state.notifier.notify(&event);
            }
            let view = ReservationView::from_core(&reservation);
            let path = format!("/v1/reservations/{}", reservation.id);
            with_location(Stored::json(StatusCode::CREATED, &view), path)
        }
        Err(error) => state.store_error(error).stored(),
    };
    Ok(finish(guard, stored))
}

fn commit_key(headers: &HeaderMap, body: &CommitBody) -> Result<IdempotencyKey, ApiError> {
    let from_header = idempotency_header(headers)?;
    let from_body = body
        .idempotency_key
        .as_deref()
        .map(IdempotencyKey::new)
        .transpose()?;
    match (from_header, from_body) {
        (Some(header), Some(body)) if header != body => Err(ApiError::invalid(
            "idempotency_key",
            "the Idempotency-Key header and the body's idempotency_key differ",
        )),
        (Some(key), _) | (None, Some(key)) => Ok(key),
        (None, None) => Err(ApiError::invalid(
            "idempotency_key",
            "required: send an Idempotency-Key header",
        )),
    }
}

fn commit_request(
    token: ticketing_core::ReservationToken,
    key: IdempotencyKey,
    body: &CommitBody,
) -> Result<CommitRequest, Error> {
    let mut request = CommitRequest::new(token, key);
    request.payment_id = body.payment_id.as_deref().map(PaymentId::new).transpose()?;
    request.seats = body
        .seat_ids
        .as_deref()
        .map(crate::wire::seat_ids)
        .transpose()?;
    request.ga = body
        .ga
        .as_ref()
        .map(|items| items.iter().map(GaItem::to_core).collect::<Result<_, _>>())
        .transpose()?;
    Ok(request)
}

/// Commit a reservation after payment: an order with one ticket per seat and GA unit.
#[utoipa::path(
    post, path = "/v1/reservations/{id}/commit", tag = "reservations",
    params(
        ("id" = String, Path, description = "The reservation"),
        ("Reservation-Token" = String, Header, description = "The token returned at reservation"),
        ("Idempotency-Key" = Option<String>, Header, description = "Required here or as the body's idempotency_key"),
    ),
    request_body = CommitBody,
    responses(
        (status = 200, description = "The order", body = OrderView),
        (status = 400, description = "Invalid request or missing/conflicting idempotency key", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Token or JWT missing", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Wrong token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown reservation", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not active, or a duplicate in flight", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The hold expired", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Key reused with another payload", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn commit(
    State(state): State<Shared>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(commit_inner(&state, path, &headers, body).await)
}

async fn commit_inner(
    state: &AppState,
    path: Result<Path<String>, PathRejection>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let id = path_id::<ReservationId>(path)?;
    jwt_holder(state, headers)?;
    let token = reservation_token(headers)?;
    let body: CommitBody = json_body(headers, body, state.body_limit_bytes, true).await?;
    let key = commit_key(headers, &body)?;
    let scope = digest(&[b"commit", key.as_str().as_bytes(), token.as_bytes()]);
    let payload = CommitBody {
        idempotency_key: None,
        payment_token: None,
        ..body.clone()
    };
    let print = fingerprint(&[id.as_str().as_bytes()], &payload);
    let request = commit_request(token, key, &body)?;
    let guard = match begin(state, scope, print) {
        Started::Run(guard) => guard,
        Started::Answer(response) => return Ok(response),
    };
    let stored = match state.store.commit(&id, request).await {
        Ok(order) => {
            state.metrics.reservations("committed", 1);
            state.notifier.notify(&order.event);
            Stored::json(StatusCode::OK, &OrderView::from_core(&order))
        }
        Err(error) => state.store_error(error).stored(),
    };
    Ok(finish(Some(guard), stored))
}

/// Extend an active reservation's hold (within the event's maximum).
#[utoipa::path(
    post, path = "/v1/reservations/{id}/extend", tag = "reservations",
    params(
        ("id" = String, Path, description = "The reservation"),
        ("Reservation-Token" = String, Header, description = "The token returned at reservation"),
    ),
    request_body = ExtendBody,
    responses(
        (status = 200, description = "The reservation with its new expiry", body = ReservationView),
        (status = 400, description = "TTL out of bounds", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Token missing", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Wrong token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown reservation", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not active", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The hold expired", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn extend(
    State(state): State<Shared>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(
        async {
            let id = path_id::<ReservationId>(path)?;
            jwt_holder(&state, &headers)?;
            let token = reservation_token(&headers)?;
            let body: ExtendBody = json_body(&headers, body, state.body_limit_bytes, false).await?;
            let reservation = state
                .store
                .extend(&id, &token, body.ttl_seconds)
                .await
                .map_err(|error| state.store_error(error))?;
            state.notifier.notify(&reservation.event);
            let view = ReservationView::from_core(&reservation);
            Ok(Stored::json(StatusCode::OK, &view).into_response())
        }
        .await,
    )
}

/// Cancel a reservation, freeing its items (`DELETE` does the same).
#[utoipa::path(
    post, path = "/v1/reservations/{id}/cancel", tag = "reservations",
    params(
        ("id" = String, Path, description = "The reservation"),
        ("Reservation-Token" = String, Header, description = "The token returned at reservation"),
    ),
    responses(
        (status = 204, description = "Cancelled (or already cancelled)"),
        (status = 401, description = "Token missing", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Wrong token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown reservation", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Committed", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The hold expired", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn cancel(
    State(state): State<Shared>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    respond(cancel_inner(&state, path, &headers).await)
}

/// Cancel a reservation.
#[utoipa::path(
    delete, path = "/v1/reservations/{id}", tag = "reservations",
    params(
        ("id" = String, Path, description = "The reservation"),
        ("Reservation-Token" = String, Header, description = "The token returned at reservation"),
    ),
    responses(
        (status = 204, description = "Cancelled (or already cancelled)"),
        (status = 401, description = "Token missing", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Wrong token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown reservation", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The hold expired", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn delete_reservation(
    State(state): State<Shared>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    respond(cancel_inner(&state, path, &headers).await)
}

async fn cancel_inner(
    state: &AppState,
    path: Result<Path<String>, PathRejection>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let id = path_id::<ReservationId>(path)?;
    jwt_holder(state, headers)?;
    let token = reservation_token(headers)?;
    state
        .store
        .cancel(&id, &token)
        .await
        .map_err(|error| state.store_error(error))?;
    state.metrics.reservations("cancelled", 1);
    notify_reservation(state, &id).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Checks that the JWT holder (when configured) owns what it reads, unless admin.
fn check_owner(state: &AppState, headers: &HeaderMap, owner: &HolderId) -> Result<(), ApiError> {
    if is_admin(state, headers) {
        return Ok(());
    }
    match jwt_holder(state, headers)? {
        Some(holder) if &holder != owner => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Not yours",
            "this belongs to another holder",
        )),
        _ => Ok(()),
    }
}

/// A reservation's status (never its token).
#[utoipa::path(
    get, path = "/v1/reservations/{id}", tag = "reservations",
    params(("id" = String, Path, description = "The reservation")),
    responses(
        (status = 200, description = "The reservation", body = ReservationView),
        (status = 401, description = "JWT missing or invalid", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Another holder's", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown reservation", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn get_reservation(
    State(state): State<Shared>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            let id = path_id::<ReservationId>(path)?;
            let reservation = state
                .store
                .reservation(&id)
                .await
                .map_err(|error| state.store_error(error))?;
            check_owner(&state, &headers, &reservation.holder)?;
            let view = ReservationView::from_core(&reservation);
            Ok(Stored::json(StatusCode::OK, &view).into_response())
        }
        .await,
    )
}

/// An order with its tickets (and their gate codes).
#[utoipa::path(
    get, path = "/v1/orders/{id}", tag = "orders",
    params(("id" = String, Path, description = "The order")),
    responses(
        (status = 200, description = "The order", body = OrderView),
        (status = 401, description = "JWT missing or invalid", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Another holder's", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown order", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn get_order(
    State(state): State<Shared>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            let id = path_id::<OrderId>(path)?;
            let order = state
                .store
                .order(&id)
                .await
                .map_err(|error| state.store_error(error))?;
            check_owner(&state, &headers, &order.holder)?;
            Ok(Stored::json(StatusCode::OK, &OrderView::from_core(&order)).into_response())
        }
        .await,
    )
}

/// Refund some or all tickets of an order (admin); inventory returns by the event's policy.
#[utoipa::path(
    post, path = "/v1/orders/{id}/refund", tag = "orders",
    params(
        ("id" = String, Path, description = "The order"),
        ("X-Admin-Key" = String, Header, description = "The admin key"),
    ),
    request_body = RefundBody,
    responses(
        (status = 200, description = "What was refunded", body = RefundView),
        (status = 401, description = "Admin key missing", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Wrong admin key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown order or ticket", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already refunded or checked in", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn refund(
    State(state): State<Shared>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(
        async {
            require_admin(&state, &headers)?;
            let id = path_id::<OrderId>(path)?;
            let body: RefundBody = json_body(&headers, body, state.body_limit_bytes, true).await?;
            let tickets = body
                .ticket_ids
                .as_ref()
                .map(|ids| ids.iter().map(TicketId::new).collect::<Result<Vec<_>, _>>())
                .transpose()?;
            let refund = state
                .store
                .refund(&id, tickets.as_deref())
                .await
                .map_err(|error| state.store_error(error))?;
            if let Ok(order) = state.store.order(&id).await {
                state.notifier.notify(&order.event);
            }
            Ok(Stored::json(StatusCode::OK, &RefundView::from_core(&refund)).into_response())
        }
        .await,
    )
}

/// Give a ticket to another holder (a new gate code is issued).
#[utoipa::path(
    post, path = "/v1/tickets/{id}/transfer", tag = "tickets",
    params(("id" = String, Path, description = "The ticket")),
    request_body = TransferBody,
    responses(
        (status = 200, description = "The ticket, with its new holder and code", body = TicketView),
        (status = 400, description = "Invalid request", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Another holder's ticket", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown ticket", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Refunded, checked in, or over the recipient's limit", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn transfer(
    State(state): State<Shared>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(
        async {
            let id = path_id::<TicketId>(path)?;
            let body: TransferBody =
                json_body(&headers, body, state.body_limit_bytes, false).await?;
            let to = HolderId::new(&body.to_user_id)?;
            if state.jwt.is_some() {
                let ticket = state
                    .store
                    .ticket(&id)
                    .await
                    .map_err(|error| state.store_error(error))?;
                check_owner(&state, &headers, &ticket.holder)?;
            }
            let ticket = state
                .store
                .transfer(&id, &to)
                .await
                .map_err(|error| state.store_error(error))?;
            state.notifier.notify(&ticket.event);
            Ok(Stored::json(StatusCode::OK, &TicketView::from_core(&ticket)).into_response())
        }
        .await,
    )
}

/// Admit the ticket with this gate code, once.
#[utoipa::path(
    post, path = "/v1/tickets/check-in", tag = "tickets",
    request_body = CheckInBody,
    responses(
        (status = 200, description = "Admitted", body = TicketView),
        (status = 404, description = "Unknown code", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Checked in already, or refunded", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn check_in(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(
        async {
            let body: CheckInBody =
                json_body(&headers, body, state.body_limit_bytes, false).await?;
            let code = TicketCode::new(&body.code)?;
            let ticket = state
                .store
                .check_in(&code)
                .await
                .map_err(|error| state.store_error(error))?;
            state.notifier.notify(&ticket.event);
            Ok(Stored::json(StatusCode::OK, &TicketView::from_core(&ticket)).into_response())
        }
        .await,
    )
}
