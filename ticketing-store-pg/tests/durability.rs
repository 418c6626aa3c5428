//! Crash durability: a private PostgreSQL (initdb in a temporary directory, a free loopback
//! port) takes concurrent reservations and commits, is killed with SIGKILL mid-run and
//! restarted; then every acknowledged commit is there, no seat is sold twice, and the change
//! log replays to the snapshot (nothing half-applied).
//!
//! Needs the PostgreSQL server binaries (`/usr/lib/postgresql/<version>/bin`, installed by
//! `scripts/test`) and root, to run them as the `postgres` user. It fails, never skips,
//! without them.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ticketing_core::{
    CommitRequest, Error, EventId, EventSpec, HolderId, IdempotencyKey, OrderId, Policy, PoolId,
    PoolSpec, ReserveRequest, Seat, SeatId, SeatStatus, TicketStatus,
};
use ticketing_store_pg::{PgStore, PgStoreConfig};
use tokio::sync::Mutex;

const SEATS: u32 = 2_000;
const WRITERS: u32 = 8;

/// The newest installed server's binaries.
fn server_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries under /usr/lib/postgresql (scripts/test installs them)")
        .map(|entry| entry.unwrap().path().join("bin"))
        .filter(|bin| bin.join("postgres").exists())
        .collect();
    versions.sort_by_key(|bin| {
        bin.parent()
            .and_then(|version| version.file_name())
            .and_then(|name| name.to_str())
            .and_then(|name| name.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions.pop().expect("a PostgreSQL server installation")
}

fn as_postgres(program: &Path) -> Command {
    let mut command = Command::new("runuser");
    command.args(["-u", "postgres", "--"]).arg(program);
    command
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    process: Option<Child>,
}

impl Server {
    fn init() -> Self {
        let data = std::env::temp_dir().join(format!(
            "ticketing-durability-{:016x}",
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&data).unwrap();
        let chown = Command::new("chown")
            .arg("postgres:postgres")
            .arg(&data)
            .status()
            .unwrap();
        assert!(
            chown.success(),
            "chown {} to postgres (this test runs as root)",
            data.display()
        );
        let bin = server_bin();
        let initdb = as_postgres(&bin.join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .status()
            .expect("runuser and initdb");
        assert!(initdb.success(), "initdb failed");
        let mut server = Self {
            bin,
            data,
            port: free_port(),
            process: None,
        };
        server.start();
        server
    }

    fn start(&mut self) {
        let child = as_postgres(&self.bin.join("postgres"))
            .arg("-D")
            .arg(&self.data)
            .args([
                "-p",
                &self.port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
                "-k",
            ])
            .arg(&self.data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // A process group of its own: the kill takes the server and every backend at once.
            .process_group(0)
            .spawn()
            .expect("start postgres");
        self.process = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the private server did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL to the server's process group: the postmaster and its backends die at once,
    /// with no shutdown checkpoint.
    fn kill(&mut self) {
        if let Some(mut child) = self.process.take() {
            let group = format!("-{}", child.id());
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = child.wait();
            // Wait for the port to close.
            let deadline = Instant::now() + Duration::from_secs(30);
            while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                assert!(
                    Instant::now() < deadline,
                    "the killed server still accepts connections"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

fn event_spec() -> EventSpec {
    EventSpec {
        id: EventId::new("crash").unwrap(),
        name: "crash test".into(),
        seats: (1..=SEATS)
            .map(|number| Seat {
                id: SeatId::new(format!("S-{number}")).unwrap(),
                section: "S".into(),
                row: "1".into(),
                number,
                category: String::new(),
                accessible: false,
                position: Default::default(),
            })
            .collect(),
        pools: vec![PoolSpec {
            id: PoolId::new("ga").unwrap(),
            name: String::new(),
            capacity: 500,
        }],
        sale_window: None,
        policy: Policy::default(),
    }
}

async fn connect(url: &str) -> PgStore {
    // After a crash the server accepts TCP at once but refuses sessions ("the database system
    // is starting up") until recovery has replayed the WAL, which takes longer on a busy
    // machine: retry until it is ready.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let config = PgStoreConfig::new(url)
            .schema("durable")
            .unwrap()
            .acquire_timeout(Duration::from_secs(2));
        match PgStore::connect(config).await {
            Ok(store) => return store,
            Err(error) if Instant::now() >= deadline => {
                panic!("connect to the private server: {error:?}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_commits_survive_sigkill() {
    let mut server = Server::init();
    let store = Arc::new(connect(&server.url()).await);
    store.create_event(event_spec()).await.unwrap();
    let acknowledged: Arc<Mutex<Vec<OrderId>>> = Arc::default();
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let (store, acknowledged) = (store.clone(), acknowledged.clone());
        writers.push(tokio::spawn(async move {
            // Each writer its own seats: commits are in flight, not refused, when the kill comes.
            for round in 0..SEATS / WRITERS {
                let seat =
                    SeatId::new(format!("S-{}", 1 + writer * (SEATS / WRITERS) + round)).unwrap();
                let request = ReserveRequest::new(
                    EventId::new("crash").unwrap(),
                    HolderId::new(format!("w{writer}")).unwrap(),
                )
                .seats([seat])
                .ga(PoolId::new("ga").unwrap(), 1);
                let held = match store.reserve(request).await {
                    Ok(held) => held,
                    Err(Error::SeatUnavailable { .. }) => continue,
                    Err(_) => return, // the server is gone
                };
                let key = IdempotencyKey::new(format!("k-{writer}-{round}")).unwrap();
                match store
                    .commit(&held.id, CommitRequest::new(held.token.unwrap(), key))
                    .await
                {
                    Ok(order) => acknowledged.lock().await.push(order.id),
                    Err(_) => return,
                }
            }
        }));
    }
    // Let the writers get going, then kill the server under them.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    server.kill();
    for writer in writers {
        writer.await.unwrap();
    }
    let acknowledged = acknowledged.lock().await.clone();
    assert!(
        !acknowledged.is_empty(),
        "some commits were acknowledged before the crash"
    );
    eprintln!("{} commits acknowledged before SIGKILL", acknowledged.len());
    drop(store);

    server.start();
    let store = connect(&server.url()).await;
    let event = store.event(&EventId::new("crash").unwrap()).await.unwrap();
    // Every acknowledged commit is there, with its tickets valid.
    let mut sold_seats = std::collections::BTreeSet::new();
    for order in &acknowledged {
        let order = store
            .order(order)
            .await
            .expect("an acknowledged order survives the crash");
        for ticket in &order.tickets {
            assert_eq!(ticket.status, TicketStatus::Valid);
            if let ticketing_core::TicketItem::Seat(seat) = &ticket.item {
                assert!(sold_seats.insert(seat.clone()), "seat {seat} sold twice");
            }
        }
    }
    // The log replays to the snapshot: no change without its state, no state without its change.
    let availability = store.availability(&event.id).await.unwrap();
    let log = store.changes(&event.id, 0, 10_000).await.unwrap();
    let replayed = ticketing_core::testkit::invariants::replay(&event, &log)
        .unwrap_or_else(|why| panic!("after the crash the log does not replay: {why}"));
    assert_eq!(replayed, availability);
    let sold = availability
        .seats
        .iter()
        .filter(|s| **s == SeatStatus::Sold)
        .count();
    assert!(sold >= sold_seats.len(), "every acknowledged seat is sold");
    assert_eq!(
        u32::try_from(sold).unwrap(),
        availability.pools[0].sold,
        "each committed reservation sold one seat and one unit: nothing half-applied"
    );
}
