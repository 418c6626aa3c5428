//! Test support (feature `testkit`, **not stable API**): the body of the `http` fuzz target.
//!
//! [`run_requests`] decodes arbitrary bytes into a sequence of requests — method, one of
//! the router's paths with fuzzed or previously seen ids, headers (`Content-Type`,
//! `Idempotency-Key`, `Reservation-Token`, `X-Admin-Key`, `If-None-Match`, ...), a fuzzed
//! JSON-ish body — and clock advances, sends each with `oneshot` to a router over an
//! in-memory store holding a small event, and panics when a response is a 5xx, when an
//! error is not an RFC 9457 problem document with a `code`, or when the store's invariants
//! (the strict change-log replay of `ticketing_core::testkit::invariants`) break.
//!
//! `fuzz/fuzz_targets/http.rs` calls it; `tests/fuzz_corpus.rs` replays the corpus in
//! `fuzz/corpus/http` on every `cargo test --features testkit`.
// Test support: a panic is the failure report.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use ticketing_core::testkit::invariants::check_store;
use ticketing_core::{EventId, InventoryStore, ManualClock, MemoryStore, Page};
use tower::ServiceExt;

use crate::{HttpConfig, JwtConfig, router};

/// The admin key of the fuzzed router.
pub const FUZZ_ADMIN_KEY: &str = "fuzz-admin";
/// The event every run starts with: seats A-1..A-6 and a GA pool `ga` of 4.
pub const FUZZ_EVENT: &str = "gig";
/// At most this many requests per input, so one input stays fast.
const REQUESTS_MAX: usize = 64;

/// Reads bytes; zeros once the input is exhausted, so every input decodes.
struct Input<'a> {
    data: &'a [u8],
    position: usize,
}

impl Input<'_> {
    fn done(&self) -> bool {
        self.position >= self.data.len()
    }

    fn byte(&mut self) -> u8 {
        let byte = self.data.get(self.position).copied().unwrap_or(0);
        self.position += 1;
        byte
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[usize::from(self.byte()) % items.len()].clone()
    }

    /// Up to `max` raw bytes, length first.
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let length = usize::from(self.byte()) % (max + 1);
        (0..length).map(|_| self.byte()).collect()
    }

    fn text(&mut self, max: usize) -> String {
        String::from_utf8_lossy(&self.bytes(max)).into_owned()
    }

    fn number(&mut self) -> i64 {
        match self.byte() % 6 {
            0 => 0,
            1 => 1,
            2 => i64::from(self.byte()),
            3 => -i64::from(self.byte()) - 1,
            4 => i64::from(u32::MAX) + i64::from(self.byte()),
            _ => i64::from(u16::from_le_bytes([self.byte(), self.byte()])),
        }
    }
}

/// What earlier responses revealed: the ids and credentials later requests may reuse.
#[derive(Default)]
struct Seen {
    reservation: Option<String>,
    token: Option<String>,
    order: Option<String>,
    ticket: Option<String>,
    code: Option<String>,
    etag: Option<String>,
}

impl Seen {
    fn learn(&mut self, json: &Value, etag: Option<&str>) {
        let text = |value: &Value| value.as_str().map(str::to_owned);
        if let Some(id) = text(&json["reservation_id"]) {
            self.reservation = Some(id);
        }
        if let Some(token) = text(&json["token"]) {
            self.token = Some(token);
        }
        if let Some(order) = text(&json["order_id"]) {
            self.order = Some(order);
        }
        if let Some(ticket) = text(&json["tickets"][0]["ticket_id"]) {
            self.ticket = Some(ticket);
        }
        if let Some(code) = text(&json["tickets"][0]["code"]) {
            self.code = Some(code);
        }
        if let Some(etag) = etag {
            self.etag = Some(etag.to_owned());
        }
    }
}

fn seen_or(value: Option<&String>, default: &str) -> String {
    value.map_or_else(|| default.to_owned(), Clone::clone)
}

