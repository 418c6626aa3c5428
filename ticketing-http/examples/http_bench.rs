//! Reserve and commit throughput over HTTP: the router on an in-memory store with
//! 50,000-seat events, against an empty axum handler that only parses a similar JSON body,
//! in the same process and run, each driven by N concurrent keep-alive HTTP/1.1 clients
//! (hyper) for a few seconds. Rate limits off.
//!
//! - reserve: one single-seat reserve per request on distinct seats. The seats are used in
//!   rounds of 50,000: between rounds the clients wait while the store's manual clock moves
//!   past every hold's expiry, so the next round finds them free.
//! - commit: single-seat reservations made beforehand (straight on the store, untimed), one
//!   commit per request, each with its token and an idempotency key of its own. Enough are
//!   made for about 100,000 commits a second; should the clients run out, the phase ends
//!   there and its rate is over the time it took.
//!
//! ```text
//! cargo run --release -p ticketing-http --example http_bench -- [connections] [seconds]
//! ```
//!
//! Defaults: 64 connections, 3 seconds per phase. Prints requests/s, p50/p99 and the
//! router's rates as shares of the empty handler's.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::Json;
use axum::http::{Method, Request, StatusCode};
use axum::routing::post;
use hdrhistogram::Histogram;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use ticketing_core::{
    EventId, HolderId, InventoryStore, ManualClock, MemoryStore, ReserveRequest, SeatId,
};
use ticketing_http::{HttpConfig, router};
use tokio::sync::Barrier;
use tower::ServiceExt;

const SEATS: usize = 50_000;
const ADMIN: &str = "bench-admin";
/// Reservations made for the commit phase, per second of it.
const COMMITS_PER_SECOND_PREPARED: usize = 100_000;

/// What one phase measured.
struct Figures {
    requests: u64,
    elapsed: Duration,
    latency: Histogram<u64>,
}

impl Figures {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn print(&self, name: &str) {
        println!(
            "{name:<14} {:>9.0} req/s  p50 {:>6} us  p99 {:>6} us  max {:>7} us  ({} requests in {:.2} s)",
            self.rate(),
            self.latency.value_at_quantile(0.50),
            self.latency.value_at_quantile(0.99),
            self.latency.max(),
            self.requests,
            self.elapsed.as_secs_f64(),
        );
    }
}

/// What the clients send: rounds of `round_len` requests, the n-th of a round built by
/// `request` and answered `expected`. Between rounds, while every client waits, one runs
/// `between`, which says whether another round follows.
struct Load {
    round_len: usize,
    request: Box<dyn Fn(usize) -> Request<String> + Send + Sync>,
    expected: StatusCode,
    between: Box<dyn Fn() -> bool + Send + Sync>,
}

fn post_json(uri: &str, headers: &[(&str, &str)], body: String) -> Request<String> {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header("host", "127.0.0.1")
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(body).expect("a request")
}

/// Single-seat reserves of `S-{n}` on `stadium`, each by another user; between rounds
/// `clock` (the store's, if any) moves past every hold's expiry.
fn reserve_load(clock: Option<ManualClock>) -> Load {
    let users = AtomicU64::new(0);
    Load {
        round_len: SEATS,
        request: Box::new(move |n| {
            let user = users.fetch_add(1, Ordering::Relaxed);
            let body = format!(r#"{{"user_id":"u{user}","seat_ids":["S-{n}"]}}"#);
            post_json("/v1/events/stadium/reservations", &[], body)
        }),
        expected: StatusCode::CREATED,
        between: Box::new(move || {
            if let Some(clock) = &clock {
                clock.advance(Duration::from_secs(3_600));
            }
            true
        }),
    }
}

/// One commit of each of `held` (reservation id, token), once: one round.
fn commit_load(held: Vec<(String, String)>) -> Load {
    Load {
        round_len: held.len(),
        request: Box::new(move |n| {
            let (id, token) = &held[n];
            let key = format!("k{n}");
            let body = format!(r#"{{"payment_id":"pay-{n}"}}"#);
            post_json(
                &format!("/v1/reservations/{id}/commit"),
                &[("reservation-token", token), ("idempotency-key", &key)],
                body,
            )
        }),
        expected: StatusCode::OK,
        between: Box::new(|| false),
    }
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding 127.0.0.1:0");
    let address = listener.local_addr().expect("a local address");
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("serving");
    });
    address
}

/// A router over a fresh memory store, the store, and its clock.
fn ticketing() -> (Router, Arc<MemoryStore>, ManualClock) {
    let config = HttpConfig::default()
        .admin_key(ADMIN)
        .without_rate_limits()
        .concurrency_limit(100_000);
    let clock = ManualClock::default();
    let store = Arc::new(MemoryStore::with_clock(Arc::new(clock.clone())));
    (router(store.clone(), config), store, clock)
}

