//! End to end over a real socket (the router served on loopback, hyper clients) against each
//! backend: the in-memory store, PostgreSQL (a schema of its own) and Redis (a key prefix
//! of its own), each on a manual clock that only the test moves. One scenario, run once per
//! backend: create an event, reserve, a conflicting reserve, commit, its replay and a
//! mismatch, commit after expiry, cancel, refund back to sale, and the change stream, opened
//! before all of it, delivering every change in order.
//!
//! The PostgreSQL and Redis tests fail, never skip, when the server is unreachable: the
//! testkits panic saying what to start (`scripts/test` starts both) or which of
//! `DATABASE_URL` / `REDIS_URL` to set.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use support::*;
use ticketing_core::EventId;
use ticketing_core::testkit::TestStore;
use ticketing_core::testkit::invariants::check_store;
use ticketing_http::router;

/// What the change log must say, in order, after the scenario (`type` of each change).
const KINDS: [&str; 10] = [
    "event_created",
    "reserved",  // alice
    "committed", // alice's order
    "reserved",  // carol: A-5, 60 s
    "expired",   // carol's hold lapses
    "reserved",  // dave: A-6
    "cancelled", // dave cancels
    "refunded",  // alice's order, back to sale
    "reserved",  // erin: A-1 again
    "cancelled", // erin lets it go
];

fn reservations_uri() -> String {
    format!("/v1/events/{EVENT}/reservations")
}

/// Reserves `seats` for `user` over the socket, expecting 201; returns (id, token).
async fn hold(server: &Server, user: &str, seats: &[&str], ttl_seconds: u32) -> (String, String) {
    let body = json!({"user_id": user, "seat_ids": seats, "ttl_seconds": ttl_seconds});
    let answer = call(server, Method::POST, &reservations_uri(), &[], Some(&body)).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    assert_eq!(answer.json["seats"], json!(seats));
    (
        answer.json["reservation_id"].as_str().unwrap().to_owned(),
        answer.json["token"].as_str().unwrap().to_owned(),
    )
}

/// Each seat's status on the seat map, by seat id.
async fn statuses(server: &Server) -> Vec<(String, String)> {
    seatmap(server).await["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|seat| {
            let text = |key: &str| seat[key].as_str().unwrap().to_owned();
            (text("seat_id"), text("status"))
        })
        .collect()
}

async fn status_of(server: &Server, seat: &str) -> String {
    statuses(server)
        .await
        .into_iter()
        .find(|(id, _)| id == seat)
        .map(|(_, status)| status)
        .unwrap_or_else(|| panic!("{seat} is not on the seat map"))
}

