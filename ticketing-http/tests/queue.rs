//! Waiting room routes and the admission pass on reserve: every route and every error, on
//! in-memory rooms and store sharing one manual clock.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use support::{ADMIN, Answer, EVENT, call, config, create_event, seatmap};
use ticketing_core::{
    EventId, HolderId, ManualClock, MemoryStore, MemoryWaitingRoom, PassKey, Timestamp, WaitingRoom,
};
use ticketing_http::{WaitingRoomConfig, router, spawn_room_sweeper};

struct Gated {
    router: Router,
    rooms: Arc<MemoryWaitingRoom>,
    store: Arc<MemoryStore>,
    clock: ManualClock,
    key: PassKey,
}

fn gated() -> Gated {
    let clock = ManualClock::default();
    let rooms = Arc::new(MemoryWaitingRoom::with_clock(Arc::new(clock.clone())));
    let store = Arc::new(MemoryStore::with_clock(Arc::new(clock.clone())));
    let key = PassKey::random();
    let rooms_config =
        WaitingRoomConfig::new(rooms.clone(), key.clone()).clock(Arc::new(clock.clone()));
    Gated {
        router: router(store.clone(), config().waiting_room(rooms_config)),
        rooms,
        store,
        clock,
        key,
    }
}

fn queue_uri() -> String {
    format!("/v1/events/{EVENT}/queue")
}

async fn configure(router: &Router, settings: &Value) -> Answer {
    call(
        router,
        Method::PUT,
        &queue_uri(),
        &[("x-admin-key", ADMIN)],
        Some(settings),
    )
    .await
}

async fn join(router: &Router, user: &str) -> Answer {
    call(
        router,
        Method::POST,
        &queue_uri(),
        &[],
        Some(&json!({"user_id": user})),
    )
    .await
}

async fn poll(router: &Router, ticket: &str) -> Answer {
    call(
        router,
        Method::GET,
        &format!("/v1/queue/{ticket}"),
        &[],
        None,
    )
    .await
}

async fn reserve_with(router: &Router, user: &str, seat: &str, pass: Option<&str>) -> Answer {
    let headers: Vec<(&str, &str)> = pass
        .map(|pass| ("admission-pass", pass))
        .into_iter()
        .collect();
    call(
        router,
        Method::POST,
        &format!("/v1/events/{EVENT}/reservations"),
        &headers,
        Some(&json!({"user_id": user, "seat_ids": [seat]})),
    )
    .await
}

#[tokio::test]
async fn queue_routes_answer_404_when_rooms_are_not_configured() {
    let app = support::app();
    create_event(&app.router).await;
    for (method, uri) in [
        (Method::POST, queue_uri()),
        (Method::GET, queue_uri()),
        (Method::GET, "/v1/queue/q_x".to_owned()),
        (Method::DELETE, "/v1/queue/q_x".to_owned()),
    ] {
        let answer = call(
            &app.router,
            method,
            &uri,
            &[],
            Some(&json!({"user_id": "a"})),
        )
        .await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(answer.code(), "rooms_disabled");
    }
    // Without rooms no event is gated: reserve needs no pass.
    assert_eq!(
        reserve_with(&app.router, "a", "A-1", None).await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn configuring_a_room_needs_the_admin_key_and_valid_settings() {
    let g = gated();
    create_event(&g.router).await;
    let settings = json!({"admit_per_second": 2, "pass_ttl_seconds": 60, "shuffle_seed": 7});
    let answer = call(&g.router, Method::PUT, &queue_uri(), &[], Some(&settings)).await;
    assert_eq!(
        (answer.status, answer.code()),
        (StatusCode::UNAUTHORIZED, "missing_admin_key")
    );
    let answer = call(
        &g.router,
        Method::PUT,
        &queue_uri(),
        &[("x-admin-key", "wrong")],
        Some(&settings),
    )
    .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    for bad in [
        json!({}),
        json!({"admit_per_second": 0}),
        json!({"active_max": 5, "pass_ttl_seconds": 1}),
        json!({"active_max": 5, "seats_per_buyer": 0}),
        json!({"active_max": 5, "unknown": 1}),
        json!({"active_max": -1}),
        json!({"active_max": "many"}),
    ] {
        let answer = configure(&g.router, &bad).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{bad}: {}",
            answer.text
        );
        assert_eq!(answer.code(), "invalid_request");
    }
    let answer = call(&g.router, Method::GET, &queue_uri(), &[], None).await;
    assert_eq!(
        (answer.status, answer.json["entity"].as_str()),
        (StatusCode::NOT_FOUND, Some("room")),
        "bad settings gated nothing"
    );
    assert_eq!(
        reserve_with(&g.router, "a", "A-1", None).await.status,
        StatusCode::CREATED
    );
    let answer = configure(&g.router, &settings).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.json["settings"]["admit_per_second"], 2);
    assert_eq!(answer.json["waiting"], 0);
    let answer = call(&g.router, Method::GET, &queue_uri(), &[], None).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json["settings"]["shuffle_seed"], 7);
}

