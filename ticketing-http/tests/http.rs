//! Route tests with `oneshot` against the router on the in-memory store: every route, every
//! status of the mapping, idempotency, credentials, limits, SSE, ETags and the OpenAPI
//! document.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::json;
use support::*;
use ticketing_core::MemoryStoreConfig;
use ticketing_http::{HttpConfig, JwtConfig, RateLimit, router};

fn reservations_uri() -> String {
    format!("/v1/events/{EVENT}/reservations")
}

#[tokio::test]
async fn reserve_conflict_commit_replay_refund_and_check_in() {
    let app = app();
    let r = &app.router;
    create_event(r).await;

    let listed = call(r, Method::GET, "/v1/events?limit=10", &[], None).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.json["events"][0]["event_id"], EVENT);
    assert_eq!(listed.json["events"][0]["seats"], 10);

    let body = json!({"client_reservation_id": "c-1", "user_id": "alice", "seat_ids": ["A-1", "A-2"], "ga": [{"pool": "ga", "quantity": 2}], "ttl_seconds": 300});
    let held = call(r, Method::POST, &reservations_uri(), &[], Some(&body)).await;
    assert_eq!(held.status, StatusCode::CREATED, "{}", held.text);
    let id = held.json["reservation_id"].as_str().unwrap().to_owned();
    let token = held.json["token"].as_str().unwrap().to_owned();
    assert_eq!(
        held.header("location"),
        Some(format!("/v1/reservations/{id}").as_str())
    );
    assert_eq!(held.json["status"], "active");
    assert!(held.json["expires_at"].as_str().unwrap().ends_with('Z'));

    // A conflicting reserve names the seat.
    let other = json!({"user_id": "bob", "seat_ids": ["A-2", "A-3"]});
    let conflict = call(r, Method::POST, &reservations_uri(), &[], Some(&other)).await;
    assert_eq!(conflict.status, StatusCode::CONFLICT);
    assert_eq!(conflict.code(), "seat_unavailable");
    assert_eq!(conflict.json["seat_ids"], json!(["A-2"]));
    // GA sold out says what remains.
    let ga = json!({"user_id": "bob", "ga": [{"pool": "ga", "quantity": 4}]});
    let sold_out = call(r, Method::POST, &reservations_uri(), &[], Some(&ga)).await;
    assert_eq!(
        (sold_out.status, sold_out.code()),
        (StatusCode::CONFLICT, "sold_out")
    );
    assert_eq!(sold_out.json["remaining"], 3);

    // Reading a reservation never shows the token.
    let read = call(r, Method::GET, &format!("/v1/reservations/{id}"), &[], None).await;
    assert_eq!(read.status, StatusCode::OK);
    assert!(read.json.get("token").is_none());

    let commit_uri = format!("/v1/reservations/{id}/commit");
    let pay = json!({"payment_id": "pay-1"});
    let missing = call(
        r,
        Method::POST,
        &commit_uri,
        &[("idempotency-key", "k1")],
        Some(&pay),
    )
    .await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::UNAUTHORIZED, "missing_token")
    );
    let wrong = call(
        r,
        Method::POST,
        &commit_uri,
        &[
            ("idempotency-key", "k1"),
            ("reservation-token", "AAAAAAAAAAAAAAAAAAAAAA"),
        ],
        Some(&pay),
    )
    .await;
    assert_eq!(
        (wrong.status, wrong.code()),
        (StatusCode::FORBIDDEN, "invalid_token")
    );
    let garbage = call(
        r,
        Method::POST,
        &commit_uri,
        &[("idempotency-key", "k1"), ("reservation-token", "nope")],
        Some(&pay),
    )
    .await;
    assert_eq!(garbage.status, StatusCode::FORBIDDEN);
    let no_key = call(
        r,
        Method::POST,
        &commit_uri,
        &[("reservation-token", &token)],
        Some(&pay),
    )
    .await;
    assert_eq!(
        (no_key.status, no_key.json["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("idempotency_key"))
    );
    let both = json!({"payment_id": "pay-1", "idempotency_key": "other"});
    let differ = call(
        r,
        Method::POST,
        &commit_uri,
        &[("idempotency-key", "k1"), ("reservation-token", &token)],
        Some(&both),
    )
    .await;
    assert_eq!(differ.status, StatusCode::BAD_REQUEST);

    let headers = [
        ("idempotency-key", "k1"),
        ("reservation-token", token.as_str()),
    ];
    let order = call(r, Method::POST, &commit_uri, &headers, Some(&pay)).await;
    assert_eq!(order.status, StatusCode::OK, "{}", order.text);
    assert_eq!(order.json["tickets"].as_array().unwrap().len(), 4);
    assert_eq!(order.json["tickets"][0]["seat_id"], "A-1");
    assert_eq!(order.json["payment_id"], "pay-1");

    // The seeds' body key, equal to the header, is the same request: replayed.
    let seeds =
        json!({"payment_id": "pay-1", "idempotency_key": "k1", "payment_token": "tok_visa"});
    let replay = call(r, Method::POST, &commit_uri, &headers, Some(&seeds)).await;
    assert_eq!(replay.status, StatusCode::OK);
    assert_eq!(replay.json, order.json);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    let changed = json!({"payment_id": "pay-2"});
    let mismatch = call(r, Method::POST, &commit_uri, &headers, Some(&changed)).await;
    assert_eq!(
        (mismatch.status, mismatch.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_mismatch")
    );
    // A new key on a committed reservation: the core says it is not active.
    let again = call(
        r,
        Method::POST,
        &commit_uri,
        &[("idempotency-key", "k2"), ("reservation-token", &token)],
        Some(&pay),
    )
    .await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::CONFLICT, "reservation_not_active")
    );

    let order_id = order.json["order_id"].as_str().unwrap().to_owned();
    let got = call(r, Method::GET, &format!("/v1/orders/{order_id}"), &[], None).await;
    assert_eq!(got.json, order.json);

    // Gate: once only.
    let code = order.json["tickets"][1]["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let scan = json!({"code": code});
    let first = call(r, Method::POST, "/v1/tickets/check-in", &[], Some(&scan)).await;
    assert_eq!(
        (first.status, first.json["status"].as_str()),
        (StatusCode::OK, Some("checked_in"))
    );
    let second = call(r, Method::POST, "/v1/tickets/check-in", &[], Some(&scan)).await;
    assert_eq!(
        (second.status, second.code()),
        (StatusCode::CONFLICT, "conflict")
    );
    let unknown = call(
        r,
        Method::POST,
        "/v1/tickets/check-in",
        &[],
        Some(&json!({"code": "NOPE"})),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    // Transfer the first ticket.
    let ticket = order.json["tickets"][0]["ticket_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let moved = call(
        r,
        Method::POST,
        &format!("/v1/tickets/{ticket}/transfer"),
        &[],
        Some(&json!({"to_user_id": "carol"})),
    )
    .await;
    assert_eq!(
        (moved.status, moved.json["user_id"].as_str()),
        (StatusCode::OK, Some("carol"))
    );

    // Refund (admin) returns A-1 to sale.
    let refund_uri = format!("/v1/orders/{order_id}/refund");
    let body = json!({"ticket_ids": [ticket]});
    let no_admin = call(r, Method::POST, &refund_uri, &[], Some(&body)).await;
    assert_eq!(
        (no_admin.status, no_admin.code()),
        (StatusCode::UNAUTHORIZED, "missing_admin_key")
    );
    let bad_admin = call(
        r,
        Method::POST,
        &refund_uri,
        &[("x-admin-key", "guess")],
        Some(&body),
    )
    .await;
    assert_eq!(
        (bad_admin.status, bad_admin.code()),
        (StatusCode::FORBIDDEN, "invalid_admin_key")
    );
    let refunded = call(
        r,
        Method::POST,
        &refund_uri,
        &[("x-admin-key", ADMIN)],
        Some(&body),
    )
    .await;
    assert_eq!(refunded.status, StatusCode::OK, "{}", refunded.text);
    assert_eq!(refunded.json["to"], "sale");
    let twice = call(
        r,
        Method::POST,
        &refund_uri,
        &[("x-admin-key", ADMIN)],
        Some(&body),
    )
    .await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    let map = seatmap(r).await;
    assert_eq!(map["seats"][0]["status"], "available");
    assert_eq!(map["seats"][1]["status"], "sold");
    assert_eq!(map["pools"][0]["sold"], 2);
}

#[tokio::test]
async fn extend_cancel_and_expiry() {
    let app = app();
    let r = &app.router;
    create_event(r).await;
    let (id, token) = reserve(r, "alice", &["A-1"]).await;
    let extend_uri = format!("/v1/reservations/{id}/extend");
    let auth = [("reservation-token", token.as_str())];
    let extended = call(
        r,
        Method::POST,
        &extend_uri,
        &auth,
        Some(&json!({"ttl_seconds": 600})),
    )
    .await;
    assert_eq!(extended.status, StatusCode::OK, "{}", extended.text);
    let too_long = call(
        r,
        Method::POST,
        &extend_uri,
        &auth,
        Some(&json!({"ttl_seconds": 5000})),
    )
    .await;
    assert_eq!(too_long.status, StatusCode::BAD_REQUEST);
    let no_token = call(
        r,
        Method::POST,
        &extend_uri,
        &[],
        Some(&json!({"ttl_seconds": 60})),
    )
    .await;
    assert_eq!(no_token.status, StatusCode::UNAUTHORIZED);

    // Cancel by POST and by DELETE (idempotent).
    let cancelled = call(
        r,
        Method::POST,
        &format!("/v1/reservations/{id}/cancel"),
        &auth,
        None,
    )
    .await;
    assert_eq!(cancelled.status, StatusCode::NO_CONTENT);
    let deleted = call(
        r,
        Method::DELETE,
        &format!("/v1/reservations/{id}"),
        &auth,
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let wrong = call(
        r,
        Method::DELETE,
        &format!("/v1/reservations/{id}"),
        &[("reservation-token", "AAAAAAAAAAAAAAAAAAAAAA")],
        None,
    )
    .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let unknown = call(r, Method::DELETE, "/v1/reservations/rsv_nope", &auth, None).await;
    assert_eq!(
        (unknown.status, unknown.code()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let committed_cancelled = call(
        r,
        Method::POST,
        &format!("/v1/reservations/{id}/commit"),
        &[("reservation-token", &token), ("idempotency-key", "c")],
        None,
    )
    .await;
    assert_eq!(committed_cancelled.status, StatusCode::CONFLICT);

    // Commit after expiry: 410 with when.
    let (id, token) = reserve(r, "alice", &["A-5"]).await;
    app.clock.advance(Duration::from_secs(301));
    let late = call(
        r,
        Method::POST,
        &format!("/v1/reservations/{id}/commit"),
        &[("reservation-token", &token), ("idempotency-key", "late")],
        None,
    )
    .await;
    assert_eq!(
        (late.status, late.code()),
        (StatusCode::GONE, "reservation_expired")
    );
    assert!(late.json["expired_at"].as_str().unwrap().ends_with('Z'));
    let extend_late = call(
        r,
        Method::POST,
        &format!("/v1/reservations/{id}/extend"),
        &[("reservation-token", &token)],
        Some(&json!({"ttl_seconds": 60})),
    )
    .await;
    assert_eq!(extend_late.status, StatusCode::GONE);
}

#[tokio::test]
async fn admin_routes_need_the_key() {
    let app = app();
    let r = &app.router;
    let missing = call(r, Method::POST, "/v1/events", &[], Some(&event_body())).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    let wrong = call(
        r,
        Method::POST,
        "/v1/events",
        &[("x-admin-key", "admin-secreT")],
        Some(&event_body()),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    create_event(r).await;
    let exists = call(
        r,
        Method::POST,
        "/v1/events",
        &[("x-admin-key", ADMIN)],
        Some(&event_body()),
    )
    .await;
    assert_eq!(
        (exists.status, exists.code()),
        (StatusCode::CONFLICT, "conflict")
    );

    let admin = [("x-admin-key", ADMIN)];
    let block_uri = format!("/v1/events/{EVENT}/block");
    let blocked = call(
        r,
        Method::POST,
        &block_uri,
        &admin,
        Some(&json!({"seat_ids": ["A-9"]})),
    )
    .await;
    assert_eq!(blocked.status, StatusCode::NO_CONTENT);
    assert_eq!(seatmap(r).await["seats"][8]["status"], "blocked");
    let unblocked = call(
        r,
        Method::POST,
        &block_uri,
        &admin,
        Some(&json!({"seat_ids": ["A-9"], "blocked": false})),
    )
    .await;
    assert_eq!(unblocked.status, StatusCode::NO_CONTENT);
    let not_admin = call(
        r,
        Method::POST,
        &block_uri,
        &[],
        Some(&json!({"seat_ids": ["A-9"]})),
    )
    .await;
    assert_eq!(not_admin.status, StatusCode::UNAUTHORIZED);

    let pool_uri = format!("/v1/events/{EVENT}/pools/ga");
    let resized = call(
        r,
        Method::PUT,
        &pool_uri,
        &admin,
        Some(&json!({"capacity": 8, "blocked": 1})),
    )
    .await;
    assert_eq!(resized.status, StatusCode::NO_CONTENT, "{}", resized.text);
    let pools = &seatmap(r).await["pools"][0];
    assert_eq!(
        (pools["capacity"].as_u64(), pools["available"].as_u64()),
        (Some(8), Some(7))
    );
    let held = json!({"user_id": "u", "ga": [{"pool": "ga", "quantity": 5}]});
    assert_eq!(
        call(r, Method::POST, &reservations_uri(), &[], Some(&held))
            .await
            .status,
        StatusCode::CREATED
    );
    let below = call(
        r,
        Method::PUT,
        &pool_uri,
        &admin,
        Some(&json!({"capacity": 2})),
    )
    .await;
    assert_eq!(
        (below.status, below.json["used"].as_u64()),
        (StatusCode::CONFLICT, Some(6))
    );
    let nothing = call(r, Method::PUT, &pool_uri, &admin, Some(&json!({}))).await;
    assert_eq!(nothing.status, StatusCode::BAD_REQUEST);

    // With no admin key configured, admin routes are off.
    let open = app_with(HttpConfig::default().without_rate_limits());
    let off = call(
        &open.router,
        Method::POST,
        "/v1/events",
        &[("x-admin-key", "")],
        Some(&event_body()),
    )
    .await;
    assert_eq!(
        (off.status, off.code()),
        (StatusCode::FORBIDDEN, "admin_disabled")
    );
}

#[tokio::test]
async fn reserve_idempotency_key_replays_mismatches_and_detects_in_flight() {
    let app = app();
    let r = &app.router;
    create_event(r).await;
    let body = json!({"user_id": "alice", "seat_ids": ["A-1"]});
    let key = [(
        "idempotency-key",
        "\"8e03978e-40d5-43e8-bc93-6894a57f9324\"",
    )];
    let first = call(r, Method::POST, &reservations_uri(), &key, Some(&body)).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let replay = call(r, Method::POST, &reservations_uri(), &key, Some(&body)).await;
    assert_eq!(replay.status, StatusCode::CREATED);
    assert_eq!(replay.json, first.json);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    let other = json!({"user_id": "alice", "seat_ids": ["A-2"]});
    let mismatch = call(r, Method::POST, &reservations_uri(), &key, Some(&other)).await;
    assert_eq!(mismatch.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Another holder with the same key is another scope.
    let bob = json!({"user_id": "bob", "seat_ids": ["A-3"]});
    assert_eq!(
        call(r, Method::POST, &reservations_uri(), &key, Some(&bob))
            .await
            .status,
        StatusCode::CREATED
    );

    // The core's client_reservation_id: a repeat returns the reservation without token.
    let crid = json!({"user_id": "alice", "seat_ids": ["A-4"], "client_reservation_id": "c-9"});
    let made = call(r, Method::POST, &reservations_uri(), &[], Some(&crid)).await;
    let again = call(r, Method::POST, &reservations_uri(), &[], Some(&crid)).await;
    assert_eq!(again.json["reservation_id"], made.json["reservation_id"]);
    assert!(again.json.get("token").is_none());
    let crid_other =
        json!({"user_id": "alice", "seat_ids": ["A-5"], "client_reservation_id": "c-9"});
    let crid_mismatch = call(r, Method::POST, &reservations_uri(), &[], Some(&crid_other)).await;
    assert_eq!(
        (crid_mismatch.status, crid_mismatch.json["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("seat_ids"))
    );

    // In flight: a slow store keeps the first request running while the second arrives.
    let slow = Arc::new(SlowStore::new(Duration::from_millis(300)));
    let router = router(slow.clone(), config());
    create_event(&router).await;
    let first = tokio::spawn({
        let router = router.clone();
        let body = body.clone();
        async move {
            call(
                &router,
                Method::POST,
                &reservations_uri(),
                &[("idempotency-key", "slow")],
                Some(&body),
            )
            .await
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = call(
        &router,
        Method::POST,
        &reservations_uri(),
        &[("idempotency-key", "slow")],
        Some(&body),
    )
    .await;
    assert_eq!(
        (second.status, second.code()),
        (StatusCode::CONFLICT, "idempotency_in_flight")
    );
    assert!(second.header("retry-after").is_some());
    assert_eq!(first.await.unwrap().status, StatusCode::CREATED);
}

#[tokio::test]
async fn request_timeout_answers_503() {
    let slow = Arc::new(SlowStore::new(Duration::from_millis(500)));
    let router = router(slow, config().request_timeout(Duration::from_millis(50)));
    create_event(&router).await;
    let body = json!({"user_id": "alice", "seat_ids": ["A-1"]});
    let answer = call(&router, Method::POST, &reservations_uri(), &[], Some(&body)).await;
    assert_eq!(
        (answer.status, answer.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "timeout")
    );
}

#[tokio::test]
async fn jwt_holder_valid_invalid_and_forged() {
    let secret = b"jwt-secret-for-tests";
    let app = app_with(config().jwt(JwtConfig::hs256(secret)));
    let r = &app.router;
    create_event(r).await;
    let alice = format!("Bearer {}", jwt(secret, Some("alice@example.com"), 600));
    let body = json!({"seat_ids": ["A-1"]});
    let held = call(
        r,
        Method::POST,
        &reservations_uri(),
        &[("authorization", &alice)],
        Some(&body),
    )
    .await;
    assert_eq!(held.status, StatusCode::CREATED, "{}", held.text);
    assert_eq!(held.json["user_id"], "alice@example.com");
    let id = held.json["reservation_id"].as_str().unwrap().to_owned();

    let missing = call(r, Method::POST, &reservations_uri(), &[], Some(&body)).await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    assert_eq!(missing.header("www-authenticate"), Some("Bearer"));
    let forged = format!(
        "Bearer {}",
        jwt(b"another-secret", Some("alice@example.com"), 600)
    );
    let refused = call(
        r,
        Method::POST,
        &reservations_uri(),
        &[("authorization", &forged)],
        Some(&body),
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let expired = format!("Bearer {}", jwt(secret, Some("alice@example.com"), -3600));
    assert_eq!(
        call(
            r,
            Method::POST,
            &reservations_uri(),
            &[("authorization", &expired)],
            Some(&body)
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED
    );
    let junk = call(
        r,
        Method::POST,
        &reservations_uri(),
        &[("authorization", "Bearer a.b.c")],
        Some(&body),
    )
    .await;
    assert_eq!(junk.status, StatusCode::UNAUTHORIZED);
    // The body may not name someone else.
    let spoof = json!({"seat_ids": ["A-2"], "user_id": "mallory"});
    let spoofed = call(
        r,
        Method::POST,
        &reservations_uri(),
        &[("authorization", &alice)],
        Some(&spoof),
    )
    .await;
    assert_eq!(spoofed.status, StatusCode::BAD_REQUEST);
    // Another holder cannot read alice's reservation.
    let bob = format!("Bearer {}", jwt(secret, Some("bob"), 600));
    let read = call(
        r,
        Method::GET,
        &format!("/v1/reservations/{id}"),
        &[("authorization", &bob)],
        None,
    )
    .await;
    assert_eq!(
        (read.status, read.code()),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    let own = call(
        r,
        Method::GET,
        &format!("/v1/reservations/{id}"),
        &[("authorization", &alice)],
        None,
    )
    .await;
    assert_eq!(own.status, StatusCode::OK);
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let limited = config().client_rate_limit(Some(RateLimit::new(1, 2)));
    let app = app_with(limited);
    let r = &app.router;
    let statuses = [
        call(r, Method::GET, "/v1/events", &[], None).await.status,
        call(r, Method::GET, "/v1/events", &[], None).await.status,
    ];
    assert_eq!(statuses, [StatusCode::OK, StatusCode::OK]);
    let third = call(r, Method::GET, "/v1/events", &[], None).await;
    assert_eq!(
        (third.status, third.code()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    assert!(third.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    // Operations routes are not limited.
    assert_eq!(
        call(r, Method::GET, "/healthz", &[], None).await.status,
        StatusCode::OK
    );

    let per_holder = config().holder_rate_limit(Some(RateLimit::new(1, 1)));
    let app = app_with(per_holder);
    let r = &app.router;
    create_event(r).await;
    let body = |seat: &str| json!({"user_id": "alice", "seat_ids": [seat]});
    assert_eq!(
        call(
            r,
            Method::POST,
            &reservations_uri(),
            &[],
            Some(&body("A-1"))
        )
        .await
        .status,
        StatusCode::CREATED
    );
    let limited = call(
        r,
        Method::POST,
        &reservations_uri(),
        &[],
        Some(&body("A-2")),
    )
    .await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.header("retry-after").is_some());
    let bob = json!({"user_id": "bob", "seat_ids": ["A-3"]});
    assert_eq!(
        call(r, Method::POST, &reservations_uri(), &[], Some(&bob))
            .await
            .status,
        StatusCode::CREATED
    );
}

/// Arbitrary methods, paths, headers and bodies: never a 5xx, never a panic.
#[tokio::test]
async fn arbitrary_requests_never_get_5xx() {
    let app = app();
    let r = &app.router;
    create_event(r).await;
    let methods = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
    ];
    let paths = [
        "/",
        "/v1",
        "/v1/events",
        "/v1/events/concert",
        "/v1/events/concert/seatmap",
        "/v1/events/concert/reservations",
        "/v1/events/%00/reservations",
        "/v1/reservations/x/commit",
        "/v1/reservations/x/extend",
        "/v1/reservations/x/cancel",
        "/v1/reservations/x",
        "/v1/orders/x",
        "/v1/orders/x/refund",
        "/v1/tickets/x/transfer",
        "/v1/tickets/check-in",
        "/v1/events/concert/pools/ga",
        "/v1/events/concert/block",
        "/v1/events?limit=0",
        "/v1/events?limit=abc",
        "/v1/events?after=%0A",
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/events/concert/seatmap?x=1",
    ];
    let bodies = [
        "",
        "{}",
        "null",
        "[]",
        "\"x\"",
        "{\"seat_ids\":[\"A-1\"],\"user_id\":\"u\"}",
        "{\"user_id\":\"u\",\"ga\":[{\"pool\":\"ga\",\"quantity\":99999999999}]}",
        "{\"ttl_seconds\":-5}",
        "{{{{",
        "\u{0}\u{1}",
        "{\"capacity\":4294967295}",
        "{\"event_id\":\"e\",\"name\":\"\\u0000\",\"seats\":[]}",
        "{\"code\":\"\"}",
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed as usize
    };
    for _ in 0..400 {
        let method = methods[next() % methods.len()].clone();
        let path = paths[next() % paths.len()];
        let body = bodies[next() % bodies.len()];
        let mut builder = axum::http::Request::builder()
            .method(method.clone())
            .uri(path);
        if next() % 2 == 0 {
            builder = builder.header("content-type", "application/json");
        }
        if next() % 3 == 0 {
            builder = builder.header("x-admin-key", ADMIN);
        }
        if next() % 3 == 0 {
            builder = builder
                .header("reservation-token", "AAAAAAAAAAAAAAAAAAAAAA")
                .header("idempotency-key", "k");
        }
        if next() % 5 == 0 {
            builder = builder.header("last-event-id", "zz");
        }
        let request = builder.body(axum::body::Body::from(body)).unwrap();
        if path.ends_with("/changes") {
            continue;
        }
        let response = tower::ServiceExt::oneshot(r.clone(), request)
            .await
            .unwrap();
        assert!(
            !response.status().is_server_error(),
            "{method} {path} {body:?}: {}",
            response.status()
        );
    }
    let map = seatmap(r).await;
    for seat in map["seats"].as_array().unwrap() {
        assert!(["available", "held"].contains(&seat["status"].as_str().unwrap()));
    }
}

#[tokio::test]
async fn seatmap_etag_revalidates() {
    let app = app();
    let r = &app.router;
    create_event(r).await;
    let uri = format!("/v1/events/{EVENT}/seatmap");
    let first = call(r, Method::GET, &uri, &[], None).await;
    let etag = first.header("etag").unwrap().to_owned();
    assert_eq!(first.json["seq"], 1);
    assert_eq!(first.json["seats"].as_array().unwrap().len(), 10);
    let same = call(r, Method::GET, &uri, &[("if-none-match", &etag)], None).await;
    assert_eq!(same.status, StatusCode::NOT_MODIFIED);
    assert_eq!(same.header("etag"), Some(etag.as_str()));
    let weak = call(
        r,
        Method::GET,
        &uri,
        &[("if-none-match", &format!("W/{etag}, \"x\""))],
        None,
    )
    .await;
    assert_eq!(weak.status, StatusCode::NOT_MODIFIED);
    reserve(r, "alice", &["A-1"]).await;
    let changed = call(r, Method::GET, &uri, &[("if-none-match", &etag)], None).await;
    assert_eq!(changed.status, StatusCode::OK);
    assert_ne!(changed.header("etag"), Some(etag.as_str()));
    assert_eq!(changed.json["seats"][0]["status"], "held");
    // Expiry is a change too, even before any sweep.
    let etag = changed.header("etag").unwrap().to_owned();
    app.clock.advance(Duration::from_secs(301));
    let expired = call(r, Method::GET, &uri, &[("if-none-match", &etag)], None).await;
    assert_eq!(expired.status, StatusCode::OK);
    assert_eq!(expired.json["seats"][0]["status"], "available");
    assert_eq!(
        call(r, Method::GET, "/v1/events/nope/seatmap", &[], None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

async fn open_stream(
    router: &axum::Router,
    uri: &str,
    headers: &[(&str, &str)],
) -> axum::body::Body {
    let response =
        tower::ServiceExt::oneshot(router.clone(), request(Method::GET, uri, headers, None))
            .await
            .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    response.into_body()
}

#[tokio::test]
async fn changes_stream_history_then_live_and_honours_last_event_id() {
    let app = app();
    let r = &app.router;
    create_event(r).await;
    reserve(r, "alice", &["A-1"]).await;
    let uri = format!("/v1/events/{EVENT}/changes");
    let events = read_events(open_stream(r, &uri, &[]).await, 2).await;
    let ids: Vec<&str> = events.iter().map(|event| event.id.as_str()).collect();
    assert_eq!(ids, ["1", "2"]);
    assert_eq!(events[0].data["kind"]["type"], "event_created");
    assert_eq!(events[1].data["kind"]["type"], "reserved");

    // Resume after 1: the next is 2; then a live write arrives as 3.
    let body = open_stream(r, &format!("{uri}?after=0"), &[("last-event-id", "1")]).await;
    let writer = {
        let router = r.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            reserve(&router, "bob", &["A-2"]).await;
        })
    };
    let events = read_events(body, 2).await;
    writer.await.unwrap();
    let ids: Vec<&str> = events.iter().map(|event| event.id.as_str()).collect();
    assert_eq!(ids, ["2", "3"]);
    assert_eq!(events[1].data["kind"]["holder"], "bob");

    assert_eq!(
        call(r, Method::GET, "/v1/events/nope/changes", &[], None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let bad = call(r, Method::GET, &uri, &[("last-event-id", "x")], None).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_stream_behind_retention_is_told_to_resync() {
    let app = app_with_store_config(config(), MemoryStoreConfig::default().change_retention(2));
    let r = &app.router;
    create_event(r).await;
    for seat in ["A-1", "A-2", "A-3", "A-4"] {
        reserve(r, "alice", &[seat]).await;
    }
    let body = open_stream(r, &format!("/v1/events/{EVENT}/changes?after=0"), &[]).await;
    let events = read_events(body, 1).await;
    assert_eq!(events[0].name, "resync");
    assert_eq!(events[0].data["code"], "changes_pruned");
    assert_eq!(
        events[0].data["seatmap"],
        format!("/v1/events/{EVENT}/seatmap")
    );
}

#[tokio::test]
async fn openapi_documents_exactly_the_routes() {
    let app = app();
    let r = &app.router;
    let answer = call(r, Method::GET, "/openapi.json", &[], None).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.json["openapi"].as_str().unwrap().starts_with("3.1"));
    let mut documented = Vec::new();
    for (path, item) in answer.json["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "delete", "patch"] {
            if item.get(method).is_some() {
                documented.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    let mut routed: Vec<(String, String)> = ticketing_http::routes()
        .into_iter()
        .map(|(method, path)| (method.to_string(), path.to_owned()))
        .collect();
    documented.sort();
    routed.sort();
    assert_eq!(documented, routed);
    // And every route in the table is really served (not the fallback, not 405).
    for (method, path) in &routed {
        let concrete = path.replace("{id}", "x").replace("{pool}", "y");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let answer = call(r, method.clone(), &concrete, &[], None).await;
        assert_ne!(answer.code(), "no_route", "{method} {path}");
        assert_ne!(
            answer.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
    }
    let missing = call(r, Method::GET, "/v1/nothing", &[], None).await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::NOT_FOUND, "no_route")
    );
    let wrong_method = call(r, Method::PATCH, "/v1/events", &[], None).await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn operations_routes_and_metrics() {
    let app = app();
    let r = &app.router;
    assert_eq!(
        call(r, Method::GET, "/healthz", &[], None).await.json["status"],
        "ok"
    );
    assert_eq!(
        call(r, Method::GET, "/readyz", &[], None).await.status,
        StatusCode::OK
    );
    create_event(r).await;
    reserve(r, "alice", &["A-1"]).await;
    let conflict = json!({"user_id": "bob", "seat_ids": ["A-1"]});
    call(r, Method::POST, &reservations_uri(), &[], Some(&conflict)).await;
    let answer = call(r, Method::GET, "/metrics", &[], None).await;
    assert_eq!(answer.status, StatusCode::OK);
    let text = answer.text;
    assert!(text.contains("http_requests_total{method=\"POST\",route=\"/v1/events/{id}/reservations\",status=\"201\"} 1"), "{text}");
    assert!(
        text.contains("ticketing_reservations_total{outcome=\"created\"} 1"),
        "{text}"
    );
    assert!(text.contains("ticketing_conflicts_total 1"), "{text}");
    assert!(
        text.contains("http_request_duration_seconds_bucket"),
        "{text}"
    );
    // Every response carries a request id, and a client's own is kept.
    let own = call(
        r,
        Method::GET,
        "/healthz",
        &[("x-request-id", "abc-123")],
        None,
    )
    .await;
    assert_eq!(own.header("x-request-id"), Some("abc-123"));
    assert!(
        call(r, Method::GET, "/healthz", &[], None)
            .await
            .header("x-request-id")
            .is_some()
    );
}

#[tokio::test]
async fn cors_is_off_by_default_and_on_when_configured() {
    let app = app();
    let plain = call(
        &app.router,
        Method::GET,
        "/healthz",
        &[("origin", "https://shop.example")],
        None,
    )
    .await;
    assert!(plain.header("access-control-allow-origin").is_none());
    let app = app_with(config().cors_allowed_origins(["https://shop.example".to_owned()]));
    let allowed = call(
        &app.router,
        Method::GET,
        "/healthz",
        &[("origin", "https://shop.example")],
        None,
    )
    .await;
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://shop.example")
    );
}
