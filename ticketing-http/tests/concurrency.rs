//! Clients racing over a real socket (the router served on loopback, one hyper connection a
//! client) for the same seats of the in-memory store: exactly one reservation wins each
//! contested set, every loser's 409 names the seats the winner holds, and committing the
//! winners twice at once sells each seat once.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::http::{Method, StatusCode};
use serde_json::json;
use support::*;
use ticketing_core::testkit::invariants::check_store;
use ticketing_core::{ChangeKind, EventId, InventoryStore};
use tokio::sync::Barrier;

const CLIENTS: usize = 32;
/// The 10 seats in groups; every set a client asks for lies in one group and holds the
/// group's first seat, so any two sets of a group overlap (one winner a group, whatever
/// the interleaving) and sets of different groups never do.
const GROUPS: [&[&str]; 4] = [
    &["A-1", "A-2", "A-3"],
    &["A-4", "A-5", "A-6"],
    &["A-7", "A-8"],
    &["A-9", "A-10"],
];

/// Client `n`'s seats: its group's first seat plus a varying subset of the others, in
/// varying order (so lock ordering is exercised too).
fn seats_of(n: usize) -> Vec<&'static str> {
    let group = GROUPS[n % GROUPS.len()];
    let pick = n / GROUPS.len();
    let mut seats = vec![group[0]];
    for (bit, seat) in group[1..].iter().enumerate() {
        if pick & (1 << bit) != 0 {
            seats.push(seat);
        }
    }
    if pick % 2 == 1 {
        seats.reverse();
    }
    seats
}

/// One outcome: the client, its seats, and the answer.
struct Attempt {
    client: usize,
    seats: Vec<&'static str>,
    answer: Answer,
}

async fn race(server: &Arc<Server>) -> Vec<Attempt> {
    let start = Arc::new(Barrier::new(CLIENTS));
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let (server, start) = (server.clone(), start.clone());
        tasks.push(tokio::spawn(async move {
            let seats = seats_of(client);
            let body = json!({"user_id": format!("u{client}"), "seat_ids": seats});
            let uri = format!("/v1/events/{EVENT}/reservations");
            start.wait().await;
            let answer = call(server.as_ref(), Method::POST, &uri, &[], Some(&body)).await;
            Attempt {
                client,
                seats,
                answer,
            }
        }));
    }
    let mut attempts = Vec::new();
    for task in tasks {
        attempts.push(task.await.expect("a client task"));
    }
    attempts
}

