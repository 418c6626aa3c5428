//! Test support: a router on an in-memory store with a manual clock, request helpers, and a
//! store wrapper that can hold operations to make requests overlap.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use ticketing_core::{
    Availability, Change, CommitRequest, Event, EventId, EventSpec, EventSummary, HolderId,
    InventoryStore, ManualClock, MemoryStore, MemoryStoreConfig, Order, OrderId, Page, PoolId,
    Refund, Reservation, ReservationId, ReservationToken, ReserveRequest, Result, SeatId, Ticket,
    TicketCode, TicketId,
};
use ticketing_http::{HttpConfig, router};
use tower::ServiceExt;

pub const ADMIN: &str = "admin-secret";
pub const EVENT: &str = "concert";

/// A router over a fresh memory store; rate limits off unless the config says otherwise.
pub struct App {
    pub router: Router,
    pub clock: ManualClock,
    pub store: Arc<MemoryStore>,
}

pub fn config() -> HttpConfig {
    HttpConfig::default()
        .admin_key(ADMIN)
        .without_rate_limits()
        .sse_poll_interval(Duration::from_millis(20))
}

pub fn app_with(config: HttpConfig) -> App {
    app_with_store_config(config, MemoryStoreConfig::default())
}

pub fn app_with_store_config(config: HttpConfig, store_config: MemoryStoreConfig) -> App {
    let clock = ManualClock::default();
    let store = Arc::new(MemoryStore::with_config(
        Arc::new(clock.clone()),
        store_config,
    ));
    App {
        router: router(store.clone(), config),
        clock,
        store,
    }
}

pub fn app() -> App {
    app_with(config())
}

/// An answer: status, headers, body parsed as JSON (Null when empty or not JSON), raw text.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: Value,
    pub text: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The problem code, for error answers.
    pub fn code(&self) -> &str {
        self.json["code"].as_str().unwrap_or("")
    }
}

pub async fn send(router: &Router, request: Request<Body>) -> Answer {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if status.is_client_error() || status.is_server_error() {
        let content_type = headers
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or("");
        assert_eq!(content_type, "application/problem+json", "{status} {text}");
        assert_eq!(json["status"], status.as_u16(), "{text}");
    }
    Answer {
        status,
        headers,
        json,
        text,
    }
}

/// A request with JSON `body` (None: no body) and extra headers.
pub fn request(
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    match body {
        Some(body) => builder
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
        None => builder.body(Body::empty()).unwrap(),
    }
}

pub async fn call(
    router: &Router,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Answer {
    send(router, request(method, uri, headers, body)).await
}

/// The test event: seats A-1..A-10 in one row, and a GA pool of 5.
pub fn event_body() -> Value {
    let seats: Vec<Value> = (1..=10)
        .map(|n| json!({"seat_id": format!("A-{n}"), "section": "Floor", "row": "A", "number": n, "category": "standard"}))
        .collect();
    json!({
        "event_id": EVENT,
        "name": "Concert",
        "seats": seats,
        "pools": [{"pool": "ga", "name": "Standing", "capacity": 5}],
    })
}

pub async fn create_event(router: &Router) {
    let answer = call(
        router,
        Method::POST,
        "/v1/events",
        &[("x-admin-key", ADMIN)],
        Some(&event_body()),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
}

/// Reserves `seats` for `user`; returns (reservation id, token).
pub async fn reserve(router: &Router, user: &str, seats: &[&str]) -> (String, String) {
    let body = json!({"user_id": user, "seat_ids": seats});
    let answer = call(
        router,
        Method::POST,
        &format!("/v1/events/{EVENT}/reservations"),
        &[],
        Some(&body),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    (
        answer.json["reservation_id"].as_str().unwrap().to_owned(),
        answer.json["token"].as_str().unwrap().to_owned(),
    )
}

pub async fn seatmap(router: &Router) -> Value {
    let answer = call(
        router,
        Method::GET,
        &format!("/v1/events/{EVENT}/seatmap"),
        &[],
        None,
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    answer.json
}

/// A memory store whose `reserve` takes `delay`, so that requests overlap.
pub struct SlowStore {
    pub inner: MemoryStore,
    pub delay: Duration,
}

impl SlowStore {
    pub fn new(delay: Duration) -> Self {
        Self {
            inner: MemoryStore::new(),
            delay,
        }
    }
}

#[async_trait]
impl InventoryStore for SlowStore {
    async fn create_event(&self, spec: EventSpec) -> Result<Event> {
        self.inner.create_event(spec).await
    }
    async fn event(&self, event: &EventId) -> Result<Event> {
        self.inner.event(event).await
    }
    async fn events(&self, page: Page) -> Result<Vec<EventSummary>> {
        self.inner.events(page).await
    }
    async fn resize_pool(&self, event: &EventId, pool: &PoolId, capacity: u32) -> Result<()> {
        self.inner.resize_pool(event, pool, capacity).await
    }
    async fn set_pool_blocked(&self, event: &EventId, pool: &PoolId, blocked: u32) -> Result<()> {
        self.inner.set_pool_blocked(event, pool, blocked).await
    }
    async fn block(&self, event: &EventId, seats: &[SeatId], blocked: bool) -> Result<()> {
        self.inner.block(event, seats, blocked).await
    }
    async fn reserve(&self, request: ReserveRequest) -> Result<Reservation> {
        tokio::time::sleep(self.delay).await;
        self.inner.reserve(request).await
    }
    async fn commit(&self, reservation: &ReservationId, request: CommitRequest) -> Result<Order> {
        self.inner.commit(reservation, request).await
    }
    async fn extend(
        &self,
        reservation: &ReservationId,
        token: &ReservationToken,
        ttl_seconds: u32,
    ) -> Result<Reservation> {
        self.inner.extend(reservation, token, ttl_seconds).await
    }
    async fn cancel(&self, reservation: &ReservationId, token: &ReservationToken) -> Result<()> {
        self.inner.cancel(reservation, token).await
    }
    async fn refund(&self, order: &OrderId, tickets: Option<&[TicketId]>) -> Result<Refund> {
        self.inner.refund(order, tickets).await
    }
    async fn transfer(&self, ticket: &TicketId, to: &HolderId) -> Result<Ticket> {
        self.inner.transfer(ticket, to).await
    }
    async fn check_in(&self, code: &TicketCode) -> Result<Ticket> {
        self.inner.check_in(code).await
    }
    async fn expire_due(&self, limit: usize) -> Result<usize> {
        self.inner.expire_due(limit).await
    }
    async fn availability(&self, event: &EventId) -> Result<Availability> {
        self.inner.availability(event).await
    }
    async fn changes(&self, event: &EventId, after: u64, limit: usize) -> Result<Vec<Change>> {
        self.inner.changes(event, after, limit).await
    }
    async fn reservation(&self, reservation: &ReservationId) -> Result<Reservation> {
        self.inner.reservation(reservation).await
    }
    async fn order(&self, order: &OrderId) -> Result<Order> {
        self.inner.order(order).await
    }
    async fn ticket(&self, ticket: &TicketId) -> Result<Ticket> {
        self.inner.ticket(ticket).await
    }
}
