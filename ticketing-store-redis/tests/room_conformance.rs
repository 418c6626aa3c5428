//! The waiting room against a real Redis server: the conformance suite of
//! `ticketing_core::testkit::room` (each scenario under a key prefix of its own), a
//! step-by-step comparison with the in-memory reference, and the suite again on a
//! three-primary cluster that the test starts.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Server, TempDir, free_port};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ticketing_core::testkit::block_on;
use ticketing_core::testkit::room::{self as scenarios, TestRoom, memory_room_for_test};
use ticketing_core::{
    Clock, EventId, HolderId, ManualClock, QueueState, QueueTicketId, RoomSettings,
};
use ticketing_store_redis::testkit::redis_room_for_test;
use ticketing_store_redis::{RedisStoreConfig, RedisWaitingRoom};

ticketing_core::room_conformance_suite!(redis_room_for_test);

/// Settings the comparison switches between: rate, cap, both, inventory-bound, an opening.
fn variant(n: usize, now: ticketing_core::Timestamp) -> RoomSettings {
    let settings = match n % 5 {
        0 => RoomSettings::rate(3),
        1 => RoomSettings::rate(10).active_max(4),
        2 => RoomSettings::cap(3),
        3 => RoomSettings::cap(6).seats_per_buyer(3),
        _ => RoomSettings::rate(2).opens_at(now.saturating_add(Duration::from_secs(2))),
    };
    settings.pass_ttl_seconds(10 + 5 * (n as u32 % 3))
}

/// Random joins, polls, leaves, steps, reconfigurations and clock moves on both backends
/// at once; every answer must be the same (ticket ids matched pairwise). At most one
/// visitor joins a pre-queue, as the backends' shuffles differ.
async fn compare_with_memory(seed: u64, operations: usize) {
    let redis = redis_room_for_test().await;
    let memory = memory_room_for_test().await;
    assert_eq!(Clock::now(&redis.clock), Clock::now(&memory.clock));
    let mut rng = StdRng::seed_from_u64(seed);
    let event = EventId::new(format!("room-model-{seed}")).unwrap();
    let settings = variant(seed as usize, Clock::now(&memory.clock));
    redis.rooms.configure(&event, settings).await.unwrap();
    memory.rooms.configure(&event, settings).await.unwrap();
    // Memory's ticket id -> Redis's.
    let mut pairs: HashMap<QueueTicketId, QueueTicketId> = HashMap::new();
    let mut order: Vec<QueueTicketId> = Vec::new();
    let mut prequeued = false;
    for step in 0..operations {
        let context = format!("seed {seed}, step {step}");
        match rng.random_range(0..100) {
            0..35 => {
                let visitor = HolderId::new(format!("v{}", rng.random_range(0..80))).unwrap();
                let opened = memory.rooms.stats(&event).await.unwrap().opened_at;
                if opened.is_none() && prequeued {
                    continue;
                }
                prequeued |= opened.is_none();
                let m = memory.rooms.join(&event, &visitor).await.unwrap();
                let r = redis.rooms.join(&event, &visitor).await.unwrap();
                assert_eq!(
                    (&r.event, &r.visitor, r.joined_at),
                    (&m.event, &m.visitor, m.joined_at),
                    "{context}"
                );
                match pairs.get(&m.id) {
                    Some(known) => assert_eq!(known, &r.id, "{context}: the same place"),
                    None => {
                        assert!(!pairs.values().any(|id| *id == r.id), "{context}: new");
                        pairs.insert(m.id.clone(), r.id.clone());
                        order.push(m.id);
                    }
                }
            }
            35..60 if !order.is_empty() => {
                let m = &order[rng.random_range(0..order.len())];
                let expected = memory.rooms.status(m).await.unwrap();
                let got = redis.rooms.status(&pairs[m]).await.unwrap();
                let got = QueueState {
                    ticket: ticketing_core::QueueTicket {
                        id: m.clone(),
                        ..got.ticket
                    },
                    ..got
                };
                assert_eq!(got, expected, "{context}");
            }
            60..68 if !order.is_empty() => {
                let m = &order[rng.random_range(0..order.len())];
                memory.rooms.leave(m).await.unwrap();
                redis.rooms.leave(&pairs[m]).await.unwrap();
            }
            68..82 => {
                let free = [0, 1, 5, 12, 1_000_000][rng.random_range(0..5)];
                let m = memory.rooms.admit(&event, free).await.unwrap();
                let r = redis.rooms.admit(&event, free).await.unwrap();
                assert_eq!(r, m, "{context}: admit with {free} free");
            }
            82..86 => {
                let m = memory.rooms.stats(&event).await.unwrap();
                assert_eq!(redis.rooms.stats(&event).await.unwrap(), m, "{context}");
            }
            86..88 => {
                let settings = variant(rng.random_range(0..15), Clock::now(&memory.clock));
                memory.rooms.configure(&event, settings).await.unwrap();
                redis.rooms.configure(&event, settings).await.unwrap();
                let m = memory.rooms.settings(&event).await.unwrap();
                assert_eq!(redis.rooms.settings(&event).await.unwrap(), m, "{context}");
            }
            _ => {
                let millis =
                    [0, 1, 99, 333, 250, 999, 1_000, 4_000, 12_000][rng.random_range(0..9)];
                memory.clock.advance(Duration::from_millis(millis));
                redis.clock.advance(Duration::from_millis(millis));
            }
        }
    }
    for m in &order {
        let expected = memory.rooms.status(m).await.unwrap().status;
        let got = redis.rooms.status(&pairs[m]).await.unwrap().status;
        assert_eq!(got, expected, "seed {seed}, at the end");
    }
}

