//! The live seat map page in a real browser: Debian's Chromium, driven by playwright-core
//! (`examples/web/test/browser.mjs`), against the example server on 127.0.0.1:0 over the
//! in-memory store. The page opens a small stadium and a click holds a seat; then this test
//! runs a small flash sale over HTTP, and the page, never reloaded, shows every seat the
//! sale sold and held. The screenshot is kept in `target/browser-artifacts/seatmap.png`.
//!
//! Needs Node.js, playwright-core (`npm ci` in `examples/web/test`) and `/usr/bin/chromium`
//! (`TICKETING_CHROMIUM` for another path); `scripts/test` installs them. Without them the
//! test fails, saying what is missing: it never skips.
//!
//! The script and this test talk over its stdio: the script prints `@@ held SEAT` once the
//! clicked seat shows held, reads one JSON line of what the sale did, and prints `@@ done`
//! once the page shows all of it.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use ticketing_examples::server::{ServerArgs, build, serve};

const EVENT: &str = "small-stadium";
/// An event behind a waiting room with one place, which the test keeps taken at first.
const GATED_EVENT: &str = "gated-hall";
const GATED_SEAT: &str = "101-A-3";
const ADMIN_KEY: &str = "browser-test";
const SECTIONS: [&str; 4] = ["101", "102", "103", "104"];
const ROWS: u32 = 10;
const SEATS_PER_ROW: u32 = 20;
const FIELD_CAPACITY: u32 = 300;
/// The seat the page clicks; the sale asks for it too, and gets a conflict.
const PAGE_SEAT: &str = "101-A-1";
/// Buyers at once, and purchases each.
const BUYERS: usize = 16;
const ROUNDS: usize = 6;
/// How long the script may take to reach each point.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

type HttpClient = Client<HttpConnector, Full<Bytes>>;

struct Api {
    client: HttpClient,
    base: String,
}

impl Api {
    async fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let bytes = match body {
            Some(body) => {
                request = request.header("content-type", "application/json");
                Bytes::from(body.to_string())
            }
            None => Bytes::new(),
        };
        let response = self
            .client
            .request(request.body(Full::new(bytes)).unwrap())
            .await
            .unwrap_or_else(|error| panic!("{method} {path}: {error}"));
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    async fn seat_statuses(&self) -> (BTreeMap<String, String>, Value) {
        let (status, map) = self
            .call("GET", &format!("/v1/events/{EVENT}/seatmap"), &[], None)
            .await;
        assert_eq!(status, 200, "{map}");
        let seats = map["seats"]
            .as_array()
            .unwrap()
            .iter()
            .map(|seat| {
                let id = seat["seat_id"].as_str().unwrap().to_owned();
                (id, seat["status"].as_str().unwrap().to_owned())
            })
            .collect();
        (seats, map["pools"][0].clone())
    }
}

fn row_letter(row: u32) -> char {
    char::from(b'A' + u8::try_from(row).unwrap())
}

/// A small stadium: four sections of 10 rows of 20 seats, and a standing field.
fn small_stadium() -> Value {
    let mut seats = Vec::new();
    for section in SECTIONS {
        for row in 0..ROWS {
            for number in 1..=SEATS_PER_ROW {
                seats.push(json!({
                    "seat_id": format!("{section}-{}-{number}", row_letter(row)),
                    "section": section,
                    "row": row_letter(row).to_string(),
                    "number": number,
                    "category": if section == "101" { "premium" } else { "standard" },
                    "x": number,
                    "y": row,
                }));
            }
        }
    }
    json!({
        "event_id": EVENT,
        "name": "Small Stadium",
        "seats": seats,
        "pools": [{"pool": "field", "name": "Standing field", "capacity": FIELD_CAPACITY}],
    })
}

/// What the flash sale did.
#[derive(Debug, Default)]
struct Sale {
    sold: Vec<String>,
    held: Vec<String>,
    field_sold: u32,
    field_held: u32,
    conflicts: u32,
    orders: u32,
}

/// One buyer's reserve body for one round: hot pairs in sections 101 and 102 (buyers ask
/// for the same pairs, and the first pair is the page's seat and its neighbour), best
/// available in 103, or GA units with a seat in 104.
fn reserve_body(buyer: usize, round: usize) -> Value {
    let user = format!("buyer-{buyer}");
    match (buyer + round) % 4 {
        pick @ (0 | 1) => {
            let slot = (buyer * 3 + round * 5) % 30;
            let row = row_letter(u32::try_from(slot / 10).unwrap());
            let first = (slot % 10) * 2 + 1;
            let section = SECTIONS[pick];
            let seats = [
                format!("{section}-{row}-{first}"),
                format!("{section}-{row}-{}", first + 1),
            ];
            json!({"user_id": user, "seat_ids": seats})
        }
        2 => json!({"user_id": user, "best_available": {"count": 3, "section": "103"}}),
        _ => json!({
            "user_id": user,
            "ga": [{"pool": "field", "quantity": 2}],
            "best_available": {"count": 1, "section": "104"},
        }),
    }
}

