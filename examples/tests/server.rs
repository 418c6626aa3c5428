//! The example server's app over a real socket: the demo event, reserve, conflict, commit,
//! replay, and a clean shutdown.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;

use clap::Parser;
use serde_json::{Value, json};
use ticketing_examples::server::{DEMO_EVENT, ServerArgs, build, demo_event, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP/1.1 exchange over a fresh connection; returns (status, body as JSON).
async fn exchange(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> (u16, Value) {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        request.push_str("content-type: application/json\r\n");
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let json = text
        .split_once("\r\n\r\n")
        .and_then(|(_, body)| serde_json::from_str(body).ok())
        .unwrap_or(Value::Null);
    (status, json)
}

#[test]
fn the_demo_stadium_has_50_000_seats_and_a_field() {
    let spec = demo_event().unwrap();
    assert_eq!(spec.seats.len(), 50_000);
    assert_eq!(spec.pools[0].capacity, 10_000);
    ticketing_core::validate::check_event_spec(&spec).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_server_reserves_and_commits_over_http() {
    let args = ServerArgs::try_parse_from([
        "ticketing-server",
        "--demo",
        "--admin-key",
        "k",
        "--listen",
        "127.0.0.1:0",
    ])
    .unwrap();
    let server = build(&args).await.unwrap();
    let listener = tokio::net::TcpListener::bind(args.listen).await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(serve(listener, server.router, async {
        let _ = stopped.await;
    }));

    let (status, ready) = exchange(address, "GET", "/readyz", &[], None).await;
    assert_eq!((status, ready["status"].as_str()), (200, Some("ok")));
    let reserve_path = format!("/v1/events/{DEMO_EVENT}/reservations");
    let body = json!({"user_id": "alice", "seat_ids": ["101-A-1", "101-A-2"], "ga": [{"pool": "field", "quantity": 2}]});
    let (status, held) = exchange(address, "POST", &reserve_path, &[], Some(&body)).await;
    assert_eq!(status, 201, "{held}");
    let id = held["reservation_id"].as_str().unwrap().to_owned();
    let token = held["token"].as_str().unwrap().to_owned();

    let rival = json!({"user_id": "bob", "seat_ids": ["101-A-2"]});
    let (status, conflict) = exchange(address, "POST", &reserve_path, &[], Some(&rival)).await;
    assert_eq!(
        (status, conflict["code"].as_str()),
        (409, Some("seat_unavailable"))
    );
    assert_eq!(conflict["seat_ids"], json!(["101-A-2"]));

    let commit_path = format!("/v1/reservations/{id}/commit");
    let headers = [
        ("reservation-token", token.as_str()),
        ("idempotency-key", "pay-1"),
    ];
    let pay = json!({"payment_id": "pay-1"});
    let (status, order) = exchange(address, "POST", &commit_path, &headers, Some(&pay)).await;
    assert_eq!(status, 200, "{order}");
    assert_eq!(order["tickets"].as_array().unwrap().len(), 4);
    let (status, replay) = exchange(address, "POST", &commit_path, &headers, Some(&pay)).await;
    assert_eq!((status, &replay), (200, &order));
    let (status, _) = exchange(
        address,
        "POST",
        &commit_path,
        &headers,
        Some(&json!({"payment_id": "pay-2"})),
    )
    .await;
    assert_eq!(status, 422);

    // The in-memory store serves waitlists: the route answers, and the demo event's
    // policy has none.
    let (status, problem) = exchange(
        address,
        "POST",
        &format!("/v1/events/{DEMO_EVENT}/waitlist"),
        &[],
        Some(&json!({"user_id": "zoe", "quantity": 2})),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (404, Some("not_found")),
        "{problem}"
    );

    stop.send(()).unwrap();
    serving.await.unwrap().unwrap();
    server.sweeper.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gated_demo_admits_through_the_waiting_room() {
    let args = ServerArgs::try_parse_from([
        "ticketing-server",
        "--demo",
        "--demo-room-rate",
        "20",
        "--room-step-ms",
        "20",
        "--pass-secret",
        "a-pass-secret-of-at-least-32-bytes",
        "--admin-key",
        "k",
        "--listen",
        "127.0.0.1:0",
    ])
    .unwrap();
    let server = build(&args).await.unwrap();
    let listener = tokio::net::TcpListener::bind(args.listen).await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(serve(listener, server.router, async {
        let _ = stopped.await;
    }));

    let reserve_path = format!("/v1/events/{DEMO_EVENT}/reservations");
    let body = json!({"user_id": "carol", "seat_ids": ["102-A-1"]});
    let (status, refused) = exchange(address, "POST", &reserve_path, &[], Some(&body)).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (403, Some("pass_required"))
    );

    let queue_path = format!("/v1/events/{DEMO_EVENT}/queue");
    let (status, joined) = exchange(
        address,
        "POST",
        &queue_path,
        &[],
        Some(&json!({"user_id": "carol"})),
    )
    .await;
    assert!(status == 200 || status == 201, "{status} {joined}");
    let ticket = joined["ticket_id"].as_str().unwrap().to_owned();
    // The room sweeper (every 20 ms, 20 visitors/s) admits the only visitor at once.
    let mut pass = None;
    for _ in 0..100 {
        let (status, view) =
            exchange(address, "GET", &format!("/v1/queue/{ticket}"), &[], None).await;
        assert_eq!(status, 200, "{view}");
        if let Some(admitted) = view["pass"].as_str() {
            pass = Some(admitted.to_owned());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let pass = pass.expect("admitted within two seconds");
    let (status, held) = exchange(
        address,
        "POST",
        &reserve_path,
        &[("admission-pass", pass.as_str())],
        Some(&body),
    )
    .await;
    assert_eq!(status, 201, "{held}");
    // The pass is carol's: it does not let dave in.
    let (status, refused) = exchange(
        address,
        "POST",
        &reserve_path,
        &[("admission-pass", pass.as_str())],
        Some(&json!({"user_id": "dave", "seat_ids": ["102-A-2"]})),
    )
    .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (403, Some("invalid_pass"))
    );

    stop.send(()).unwrap();
    serving.await.unwrap().unwrap();
    server.sweeper.stop().await;
    let rooms = server.room_sweeper.stop().await;
    assert!(rooms.admitted >= 1, "{rooms:?}");
}

#[tokio::test]
async fn bad_room_flags_are_clear_errors() {
    let short = ServerArgs::try_parse_from(["ticketing-server", "--pass-secret", "short"]).unwrap();
    let error = build(&short).await.unwrap_err();
    assert_eq!(error.code(), "invalid_request", "{error}");
    let ungated =
        ServerArgs::try_parse_from(["ticketing-server", "--demo-room-rate", "5"]).unwrap();
    let error = build(&ungated).await.unwrap_err();
    assert!(error.to_string().contains("--demo"), "{error}");
}

/// The server on a durable store, where `Coalescing` batches reserves and commits: many
/// buyers at once each get their own reservation and order, and the pool sells exactly
/// what they bought. The store's server must be reachable (this fails, never skips).
async fn durable_server_sells_to_concurrent_buyers(store: &str, url_flag: &str, url: &str) {
    let event = format!("coalesced-{store}-{}", std::process::id());
    let args = ServerArgs::try_parse_from([
        "ticketing-server",
        "--store",
        store,
        url_flag,
        url,
        "--admin-key",
        "k",
        "--no-rate-limits",
        "--listen",
        "127.0.0.1:0",
    ])
    .unwrap();
    let server = build(&args)
        .await
        .unwrap_or_else(|error| panic!("{store} must be reachable at {url}: {error}"));
    let listener = tokio::net::TcpListener::bind(args.listen).await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(serve(listener, server.router, async {
        let _ = stopped.await;
    }));

    let spec = json!({
        "event_id": event,
        "name": "Coalesced",
        "seats": [],
        "pools": [{"pool": "field", "name": "Field", "capacity": 100}],
    });
    let (status, created) = exchange(
        address,
        "POST",
        "/v1/events",
        &[("x-admin-key", "k")],
        Some(&spec),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let buyers: Vec<_> = (0..24)
        .map(|n| {
            let event = event.clone();
            tokio::spawn(async move {
                let body = json!({"user_id": format!("buyer-{n}"), "ga": [{"pool": "field", "quantity": 2}]});
                let path = format!("/v1/events/{event}/reservations");
                let (status, held) = exchange(address, "POST", &path, &[], Some(&body)).await;
                assert_eq!(status, 201, "{held}");
                let id = held["reservation_id"].as_str().unwrap().to_owned();
                let token = held["token"].as_str().unwrap().to_owned();
                let key = format!("pay-{n}");
                let headers = [
                    ("reservation-token", token.as_str()),
                    ("idempotency-key", key.as_str()),
                ];
                let path = format!("/v1/reservations/{id}/commit");
                let (status, order) =
                    exchange(address, "POST", &path, &headers, Some(&json!({}))).await;
                assert_eq!(status, 200, "{order}");
                assert_eq!(order["reservation_id"].as_str(), Some(id.as_str()));
                assert_eq!(order["tickets"].as_array().unwrap().len(), 2);
            })
        })
        .collect();
    for buyer in buyers {
        buyer.await.unwrap();
    }
    let (status, seatmap) = exchange(
        address,
        "GET",
        &format!("/v1/events/{event}/seatmap"),
        &[],
        None,
    )
    .await;
    assert_eq!(status, 200, "{seatmap}");
    let field = &seatmap["pools"][0];
    assert_eq!(
        (field["sold"].as_u64(), field["available"].as_u64()),
        (Some(48), Some(52)),
        "{seatmap}"
    );

    stop.send(()).unwrap();
    serving.await.unwrap().unwrap();
    server.sweeper.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_server_coalesces_concurrent_buyers() {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    durable_server_sells_to_concurrent_buyers("postgres", "--database-url", &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_server_coalesces_concurrent_buyers() {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    durable_server_sells_to_concurrent_buyers("redis", "--redis-url", &url).await;
}