#[test]
fn every_answer_matches_the_in_memory_reference() {
    block_on(async {
        for seed in 0..10 {
            compare_with_memory(seed, 500).await;
        }
    });
}

/// Three cluster-enabled servers joined with `redis-cli --cluster create`; killed on drop.
struct Cluster {
    servers: Vec<Server>,
    _dir: TempDir,
}

impl Cluster {
    fn start() -> Self {
        let dir = TempDir::new("room-cluster");
        let servers: Vec<Server> = (0..3)
            .map(|_| {
                let port = free_port();
                let config = format!("nodes-{port}.conf");
                let args = [
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    &config,
                    "--cluster-node-timeout",
                    "2000",
                    "--appendonly",
                    "no",
                ];
                Server::start(&dir.0, port, &args)
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
        assert!(output.status.success(), "cluster create failed");
        let deadline = Instant::now() + Duration::from_secs(30);
        for server in &servers {
            while !server
                .cli(&["CLUSTER", "INFO"])
                .contains("cluster_state:ok")
            {
                assert!(
                    Instant::now() < deadline,
                    "the cluster is not ok after 30 s"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Self { servers, _dir: dir }
    }

    async fn rooms(&self) -> TestRoom {
        let clock = ManualClock::default();
        let config = RedisStoreConfig::cluster(self.servers.iter().map(Server::url))
            .key_prefix(format!("c{:08x}:", rand::random::<u32>()))
            .unwrap()
            .clock(Arc::new(clock.clone()));
        let rooms = RedisWaitingRoom::connect(config)
            .await
            .unwrap_or_else(|error| panic!("cannot reach the test cluster: {error}"));
        TestRoom {
            rooms: Arc::new(rooms),
            clock,
        }
    }

    /// How many primaries hold keys in `key`'s slot.
    fn holders(&self, key: &str) -> usize {
        let slot = self.servers[0].cli(&["CLUSTER", "KEYSLOT", key]);
        self.servers
            .iter()
            .filter(|server| {
                let count = server.cli(&["CLUSTER", "COUNTKEYSINSLOT", slot.trim()]);
                count.trim().parse::<u64>().unwrap_or(0) > 0
            })
            .count()
    }
}

#[test]
fn the_suite_runs_on_a_three_primary_cluster() {
    let cluster = Cluster::start();
    block_on(async {
        scenarios::join_is_one_place_per_visitor(cluster.rooms().await).await;
        scenarios::concurrent_joins_are_fifo(cluster.rooms().await).await;
        scenarios::admission_rate_is_respected(cluster.rooms().await).await;
        scenarios::cap_and_lapse(cluster.rooms().await).await;
        scenarios::inventory_bounds_admission(cluster.rooms().await).await;
        scenarios::prequeue_is_shuffled_at_opening(cluster.rooms().await).await;
        scenarios::leaving_keeps_positions_exact(cluster.rooms().await).await;
        scenarios::room_error_paths(cluster.rooms().await).await;
        // Rooms spread over the primaries, each room's keys on one of them.
        let t = cluster.rooms().await;
        for n in 0..12 {
            let event = EventId::new(format!("spread-{n}")).unwrap();
            t.rooms
                .configure(&event, RoomSettings::cap(1))
                .await
                .unwrap();
            t.rooms
                .join(&event, &HolderId::new("h").unwrap())
                .await
                .unwrap();
            let tag = ticketing_store_redis::RedisStore::event_tag(&event);
            assert_eq!(cluster.holders(&format!("{{ev:{tag}}}")), 1);
        }
        assert_eq!(t.rooms.rooms().await.unwrap().len(), 12);
    });
}