/// One buyer: reserve (on a conflict, best available in the same section instead), then
/// commit, or walk away now and then, leaving the hold.
async fn buyer(api: &Api, buyer: usize) -> Sale {
    let mut sale = Sale::default();
    let path = format!("/v1/events/{EVENT}/reservations");
    for round in 0..ROUNDS {
        let body = reserve_body(buyer, round);
        let (mut status, mut held) = api.call("POST", &path, &[], Some(&body)).await;
        if status == 409 && held["code"] == "seat_unavailable" {
            sale.conflicts += 1;
            let section = &body["seat_ids"][0].as_str().unwrap()[..3];
            let retry = json!({"user_id": body["user_id"], "best_available": {"count": 2, "section": section}});
            (status, held) = api.call("POST", &path, &[], Some(&retry)).await;
        }
        assert_eq!(status, 201, "buyer {buyer} round {round}: {held}");
        let units = |field: &Value| {
            field.as_array().map_or(0, |ga| {
                ga.iter()
                    .map(|g| g["quantity"].as_u64().unwrap())
                    .sum::<u64>()
            })
        };
        if (buyer * ROUNDS + round) % 9 == 4 {
            let seats = held["seats"].as_array().unwrap();
            sale.held
                .extend(seats.iter().map(|s| s.as_str().unwrap().to_owned()));
            sale.field_held += u32::try_from(units(&held["ga"])).unwrap();
            continue;
        }
        let id = held["reservation_id"].as_str().unwrap();
        let key = format!("sale-{buyer}-{round}");
        let headers = [
            ("reservation-token", held["token"].as_str().unwrap()),
            ("idempotency-key", key.as_str()),
        ];
        let pay = json!({"payment_id": key});
        let commit = format!("/v1/reservations/{id}/commit");
        let (status, order) = api.call("POST", &commit, &headers, Some(&pay)).await;
        assert_eq!(status, 200, "buyer {buyer} round {round} commit: {order}");
        sale.orders += 1;
        for ticket in order["tickets"].as_array().unwrap() {
            match ticket["seat_id"].as_str() {
                Some(seat) => sale.sold.push(seat.to_owned()),
                None => sale.field_sold += 1,
            }
        }
    }
    sale
}

async fn flash_sale(api: &'static Api) -> Sale {
    let tasks: Vec<_> = (0..BUYERS)
        .map(|index| tokio::spawn(buyer(api, index)))
        .collect();
    let mut sale = Sale::default();
    for task in tasks {
        let part = task.await.unwrap();
        sale.sold.extend(part.sold);
        sale.held.extend(part.held);
        sale.field_sold += part.field_sold;
        sale.field_held += part.field_held;
        sale.conflicts += part.conflicts;
        sale.orders += part.orders;
    }
    sale
}

/// The browser script, killed if the test ends first.
struct Script {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Script {
    /// Waits for the script's `@@ {what}` line and returns the rest of it; other lines are
    /// its log, passed on.
    fn expect(&mut self, what: &str) -> String {
        let deadline = Instant::now() + STEP_TIMEOUT;
        let prefix = format!("@@ {what}");
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(&prefix) => {
                    println!("browser: {line}");
                    return line[prefix.len()..].trim().to_owned();
                }
                Ok(line) => println!("browser: {line}"),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("the browser script did not report `{what}` within {STEP_TIMEOUT:?}")
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().map(|s| s.to_string());
                    panic!(
                        "the browser script ended before `{what}` ({status:?}); its stderr is above"
                    )
                }
            }
        }
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Node, playwright-core and Chromium, or a failure that says how to get them.
fn prerequisites(web_test: &Path) -> PathBuf {
    let node = Command::new("node").arg("--version").output();
    match node {
        Ok(output) if output.status.success() => {}
        _ => panic!(
            "Node.js is missing (`node --version` failed): install it (apt-get install -y nodejs npm), \
             then `npm ci --no-audit --no-fund` in examples/web/test; scripts/test does both"
        ),
    }
    let playwright = web_test.join("node_modules/playwright-core/package.json");
    assert!(
        playwright.is_file(),
        "playwright-core is missing ({}): run `npm ci --no-audit --no-fund` in examples/web/test \
         (scripts/test does)",
        playwright.display()
    );
    let chromium = std::env::var_os("TICKETING_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        chromium.is_file(),
        "Chromium is missing ({}): apt-get install -y chromium (scripts/test does), or set \
         TICKETING_CHROMIUM to a Chromium binary",
        chromium.display()
    );
    chromium
}

/// `target/browser-artifacts/seatmap.png`, in CARGO_TARGET_DIR when it is set.
fn screenshot_path() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace.join("target"), |dir| workspace.join(dir));
    target.join("browser-artifacts").join("seatmap.png")
}

