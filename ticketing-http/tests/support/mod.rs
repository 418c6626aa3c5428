//! Test support: a router on an in-memory store with a manual clock, request helpers, and a
//! store wrapper that can hold operations to make requests overlap.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
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
/// How long a socket exchange may take before the test fails.
pub const SOCKET_TIMEOUT: Duration = Duration::from_secs(10);

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

/// A router over a fresh memory store that also serves the store's waitlists.
pub fn app_with_waitlist(config: HttpConfig) -> App {
    let clock = ManualClock::default();
    let store = Arc::new(MemoryStore::with_config(
        Arc::new(clock.clone()),
        MemoryStoreConfig::default(),
    ));
    App {
        router: router(store.clone(), config.waitlist(store.clone())),
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

impl Answer {
    /// An answer from its parts; an error answer must be a problem document naming its
    /// status and carrying a code.
    pub fn new(status: StatusCode, headers: HeaderMap, bytes: &[u8]) -> Self {
        let text = String::from_utf8_lossy(bytes).into_owned();
        let json = serde_json::from_slice(bytes).unwrap_or(Value::Null);
        if status.is_client_error() || status.is_server_error() {
            let content_type = headers
                .get("content-type")
                .and_then(|value| value.to_str().ok())
                .unwrap_or("");
            assert_eq!(content_type, "application/problem+json", "{status} {text}");
            assert_eq!(json["status"], status.as_u16(), "{text}");
            assert!(json["code"].is_string(), "{status} without a code: {text}");
        }
        Self {
            status,
            headers,
            json,
            text,
        }
    }

    /// Reads a whole response.
    pub async fn read<B>(response: Response<B>) -> Self
    where
        B: HttpBody,
        B::Error: std::fmt::Debug,
    {
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.expect("a readable body").to_bytes();
        Self::new(parts.status, parts.headers, &bytes)
    }
}

/// Where requests go: the router in process (`oneshot`) or a [`Server`] over its socket.
pub trait Client: Sync {
    fn send(&self, request: Request<Body>) -> impl Future<Output = Answer> + Send;
}

impl Client for Router {
    async fn send(&self, request: Request<Body>) -> Answer {
        let response = self
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible");
        Answer::read(response).await
    }
}

impl Client for Server {
    async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.open(request).await;
        tokio::time::timeout(SOCKET_TIMEOUT, Answer::read(response))
            .await
            .expect("the body arrives in time")
    }
}

pub async fn send(client: &impl Client, request: Request<Body>) -> Answer {
    client.send(request).await
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
    client: &impl Client,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Answer {
    client.send(request(method, uri, headers, body)).await
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

pub async fn create_event(client: &impl Client) {
    let answer = call(
        client,
        Method::POST,
        "/v1/events",
        &[("x-admin-key", ADMIN)],
        Some(&event_body()),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
}

/// Reserves `seats` for `user`; returns (reservation id, token).
pub async fn reserve(client: &impl Client, user: &str, seats: &[&str]) -> (String, String) {
    let body = json!({"user_id": user, "seat_ids": seats});
    let answer = call(
        client,
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

/// The seat map's answer, asserted 200.
pub async fn seatmap_answer(client: &impl Client) -> Answer {
    let uri = format!("/v1/events/{EVENT}/seatmap");
    let answer = call(client, Method::GET, &uri, &[], None).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    answer
}

pub async fn seatmap(client: &impl Client) -> Value {
    seatmap_answer(client).await.json
}

/// A router served on a loopback port; stops when dropped.
pub struct Server {
    pub address: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `router` on 127.0.0.1 at a port the OS picks, with peer addresses for the
/// per-client rate limit.
pub async fn serve(router: Router) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding 127.0.0.1:0");
    let address = listener.local_addr().expect("a local address");
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    let task = tokio::spawn(async move {
        axum::serve(listener, service).await.expect("serving");
    });
    Server { address, task }
}

impl Server {
    /// Sends `request` on a fresh HTTP/1.1 connection (hyper) and returns the response
    /// head, its body still streaming.
    pub async fn open(&self, mut request: Request<Body>) -> Response<Incoming> {
        request
            .headers_mut()
            .entry(header::HOST)
            .or_insert(HeaderValue::from_static("127.0.0.1"));
        let exchange = async {
            let stream = tokio::net::TcpStream::connect(self.address)
                .await
                .expect("connecting to the test server");
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .expect("an HTTP/1.1 handshake");
            tokio::spawn(connection);
            sender.send_request(request).await.expect("a response")
        };
        tokio::time::timeout(SOCKET_TIMEOUT, exchange)
            .await
            .expect("the server answers in time")
    }
}

/// An HS256 JWT signed with `secret` whose `exp` is `exp_offset` seconds from now, with
/// `sub` when given.
pub fn jwt(secret: &[u8], sub: Option<&str>, exp_offset: i64) -> String {
    jwt_with(&jsonwebtoken::Header::default(), secret, sub, exp_offset)
}

/// A JWT like [`jwt`] under another header (another algorithm).
pub fn jwt_with(
    header: &jsonwebtoken::Header,
    secret: &[u8],
    sub: Option<&str>,
    exp_offset: i64,
) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64;
    let mut claims = json!({"exp": now + exp_offset});
    if let Some(sub) = sub {
        claims["sub"] = json!(sub);
    }
    jsonwebtoken::encode(
        header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .expect("an encodable JWT")
}

/// One Server-Sent Event: name, id, data as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Sse {
    pub name: String,
    pub id: String,
    pub data: Value,
}

/// Reads SSE frames until `count` events with data arrived, for at most 5 s.
pub async fn read_events<B>(mut body: B, count: usize) -> Vec<Sse>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: std::fmt::Debug,
{
    let mut text = String::new();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while events.len() < count {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .unwrap_or_else(|_| panic!("SSE timed out after {} events: {events:?}", events.len()));
        let Some(frame) = frame else { break };
        if let Ok(data) = frame.expect("an SSE frame").into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let mut event = Sse {
                name: String::from("message"),
                id: String::new(),
                data: Value::Null,
            };
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("event: ") {
                    event.name = value.to_owned();
                } else if let Some(value) = line.strip_prefix("id: ") {
                    event.id = value.to_owned();
                } else if let Some(value) = line.strip_prefix("data: ") {
                    event.data = serde_json::from_str(value).unwrap_or(Value::Null);
                }
            }
            if !event.data.is_null() {
                events.push(event);
            }
        }
    }
    events
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
