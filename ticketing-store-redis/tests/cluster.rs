//! A real three-primary Redis Cluster on loopback ports, started by this test: the
//! conformance stress run and scripted scenarios through the cluster client, the waitlist's
//! race and release paths, with events spread over slots (and nodes), then torn down (every
//! server is killed on drop).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Server, TempDir, free_port};
use ticketing_core::testkit::waitlist::{self, TestWaitlist};
use ticketing_core::testkit::{TestStore, invariants::check_store, scenarios, stress};
use ticketing_core::{
    CommitRequest, EventId, EventSpec, HolderId, IdempotencyKey, ManualClock, Policy, PoolId,
    PoolSpec, ReserveRequest,
};
use ticketing_store_redis::{RedisStore, RedisStoreConfig};

/// Three cluster-enabled servers joined with `redis-cli --cluster create`.
struct Cluster {
    servers: Vec<Server>,
    _dir: TempDir,
}

impl Cluster {
    fn start() -> Self {
        let dir = TempDir::new("cluster");
        let servers: Vec<Server> = (0..3)
            .map(|_| {
                let port = free_port();
                let config = format!("nodes-{port}.conf");
                Server::start(
                    &dir.0,
                    port,
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        &config,
                        "--cluster-node-timeout",
                        "2000",
                        "--appendonly",
                        "no",
                    ],
                )
            })
            .collect();
        let addresses: Vec<String> = servers
            .iter()
            .map(|server| format!("127.0.0.1:{}", server.port))
            .collect();
        let output = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create");
        assert!(
            output.status.success(),
            "cluster create failed: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        let cluster = Self { servers, _dir: dir };
        cluster.wait_ok();
        cluster
    }

    fn wait_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        for server in &self.servers {
            while !server
                .cli(&["CLUSTER", "INFO"])
                .contains("cluster_state:ok")
            {
                assert!(
                    Instant::now() < deadline,
                    "the cluster did not become ok in 30 s"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    fn nodes(&self) -> Vec<String> {
        self.servers.iter().map(Server::url).collect()
    }

    /// The ports of the primaries holding keys in `key`'s slot.
    fn holders(&self, key: &str) -> Vec<u16> {
        let slot = self.servers[0].cli(&["CLUSTER", "KEYSLOT", key]);
        let slot = slot.trim();
        self.servers
            .iter()
            .filter(|server| {
                server
                    .cli(&["CLUSTER", "COUNTKEYSINSLOT", slot])
                    .trim()
                    .parse::<u64>()
                    .unwrap_or(0)
                    > 0
            })
            .map(|server| server.port)
            .collect()
    }
}

async fn cluster_store(cluster: &Cluster) -> TestStore {
    let t = cluster_waitlist(cluster).await;
    TestStore {
        store: t.store,
        clock: t.clock,
    }
}

async fn cluster_waitlist(cluster: &Cluster) -> TestWaitlist {
    let clock = ManualClock::default();
    let prefix = format!("c{:08x}:", rand::random::<u32>());
    let config = RedisStoreConfig::cluster(cluster.nodes())
        .key_prefix(prefix)
        .unwrap()
        .clock(Arc::new(clock.clone()));
    let store = RedisStore::connect(config)
        .await
        .unwrap_or_else(|error| panic!("cannot reach the test cluster: {error}"));
    TestWaitlist {
        store: Arc::new(store),
        clock,
    }
}

fn small_event(id: &str) -> EventSpec {
    EventSpec {
        id: EventId::new(id).unwrap(),
        name: id.into(),
        seats: vec![],
        pools: vec![PoolSpec {
            id: PoolId::new("ga").unwrap(),
            name: "GA".into(),
            capacity: 50,
        }],
        sale_window: None,
        policy: Policy::default(),
    }
}

#[test]
fn conformance_on_a_three_primary_cluster() {
    let cluster = Cluster::start();
    ticketing_core::testkit::block_on(async {
        // The kit's stress run: two hot events, sixteen buyers, a moving clock, the sweeper.
        let t = cluster_store(&cluster).await;
        stress::stress_hot_seats(&t).await;
        // Scripted scenarios through the cluster client.
        scenarios::lifecycle_transitions(cluster_store(&cluster).await).await;
        scenarios::tickets_error_paths(cluster_store(&cluster).await).await;
        scenarios::commit_is_idempotent_and_final(cluster_store(&cluster).await).await;
        scenarios::events_are_listed_in_pages(cluster_store(&cluster).await).await;
        scenarios::reserve_batch_is_independent(cluster_store(&cluster).await).await;
        // The waitlist: offers made in the scripts that free the items, on the event's slot.
        waitlist::waitlist_race(cluster_waitlist(&cluster).await).await;
        waitlist::every_release_path_serves(cluster_waitlist(&cluster).await).await;

        // Many events: their slots spread over every primary; each works, and the sweeper
        // reaches them all.
        let clock = ManualClock::default();
        let config = RedisStoreConfig::cluster(cluster.nodes())
            .key_prefix(format!("m{:08x}:", rand::random::<u32>()))
            .unwrap()
            .clock(Arc::new(clock.clone()));
        let store = RedisStore::connect(config).await.unwrap();
        let mut owners = BTreeSet::new();
        let mut events = Vec::new();
        for n in 0u32..24 {
            let spec = small_event(&format!("spread-{n}"));
            let event = spec.id.clone();
            store.create_event(spec).await.unwrap();
            let holders = cluster.holders(&format!("{{ev:{}}}", RedisStore::event_tag(&event)));
            assert_eq!(holders.len(), 1, "one primary holds all of an event's keys");
            owners.insert(holders[0]);
            let request = ReserveRequest::new(event.clone(), HolderId::new("h").unwrap())
                .ga(PoolId::new("ga").unwrap(), 2)
                .ttl_seconds(10);
            let reservation = store.reserve(request).await.unwrap();
            if n.is_multiple_of(2) {
                let commit = CommitRequest::new(
                    reservation.token.clone().unwrap(),
                    IdempotencyKey::new(format!("k{n}")).unwrap(),
                );
                store.commit(&reservation.id, commit).await.unwrap();
            }
            events.push(event);
        }
        assert_eq!(
            owners.len(),
            3,
            "24 events landed on every primary: {owners:?}"
        );
        clock.advance(Duration::from_secs(11));
        let mut expired = 0;
        loop {
            let step = store.expire_due(5).await.unwrap();
            assert!(step <= 5);
            if step == 0 {
                break;
            }
            expired += step;
        }
        assert_eq!(expired, 12, "the uncommitted half lapsed, on every node");
        for event in &events {
            check_store(&store, event)
                .await
                .unwrap_or_else(|why| panic!("{event}: {why}"));
        }
    });
}
