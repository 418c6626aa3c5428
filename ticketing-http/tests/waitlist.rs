//! The waitlist routes on the in-memory store: join, position, the offer made when a hold
//! is cancelled (committed with the join's token), leave, and every error.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use support::*;
use ticketing_core::testkit::invariants::check_store;
use ticketing_core::{ChangeKind, EventId, InventoryStore};

const HALL: &str = "hall";

/// A table row: name, method, URI, body, expected status and code.
type Row = (
    &'static str,
    Method,
    String,
    Option<Value>,
    StatusCode,
    &'static str,
);

/// Two seats and a pool of two, with the waitlist on.
fn hall() -> Value {
    json!({
        "event_id": HALL,
        "name": "Hall",
        "seats": [
            {"seat_id": "A-1", "section": "Floor", "row": "A", "number": 1},
            {"seat_id": "A-2", "section": "Floor", "row": "A", "number": 2},
        ],
        "pools": [{"pool": "ga", "name": "Standing", "capacity": 2}],
        "policy": {"waitlist": true, "waitlist_offer_ttl_seconds": 600},
    })
}

async fn join(app: &App, body: Value) -> Answer {
    call(
        &app.router,
        Method::POST,
        &format!("/v1/events/{HALL}/waitlist"),
        &[],
        Some(&body),
    )
    .await
}

async fn entry(app: &App, id: &str) -> Answer {
    call(
        &app.router,
        Method::GET,
        &format!("/v1/events/{HALL}/waitlist/{id}"),
        &[],
        None,
    )
    .await
}

#[tokio::test]
async fn freed_seats_are_offered_to_the_waitlist_and_committed_with_its_token() {
    let app = app_with_waitlist(config());
    let r = &app.router;
    let created = call(
        r,
        Method::POST,
        "/v1/events",
        &[("x-admin-key", ADMIN)],
        Some(&hall()),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);

    // Bob holds both seats: sold out.
    let held = call(
        r,
        Method::POST,
        &format!("/v1/events/{HALL}/reservations"),
        &[],
        Some(&json!({"user_id": "bob", "seat_ids": ["A-1", "A-2"]})),
    )
    .await;
    assert_eq!(held.status, StatusCode::CREATED, "{}", held.text);

    let carol = join(&app, json!({"user_id": "carol", "quantity": 1})).await;
    assert_eq!(carol.status, StatusCode::CREATED, "{}", carol.text);
    assert_eq!(carol.json["state"], "waiting");
    assert_eq!(carol.json["position"], 1);
    let token = carol.json["token"].as_str().unwrap().to_owned();
    let carol_id = carol.json["entry_id"].as_str().unwrap().to_owned();

    let again = join(&app, json!({"user_id": "carol", "quantity": 1})).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.json["entry_id"], carol_id.as_str());
    assert!(
        again.json.get("token").is_none(),
        "the token is returned once"
    );
    let other = join(&app, json!({"user_id": "carol", "quantity": 2})).await;
    assert_eq!(
        (other.status, other.code()),
        (StatusCode::CONFLICT, "conflict")
    );

    let dave = join(
        &app,
        json!({"user_id": "dave", "quantity": 2, "adjacent": true}),
    )
    .await;
    assert_eq!(dave.status, StatusCode::CREATED, "{}", dave.text);
    assert_eq!(dave.json["position"], 2);
    let dave_id = dave.json["entry_id"].as_str().unwrap().to_owned();

    // Bob cancels: both seats go to the line in the same step. Carol, first, gets one;
    // Dave's two adjacent seats cannot be served from what is left, so he keeps waiting.
    let cancelled = call(
        r,
        Method::POST,
        &format!(
            "/v1/reservations/{}/cancel",
            held.json["reservation_id"].as_str().unwrap()
        ),
        &[("reservation-token", held.json["token"].as_str().unwrap())],
        None,
    )
    .await;
    assert_eq!(
        cancelled.status,
        StatusCode::NO_CONTENT,
        "{}",
        cancelled.text
    );
    let offered = entry(&app, &carol_id).await;
    assert_eq!(offered.status, StatusCode::OK, "{}", offered.text);
    assert_eq!(offered.json["state"], "offered", "{}", offered.text);
    let offer = offered.json["reservation_id"].as_str().unwrap().to_owned();
    assert_eq!(entry(&app, &dave_id).await.json["position"], 1);

    let reservation = call(
        r,
        Method::GET,
        &format!("/v1/reservations/{offer}"),
        &[],
        None,
    )
    .await;
    assert_eq!(reservation.status, StatusCode::OK, "{}", reservation.text);
    assert_eq!(reservation.json["user_id"], "carol");
    let order = call(
        r,
        Method::POST,
        &format!("/v1/reservations/{offer}/commit"),
        &[
            ("reservation-token", &token),
            ("idempotency-key", "carol-1"),
        ],
        Some(&json!({"payment_id": "pay-carol"})),
    )
    .await;
    assert_eq!(order.status, StatusCode::OK, "{}", order.text);
    assert_eq!(order.json["tickets"].as_array().unwrap().len(), 1);

    // The offer is in the change log, right after the cancel that freed its seat.
    let event = EventId::new(HALL).unwrap();
    let changes = app.store.changes(&event, 0, 100).await.unwrap();
    let kinds: Vec<&ChangeKind> = changes.iter().map(|change| &change.kind).collect();
    let cancel_at = kinds
        .iter()
        .position(|kind| matches!(kind, ChangeKind::Cancelled { .. }))
        .unwrap();
    assert!(
        matches!(kinds[cancel_at + 1], ChangeKind::OfferMade { .. }),
        "{kinds:?}"
    );

    // Carol's entry was offered: leaving it is a conflict; Dave leaves, twice.
    let leave = |id: &str, user: &str| format!("/v1/events/{HALL}/waitlist/{id}?user_id={user}");
    let answer = call(r, Method::DELETE, &leave(&carol_id, "carol"), &[], None).await;
    assert_eq!(
        (answer.status, answer.code()),
        (StatusCode::CONFLICT, "conflict")
    );
    let answer = call(r, Method::DELETE, &leave(&dave_id, "eve"), &[], None).await;
    assert_eq!(
        (answer.status, answer.code()),
        (StatusCode::NOT_FOUND, "not_found"),
        "not Eve's entry"
    );
    for _ in 0..2 {
        let answer = call(r, Method::DELETE, &leave(&dave_id, "dave"), &[], None).await;
        assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.text);
    }
    assert_eq!(entry(&app, &dave_id).await.json["state"], "left");
    check_store(app.store.as_ref(), &event)
        .await
        .unwrap_or_else(|why| panic!("invariants: {why}"));
}