/// Commits `reservation` with `token` under `key` over the socket.
async fn commit(server: &Server, reservation: &str, token: &str, key: &str) -> Answer {
    call(
        server,
        Method::POST,
        &format!("/v1/reservations/{reservation}/commit"),
        &[("reservation-token", token), ("idempotency-key", key)],
        Some(&json!({"payment_id": key})),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_clients_win_each_seat_once_and_sell_it_once() {
    let app = app();
    create_event(&app.router).await;
    let server = Arc::new(serve(app.router.clone()).await);

    let attempts = race(&server).await;
    let (winners, losers): (Vec<&Attempt>, Vec<&Attempt>) = attempts
        .iter()
        .partition(|attempt| attempt.answer.status == StatusCode::CREATED);
    assert_eq!(
        (winners.len(), losers.len()),
        (GROUPS.len(), CLIENTS - GROUPS.len())
    );
    let mut held = BTreeSet::new();
    for winner in &winners {
        assert_eq!(winner.answer.json["seats"], json!(winner.seats));
        for seat in &winner.seats {
            assert!(held.insert(*seat), "{seat} won twice");
        }
    }
    for loser in &losers {
        let answer = &loser.answer;
        assert_eq!(
            (answer.status, answer.code()),
            (StatusCode::CONFLICT, "seat_unavailable"),
            "client {}: {}",
            loser.client,
            answer.text
        );
        // Losers hold nothing, so what refused a loser is its group's winner: the named
        // seats are exactly the loser's seats that the winner holds, in request order.
        let expected: Vec<&str> = loser
            .seats
            .iter()
            .copied()
            .filter(|seat| held.contains(seat))
            .collect();
        assert!(!expected.is_empty());
        assert_eq!(
            answer.json["seat_ids"],
            json!(expected),
            "client {}",
            loser.client
        );
    }
    let map = seatmap(&app.router).await;
    for seat in map["seats"].as_array().unwrap() {
        let id = seat["seat_id"].as_str().unwrap();
        let status = if held.contains(id) {
            "held"
        } else {
            "available"
        };
        assert_eq!(seat["status"], status, "{id}");
    }

    // Each winner commits twice at once under two keys: one order, one refusal.
    let mut commits = Vec::new();
    for winner in &winners {
        let id = winner.answer.json["reservation_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let token = winner.answer.json["token"].as_str().unwrap().to_owned();
        for key in ["first", "second"] {
            let (server, id, token) = (server.clone(), id.clone(), token.clone());
            commits.push(tokio::spawn(async move {
                commit(&server, &id, &token, &format!("{id}-{key}")).await
            }));
        }
    }
    let mut sold: Vec<String> = Vec::new();
    let mut refused = 0;
    for task in commits {
        let answer = task.await.expect("a commit task");
        match answer.status {
            StatusCode::OK => sold.extend(
                answer.json["tickets"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|ticket| ticket["seat_id"].as_str().unwrap().to_owned()),
            ),
            StatusCode::CONFLICT => {
                assert_eq!(answer.code(), "reservation_not_active", "{}", answer.text);
                refused += 1;
            }
            other => panic!("commit answered {other}: {}", answer.text),
        }
    }
    assert_eq!(refused, winners.len());
    let sold_once: BTreeSet<&str> = sold.iter().map(String::as_str).collect();
    assert_eq!(sold.len(), sold_once.len(), "a seat sold twice: {sold:?}");
    assert_eq!(sold_once, held);

    // A latecomer finds every sold seat taken.
    let late = call(
        server.as_ref(),
        Method::POST,
        &format!("/v1/events/{EVENT}/reservations"),
        &[],
        Some(&json!({"user_id": "late", "seat_ids": held.iter().collect::<Vec<_>>()})),
    )
    .await;
    assert_eq!(late.status, StatusCode::CONFLICT, "{}", late.text);
    assert_eq!(
        late.json["seat_ids"],
        json!(held.iter().collect::<Vec<_>>())
    );

    let map = seatmap(&app.router).await;
    let statuses: Vec<(&str, &str)> = map["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|seat| {
            (
                seat["seat_id"].as_str().unwrap(),
                seat["status"].as_str().unwrap(),
            )
        })
        .collect();
    for (id, status) in statuses {
        let expected = if held.contains(id) {
            "sold"
        } else {
            "available"
        };
        assert_eq!(status, expected, "{id}");
    }
    let availability = check_store(app.store.as_ref(), &EventId::new(EVENT).unwrap())
        .await
        .unwrap_or_else(|why| panic!("invariants: {why}"));
    let changes = count_kinds(&app).await;
    assert_eq!(changes, (winners.len(), winners.len()));
    assert_eq!(availability.seq, 1 + 2 * winners.len() as u64);
}

/// How many `reserved` and `committed` changes the log holds.
async fn count_kinds(app: &App) -> (usize, usize) {
    let event = EventId::new(EVENT).unwrap();
    let changes = app.store.changes(&event, 0, 1_000).await.unwrap();
    let count = |wanted: fn(&ChangeKind) -> bool| {
        changes.iter().filter(|change| wanted(&change.kind)).count()
    };
    (
        count(|kind| matches!(kind, ChangeKind::Reserved { .. })),
        count(|kind| matches!(kind, ChangeKind::Committed { .. })),
    )
}
