//! `WAIT` after commit ([`RedisStoreConfig::wait_for_replicas`]): a private primary with a
//! private replica. While the replica is up, a commit returns once the replica has it (the
//! replica reads the order's state); with the replica gone, the commit is a `backend` error
//! after the timeout, the commit still stands on the primary, and retrying it with the same
//! idempotency key returns the order.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{Server, TempDir, free_port};
use ticketing_core::{
    CommitRequest, Error, EventId, EventSpec, HolderId, IdempotencyKey, Policy, ReserveRequest,
    Seat, SeatId, SeatStatus,
};
use ticketing_store_redis::{RedisStore, RedisStoreConfig};

fn spec() -> EventSpec {
    EventSpec {
        id: EventId::new("replicated").unwrap(),
        name: "replicated".into(),
        seats: (1..=8)
            .map(|number| Seat {
                id: SeatId::new(format!("A-{number}")).unwrap(),
                section: "A".into(),
                row: "1".into(),
                number,
                category: "standard".into(),
                accessible: false,
                position: Default::default(),
            })
            .collect(),
        pools: Vec::new(),
        sale_window: None,
        policy: Policy::default(),
    }
}

/// Waits until the replica reports its link to the primary up.
fn wait_linked(replica: &Server) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !replica
        .cli(&["INFO", "replication"])
        .contains("master_link_status:up")
    {
        assert!(
            Instant::now() < deadline,
            "replica did not link within 20 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_waits_for_the_replica_and_stands_without_it() {
    let (primary_dir, replica_dir) = (TempDir::new("primary"), TempDir::new("replica"));
    let primary_port = free_port();
    let primary = Server::start(&primary_dir.0, primary_port, &[]);
    let mut replica = Server::start(
        &replica_dir.0,
        free_port(),
        &["--replicaof", "127.0.0.1", &primary_port.to_string()],
    );
    wait_linked(&replica);

    let config = RedisStoreConfig::new(primary.url())
        .key_prefix("wait")
        .unwrap()
        .wait_for_replicas(1, Duration::from_millis(500));
    let store = RedisStore::connect(config).await.unwrap();
    store.create_event(spec()).await.unwrap();
    let event = spec().id;

    // With the replica up: the commit is acknowledged by it before it returns.
    let held = store
        .reserve(
            ReserveRequest::new(event.clone(), HolderId::new("alice").unwrap())
                .seats([SeatId::new("A-1").unwrap()]),
        )
        .await
        .unwrap();
    let key = IdempotencyKey::new("pay-1").unwrap();
    let order = store
        .commit(
            &held.id,
            CommitRequest::new(held.token.clone().unwrap(), key.clone()),
        )
        .await
        .unwrap();
    assert_eq!(order.tickets.len(), 1);
    let replicated = replica.cli(&["--scan", "--pattern", "wait*"]);
    assert!(
        !replicated.trim().is_empty(),
        "the replica holds the event's keys"
    );

    // Without it: WAIT times out, the caller hears `backend`, the commit stands.
    replica.kill();
    let held = store
        .reserve(
            ReserveRequest::new(event.clone(), HolderId::new("bob").unwrap())
                .seats([SeatId::new("A-2").unwrap()]),
        )
        .await
        .unwrap();
    let key = IdempotencyKey::new("pay-2").unwrap();
    let started = Instant::now();
    let error = store
        .commit(
            &held.id,
            CommitRequest::new(held.token.clone().unwrap(), key.clone()),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Backend { .. }),
        "unexpected {error:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "WAIT returned before its timeout"
    );
    let availability = store.availability(&event).await.unwrap();
    assert_eq!(availability.seats[1], SeatStatus::Sold, "the commit stands");
    // The replay is itself a commit, so it waits for the replica too: `backend` while the
    // replica is down; once it is back, the same key returns the order the first call made.
    let retried = store
        .commit(
            &held.id,
            CommitRequest::new(held.token.clone().unwrap(), key.clone()),
        )
        .await;
    assert!(matches!(retried, Err(Error::Backend { .. })));
    replica.restart();
    wait_linked(&replica);
    let first = store
        .commit(
            &held.id,
            CommitRequest::new(held.token.clone().unwrap(), key.clone()),
        )
        .await
        .unwrap();
    let again = store
        .commit(&held.id, CommitRequest::new(held.token.unwrap(), key))
        .await
        .unwrap();
    assert_eq!(first.id, again.id);
    assert_eq!(first.tickets.len(), 1);
    assert_eq!(store.order(&first.id).await.unwrap().id, first.id);
}