/// Percent-encodes everything but unreserved characters, so any bytes make a valid path.
fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &byte in bytes {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn id(input: &mut Input<'_>, seen: &Seen) -> String {
    match input.byte() % 10 {
        0 => FUZZ_EVENT.to_owned(),
        1 => "ga".to_owned(),
        2 => seen_or(seen.reservation.as_ref(), "rsv_none"),
        3 => seen_or(seen.order.as_ref(), "ord_none"),
        4 => seen_or(seen.ticket.as_ref(), "tkt_none"),
        5 => "nope".to_owned(),
        6 => "A-1".to_owned(),
        7 => String::new(),
        8 => "x".repeat(usize::from(input.byte())),
        _ => encode(&input.bytes(24)),
    }
}

fn seat(input: &mut Input<'_>) -> Value {
    match input.byte() % 8 {
        0..=5 => json!(format!("A-{}", input.byte() % 8)),
        6 => json!(input.text(8)),
        _ => small_value(input, 1),
    }
}

/// Any JSON value, nesting at most `depth` deep.
fn small_value(input: &mut Input<'_>, depth: u8) -> Value {
    match input.byte() % 8 {
        0 => Value::Null,
        1 => json!(input.byte().is_multiple_of(2)),
        2 => json!(input.number()),
        3 => json!(f64::from(input.byte()) / 3.0),
        4 => json!(input.text(12)),
        5 => json!(input.pick(&[FUZZ_EVENT, "ga", "alice", "bob", "A-1", "A-2"])),
        6 if depth > 0 => {
            let length = input.byte() % 4;
            Value::Array((0..length).map(|_| small_value(input, depth - 1)).collect())
        }
        7 if depth > 0 => json!({ input.text(6): small_value(input, depth - 1) }),
        _ => json!("A-1"),
    }
}

/// Makes one field's value.
type Field = fn(&mut Input<'_>, &Seen) -> Value;

/// Fills the fields of `template` chosen by the input, each from its generator or, now
/// and then, with any value; an unknown field sometimes.
fn fields(input: &mut Input<'_>, template: &[(&str, Field)], seen: &Seen) -> Value {
    let mut object = serde_json::Map::new();
    for (name, make) in template {
        match input.byte() % 8 {
            0 => {}
            1 => {
                object.insert((*name).to_owned(), small_value(input, 2));
            }
            _ => {
                object.insert((*name).to_owned(), make(input, seen));
            }
        }
    }
    if input.byte().is_multiple_of(16) {
        object.insert(input.text(6), small_value(input, 1));
    }
    Value::Object(object)
}

fn user(input: &mut Input<'_>, _: &Seen) -> Value {
    json!(input.pick(&["alice", "bob", "carol", "", "a\u{7}b"]))
}

fn seats(input: &mut Input<'_>, _: &Seen) -> Value {
    let length = input.byte() % 5;
    Value::Array((0..length).map(|_| seat(input)).collect())
}

fn ga(input: &mut Input<'_>, _: &Seen) -> Value {
    json!([{"pool": input.pick(&["ga", "nope", ""]), "quantity": input.number()}])
}

fn number(input: &mut Input<'_>, _: &Seen) -> Value {
    json!(input.number())
}

fn flag(input: &mut Input<'_>, _: &Seen) -> Value {
    json!(input.byte().is_multiple_of(2))
}

fn key(input: &mut Input<'_>, _: &Seen) -> Value {
    json!(input.pick(&["k1", "k2", ""]))
}

fn best(input: &mut Input<'_>, _: &Seen) -> Value {
    json!({"count": input.number(), "adjacent": input.byte().is_multiple_of(2)})
}

fn code(input: &mut Input<'_>, seen: &Seen) -> Value {
    match input.byte() % 2 {
        0 => json!(seen_or(seen.code.as_ref(), "NOPE")),
        _ => json!(input.text(16)),
    }
}

fn ticket_ids(_: &mut Input<'_>, seen: &Seen) -> Value {
    json!([seen_or(seen.ticket.as_ref(), "tkt_none")])
}

fn event_body(input: &mut Input<'_>) -> Value {
    let count = input.byte() % 4;
    let seats: Vec<Value> = (0..count)
        .map(|n| json!({"seat_id": format!("S-{n}"), "section": "S", "row": "1", "number": n, "category": "c"}))
        .collect();
    json!({
        "event_id": input.pick(&[FUZZ_EVENT, "other", "", "bad id"]),
        "name": "Fuzzed",
        "seats": seats,
        "pools": [{"pool": "p", "name": "P", "capacity": input.number()}],
    })
}

/// A body: none, raw bytes, or one of the router's documents with fuzzed fields (whole,
/// or cut short).
fn body(input: &mut Input<'_>, seen: &Seen) -> Option<Vec<u8>> {
    let document = match input.byte() % 12 {
        0 => return None,
        1 => return Some(input.bytes(64)),
        2 => fields(
            input,
            &[
                ("client_reservation_id", key),
                ("user_id", user),
                ("seat_ids", seats),
                ("ga", ga),
                ("best_available", best),
                ("ttl_seconds", number),
            ],
            seen,
        ),
        3 => fields(
            input,
            &[
                ("payment_id", key),
                ("idempotency_key", key),
                ("payment_token", key),
            ],
            seen,
        ),
        4 => fields(input, &[("ttl_seconds", number)], seen),
        5 => fields(input, &[("seat_ids", seats), ("blocked", flag)], seen),
        6 => fields(input, &[("capacity", number), ("blocked", number)], seen),
        7 => fields(input, &[("ticket_ids", ticket_ids)], seen),
        8 => fields(input, &[("to_user_id", user)], seen),
        9 => fields(input, &[("code", code)], seen),
        10 => event_body(input),
        _ => small_value(input, 3),
    };
    let mut bytes = document.to_string().into_bytes();
    if input.byte().is_multiple_of(8) {
        let cut = usize::from(input.byte()) % (bytes.len() + 1);
        bytes.truncate(cut);
    }
    Some(bytes)
}

fn header(input: &mut Input<'_>, seen: &Seen, builder: &mut Vec<(HeaderName, Vec<u8>)>) {
    let flags = input.byte();
    let mut add = |name: &'static str, value: Vec<u8>| {
        builder.push((HeaderName::from_static(name), value));
    };
    if flags & 1 != 0 {
        let value = match input.byte() % 6 {
            0 => b"application/json".to_vec(),
            1 => b"application/json; charset=utf-8".to_vec(),
            2 => b"text/plain".to_vec(),
            3 => b"application/problem+json".to_vec(),
            4 => b"application/x-www-form-urlencoded".to_vec(),
            _ => input.bytes(24),
        };
        add("content-type", value);
    }
    if flags & 2 != 0 {
        let value = match input.byte() % 4 {
            0 => b"k1".to_vec(),
            1 => b"k2".to_vec(),
            2 => "k".repeat(usize::from(input.byte()) * 2).into_bytes(),
            _ => input.bytes(16),
        };
        add("idempotency-key", value);
    }
    if flags & 4 != 0 {
        let value = match input.byte() % 4 {
            0 | 1 => seen_or(seen.token.as_ref(), "none").into_bytes(),
            2 => b"AAAAAAAAAAAAAAAAAAAAAA".to_vec(),
            _ => input.bytes(32),
        };
        add("reservation-token", value);
    }
    if flags & 8 != 0 {
        let value = match input.byte() % 3 {
            0 | 1 => FUZZ_ADMIN_KEY.as_bytes().to_vec(),
            _ => input.bytes(16),
        };
        add("x-admin-key", value);
    }
    if flags & 16 != 0 {
        let value = match input.byte() % 3 {
            0 | 1 => seen_or(seen.etag.as_ref(), "\"0\"").into_bytes(),
            _ => input.bytes(16),
        };
        add("if-none-match", value);
    }
    if flags & 32 != 0 {
        let value = input.bytes(8);
        add("last-event-id", value);
    }
    if flags & 64 != 0 {
        let mut value = b"Bearer ".to_vec();
        value.extend(input.bytes(48));
        add("authorization", value);
    }
    if flags & 128 != 0 {
        let name = input.pick(&[
            "x-forwarded-for",
            "accept",
            "content-length",
            "host",
            "origin",
        ]);
        let value = input.bytes(16);
        add(name, value);
    }
}

/// One decoded request, or `None` when the bytes make no valid HTTP request (a header
/// value with a newline, say): the router never sees those.
fn request(input: &mut Input<'_>, seen: &Seen) -> Option<(Method, Request<Body>)> {
    let method = match input.byte() % 9 {
        0 | 1 => Method::GET,
        2..=4 => Method::POST,
        5 => Method::PUT,
        6 => Method::DELETE,
        7 => input.pick(&[Method::PATCH, Method::HEAD, Method::OPTIONS]),
        _ => Method::from_bytes(b"FUZZ").ok()?,
    };
    let routes = crate::routes();
    let template = match input.byte() % 16 {
        0 => input.pick(&[
            "/",
            "/v1",
            "/v1/events/",
            "//v1/events",
            "/v1/events/gig/seatmap/x",
        ]),
        _ => input.pick(&routes).1,
    };
    let mut path = String::new();
    for segment in template.split('/').skip(1) {
        path.push('/');
        if segment.starts_with('{') {
            path.push_str(&id(input, seen));
        } else {
            path.push_str(segment);
        }
    }
    match input.byte() % 4 {
        1 => path.push_str(&format!(
            "?after={}&limit={}",
            input.number(),
            input.number()
        )),
        2 => {
            path.push('?');
            path.push_str(&encode(&input.bytes(16)));
        }
        _ => {}
    }
    let mut headers = Vec::new();
    header(input, seen, &mut headers);
    let body = body(input, seen);
    let mut builder = Request::builder().method(method.clone()).uri(path);
    if body.is_some() && !input.byte().is_multiple_of(4) {
        builder = builder.header("content-type", "application/json");
    }
    for (name, value) in headers {
        builder = builder.header(name, HeaderValue::from_bytes(&value).ok()?);
    }
    let request = builder
        .body(body.map_or_else(Body::empty, Body::from))
        .ok()?;
    Some((method, request))
}

/// Sends `request`, checks the answer and returns it as JSON (Null when empty, not JSON or
/// a stream) with its ETag.
async fn send(
    router: &Router,
    method: &Method,
    request: Request<Body>,
) -> (StatusCode, Value, Option<String>) {
    let described = format!("{method} {}", request.uri());
    let response = match router.clone().oneshot(request).await {
        Ok(response) => response,
        Err(infallible) => match infallible {},
    };
    let status = response.status();
    assert!(
        !status.is_server_error(),
        "{described}: {status} (a 5xx: a handler failed or panicked)"
    );
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let content_type = header("content-type").unwrap_or_default();
    let etag = header("etag");
    if content_type.starts_with("text/event-stream") {
        // A live stream never ends; its head is what the router answered.
        return (status, Value::Null, etag);
    }
    let bytes = response
        .into_body()
        .collect()
        .await
        .unwrap_or_else(|error| panic!("{described}: reading the body: {error}"))
        .to_bytes();
    let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if std::env::var_os("TICKETING_FUZZ_TRACE").is_some() {
        // Set it to see what an input decodes to, when a crash needs explaining.
        eprintln!(
            "{described} -> {status} {}",
            String::from_utf8_lossy(&bytes)
        );
    }
    if status.is_client_error() {
        assert_eq!(
            content_type,
            crate::PROBLEM_JSON,
            "{described}: {status} without a problem document: {}",
            String::from_utf8_lossy(&bytes)
        );
        if method != Method::HEAD {
            assert!(
                json["code"].as_str().is_some_and(|code| !code.is_empty()),
                "{described}: {status} problem without a code: {}",
                String::from_utf8_lossy(&bytes)
            );
            assert_eq!(json["status"], status.as_u16(), "{described}: {json}");
        }
    }
    (status, json, etag)
}

/// Checks the invariants of every event the store holds.
async fn check_all(store: &dyn InventoryStore) {
    let events = store
        .events(Page::default())
        .await
        .unwrap_or_else(|error| panic!("listing events: {error}"));
    for event in events {
        if let Err(why) = check_store(store, &event.id).await {
            panic!("invariants of {}: {why}", event.id);
        }
    }
}

/// Decodes `data` into requests and clock advances, runs them against a router over a
/// fresh in-memory store with a small event, and panics on a 5xx, an error that is not a
/// problem document with a `code`, or a broken invariant.
pub fn run_requests(data: &[u8]) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(run(data));
}

