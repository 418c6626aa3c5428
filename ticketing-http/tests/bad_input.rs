//! Bad input of every kind against the router on the in-memory store, as one table: each
//! row is one request and the exact 4xx status and problem code it must get (never a 5xx),
//! and after the whole table the seat map, the store's availability and its change log are
//! byte for byte what they were before it ran.
//!
//! The router verifies HS256 JWTs, so every request that is not about the JWT carries a
//! valid one; requests that are bad in one way only are right in every other way (a real
//! reservation and its real token, the right admin key), so what refuses them is the one
//! fault the row names.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use support::*;
use ticketing_core::testkit::invariants::check_store;

use ticketing_core::{
    EventId, HolderId, InventoryStore, MemoryWaitingRoom, PassKey, QueueTicketId, RoomSettings,
    Timestamp, WaitingRoom,
};
use ticketing_http::{JwtConfig, WaitingRoomConfig};

const SECRET: &[u8] = b"bad-input-jwt-secret";
/// A well-formed reservation token that belongs to nobody.
const FORGED_TOKEN: &str = "AAAAAAAAAAAAAAAAAAAAAA";
/// Event bodies may be this large here (the default is 32 MiB, too much to send in a test).
const EVENT_BODY_LIMIT_BYTES: usize = 256 * 1024;
/// The event behind a waiting room (EVENT has none).
const GATED: &str = "gated";

/// What a row sends as its body.
enum Payload {
    None,
    Json(Value),
    /// Raw bytes under a content type (`None`: no content-type header).
    Raw(Option<&'static str>, Vec<u8>),
    /// `chunks` of 1 KiB of JSON white space, with no content-length.
    Chunked(usize),
}

struct Case {
    name: &'static str,
    method: Method,
    uri: String,
    headers: Vec<(&'static str, String)>,
    payload: Payload,
    status: StatusCode,
    code: &'static str,
    /// The `field` a 400 names.
    field: Option<&'static str>,
}

impl Case {
    fn new(name: &'static str, method: Method, uri: impl Into<String>) -> Self {
        Self {
            name,
            method,
            uri: uri.into(),
            headers: Vec::new(),
            payload: Payload::None,
            status: StatusCode::BAD_REQUEST,
            code: "invalid_request",
            field: None,
        }
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn json(mut self, body: Value) -> Self {
        self.payload = Payload::Json(body);
        self
    }

    fn raw(mut self, content_type: Option<&'static str>, body: impl Into<Vec<u8>>) -> Self {
        self.payload = Payload::Raw(content_type, body.into());
        self
    }

    fn chunked(mut self, chunks: usize) -> Self {
        self.payload = Payload::Chunked(chunks);
        self
    }

    fn expect(mut self, status: StatusCode, code: &'static str) -> Self {
        self.status = status;
        self.code = code;
        self
    }

    /// 400 `invalid_request` naming `field` (`body` when serde refuses the JSON).
    fn invalid(self, field: &'static str) -> Self {
        let mut case = self.expect(StatusCode::BAD_REQUEST, "invalid_request");
        case.field = Some(field);
        case
    }

    fn request(&self) -> Request<Body> {
        let mut builder = Request::builder()
            .method(self.method.clone())
            .uri(&self.uri);
        for (name, value) in &self.headers {
            builder = builder.header(*name, value);
        }
        let body = match &self.payload {
            Payload::None => Body::empty(),
            Payload::Json(value) => {
                builder = builder.header("content-type", "application/json");
                Body::from(value.to_string())
            }
            Payload::Raw(content_type, bytes) => {
                if let Some(content_type) = content_type {
                    builder = builder.header("content-type", *content_type);
                }
                Body::from(bytes.clone())
            }
            Payload::Chunked(chunks) => {
                builder = builder.header("content-type", "application/json");
                let chunks = (0..*chunks).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1024]));
                Body::from_stream(futures_util::stream::iter(chunks))
            }
        };
        builder.body(body).expect("a valid request")
    }
}

/// What must not change: the seat map as served (body and ETag), the event list, and the
/// store's availability and change log.
#[derive(Debug, PartialEq)]
struct Snapshot {
    seatmap: String,
    etag: Option<String>,
    events: String,
    availability: ticketing_core::Availability,
    changes: Vec<ticketing_core::Change>,
    gated_availability: ticketing_core::Availability,
    room: (Option<RoomSettings>, ticketing_core::RoomStats),
    alice_in_line: ticketing_core::QueueState,
}