/// Creates the 50,000-seat event `id` through the router.
async fn create_stadium(app: &Router, id: &str) {
    let seats: Vec<Value> = (0..SEATS)
        .map(|n| json!({"seat_id": format!("S-{n}"), "section": format!("S{}", n / 5_000), "row": format!("R{}", n / 50 % 100), "number": n % 50 + 1, "category": "standard"}))
        .collect();
    let body = json!({"event_id": id, "name": "Stadium", "seats": seats, "pools": []});
    let request = Request::builder()
        .method(Method::POST)
        .uri("/v1/events")
        .header("content-type", "application/json")
        .header("x-admin-key", ADMIN)
        .body(Body::from(body.to_string()))
        .expect("a request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::CREATED, "creating {id}");
}

/// `events` stadiums with every seat held by a reservation of its own, made straight on
/// the store (untimed); returns the router and the (reservation id, token) pairs.
async fn held_stadiums(events: usize) -> (Router, Vec<(String, String)>) {
    let (app, store, _clock) = ticketing();
    let mut tasks = Vec::new();
    for event in 0..events {
        let id = format!("stadium-{event}");
        create_stadium(&app, &id).await;
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let event_id = EventId::new(&id).expect("an event id");
            let mut held = Vec::with_capacity(SEATS);
            for n in 0..SEATS {
                let holder = HolderId::new(format!("h{event}-{n}")).expect("a holder");
                let seat = SeatId::new(format!("S-{n}")).expect("a seat");
                let request = ReserveRequest::new(event_id.clone(), holder).seats([seat]);
                let reservation = store.reserve(request).await.expect("a reservation");
                let token = reservation.token.expect("a new reservation's token");
                held.push((reservation.id.to_string(), token.expose()));
            }
            held
        }));
    }
    let mut held = Vec::new();
    for task in tasks {
        held.extend(task.await.expect("a preparing task"));
    }
    (app, held)
}

/// The baseline: parses the JSON body and answers 201, nothing else.
fn empty() -> Router {
    Router::new().route(
        "/v1/events/{id}/reservations",
        post(|Json(body): Json<Value>| async move {
            std::hint::black_box(body);
            (StatusCode::CREATED, "{}")
        }),
    )
}

/// `connections` keep-alive clients send `load` until `duration` passes or it has no more
/// rounds. Every answer must be `load.expected`.
async fn drive(address: SocketAddr, connections: usize, duration: Duration, load: Load) -> Figures {
    let load = Arc::new(load);
    let next = Arc::new(AtomicUsize::new(0));
    let round = Arc::new(Barrier::new(connections));
    let go_on = Arc::new(AtomicBool::new(true));
    let started = Instant::now();
    let deadline = started + duration;
    let mut clients = Vec::new();
    for _ in 0..connections {
        let (next, round, go_on, load) = (next.clone(), round.clone(), go_on.clone(), load.clone());
        clients.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(address)
                .await
                .expect("connecting");
            stream.set_nodelay(true).expect("TCP_NODELAY");
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .expect("an HTTP/1.1 handshake");
            tokio::spawn(connection);
            let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
            while go_on.load(Ordering::Relaxed) {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= load.round_len || Instant::now() >= deadline {
                        break;
                    }
                    let request = (load.request)(n);
                    let sent = Instant::now();
                    sender.ready().await.expect("a ready connection");
                    let response = sender.send_request(request).await.expect("a response");
                    let status = response.status();
                    let bytes = response
                        .into_body()
                        .collect()
                        .await
                        .expect("a body")
                        .to_bytes();
                    latency
                        .record(sent.elapsed().as_micros().max(1) as u64)
                        .unwrap();
                    assert_eq!(status, load.expected, "{}", String::from_utf8_lossy(&bytes));
                }
                // Everyone is done with this round: one client prepares the next.
                if round.wait().await.is_leader() {
                    let more = (load.between)();
                    next.store(0, Ordering::Relaxed);
                    go_on.store(more && Instant::now() < deadline, Ordering::Relaxed);
                }
                round.wait().await;
            }
            latency
        }));
    }
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    for client in clients {
        latency.add(client.await.expect("a client")).unwrap();
    }
    Figures {
        requests: latency.len(),
        elapsed: started.elapsed(),
        latency,
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let connections: usize = args.next().map_or(64, |a| a.parse().expect("connections"));
    let seconds: u64 = args.next().map_or(3, |a| a.parse().expect("seconds"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let duration = Duration::from_secs(seconds);
        println!(
            "{connections} keep-alive HTTP/1.1 connections, {seconds} s per phase, {} worker threads, single-seat requests on distinct seats",
            std::thread::available_parallelism().map_or(1, usize::from)
        );
        let baseline = drive(serve(empty()).await, connections, duration, reserve_load(None)).await;
        baseline.print("empty handler");
        let (app, _store, clock) = ticketing();
        create_stadium(&app, "stadium").await;
        let reserve = drive(serve(app).await, connections, duration, reserve_load(Some(clock))).await;
        reserve.print("reserve");
        let events = (seconds as usize * COMMITS_PER_SECOND_PREPARED).div_ceil(SEATS).max(1);
        let prepared_at = Instant::now();
        let (app, held) = held_stadiums(events).await;
        println!(
            "(commit: {} reservations made beforehand in {:.1} s, untimed)",
            held.len(),
            prepared_at.elapsed().as_secs_f64()
        );
        let commit = drive(serve(app).await, connections, duration, commit_load(held)).await;
        commit.print("commit");
        for (name, figures) in [("reserve", &reserve), ("commit", &commit)] {
            println!(
                "{name} / empty handler: {:.1}%",
                100.0 * figures.rate() / baseline.rate()
            );
        }
    });
}