async fn scenario(t: TestStore) {
    let server = serve(router(t.store.clone(), config())).await;
    create_event(&server).await;
    // The stream opens now and stays open: what it delivers later arrives live.
    let stream = server
        .open(request(
            Method::GET,
            &format!("/v1/events/{EVENT}/changes?after=0"),
            &[],
            None,
        ))
        .await;
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");

    // Reserve, and a rival for an overlapping set is told which seat.
    let (alice, alice_token) = hold(&server, "alice", &["A-1", "A-2"], 300).await;
    let rival = json!({"user_id": "bob", "seat_ids": ["A-3", "A-2"]});
    let conflict = call(
        &server,
        Method::POST,
        &reservations_uri(),
        &[],
        Some(&rival),
    )
    .await;
    assert_eq!(
        (conflict.status, conflict.code()),
        (StatusCode::CONFLICT, "seat_unavailable"),
        "{}",
        conflict.text
    );
    assert_eq!(conflict.json["seat_ids"], json!(["A-2"]));

    // Commit; the replay is the same response to the byte; another body is 422.
    let commit_uri = format!("/v1/reservations/{alice}/commit");
    let headers = [
        ("reservation-token", alice_token.as_str()),
        ("idempotency-key", "order-1"),
    ];
    let pay = json!({"payment_id": "pay-1"});
    let order = call(&server, Method::POST, &commit_uri, &headers, Some(&pay)).await;
    assert_eq!(order.status, StatusCode::OK, "{}", order.text);
    let order_id = order.json["order_id"].as_str().unwrap().to_owned();
    let seats: Vec<&str> = order.json["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ticket| ticket["seat_id"].as_str().unwrap())
        .collect();
    assert_eq!(seats, ["A-1", "A-2"]);
    let replay = call(&server, Method::POST, &commit_uri, &headers, Some(&pay)).await;
    assert_eq!(replay.status, StatusCode::OK, "{}", replay.text);
    assert_eq!(replay.text, order.text);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    let other = json!({"payment_id": "pay-2"});
    let mismatch = call(&server, Method::POST, &commit_uri, &headers, Some(&other)).await;
    assert_eq!(
        (mismatch.status, mismatch.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_mismatch"),
        "{}",
        mismatch.text
    );
    assert_eq!(status_of(&server, "A-1").await, "sold");

    // A 60 s hold, then 61 s on the store's clock: commit is 410 and the seat is free.
    let (carol, carol_token) = hold(&server, "carol", &["A-5"], 60).await;
    t.clock.advance(Duration::from_secs(61));
    let late = call(
        &server,
        Method::POST,
        &format!("/v1/reservations/{carol}/commit"),
        &[
            ("reservation-token", carol_token.as_str()),
            ("idempotency-key", "late"),
        ],
        Some(&json!({"payment_id": "pay-late"})),
    )
    .await;
    assert_eq!(
        (late.status, late.code()),
        (StatusCode::GONE, "reservation_expired"),
        "{}",
        late.text
    );
    assert!(late.json["expired_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(status_of(&server, "A-5").await, "available");

    // Cancel.
    let (dave, dave_token) = hold(&server, "dave", &["A-6"], 300).await;
    let cancelled = call(
        &server,
        Method::POST,
        &format!("/v1/reservations/{dave}/cancel"),
        &[("reservation-token", dave_token.as_str())],
        None,
    )
    .await;
    assert_eq!(
        cancelled.status,
        StatusCode::NO_CONTENT,
        "{}",
        cancelled.text
    );
    assert_eq!(status_of(&server, "A-6").await, "available");

    // Refund (admin) returns alice's seats to sale: the map says so and they sell again.
    let refunded = call(
        &server,
        Method::POST,
        &format!("/v1/orders/{order_id}/refund"),
        &[("x-admin-key", ADMIN)],
        Some(&json!({})),
    )
    .await;
    assert_eq!(refunded.status, StatusCode::OK, "{}", refunded.text);
    assert_eq!(refunded.json["to"], "sale");
    assert_eq!(refunded.json["ticket_ids"].as_array().unwrap().len(), 2);
    assert_eq!(status_of(&server, "A-1").await, "available");
    assert_eq!(status_of(&server, "A-2").await, "available");
    let (erin, erin_token) = hold(&server, "erin", &["A-1"], 300).await;
    let deleted = call(
        &server,
        Method::DELETE,
        &format!("/v1/reservations/{erin}"),
        &[("reservation-token", erin_token.as_str())],
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    let all_free = statuses(&server)
        .await
        .into_iter()
        .all(|(_, status)| status == "available");
    assert!(all_free, "every seat is back on sale");

    // The stream opened before the first reserve delivered every change, in order, with
    // consecutive ids.
    let events = read_events(stream.into_body(), KINDS.len()).await;
    let ids: Vec<String> = events.iter().map(|event| event.id.clone()).collect();
    let consecutive: Vec<String> = (1..=KINDS.len()).map(|seq| seq.to_string()).collect();
    assert_eq!(ids, consecutive);
    let kinds: Vec<&str> = events
        .iter()
        .map(|event| event.data["kind"]["type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(kinds, KINDS);
    assert!(events.iter().all(|event| event.name == "change"));
    assert_eq!(events[2].data["kind"]["order"], Value::from(order_id));

    let snapshot = check_store(t.store.as_ref(), &EventId::new(EVENT).unwrap())
        .await
        .unwrap_or_else(|why| panic!("invariants: {why}"));
    assert_eq!(snapshot.seq, KINDS.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_end_to_end() {
    scenario(ticketing_core::testkit::memory_store_for_test().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_end_to_end() {
    scenario(ticketing_store_pg::testkit::pg_store_for_test().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_end_to_end() {
    scenario(ticketing_store_redis::testkit::redis_store_for_test().await).await;
}