#[tokio::test]
async fn a_gated_event_takes_reservations_only_with_a_valid_pass() {
    let g = gated();
    create_event(&g.router).await;
    let answer = configure(&g.router, &json!({"active_max": 1, "pass_ttl_seconds": 60})).await;
    assert_eq!(answer.status, StatusCode::OK);
    let before = seatmap(&g.router).await;

    // Joining: a place, the same place again, and errors.
    let alice = join(&g.router, "alice").await;
    assert_eq!(alice.status, StatusCode::OK, "{}", alice.text);
    assert_eq!(alice.json["status"], "waiting");
    assert_eq!(alice.json["position"], 1);
    let ticket = alice.json["ticket_id"].as_str().unwrap().to_owned();
    assert_eq!(
        join(&g.router, "alice").await.json["ticket_id"],
        ticket.as_str()
    );
    let bob = join(&g.router, "bob").await;
    assert_eq!(bob.json["position"], 2);
    let answer = call(&g.router, Method::POST, &queue_uri(), &[], Some(&json!({}))).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "no user_id");
    let answer = call(
        &g.router,
        Method::POST,
        "/v1/events/other/queue",
        &[],
        Some(&json!({"user_id": "alice"})),
    )
    .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.json["entity"], "room");
    let answer = call(
        &g.router,
        Method::POST,
        &queue_uri(),
        &[],
        Some(&json!({"user_id": "bad id"})),
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        poll(&g.router, "q_unknown").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        poll(&g.router, "bad%20id").await.status,
        StatusCode::BAD_REQUEST
    );

    // Before admission: no pass, so no reservation; nothing changes.
    let answer = reserve_with(&g.router, "alice", "A-1", None).await;
    assert_eq!(
        (answer.status, answer.code()),
        (StatusCode::FORBIDDEN, "pass_required")
    );
    let answer = reserve_with(&g.router, "alice", "A-1", Some("v1.99999999999999.AAAA")).await;
    assert_eq!(
        (answer.status, answer.code()),
        (StatusCode::FORBIDDEN, "invalid_pass")
    );
    let answer = reserve_with(&g.router, "alice", "A-1", Some("garbage")).await;
    assert_eq!(
        (answer.status, answer.code()),
        (StatusCode::FORBIDDEN, "invalid_pass")
    );

    // Admitted: the poll carries the pass, which works for alice only.
    let event = EventId::new(EVENT).unwrap();
    let step = g.rooms.admit(&event, 100).await.unwrap();
    assert_eq!(step.admitted, 1);
    let admitted = poll(&g.router, &ticket).await;
    assert_eq!(admitted.json["status"], "admitted", "{}", admitted.text);
    let pass = admitted.json["pass"].as_str().unwrap().to_owned();
    assert_eq!(
        poll(&g.router, bob.json["ticket_id"].as_str().unwrap())
            .await
            .json["position"],
        1
    );
    let answer = reserve_with(&g.router, "bob", "A-1", Some(&pass)).await;
    assert_eq!(
        (answer.status, answer.code()),
        (StatusCode::FORBIDDEN, "invalid_pass"),
        "a pass cannot be moved to another holder"
    );
    let other_key = PassKey::random().sign(
        &event,
        &HolderId::new("alice").unwrap(),
        Timestamp::from_millis(u64::MAX / 2),
    );
    let answer = reserve_with(&g.router, "alice", "A-1", Some(other_key.as_str())).await;
    assert_eq!(answer.code(), "invalid_pass", "signed with another key");
    assert_eq!(
        seatmap(&g.router).await,
        before,
        "refused reservations changed nothing"
    );
    let answer = reserve_with(&g.router, "alice", "A-1", Some(&pass)).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);

    // The pass lapses with time.
    g.clock.advance(Duration::from_secs(60));
    let answer = reserve_with(&g.router, "alice", "A-2", Some(&pass)).await;
    assert_eq!(
        (answer.status, answer.code()),
        (StatusCode::FORBIDDEN, "pass_expired")
    );
    assert_eq!(poll(&g.router, &ticket).await.json["status"], "lapsed");

    // A pass made by the same key for this visitor and event verifies: no store round trip.
    let fresh = g.key.sign(
        &event,
        &HolderId::new("carol").unwrap(),
        Timestamp::from_millis(g.clock_now() + 10_000),
    );
    let answer = reserve_with(&g.router, "carol", "A-3", Some(fresh.as_str())).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
}