async fn run(data: &[u8]) {
    let mut input = Input { data, position: 0 };
    let settings = input.byte();
    let clock = ManualClock::default();
    let store = Arc::new(MemoryStore::with_clock(Arc::new(clock.clone())));
    let mut config = HttpConfig::default()
        .admin_key(FUZZ_ADMIN_KEY)
        .without_rate_limits()
        .body_limit_bytes(512);
    if settings & 1 != 0 {
        config = config.jwt(JwtConfig::hs256(b"fuzz-secret"));
    }
    let router = router(store.clone(), config);

    let layout = json!({
        "event_id": FUZZ_EVENT,
        "name": "Gig",
        "seats": (1..=6).map(|n| json!({"seat_id": format!("A-{n}"), "section": "Floor", "row": "A", "number": n, "category": "standard"})).collect::<Vec<_>>(),
        "pools": [{"pool": "ga", "name": "Standing", "capacity": 4}],
    });
    let create = Request::builder()
        .method(Method::POST)
        .uri("/v1/events")
        .header("content-type", "application/json")
        .header("x-admin-key", FUZZ_ADMIN_KEY)
        .body(Body::from(layout.to_string()))
        .expect("a valid request");
    let (status, json, _) = send(&router, &Method::POST, create).await;
    assert_eq!(status, StatusCode::CREATED, "creating the event: {json}");

    let mut seen = Seen::default();
    let mut requests = 0;
    while !input.done() && requests < REQUESTS_MAX {
        if input.byte() % 8 == 7 {
            clock.advance(Duration::from_secs(u64::from(input.byte()) * 10));
            continue;
        }
        requests += 1;
        if let Some((method, request)) = request(&mut input, &seen) {
            let (_, json, etag) = send(&router, &method, request).await;
            seen.learn(&json, etag.as_deref());
        }
    }
    if store
        .event(&EventId::new(FUZZ_EVENT).expect("a valid id"))
        .await
        .is_err()
    {
        panic!("the event is gone");
    }
    check_all(store.as_ref()).await;
}
