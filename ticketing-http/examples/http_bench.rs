//! Reserve throughput over HTTP: the router on an in-memory store with a 50,000-seat event,
//! against an empty axum handler that only parses a similar JSON body, in the same process
//! and run, each driven by N concurrent keep-alive HTTP/1.1 clients (hyper) for a few
//! seconds, one single-seat reserve per request on distinct seats. Rate limits off. The
//! seats are used in rounds of 50,000: between rounds the clients wait while the store's
//! manual clock moves past every hold's expiry, so the next round finds them free.
//!
//! ```text
//! cargo run --release -p ticketing-http --example http_bench -- [connections] [seconds]
//! ```
//!
//! Defaults: 64 connections, 3 seconds per server. Prints requests/s, p50/p99 and the
//! router's rate as a share of the empty handler's.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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
use ticketing_core::{ManualClock, MemoryStore};
use ticketing_http::{HttpConfig, router};
use tokio::sync::Barrier;
use tower::ServiceExt;

const SEATS: usize = 50_000;
const ADMIN: &str = "bench-admin";

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

/// A router over a memory store holding the 50,000-seat event `stadium`, and the store's
/// clock.
async fn ticketing() -> (Router, ManualClock) {
    let config = HttpConfig::default()
        .admin_key(ADMIN)
        .without_rate_limits()
        .concurrency_limit(100_000);
    let clock = ManualClock::default();
    let store = MemoryStore::with_clock(Arc::new(clock.clone()));
    let app = router(Arc::new(store), config);
    let seats: Vec<Value> = (0..SEATS)
        .map(|n| json!({"seat_id": format!("S-{n}"), "section": format!("S{}", n / 5_000), "row": format!("R{}", n / 50 % 100), "number": n % 50 + 1, "category": "standard"}))
        .collect();
    let body = json!({"event_id": "stadium", "name": "Stadium", "seats": seats, "pools": []});
    let request = Request::builder()
        .method(Method::POST)
        .uri("/v1/events")
        .header("content-type", "application/json")
        .header("x-admin-key", ADMIN)
        .body(Body::from(body.to_string()))
        .expect("a request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::CREATED, "creating the event");
    (app, clock)
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

/// `connections` keep-alive clients reserve distinct seats until `duration` passes, in
/// rounds of [`SEATS`] requests: between rounds every client waits, and `clock` (the
/// store's) moves past every hold's expiry so the seats are free again. Every answer must
/// be 201.
async fn drive(
    address: SocketAddr,
    connections: usize,
    duration: Duration,
    clock: Option<ManualClock>,
) -> Figures {
    let next = Arc::new(AtomicUsize::new(0));
    let round = Arc::new(Barrier::new(connections));
    let go_on = Arc::new(AtomicBool::new(true));
    let started = Instant::now();
    let deadline = started + duration;
    let mut clients = Vec::new();
    for _ in 0..connections {
        let (next, round, go_on, clock) =
            (next.clone(), round.clone(), go_on.clone(), clock.clone());
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
            let mut user = 0_u64;
            while go_on.load(Ordering::Relaxed) {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= SEATS || Instant::now() >= deadline {
                        break;
                    }
                    user += 1;
                    let body = format!(r#"{{"user_id":"u{n}-{user}","seat_ids":["S-{n}"]}}"#);
                    let request = Request::builder()
                        .method(Method::POST)
                        .uri("/v1/events/stadium/reservations")
                        .header("host", "127.0.0.1")
                        .header("content-type", "application/json")
                        .body(body)
                        .expect("a request");
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
                    assert_eq!(
                        status,
                        StatusCode::CREATED,
                        "{}",
                        String::from_utf8_lossy(&bytes)
                    );
                }
                // Everyone is done with this round: one client frees the seats.
                if round.wait().await.is_leader() {
                    if let Some(clock) = &clock {
                        clock.advance(Duration::from_secs(3_600));
                    }
                    next.store(0, Ordering::Relaxed);
                    go_on.store(Instant::now() < deadline, Ordering::Relaxed);
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
            "{connections} keep-alive HTTP/1.1 connections, {seconds} s per server, {} worker threads, single-seat reserves on distinct seats",
            std::thread::available_parallelism().map_or(1, usize::from)
        );
        let baseline = drive(serve(empty()).await, connections, duration, None).await;
        baseline.print("empty handler");
        let (app, clock) = ticketing().await;
        let reserve = drive(serve(app).await, connections, duration, Some(clock)).await;
        reserve.print("reserve");
        println!(
            "reserve / empty handler: {:.1}%",
            100.0 * reserve.rate() / baseline.rate()
        );
    });
}
