//! Throughput and latency of `RedisStore` against its practical limits, in one run.
//!
//! ```text
//! cargo run --release -p ticketing-store-redis --example redis_bench -- [seconds per case, default 3] [--private-only]
//! ```
//!
//! On a 50,000-seat event, for 1, 8 and 32 concurrent clients: reserves/s (one GA unit each)
//! and reserve + commit pairs/s, with p50/p99, next to `redis-benchmark` on the same server
//! running (a) the store's own reserve script by EVALSHA and (b) a minimal 4-key
//! all-or-nothing EVAL — the practical limits. Then `Coalescing` off and on at 32 and 256
//! concurrent callers on the one hot event.
//!
//! Every case runs first against a **private** `redis-server` that the bench starts itself
//! (a free loopback port, a temp dir, `appendonly yes`, `appendfsync always`: the durable
//! setting) and kills at the end, also on panic. Then, unless `--private-only`, against the
//! shared server at `REDIS_URL` (default the local one) as it is configured, for comparison.
//! Needs `redis-server`, `redis-cli` and `redis-benchmark` on the PATH.
//!
//! Beside each store figure: the server's CPU use (of one core; Redis runs commands on one
//! thread), the machine's (of all cores) and the server-side time per EVALSHA
//! (`INFO commandstats`); before the cases, the fdatasync latency of the private server's
//! disk. Together they say what limits a figure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::future::Future;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ticketing_core::{
    Coalescing, CoalescingConfig, CommitRequest, EventId, EventSpec, HolderId, IdempotencyKey,
    InventoryStore, Policy, PoolId, PoolSpec, ReserveRequest, Seat, SeatId,
};
use ticketing_store_redis::{RedisStore, RedisStoreConfig, reserve_script_source};

const SEATS: u32 = 50_000;

fn event(id: &EventId) -> EventSpec {
    EventSpec {
        id: id.clone(),
        name: "bench".into(),
        seats: (1..=SEATS)
            .map(|n| Seat {
                id: SeatId::new(format!("S-{n}")).unwrap(),
                section: "floor".into(),
                row: format!("{}", n / 50),
                number: n,
                category: "standard".into(),
                accessible: false,
                position: Default::default(),
            })
            .collect(),
        pools: vec![PoolSpec {
            id: PoolId::new("ga").unwrap(),
            name: "GA".into(),
            capacity: 10_000_000,
        }],
        sale_window: None,
        policy: Policy::default(),
    }
}