impl Gated {
    fn clock_now(&self) -> u64 {
        ticketing_core::Clock::now(&self.clock).as_millis()
    }
}

#[tokio::test]
async fn leaving_and_the_sold_out_status() {
    let g = gated();
    create_event(&g.router).await;
    configure(&g.router, &json!({"active_max": 5})).await;
    let alice = join(&g.router, "alice").await;
    let ticket = alice.json["ticket_id"].as_str().unwrap().to_owned();
    let bob = join(&g.router, "bob").await;
    let event = EventId::new(EVENT).unwrap();
    g.rooms.admit(&event, 0).await.unwrap();
    let answer = poll(&g.router, bob.json["ticket_id"].as_str().unwrap()).await;
    assert_eq!(answer.json["status"], "sold_out");
    assert!(answer.json["hint"].is_string());
    let answer = call(
        &g.router,
        Method::DELETE,
        &format!("/v1/queue/{ticket}"),
        &[],
        None,
    )
    .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    let answer = call(
        &g.router,
        Method::DELETE,
        &format!("/v1/queue/{ticket}"),
        &[],
        None,
    )
    .await;
    assert_eq!(
        answer.status,
        StatusCode::NO_CONTENT,
        "leaving twice is fine"
    );
    assert_eq!(poll(&g.router, &ticket).await.json["status"], "left");
    let answer = call(&g.router, Method::DELETE, "/v1/queue/q_unknown", &[], None).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    let answer = call(&g.router, Method::GET, &queue_uri(), &[], None).await;
    assert_eq!(
        (
            answer.json["waiting"].as_u64(),
            answer.json["sold_out"].as_bool()
        ),
        (Some(1), Some(true))
    );
}

#[tokio::test]
async fn the_room_sweeper_admits_and_records_metrics() {
    let g = gated();
    create_event(&g.router).await;
    configure(&g.router, &json!({"active_max": 2, "seats_per_buyer": 1})).await;
    let mut tickets = Vec::new();
    for user in ["a", "b", "c"] {
        tickets.push(
            join(&g.router, user).await.json["ticket_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let metrics = config().metrics;
    let sweeper = spawn_room_sweeper(
        g.rooms.clone(),
        g.store.clone(),
        metrics.clone(),
        Duration::from_millis(10),
    );
    let mut statuses = Vec::new();
    for _ in 0..200 {
        statuses.clear();
        for ticket in &tickets {
            statuses.push(
                poll(&g.router, ticket).await.json["status"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        if statuses
            .iter()
            .filter(|status| *status == "admitted")
            .count()
            == 2
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stats = sweeper.stop().await;
    assert_eq!(statuses, ["admitted", "admitted", "waiting"]);
    assert_eq!(stats.admitted, 2);
    assert_eq!(stats.errors, 0);
    let text = metrics.encode();
    assert!(
        text.contains("ticketing_queue_admitted_total{event=\"concert\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("ticketing_queue_waiting{event=\"concert\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("ticketing_queue_active{event=\"concert\"} 2"),
        "{text}"
    );
}
