//! The router over the real backends: the same short flow on a fresh PostgreSQL store (a
//! schema of its own) and a fresh Redis store (a key prefix of its own), through `oneshot`.
//!
//! These tests fail, never skip, when the server is unreachable: the testkits panic saying
//! what to start (`scripts/test` starts both) or which of `DATABASE_URL` / `REDIS_URL` to set.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::json;
use support::*;
use ticketing_core::EventId;
use ticketing_core::testkit::TestStore;
use ticketing_core::testkit::invariants::check_store;
use ticketing_http::router;

/// Create, reserve, conflict, commit, replay, mismatch, cancel and extend error paths,
/// expiry, seat map revalidation and readiness, then the store's invariants.
async fn flow(t: TestStore) {
    let r = &router(t.store.clone(), config());

    let ready = call(r, Method::GET, "/readyz", &[], None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
    create_event(r).await;

    // The seat map revalidates cheaply until something changes.
    let seatmap_uri = format!("/v1/events/{EVENT}/seatmap");
    let first = call(r, Method::GET, &seatmap_uri, &[], None).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(first.json["seats"].as_array().unwrap().len(), 10);
    let etag = first.header("etag").expect("an ETag").to_owned();
    let same = call(
        r,
        Method::GET,
        &seatmap_uri,
        &[("if-none-match", &etag)],
        None,
    )
    .await;
    assert_eq!(same.status, StatusCode::NOT_MODIFIED);
    assert_eq!(same.header("etag"), Some(etag.as_str()));

    let reservations_uri = format!("/v1/events/{EVENT}/reservations");
    let body = json!({"client_reservation_id": "c-1", "user_id": "alice", "seat_ids": ["A-1", "A-2"], "ttl_seconds": 300});
    let held = call(
        r,
        Method::POST,
        &reservations_uri,
        &[("idempotency-key", "r1")],
        Some(&body),
    )
    .await;
    assert_eq!(held.status, StatusCode::CREATED, "{}", held.text);
    assert_eq!(held.json["status"], "active");
    let id = held.json["reservation_id"].as_str().unwrap().to_owned();
    let token = held.json["token"].as_str().unwrap().to_owned();

    // A conflicting reserve names the seat.
    let other = json!({"user_id": "bob", "seat_ids": ["A-2", "A-3"]});
    let conflict = call(r, Method::POST, &reservations_uri, &[], Some(&other)).await;
    assert_eq!(
        (conflict.status, conflict.code()),
        (StatusCode::CONFLICT, "seat_unavailable"),
        "{}",
        conflict.text
    );
    assert_eq!(conflict.json["seat_ids"], json!(["A-2"]));

    let changed = call(
        r,
        Method::GET,
        &seatmap_uri,
        &[("if-none-match", &etag)],
        None,
    )
    .await;
    assert_eq!(changed.status, StatusCode::OK);
    assert_ne!(changed.header("etag"), Some(etag.as_str()));
    assert_eq!(changed.json["seats"][0]["status"], "held");

    // Commit: credentials first, then once, then replays.
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
    let headers = [
        ("idempotency-key", "k1"),
        ("reservation-token", token.as_str()),
    ];
    let order = call(r, Method::POST, &commit_uri, &headers, Some(&pay)).await;
    assert_eq!(order.status, StatusCode::OK, "{}", order.text);
    assert_eq!(order.json["tickets"].as_array().unwrap().len(), 2);
    assert_eq!(order.json["payment_id"], "pay-1");
    let replay = call(r, Method::POST, &commit_uri, &headers, Some(&pay)).await;
    assert_eq!(replay.status, StatusCode::OK, "{}", replay.text);
    assert_eq!(replay.json, order.json);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    let changed_pay = json!({"payment_id": "pay-2"});
    let mismatch = call(r, Method::POST, &commit_uri, &headers, Some(&changed_pay)).await;
    assert_eq!(
        (mismatch.status, mismatch.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_mismatch")
    );
    let order_id = order.json["order_id"].as_str().unwrap();
    let read = call(r, Method::GET, &format!("/v1/orders/{order_id}"), &[], None).await;
    assert_eq!(read.json, order.json);

    // Cancel and extend: a committed reservation is no longer active.
    let auth = [("reservation-token", token.as_str())];
    let cancel_committed = call(
        r,
        Method::POST,
        &format!("/v1/reservations/{id}/cancel"),
        &auth,
        None,
    )
    .await;
    assert_eq!(
        (cancel_committed.status, cancel_committed.code()),
        (StatusCode::CONFLICT, "reservation_not_active"),
        "{}",
        cancel_committed.text
    );
    let extend_committed = call(
        r,
        Method::POST,
        &format!("/v1/reservations/{id}/extend"),
        &auth,
        Some(&json!({"ttl_seconds": 60})),
    )
    .await;
    assert_eq!(extend_committed.status, StatusCode::CONFLICT);
    let unknown = call(r, Method::DELETE, "/v1/reservations/rsv_nope", &auth, None).await;
    assert_eq!(
        (unknown.status, unknown.code()),
        (StatusCode::NOT_FOUND, "not_found")
    );

    // A live one: extend within bounds, refuse out of bounds or without a token, cancel.
    let (id, token) = reserve(r, "bob", &["A-3"]).await;
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
    let cancel_uri = format!("/v1/reservations/{id}/cancel");
    let forged = call(
        r,
        Method::POST,
        &cancel_uri,
        &[("reservation-token", "AAAAAAAAAAAAAAAAAAAAAA")],
        None,
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let cancelled = call(r, Method::POST, &cancel_uri, &auth, None).await;
    assert_eq!(
        cancelled.status,
        StatusCode::NO_CONTENT,
        "{}",
        cancelled.text
    );
    let again = call(
        r,
        Method::DELETE,
        &format!("/v1/reservations/{id}"),
        &auth,
        None,
    )
    .await;
    assert_eq!(again.status, StatusCode::NO_CONTENT, "{}", again.text);

    // Expiry on the store's own clock: commit and extend answer 410.
    let (id, token) = reserve(r, "carol", &["A-5"]).await;
    t.clock.advance(Duration::from_secs(301));
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
        (StatusCode::GONE, "reservation_expired"),
        "{}",
        late.text
    );
    let map = seatmap(r).await;
    assert_eq!(map["seats"][0]["status"], "sold");
    assert_eq!(map["seats"][2]["status"], "available");
    assert_eq!(map["seats"][4]["status"], "available");

    let ready = call(r, Method::GET, "/readyz", &[], None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
    let event = EventId::new(EVENT).unwrap();
    check_store(t.store.as_ref(), &event)
        .await
        .unwrap_or_else(|why| panic!("invariants: {why}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_flow() {
    flow(ticketing_store_pg::testkit::pg_store_for_test().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_flow() {
    flow(ticketing_store_redis::testkit::redis_store_for_test().await).await;
}