/// A `redis-server` of the bench's own on a free loopback port, in a fresh temp dir;
/// SIGKILLed and its directory removed when dropped (also while unwinding from a panic).
struct PrivateRedis {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl PrivateRedis {
    fn start(args: &[&str]) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .expect("a free loopback port");
        let dir = std::env::temp_dir().join(format!(
            "ticketing-redis-bench-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir"])
            .arg(&dir)
            .args(["--save", "", "--protected-mode", "no"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on the PATH");
        // The guard exists before the wait, so a server that never answers is killed too.
        let server = Self { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while cli(port, &["PING"]).trim() != "PONG" {
            assert!(
                Instant::now() < deadline,
                "the private redis-server did not answer within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `redis-cli` against the server on `port`; its standard output.
fn cli(port: u16, args: &[&str]) -> String {
    Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
        .unwrap_or_default()
}

/// `field:value` from an `INFO` answer.
fn info_field(info: &str, field: &str) -> Option<String> {
    info.lines()
        .find_map(|line| line.trim().strip_prefix(&format!("{field}:")))
        .map(str::to_owned)
}

/// A server under test.
struct Target {
    label: String,
    url: String,
    port: u16,
    pid: Option<u32>,
}

/// CPU time (user + system) of process `pid`, in clock ticks.
fn process_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After the name: state is field 3, utime 14 and stime 15.
    let field = |index: usize| -> u64 {
        fields
            .get(index)
            .and_then(|value| value.parse().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

/// The machine's (busy, iowait, total) clock ticks over all cores, from `/proc/stat`.
fn machine_ticks() -> (u64, u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let values: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|value| value.parse().ok())
        .collect();
    let total: u64 = values.iter().take(8).sum();
    let (idle, iowait) = (
        values.get(3).copied().unwrap_or(0),
        values.get(4).copied().unwrap_or(0),
    );
    (total - idle - iowait, iowait, total)
}

/// (calls, µs) of EVALSHA so far on the server.
fn evalsha_stats(port: u16) -> (u64, u64) {
    let stats = cli(port, &["INFO", "commandstats"]);
    let Some(line) = info_field(&stats, "cmdstat_evalsha") else {
        return (0, 0);
    };
    let value = |name: &str| -> u64 {
        line.split(',')
            .find_map(|part| part.strip_prefix(&format!("{name}=")))
            .and_then(|value| value.parse().ok())
            .unwrap_or(0)
    };
    (value("calls"), value("usec"))
}

/// Resource use during one case.
struct Usage {
    /// The server's CPU, in cores (Redis runs commands on one thread: 1.0 is its limit).
    server_cores: f64,
    /// Busy share of all the machine's cores (0–1), and the share waiting for I/O.
    machine_busy: f64,
    machine_iowait: f64,
    /// EVALSHA calls, and server-side µs per call (script run time, without the fsync).
    evalsha_calls: u64,
    evalsha_micros: f64,
}

impl Usage {
    fn cells(&self) -> String {
        format!(
            "{:.0}% | {:.0}% (+{:.0}% iowait) | {:.1}",
            self.server_cores * 100.0,
            self.machine_busy * 100.0,
            self.machine_iowait * 100.0,
            self.evalsha_micros
        )
    }
}

/// Snapshots taken before a case, turned into [`Usage`] after it.
struct Probe {
    port: u16,
    pid: Option<u32>,
    tick: f64,
    server: u64,
    machine: (u64, u64, u64),
    evalsha: (u64, u64),
    at: Instant,
}

impl Probe {
    fn start(target: &Target, tick: f64) -> Self {
        Self {
            port: target.port,
            pid: target.pid,
            tick,
            server: target.pid.map_or(0, process_ticks),
            machine: machine_ticks(),
            evalsha: evalsha_stats(target.port),
            at: Instant::now(),
        }
    }

    fn finish(self) -> Usage {
        let elapsed = self.at.elapsed().as_secs_f64();
        let server = self.pid.map_or(0, process_ticks) - self.server;
        let (busy, iowait, total) = machine_ticks();
        let total = (total - self.machine.2).max(1) as f64;
        let (calls, micros) = evalsha_stats(self.port);
        let calls = calls - self.evalsha.0;
        Usage {
            server_cores: server as f64 / self.tick / elapsed,
            machine_busy: (busy - self.machine.0) as f64 / total,
            machine_iowait: (iowait - self.machine.1) as f64 / total,
            evalsha_calls: calls,
            evalsha_micros: (micros - self.evalsha.1) as f64 / calls.max(1) as f64,
        }
    }
}

struct Outcome {
    ops: u64,
    elapsed: Duration,
    latency: Histogram<u64>,
}

impl Outcome {
    fn per_second(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    /// `rate | p50 / p99` with the latencies in ms.
    fn cells(&self) -> String {
        format!(
            "{:.0} | {:.2} / {:.2}",
            self.per_second(),
            self.latency.value_at_quantile(0.5) as f64 / 1_000.0,
            self.latency.value_at_quantile(0.99) as f64 / 1_000.0
        )
    }
}

/// Numbers for idempotency keys, unique over the whole run.
static NEXT: AtomicU64 = AtomicU64::new(0);

/// `clients` tasks each running `op(n)` with fresh numbers for `duration`.
async fn drive<F, Fut>(clients: usize, duration: Duration, op: F) -> Outcome
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut latency = Histogram::<u64>::new(3).unwrap();
                while start.elapsed() < duration {
                    let n = NEXT.fetch_add(1, Ordering::Relaxed);
                    let began = Instant::now();
                    op(n).await;
                    latency
                        .record(u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX))
                        .unwrap();
                }
                latency
            })
        })
        .collect();
    let mut latency = Histogram::<u64>::new(3).unwrap();
    for task in tasks {
        latency.add(task.await.unwrap()).unwrap();
    }
    Outcome {
        ops: latency.len(),
        elapsed: start.elapsed(),
        latency,
    }
}

fn ga_request(id: &EventId, holder: &str) -> ReserveRequest {
    ReserveRequest::new(id.clone(), HolderId::new(holder).unwrap())
        .ga(PoolId::new("ga").unwrap(), 1)
}

async fn reserves(
    store: Arc<dyn InventoryStore>,
    id: &EventId,
    clients: usize,
    duration: Duration,
) -> Outcome {
    let id = id.clone();
    drive(clients, duration, move |n| {
        let (store, request) = (store.clone(), ga_request(&id, &format!("c{}", n % 64)));
        async move {
            store.reserve(request).await.unwrap();
        }
    })
    .await
}

async fn commit_pairs(
    store: Arc<dyn InventoryStore>,
    id: &EventId,
    clients: usize,
    duration: Duration,
) -> Outcome {
    let id = id.clone();
    drive(clients, duration, move |n| {
        let (store, request) = (store.clone(), ga_request(&id, &format!("b{}", n % 64)));
        async move {
            let held = store.reserve(request).await.unwrap();
            let key = IdempotencyKey::new(format!("k{n}")).unwrap();
            store
                .commit(&held.id, CommitRequest::new(held.token.unwrap(), key))
                .await
                .unwrap();
        }
    })
    .await
}

/// redis-benchmark's requests/s and p50 (ms) for `command`.
fn redis_benchmark(
    port: u16,
    clients: usize,
    requests: usize,
    command: &[String],
) -> (f64, String) {
    let output = Command::new("redis-benchmark")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-q",
            "-r",
            "1000000000",
        ])
        .args(["-c", &clients.to_string(), "-n", &requests.to_string()])
        .args(command)
        .output()
        .expect("redis-benchmark on the PATH");
    let text = String::from_utf8_lossy(&output.stdout);
    // `-q` prints "<command>: <n> requests per second, p50=<x> msec".
    let last = text.rsplit('\r').next().unwrap_or_default().trim();
    let figures = last.rsplit_once(": ").map_or(last, |(_, figures)| figures);
    let rate = figures
        .split_whitespace()
        .next()
        .and_then(|rate| rate.parse().ok())
        .unwrap_or_else(|| panic!("redis-benchmark failed: {text}"));
    let p50 = figures
        .split_once("p50=")
        .map_or("?", |(_, p50)| p50.trim_end_matches(" msec"))
        .to_owned();
    (rate, p50)
}

/// p50 and p99 (µs) of appending 256 bytes to a file in `dir` and `fdatasync`ing it: what
/// `appendfsync always` pays at least once per event-loop turn that wrote anything.
fn fdatasync_micros(dir: &Path) -> (u64, u64) {
    let path = dir.join("fsync-probe");
    let mut file = std::fs::File::create(&path).unwrap();
    let mut latency = Histogram::<u64>::new(3).unwrap();
    for _ in 0..200 {
        let began = Instant::now();
        file.write_all(&[b'x'; 256]).unwrap();
        file.sync_data().unwrap();
        latency
            .record(u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX))
            .unwrap();
    }
    drop(file);
    let _ = std::fs::remove_file(&path);
    (
        latency.value_at_quantile(0.5),
        latency.value_at_quantile(0.99),
    )
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

async fn bench(target: &Target, duration: Duration, tick: f64) {
    let seconds = duration.as_secs_f64();
    println!("\n### {}\n", target.label);
    let prefix = format!("bench:{:08x}:", rand::random::<u32>());
    let store = RedisStore::connect(
        RedisStoreConfig::new(&target.url)
            .key_prefix(&prefix)
            .unwrap(),
    )
    .await
    .expect("the server reachable");
    let id = EventId::new("bench-50k").unwrap();
    store.create_event(event(&id)).await.unwrap();

    // (a) the reserve script itself, by SHA, with the same keys and a one-request batch.
    let sha = redis::Script::new(&reserve_script_source())
        .get_hash()
        .to_owned();
    let tag = RedisStore::event_tag(&id);
    let request = format!(
        r#"[{{"id":"rsv___rand_int__.{tag}","tok":"x","holder":"rb","seats":[],"ga":[{{"pool":"ga","quantity":1}}],"fp":{{}}}}]"#
    );
    let keys = store.event_keys(&id);
    let mut evalsha = vec!["EVALSHA".to_owned(), sha, keys.len().to_string()];
    evalsha.extend(keys);
    evalsha.extend([
        String::new(),
        id.to_string(),
        "86400000".to_owned(),
        request,
    ]);
    // (b) a minimal all-or-nothing claim of 4 keys.
    let minimal: Vec<String> = [
        "EVAL",
        "for i = 1, 4 do if redis.call('EXISTS', KEYS[i]) == 1 then return 0 end end \
         for i = 1, 4 do redis.call('SET', KEYS[i], 1) end return 1",
        "4",
        "{b}:__rand_int__:1",
        "{b}:__rand_int__:2",
        "{b}:__rand_int__:3",
        "{b}:__rand_int__:4",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();

    let direct: Arc<dyn InventoryStore> = Arc::new(store.clone());
    println!(
        "| clients | reserves/s | p50 / p99 ms | reserve + commit pairs/s | p50 / p99 ms | (a) EVALSHA reserve, req/s (p50 ms) | (b) 4-key EVAL, req/s (p50 ms) | store / (a) | store / (b) | server CPU, reserves | machine busy, reserves | EVALSHA µs/call, reserves |"
    );
    println!("|---:|---:|---|---:|---|---|---|---:|---:|---:|---|---:|");
    for clients in [1, 8, 32] {
        let probe = Probe::start(target, tick);
        let reserved = reserves(direct.clone(), &id, clients, duration).await;
        let usage = probe.finish();
        let pairs = commit_pairs(direct.clone(), &id, clients, duration).await;
        // As many requests as the store did in its run: about as long.
        let requests = (reserved.per_second() * seconds) as usize;
        let (a, a_p50) = redis_benchmark(target.port, clients, requests.max(1_000), &evalsha);
        let (b, b_p50) = redis_benchmark(target.port, clients, requests.max(1_000), &minimal);
        println!(
            "| {clients} | {} | {} | {a:.0} ({a_p50}) | {b:.0} ({b_p50}) | {:.2} | {:.2} | {} |",
            reserved.cells(),
            pairs.cells(),
            reserved.per_second() / a,
            reserved.per_second() / b,
            usage.cells()
        );
    }

    println!("\n`Coalescing` (max batch 256), single-unit GA reserves on the one hot event:\n");
    println!(
        "| callers | coalescing | reserves/s | p50 / p99 ms | reserves per EVALSHA | server CPU | machine busy | EVALSHA µs/call |"
    );
    println!("|---:|---|---:|---|---:|---:|---|---:|");
    for callers in [32, 256] {
        let mut rates = [0.0; 2];
        for (on, rate) in [false, true].into_iter().zip(&mut rates) {
            let store: Arc<dyn InventoryStore> = if on {
                Arc::new(Coalescing::with_config(
                    store.clone(),
                    CoalescingConfig::default().max_batch(256),
                ))
            } else {
                direct.clone()
            };
            let probe = Probe::start(target, tick);
            let outcome = reserves(store, &id, callers, duration).await;
            let usage = probe.finish();
            *rate = outcome.per_second();
            println!(
                "| {callers} | {} | {} | {:.1} | {} |",
                if on { "on" } else { "off" },
                outcome.cells(),
                outcome.ops as f64 / usage.evalsha_calls.max(1) as f64,
                usage.cells()
            );
        }
        println!(
            "\non / off at {callers} callers: {:.2}\n",
            rates[1] / rates[0]
        );
    }

    let persistence = cli(target.port, &["INFO", "persistence"]);
    let stats = cli(target.port, &["INFO", "stats"]);
    println!(
        "server: aof_rewrites {}, total_forks {}, aof_current_size {}",
        info_field(&persistence, "aof_rewrites").unwrap_or_default(),
        info_field(&stats, "total_forks").unwrap_or_default(),
        info_field(&persistence, "aof_current_size").unwrap_or_default(),
    );
    store.delete_all().await.unwrap();
    cli(
        target.port,
        &[
            "EVAL",
            "for _, k in ipairs(redis.call('KEYS', '{b}:*')) do redis.call('UNLINK', k) end return 1",
            "0",
        ],
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let seconds: u64 = arguments.first().and_then(|s| s.parse().ok()).unwrap_or(3);
    let private_only = arguments
        .iter()
        .any(|argument| argument == "--private-only");
    let duration = Duration::from_secs(seconds);
    let tick: f64 = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8_lossy(&output.stdout).trim().parse().ok())
        .unwrap_or(100.0);

    let private = PrivateRedis::start(&["--appendonly", "yes", "--appendfsync", "always"]);
    let version =
        info_field(&cli(private.port, &["INFO", "server"]), "redis_version").unwrap_or_default();
    let (fsync_p50, fsync_p99) = fdatasync_micros(&private.dir);
    println!(
        "{seconds} s per case, 50,000-seat event, redis {version}, {} cores, load average {} at start",
        std::thread::available_parallelism().map_or(0, usize::from),
        load_average()
    );
    println!(
        "fdatasync of a 256-byte append in the private server's dir ({}): p50 {fsync_p50} µs, p99 {fsync_p99} µs",
        private.dir.display()
    );

    let mut targets = vec![Target {
        label: format!(
            "Private redis-server, appendonly yes, appendfsync always (port {})",
            private.port
        ),
        url: format!("redis://127.0.0.1:{}", private.port),
        port: private.port,
        pid: Some(private.child.id()),
    }];
    if !private_only {
        let url =
            std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
        let port: u16 = url
            .rsplit(':')
            .next()
            .and_then(|port| port.trim_end_matches('/').parse().ok())
            .unwrap_or(6379);
        let appendonly = cli(port, &["CONFIG", "GET", "appendonly"]);
        let save = cli(port, &["CONFIG", "GET", "save"]);
        let describe = |answer: &str| answer.lines().nth(1).unwrap_or("?").trim().to_owned();
        targets.push(Target {
            label: format!(
                "Shared server {url}, for comparison: appendonly {}, save \"{}\" (not durable)",
                describe(&appendonly),
                describe(&save)
            ),
            url,
            port,
            pid: info_field(&cli(port, &["INFO", "server"]), "process_id")
                .and_then(|pid| pid.parse().ok()),
        });
    }
    for target in &targets {
        bench(target, duration, tick).await;
    }
    drop(private);
    println!("\nload average {} at end", load_average());
}