async fn snapshot(app: &App, f: &Fixture) -> Snapshot {
    let r = &app.router;
    let map = seatmap_answer(r).await;
    let events = call(r, Method::GET, "/v1/events", &[], None).await;
    assert_eq!(events.status, StatusCode::OK, "{}", events.text);
    let event = EventId::new(EVENT).unwrap();
    Snapshot {
        etag: map.header("etag").map(str::to_owned),
        seatmap: map.text,
        events: events.text,
        availability: app.store.availability(&event).await.unwrap(),
        changes: app.store.changes(&event, 0, 1_000).await.unwrap(),
        gated_availability: app.store.availability(&gated()).await.unwrap(),
        room: (
            f.rooms.settings(&gated()).await.unwrap(),
            f.rooms.stats(&gated()).await.unwrap(),
        ),
        alice_in_line: f.rooms.status(&f.alice_ticket).await.unwrap(),
    }
}

fn gated() -> EventId {
    EventId::new(GATED).unwrap()
}

/// Alice's live reservation (its id and token) and her order, made before the table runs.
struct Fixture {
    bearer: String,
    reservation: String,
    token: String,
    order: String,
    /// The rooms and the key of the router's waiting room config.
    rooms: Arc<MemoryWaitingRoom>,
    pass_key: PassKey,
    /// Alice's place in the gated event's line (the room admits nobody: no step runs).
    alice_ticket: QueueTicketId,
}