#[tokio::test]
async fn waitlist_errors_are_4xx_and_change_nothing() {
    let app = app_with_waitlist(config());
    let r = &app.router;
    create_event(r).await; // EVENT: no waitlist in its policy
    let created = call(
        r,
        Method::POST,
        "/v1/events",
        &[("x-admin-key", ADMIN)],
        Some(&hall()),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let event = EventId::new(HALL).unwrap();
    let before = app.store.changes(&event, 0, 100).await.unwrap();

    let cases: Vec<Row> = vec![
        (
            "no waitlist on the event",
            Method::POST,
            format!("/v1/events/{EVENT}/waitlist"),
            Some(json!({"user_id": "a", "quantity": 1})),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "unknown event",
            Method::POST,
            "/v1/events/nope/waitlist".into(),
            Some(json!({"user_id": "a", "quantity": 1})),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "zero quantity",
            Method::POST,
            format!("/v1/events/{HALL}/waitlist"),
            Some(json!({"user_id": "a", "quantity": 0})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "negative quantity",
            Method::POST,
            format!("/v1/events/{HALL}/waitlist"),
            Some(json!({"user_id": "a", "quantity": -1})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "no quantity",
            Method::POST,
            format!("/v1/events/{HALL}/waitlist"),
            Some(json!({"user_id": "a"})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "unknown field",
            Method::POST,
            format!("/v1/events/{HALL}/waitlist"),
            Some(json!({"user_id": "a", "quantity": 1, "vip": true})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "no holder",
            Method::POST,
            format!("/v1/events/{HALL}/waitlist"),
            Some(json!({"quantity": 1})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "unknown pool",
            Method::POST,
            format!("/v1/events/{HALL}/waitlist"),
            Some(json!({"user_id": "a", "quantity": 1, "pool": "vip"})),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "control character in the pool",
            Method::POST,
            format!("/v1/events/{HALL}/waitlist"),
            Some(json!({"user_id": "a", "quantity": 1, "pool": "g\u{1}a"})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "more seats than the event has",
            Method::POST,
            format!("/v1/events/{HALL}/waitlist"),
            Some(json!({"user_id": "a", "quantity": 3})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "unknown section",
            Method::POST,
            format!("/v1/events/{HALL}/waitlist"),
            Some(json!({"user_id": "a", "quantity": 1, "section": "Balcony"})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "malformed entry id",
            Method::GET,
            format!("/v1/events/{HALL}/waitlist/w%0A"),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "unknown entry",
            Method::GET,
            format!("/v1/events/{HALL}/waitlist/w_nope"),
            None,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "leave without a holder",
            Method::DELETE,
            format!("/v1/events/{HALL}/waitlist/w_nope"),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "leave an unknown entry",
            Method::DELETE,
            format!("/v1/events/{HALL}/waitlist/w_nope?user_id=a"),
            None,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "leave with an unknown query field",
            Method::DELETE,
            format!("/v1/events/{HALL}/waitlist/w_nope?user=a"),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
    ];
    for (name, method, uri, body, status, code) in cases {
        let answer = call(r, method, &uri, &[], body.as_ref()).await;
        assert_eq!(
            (answer.status, answer.code()),
            (status, code),
            "{name}: {}",
            answer.text
        );
    }
    assert_eq!(
        app.store.changes(&event, 0, 100).await.unwrap(),
        before,
        "nothing changed"
    );

    // Without HttpConfig::waitlist, the routes say so.
    let plain = app_with(config());
    let answer = call(
        &plain.router,
        Method::POST,
        &format!("/v1/events/{HALL}/waitlist"),
        &[],
        Some(&json!({"user_id": "a", "quantity": 1})),
    )
    .await;
    assert_eq!(
        (answer.status, answer.code()),
        (StatusCode::NOT_FOUND, "waitlist_disabled")
    );
}