fn start_script(web_test: &Path, chromium: &Path, base: &str, screenshot: &Path) -> Script {
    let mut child = Command::new("node")
        .arg("browser.mjs")
        .args([base, EVENT, PAGE_SEAT])
        .arg(screenshot)
        .arg(chromium)
        .args([GATED_EVENT, GATED_SEAT])
        .current_dir(web_test)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start node");
    let stdout = child.stdout.take().unwrap();
    let (sender, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let stdin = child.stdin.take();
    Script {
        child,
        stdin,
        lines,
    }
}

#[test]
fn the_page_shows_a_flash_sale_live() {
    let web_test = Path::new(env!("CARGO_MANIFEST_DIR")).join("web/test");
    let chromium = prerequisites(&web_test);
    let screenshot = screenshot_path();
    let _ = std::fs::remove_file(&screenshot);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    let args = [
        "ticketing-server",
        "--admin-key",
        ADMIN_KEY,
        "--listen",
        "127.0.0.1:0",
        "--no-rate-limits",
        "--sweep-interval-ms",
        "200",
    ];
    let args = ServerArgs::try_parse_from(args).unwrap();
    let server = runtime.block_on(build(&args)).unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(args.listen))
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = runtime.spawn(serve(listener, server.router, async {
        let _ = stopped.await;
    }));
    let api: &'static Api = Box::leak(Box::new(Api {
        client: Client::builder(TokioExecutor::new()).build_http(),
        base: base.clone(),
    }));
    let admin = [("x-admin-key", ADMIN_KEY)];
    let (status, created) =
        runtime.block_on(api.call("POST", "/v1/events", &admin, Some(&small_stadium())));
    assert_eq!(status, 201, "{created}");

    // The gated event: one shopper at a time, and an early bird holding that place.
    let mut hall = small_stadium();
    hall["event_id"] = json!(GATED_EVENT);
    hall["name"] = json!("Gated Hall");
    let (status, created) = runtime.block_on(api.call("POST", "/v1/events", &admin, Some(&hall)));
    assert_eq!(status, 201, "{created}");
    let queue = format!("/v1/events/{GATED_EVENT}/queue");
    let (status, room) =
        runtime.block_on(api.call("PUT", &queue, &admin, Some(&json!({"active_max": 1}))));
    assert_eq!(status, 200, "{room}");
    let early_bird = runtime.block_on(async {
        let (status, joined) = api
            .call("POST", &queue, &[], Some(&json!({"user_id": "early-bird"})))
            .await;
        assert_eq!(status, 200, "{joined}");
        let ticket = joined["ticket_id"].as_str().unwrap().to_owned();
        for _ in 0..100 {
            let (_, view) = api
                .call("GET", &format!("/v1/queue/{ticket}"), &[], None)
                .await;
            if view["status"] == "admitted" {
                return ticket;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the early bird was not admitted");
    });

    let started = Instant::now();
    let mut script = start_script(&web_test, &chromium, &base, &screenshot);
    assert_eq!(script.expect("held"), PAGE_SEAT);

    let sale = runtime.block_on(flash_sale(api));
    println!(
        "flash sale: {} orders, {} seats sold, {} held, field {} sold {} held, {} conflicts",
        sale.orders,
        sale.sold.len(),
        sale.held.len(),
        sale.field_sold,
        sale.field_held,
        sale.conflicts
    );
    assert!(sale.sold.len() >= 100, "{sale:?}");
    assert!(
        sale.conflicts >= 1,
        "the page's seat was asked for: {sale:?}"
    );
    assert!(!sale.sold.iter().any(|seat| seat == PAGE_SEAT));
    let (statuses, field) = runtime.block_on(api.seat_statuses());
    for seat in &sale.sold {
        assert_eq!(statuses[seat], "sold", "{seat} on the server");
    }
    assert_eq!(field["sold"], sale.field_sold, "{field}");

    let expected = json!({
        "sold": sale.sold,
        "held": sale.held,
        "pools": {"field": {"sold": sale.field_sold, "held": sale.field_held}},
    });
    script.send(&expected.to_string());
    script.expect("screenshot");
    let counts = script.expect("done");
    // The page waits behind the early bird; once it leaves, the page is admitted.
    assert_eq!(script.expect("queued"), "1");
    let (status, _) =
        runtime.block_on(api.call("DELETE", &format!("/v1/queue/{early_bird}"), &[], None));
    assert_eq!(status, 204);
    script.send("room made");
    assert_eq!(script.expect("admitted"), GATED_SEAT);
    let status = script.child.wait().unwrap();
    assert!(status.success(), "the browser script failed: {status}");
    println!("page counts at the end: {counts}");

    let (statuses, _) = runtime.block_on(api.seat_statuses());
    assert_eq!(statuses[PAGE_SEAT], "sold", "the page bought its seat");
    let size = std::fs::metadata(&screenshot).map(|m| m.len()).unwrap_or(0);
    assert!(size > 0, "no screenshot at {}", screenshot.display());
    println!(
        "screenshot: {} ({size} bytes); browser part took {:?}",
        screenshot.display(),
        started.elapsed()
    );

    stop.send(()).unwrap();
    runtime.block_on(serving).unwrap().unwrap();
    runtime.block_on(server.sweeper.stop());
    runtime.block_on(server.room_sweeper.stop());
}