async fn fixture(app: &App, rooms: Arc<MemoryWaitingRoom>, pass_key: PassKey) -> Fixture {
    let r = &app.router;
    create_event(r).await;
    let mut gated_event = event_body();
    gated_event["event_id"] = json!(GATED);
    let answer = call(
        r,
        Method::POST,
        "/v1/events",
        &[("x-admin-key", ADMIN)],
        Some(&gated_event),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    rooms
        .configure(&gated(), RoomSettings::rate(10))
        .await
        .unwrap();
    let alice_ticket = rooms
        .join(&gated(), &HolderId::new("alice").unwrap())
        .await
        .unwrap()
        .id;
    let bearer = format!("Bearer {}", jwt(SECRET, Some("alice"), 600));
    let auth = [("authorization", bearer.as_str())];
    let uri = format!("/v1/events/{EVENT}/reservations");
    let mut made = Vec::new();
    for seat in ["A-1", "A-2"] {
        let body = json!({"seat_ids": [seat]});
        let answer = call(r, Method::POST, &uri, &auth, Some(&body)).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
        made.push(answer);
    }
    let [held, bought] = <[Answer; 2]>::try_from(made).unwrap();
    let order = call(
        r,
        Method::POST,
        &format!(
            "/v1/reservations/{}/commit",
            bought.json["reservation_id"].as_str().unwrap()
        ),
        &[
            ("authorization", &bearer),
            ("reservation-token", bought.json["token"].as_str().unwrap()),
            ("idempotency-key", "fixture"),
        ],
        Some(&json!({"payment_id": "pay-fixture"})),
    )
    .await;
    assert_eq!(order.status, StatusCode::OK, "{}", order.text);
    Fixture {
        bearer,
        reservation: held.json["reservation_id"].as_str().unwrap().to_owned(),
        token: held.json["token"].as_str().unwrap().to_owned(),
        order: order.json["order_id"].as_str().unwrap().to_owned(),
        rooms,
        pass_key,
        alice_ticket,
    }
}

/// The reserve rows: bodies, media types, sizes and JWTs.
fn reserve_cases(f: &Fixture) -> Vec<Case> {
    let uri = format!("/v1/events/{EVENT}/reservations");
    let reserve = |name| Case::new(name, Method::POST, &uri).header("authorization", &f.bearer);
    let seats = |count: usize| -> Vec<String> { (0..count).map(|n| format!("S-{n}")).collect() };
    let jwt_case = |name, token: String| {
        Case::new(name, Method::POST, &uri)
            .header("authorization", format!("Bearer {token}"))
            .json(json!({"seat_ids": ["A-3"]}))
            .expect(StatusCode::UNAUTHORIZED, "unauthorized")
    };
    let valid = jwt(SECRET, Some("alice"), 600);
    let (_, rest) = valid.split_once('.').unwrap();
    let (claims, _) = rest.split_once('.').unwrap();
    // base64url of {"alg":"none","typ":"JWT"}: the classic unsigned-token forgery.
    let alg_none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{claims}.");
    let hs512 = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512);
    let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let huge_body = format!("{{\"seat_ids\": [\"{}\"]}}", "A".repeat(70_000));
    vec![
        reserve("malformed JSON")
            .raw(Some("application/json"), "{\"seat_ids\": [")
            .invalid("body"),
        reserve("not UTF-8")
            .raw(
                Some("application/json"),
                b"{\"seat_ids\": [\"\xff\"]}".to_vec(),
            )
            .invalid("body"),
        reserve("nested 10,000 deep")
            .raw(Some("application/json"), nested)
            .invalid("body"),
        reserve("null body").json(Value::Null).invalid("body"),
        reserve("array body").json(json!([1, 2])).invalid("body"),
        reserve("seat_ids a string")
            .json(json!({"seat_ids": "A-3"}))
            .invalid("body"),
        reserve("seat id a number")
            .json(json!({"seat_ids": [3]}))
            .invalid("body"),
        reserve("ttl a string")
            .json(json!({"seat_ids": ["A-3"], "ttl_seconds": "300"}))
            .invalid("body"),
        reserve("unknown field")
            .json(json!({"seat_ids": ["A-3"], "price": 3}))
            .invalid("body"),
        reserve("unknown ga field")
            .json(json!({"ga": [{"pool": "ga", "quantity": 1, "x": 1}]}))
            .invalid("body"),
        reserve("empty seat list")
            .json(json!({"seat_ids": []}))
            .invalid("seat_ids"),
        reserve("65 seats")
            .json(json!({"seat_ids": seats(65)}))
            .invalid("seat_ids"),
        reserve("10,000 seats")
            .json(json!({"seat_ids": seats(10_000)}))
            .expect(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        reserve("duplicate seats")
            .json(json!({"seat_ids": ["A-3", "A-3"]}))
            .invalid("seat_ids"),
        reserve("zero quantity")
            .json(json!({"ga": [{"pool": "ga", "quantity": 0}]}))
            .invalid("ga"),
        reserve("negative quantity")
            .json(json!({"ga": [{"pool": "ga", "quantity": -1}]}))
            .invalid("body"),
        reserve("quantity past u32")
            .json(json!({"ga": [{"pool": "ga", "quantity": 4_294_967_296u64}]}))
            .invalid("body"),
        reserve("best available zero")
            .json(json!({"best_available": {"count": 0}}))
            .invalid("best_available.count"),
        reserve("best available negative")
            .json(json!({"best_available": {"count": -2}}))
            .invalid("body"),
        reserve("zero ttl")
            .json(json!({"seat_ids": ["A-3"], "ttl_seconds": 0}))
            .invalid("ttl_seconds"),
        reserve("negative ttl")
            .json(json!({"seat_ids": ["A-3"], "ttl_seconds": -5}))
            .invalid("body"),
        reserve("ttl past the maximum")
            .json(json!({"seat_ids": ["A-3"], "ttl_seconds": 1_801}))
            .invalid("ttl_seconds"),
        reserve("ttl past u32")
            .json(json!({"seat_ids": ["A-3"], "ttl_seconds": 4_294_967_296u64}))
            .invalid("body"),
        reserve("control character in a seat id")
            .json(json!({"seat_ids": ["A-\u{7}3"]}))
            .invalid("seat_id"),
        reserve("NUL in a pool id")
            .json(json!({"ga": [{"pool": "g\u{0}a", "quantity": 1}]}))
            .invalid("pool"),
        reserve("newline in client_reservation_id")
            .json(json!({"seat_ids": ["A-3"], "client_reservation_id": "c\n1"}))
            .invalid("client_reservation_id"),
        reserve("user_id not the JWT's sub")
            .json(json!({"seat_ids": ["A-3"], "user_id": "mallory"}))
            .invalid("user_id"),
        reserve("unknown seat")
            .json(json!({"seat_ids": ["Z-1"]}))
            .expect(StatusCode::NOT_FOUND, "not_found"),
        reserve("unknown pool")
            .json(json!({"ga": [{"pool": "vip", "quantity": 1}]}))
            .expect(StatusCode::NOT_FOUND, "not_found"),
        reserve("declared oversize body")
            .raw(Some("application/json"), huge_body)
            .expect(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        reserve("chunked oversize body")
            .chunked(100)
            .expect(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        reserve("form body")
            .raw(Some("application/x-www-form-urlencoded"), "seat_ids=A-3")
            .expect(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
        reserve("text/plain JSON")
            .raw(Some("text/plain"), "{\"seat_ids\": [\"A-3\"]}")
            .expect(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
        reserve("no content type")
            .raw(None, "{\"seat_ids\": [\"A-3\"]}")
            .expect(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
        reserve("idempotency key with a space")
            .header("idempotency-key", "has space")
            .json(json!({"seat_ids": ["A-3"]}))
            .invalid("idempotency_key"),
        Case::new("no JWT", Method::POST, &uri)
            .json(json!({"seat_ids": ["A-3"]}))
            .expect(StatusCode::UNAUTHORIZED, "unauthorized"),
        jwt_case(
            "JWT with a wrong signature",
            jwt(b"another-secret", Some("alice"), 600),
        ),
        jwt_case("JWT with alg none", alg_none),
        jwt_case(
            "JWT under HS512",
            jwt_with(&hs512, SECRET, Some("alice"), 600),
        ),
        jwt_case("expired JWT", jwt(SECRET, Some("alice"), -3_600)),
        jwt_case("JWT without sub", jwt(SECRET, None, 600)),
        jwt_case(
            "JWT whose sub is no holder id",
            jwt(SECRET, Some("al ice"), 600),
        ),
        jwt_case("JWT of junk", "a.b.c".to_owned()),
        Case::new("Basic instead of Bearer", Method::POST, &uri)
            .header("authorization", "Basic YWxpY2U6cHc=")
            .json(json!({"seat_ids": ["A-3"]}))
            .expect(StatusCode::UNAUTHORIZED, "unauthorized"),
    ]
}

/// The rows on alice's live reservation: tokens, idempotency keys and commit, extend and
/// cancel bodies.
fn reservation_cases(f: &Fixture) -> Vec<Case> {
    let id = &f.reservation;
    let commit_uri = format!("/v1/reservations/{id}/commit");
    let on = |name, method: Method, uri: &str| {
        Case::new(name, method, uri).header("authorization", &f.bearer)
    };
    let commit = |name| {
        on(name, Method::POST, &commit_uri)
            .header("reservation-token", &f.token)
            .json(json!({"payment_id": "pay-1"}))
    };
    let extend = |name| {
        on(name, Method::POST, &format!("/v1/reservations/{id}/extend"))
            .header("reservation-token", &f.token)
    };
    let missing_token = |case: Case| case.expect(StatusCode::UNAUTHORIZED, "missing_token");
    let wrong_token = |case: Case| case.expect(StatusCode::FORBIDDEN, "invalid_token");
    vec![
        commit("commit without Idempotency-Key").invalid("idempotency_key"),
        commit("commit with an empty Idempotency-Key")
            .header("idempotency-key", "")
            .invalid("idempotency_key"),
        on(
            "header and body idempotency keys differ",
            Method::POST,
            &commit_uri,
        )
        .header("reservation-token", &f.token)
        .header("idempotency-key", "k-header")
        .json(json!({"payment_id": "pay-1", "idempotency_key": "k-body"}))
        .invalid("idempotency_key"),
        on(
            "body idempotency key with control characters",
            Method::POST,
            &commit_uri,
        )
        .header("reservation-token", &f.token)
        .json(json!({"payment_id": "pay-1", "idempotency_key": "k\u{1b}[2J"}))
        .invalid("idempotency_key"),
        commit("payment_id with a control character")
            .header("idempotency-key", "k-payment")
            .json(json!({"payment_id": "pay\u{7f}1"}))
            .invalid("payment_id"),
        commit("commit with an unknown field")
            .header("idempotency-key", "k-field")
            .json(json!({"payment_id": "pay-1", "amount": 10}))
            .invalid("body"),
        commit("commit of a seat not held")
            .header("idempotency-key", "k-seat")
            .json(json!({"payment_id": "pay-1", "seat_ids": ["A-9"]}))
            .invalid("seat_ids"),
        missing_token(
            on("commit without a token", Method::POST, &commit_uri)
                .header("idempotency-key", "k-1")
                .json(json!({"payment_id": "pay-1"})),
        ),
        wrong_token(
            on("commit with another token", Method::POST, &commit_uri)
                .header("reservation-token", FORGED_TOKEN)
                .header("idempotency-key", "k-1")
                .json(json!({"payment_id": "pay-1"})),
        ),
        wrong_token(
            on("commit with a malformed token", Method::POST, &commit_uri)
                .header("reservation-token", "nope\t")
                .header("idempotency-key", "k-1"),
        ),
        Case::new("commit without a JWT", Method::POST, &commit_uri)
            .header("reservation-token", &f.token)
            .header("idempotency-key", "k-jwt")
            .json(json!({"payment_id": "pay-1"}))
            .expect(StatusCode::UNAUTHORIZED, "unauthorized"),
        extend("extend to zero")
            .json(json!({"ttl_seconds": 0}))
            .invalid("ttl_seconds"),
        extend("extend past the maximum")
            .json(json!({"ttl_seconds": 5_000}))
            .invalid("ttl_seconds"),
        extend("extend negative")
            .json(json!({"ttl_seconds": -1}))
            .invalid("body"),
        extend("extend without ttl").json(json!({})).invalid("body"),
        missing_token(
            on(
                "extend without a token",
                Method::POST,
                &format!("/v1/reservations/{id}/extend"),
            )
            .json(json!({"ttl_seconds": 60})),
        ),
        wrong_token(
            on(
                "cancel with another token",
                Method::POST,
                &format!("/v1/reservations/{id}/cancel"),
            )
            .header("reservation-token", FORGED_TOKEN),
        ),
        missing_token(on(
            "cancel without a token",
            Method::POST,
            &format!("/v1/reservations/{id}/cancel"),
        )),
        wrong_token(
            on(
                "DELETE with another token",
                Method::DELETE,
                &format!("/v1/reservations/{id}"),
            )
            .header("reservation-token", FORGED_TOKEN),
        ),
        missing_token(on(
            "DELETE without a token",
            Method::DELETE,
            &format!("/v1/reservations/{id}"),
        )),
    ]
}

/// Admin routes without the key, with a wrong one, and with it but a bad body.
fn admin_cases(f: &Fixture) -> Vec<Case> {
    let refund_uri = format!("/v1/orders/{}/refund", f.order);
    let block_uri = format!("/v1/events/{EVENT}/block");
    let pool_uri = format!("/v1/events/{EVENT}/pools/ga");
    let missing = |case: Case| case.expect(StatusCode::UNAUTHORIZED, "missing_admin_key");
    let wrong = |case: Case| {
        case.header("x-admin-key", "admin-secreT")
            .expect(StatusCode::FORBIDDEN, "invalid_admin_key")
    };
    let admin = |name, method, uri: &str| Case::new(name, method, uri).header("x-admin-key", ADMIN);
    let mut new_event = event_body();
    new_event["event_id"] = json!("other");
    let mut control_event = new_event.clone();
    control_event["event_id"] = json!("oth\u{8}er");
    let mut big_event = new_event.clone();
    big_event["name"] = json!("x".repeat(EVENT_BODY_LIMIT_BYTES));
    vec![
        missing(
            Case::new(
                "create event without the admin key",
                Method::POST,
                "/v1/events",
            )
            .json(new_event.clone()),
        ),
        wrong(
            Case::new(
                "create event with a wrong admin key",
                Method::POST,
                "/v1/events",
            )
            .json(new_event.clone()),
        ),
        missing(
            Case::new("refund without the admin key", Method::POST, &refund_uri).json(json!({})),
        ),
        wrong(
            Case::new("refund with a wrong admin key", Method::POST, &refund_uri).json(json!({})),
        ),
        missing(
            Case::new("block without the admin key", Method::POST, &block_uri)
                .json(json!({"seat_ids": ["A-5"]})),
        ),
        wrong(
            Case::new("block with a wrong admin key", Method::POST, &block_uri)
                .json(json!({"seat_ids": ["A-5"]})),
        ),
        wrong(
            Case::new("resize with a wrong admin key", Method::PUT, &pool_uri)
                .json(json!({"capacity": 1})),
        ),
        missing(
            Case::new("admin key as a bearer token", Method::POST, &block_uri)
                .header("authorization", format!("Bearer {ADMIN}"))
                .json(json!({"seat_ids": ["A-5"]})),
        ),
        admin(
            "event id with a control character",
            Method::POST,
            "/v1/events",
        )
        .json(control_event)
        .invalid("event_id"),
        admin("event without a name", Method::POST, "/v1/events")
            .json(json!({"event_id": "other", "seats": []}))
            .invalid("body"),
        admin("event body over its limit", Method::POST, "/v1/events")
            .json(big_event)
            .expect(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        admin("block a control-character seat", Method::POST, &block_uri)
            .json(json!({"seat_ids": ["A-\u{1}5"]}))
            .invalid("seat_id"),
        admin("block nothing", Method::POST, &block_uri)
            .json(json!({"seat_ids": "A-5"}))
            .invalid("body"),
        admin("pool capacity past u32", Method::PUT, &pool_uri)
            .json(json!({"capacity": 4_294_967_296u64}))
            .invalid("body"),
        admin("pool capacity negative", Method::PUT, &pool_uri)
            .json(json!({"capacity": -1}))
            .invalid("body"),
        admin("pool capacity past the maximum", Method::PUT, &pool_uri)
            .json(json!({"capacity": 10_000_001}))
            .invalid("capacity"),
        admin("refund an unknown ticket", Method::POST, &refund_uri)
            .json(json!({"ticket_ids": ["tkt_nope"]}))
            .expect(StatusCode::NOT_FOUND, "not_found"),
        admin(
            "refund a control-character ticket",
            Method::POST,
            &refund_uri,
        )
        .json(json!({"ticket_ids": ["t\u{1}"]}))
        .invalid("ticket_id"),
    ]
}

/// Ids with control characters and bytes that are not UTF-8, in the path; bad stream
/// positions.
fn path_cases(f: &Fixture) -> Vec<Case> {
    let with_token = |case: Case| {
        case.header("authorization", &f.bearer)
            .header("reservation-token", &f.token)
            .header("idempotency-key", "k-path")
    };
    vec![
        with_token(Case::new(
            "BEL in the event id",
            Method::POST,
            "/v1/events/con%07cert/reservations",
        ))
        .json(json!({"seat_ids": ["A-3"]}))
        .invalid("event_id"),
        with_token(Case::new(
            "not UTF-8 in the event id",
            Method::POST,
            "/v1/events/%FF/reservations",
        ))
        .json(json!({"seat_ids": ["A-3"]}))
        .invalid("path"),
        Case::new(
            "NUL in the seat map's event id",
            Method::GET,
            "/v1/events/%00/seatmap",
        )
        .invalid("event_id"),
        Case::new(
            "newline in the change stream's event id",
            Method::GET,
            "/v1/events/con%0Acert/changes",
        )
        .invalid("event_id"),
        Case::new(
            "a negative stream position",
            Method::GET,
            format!("/v1/events/{EVENT}/changes?after=-1"),
        )
        .invalid("query"),
        Case::new(
            "a stream position of junk",
            Method::GET,
            format!("/v1/events/{EVENT}/changes"),
        )
        .header("last-event-id", "1; DROP")
        .invalid("last_event_id"),
        with_token(Case::new(
            "ESC in the reservation id",
            Method::POST,
            format!("/v1/reservations/{}%1B/commit", f.reservation),
        ))
        .invalid("reservation_id"),
        with_token(Case::new(
            "space in the reservation id",
            Method::DELETE,
            format!("/v1/reservations/{}%20", f.reservation),
        ))
        .invalid("reservation_id"),
        Case::new(
            "tab in the order id",
            Method::POST,
            "/v1/orders/o%09/refund",
        )
        .header("x-admin-key", ADMIN)
        .json(json!({}))
        .invalid("order_id"),
        Case::new(
            "DEL in the ticket id",
            Method::POST,
            "/v1/tickets/t%7F/transfer",
        )
        .json(json!({"to_user_id": "bob"}))
        .invalid("ticket_id"),
        Case::new(
            "unknown event",
            Method::POST,
            "/v1/events/nope/reservations",
        )
        .header("authorization", &f.bearer)
        .json(json!({"seat_ids": ["A-3"]}))
        .expect(StatusCode::NOT_FOUND, "not_found"),
    ]
}

/// The waiting room's routes, and reserve on the gated event with bad passes.
fn queue_cases(f: &Fixture) -> Vec<Case> {
    let join_uri = format!("/v1/events/{GATED}/queue");
    let join = |name| Case::new(name, Method::POST, &join_uri).header("authorization", &f.bearer);
    let settings = |name| Case::new(name, Method::PUT, &join_uri).header("x-admin-key", ADMIN);
    let ticket_uri = format!("/v1/queue/{}", f.alice_ticket);
    let reserve_uri = format!("/v1/events/{GATED}/reservations");
    let reserve_with = |name, pass: Option<String>| {
        let case = Case::new(name, Method::POST, &reserve_uri)
            .header("authorization", &f.bearer)
            .json(json!({"seat_ids": ["A-3"]}));
        match pass {
            Some(pass) => case.header("admission-pass", pass),
            None => case,
        }
    };
    let alice = HolderId::new("alice").unwrap();
    let later = Timestamp::from_millis(u64::MAX / 4);
    let bobs = f
        .pass_key
        .sign(&gated(), &HolderId::new("bob").unwrap(), later);
    let other_event = f
        .pass_key
        .sign(&EventId::new(EVENT).unwrap(), &alice, later);
    let expired = f.pass_key.sign(&gated(), &alice, Timestamp::from_millis(1));
    let foreign = PassKey::new(&[7; 32])
        .unwrap()
        .sign(&gated(), &alice, later);
    vec![
        join("join with malformed JSON")
            .raw(Some("application/json"), "{")
            .invalid("body"),
        join("join with an unknown field")
            .json(json!({"user_id": "alice", "vip": true}))
            .invalid("body"),
        join("join as someone else than the JWT's sub")
            .json(json!({"user_id": "mallory"}))
            .invalid("user_id"),
        Case::new("join without a JWT", Method::POST, &join_uri)
            .json(json!({}))
            .expect(StatusCode::UNAUTHORIZED, "unauthorized"),
        Case::new(
            "join an event without a room",
            Method::POST,
            format!("/v1/events/{EVENT}/queue"),
        )
        .header("authorization", &f.bearer)
        .json(json!({}))
        .expect(StatusCode::NOT_FOUND, "not_found"),
        Case::new(
            "join with a control character in the event id",
            Method::POST,
            "/v1/events/ga%1Bted/queue",
        )
        .header("authorization", &f.bearer)
        .json(json!({}))
        .invalid("event_id"),
        Case::new(
            "status of an unknown ticket",
            Method::GET,
            "/v1/queue/q_nope",
        )
        .expect(StatusCode::NOT_FOUND, "not_found"),
        Case::new(
            "status of a ticket id with a NUL",
            Method::GET,
            "/v1/queue/q%00",
        )
        .invalid("ticket"),
        Case::new(
            "leave an unknown ticket",
            Method::DELETE,
            "/v1/queue/q_nope",
        )
        .expect(StatusCode::NOT_FOUND, "not_found"),
        Case::new(
            "leave with a newline in the ticket id",
            Method::DELETE,
            format!("{ticket_uri}%0A"),
        )
        .invalid("ticket"),
        Case::new(
            "room settings without the admin key",
            Method::PUT,
            &join_uri,
        )
        .json(json!({"admit_per_second": 1}))
        .expect(StatusCode::UNAUTHORIZED, "missing_admin_key"),
        Case::new(
            "room settings with a wrong admin key",
            Method::PUT,
            &join_uri,
        )
        .header("x-admin-key", "admin-secreT")
        .json(json!({"admit_per_second": 1}))
        .expect(StatusCode::FORBIDDEN, "invalid_admin_key"),
        settings("room settings with neither rate nor cap")
            .json(json!({}))
            .invalid("admit_per_second"),
        settings("room rate zero")
            .json(json!({"admit_per_second": 0}))
            .invalid("admit_per_second"),
        settings("room rate negative")
            .json(json!({"admit_per_second": -1}))
            .invalid("body"),
        settings("room pass ttl zero")
            .json(json!({"admit_per_second": 5, "pass_ttl_seconds": 0}))
            .invalid("pass_ttl_seconds"),
        settings("room settings with an unknown field")
            .json(json!({"admit_per_second": 5, "speed": 9}))
            .invalid("body"),
        reserve_with("reserve on a gated event without a pass", None)
            .expect(StatusCode::FORBIDDEN, "pass_required"),
        reserve_with("reserve with a malformed pass", Some("v1.junk".to_owned()))
            .expect(StatusCode::FORBIDDEN, "invalid_pass"),
        reserve_with("reserve with bob's pass", Some(bobs.as_str().to_owned()))
            .expect(StatusCode::FORBIDDEN, "invalid_pass"),
        reserve_with(
            "reserve with a pass for another event",
            Some(other_event.as_str().to_owned()),
        )
        .expect(StatusCode::FORBIDDEN, "invalid_pass"),
        reserve_with(
            "reserve with a pass of another key",
            Some(foreign.as_str().to_owned()),
        )
        .expect(StatusCode::FORBIDDEN, "invalid_pass"),
        reserve_with(
            "reserve with an expired pass",
            Some(expired.as_str().to_owned()),
        )
        .expect(StatusCode::FORBIDDEN, "pass_expired"),
    ]
}

/// The waitlist routes: the bodies, the ids and the holder (EVENT has no waitlist; the
/// gated event neither, so nothing here may join).
fn waitlist_cases(f: &Fixture) -> Vec<Case> {
    let join_uri = format!("/v1/events/{EVENT}/waitlist");
    let join = |name| Case::new(name, Method::POST, &join_uri).header("authorization", &f.bearer);
    let entry_uri = |entry: &str| format!("/v1/events/{EVENT}/waitlist/{entry}");
    vec![
        join("waitlist join on an event without a waitlist")
            .json(json!({"quantity": 1}))
            .expect(StatusCode::NOT_FOUND, "not_found"),
        join("waitlist join with malformed JSON")
            .raw(Some("application/json"), "{\"quantity\": ")
            .invalid("body"),
        join("waitlist join without a quantity")
            .json(json!({}))
            .invalid("body"),
        join("waitlist join of zero")
            .json(json!({"quantity": 0}))
            .invalid("quantity"),
        join("waitlist join of a negative quantity")
            .json(json!({"quantity": -2}))
            .invalid("body"),
        join("waitlist join of 65")
            .json(json!({"quantity": 65}))
            .invalid("quantity"),
        join("waitlist join with an unknown field")
            .json(json!({"quantity": 1, "priority": 1}))
            .invalid("body"),
        join("waitlist join as someone else than the JWT's sub")
            .json(json!({"quantity": 1, "user_id": "mallory"}))
            .invalid("user_id"),
        join("waitlist join with a control character in the section")
            .json(json!({"quantity": 1, "section": "Fl\u{1b}oor"}))
            .invalid("section"),
        Case::new("waitlist join without a JWT", Method::POST, &join_uri)
            .json(json!({"quantity": 1}))
            .expect(StatusCode::UNAUTHORIZED, "unauthorized"),
        Case::new("waitlist entry with a NUL", Method::GET, entry_uri("w%00")).invalid("entry"),
        Case::new("waitlist entry unknown", Method::GET, entry_uri("w_nope"))
            .expect(StatusCode::NOT_FOUND, "not_found"),
        Case::new(
            "waitlist leave unknown",
            Method::DELETE,
            entry_uri("w_nope"),
        )
        .header("authorization", &f.bearer)
        .expect(StatusCode::NOT_FOUND, "not_found"),
        Case::new(
            "waitlist leave with a bad query",
            Method::DELETE,
            format!("{}?who=x", entry_uri("w_nope")),
        )
        .header("authorization", &f.bearer)
        .invalid("query"),
    ]
}

#[tokio::test]
async fn every_bad_request_gets_its_4xx_and_changes_nothing() {
    let config = config()
        .jwt(JwtConfig::hs256(SECRET))
        .event_body_limit_bytes(EVENT_BODY_LIMIT_BYTES);
    let rooms = Arc::new(MemoryWaitingRoom::new());
    let pass_key = PassKey::random();
    let config = config.waiting_room(WaitingRoomConfig::new(rooms.clone(), pass_key.clone()));
    let app = app_with_waitlist(config);
    let f = fixture(&app, rooms, pass_key).await;
    let before = snapshot(&app, &f).await;
    let cases: Vec<Case> = [
        reserve_cases(&f),
        reservation_cases(&f),
        admin_cases(&f),
        path_cases(&f),
        queue_cases(&f),
        waitlist_cases(&f),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut failures = Vec::new();
    for case in &cases {
        let answer = send(&app.router, case.request()).await;
        assert!(
            answer.status.is_client_error(),
            "{}: {} {}",
            case.name,
            answer.status,
            answer.text
        );
        assert!(
            case.status != StatusCode::BAD_REQUEST || case.field.is_some(),
            "{}: a 400 row names its field",
            case.name
        );
        let field = answer.json["field"].as_str();
        if (answer.status, answer.code()) != (case.status, case.code)
            || (case.field.is_some() && field != case.field)
        {
            failures.push(format!(
                "{}: expected {} {} {:?}, got {} {}",
                case.name, case.status, case.code, case.field, answer.status, answer.text
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let after = snapshot(&app, &f).await;
    assert_eq!(after, before, "the table changed the inventory");
    check_store(app.store.as_ref(), &EventId::new(EVENT).unwrap())
        .await
        .unwrap_or_else(|why| panic!("invariants: {why}"));

    // The reservation the rows aimed at is intact: its real credentials still commit it.
    let order = call(
        &app.router,
        Method::POST,
        &format!("/v1/reservations/{}/commit", f.reservation),
        &[
            ("authorization", &f.bearer),
            ("reservation-token", &f.token),
            ("idempotency-key", "after-the-table"),
        ],
        Some(&json!({"payment_id": "pay-1"})),
    )
    .await;
    assert_eq!(order.status, StatusCode::OK, "{}", order.text);
    assert_eq!(order.json["tickets"][0]["seat_id"], "A-1");
}
