//! Durability: a private Redis with `appendonly yes` and `appendfsync always` is SIGKILLed
//! while buyers reserve and commit, then restarted from its AOF. Every commit the store
//! acknowledged is there, no seat is sold twice, and the change log replays to the state.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Server, TempDir, free_port};
use ticketing_core::testkit::invariants::check_store;
use ticketing_core::{
    CommitRequest, EventId, EventSpec, HolderId, IdempotencyKey, Order, Policy, PoolId, PoolSpec,
    ReserveRequest, Seat, SeatId, SeatStatus, TicketItem,
};
use ticketing_store_redis::{RedisStore, RedisStoreConfig};
use tokio::sync::Mutex;

const SEATS: u32 = 5_000;
const BUYERS: usize = 16;

fn spec() -> EventSpec {
    EventSpec {
        id: EventId::new("durable").unwrap(),
        name: "durability".into(),
        seats: (1..=SEATS)
            .map(|number| Seat {
                id: SeatId::new(format!("S-{number}")).unwrap(),
                section: "floor".into(),
                row: format!("{}", number / 20),
                number,
                category: "standard".into(),
                accessible: false,
                position: Default::default(),
            })
            .collect(),
        pools: vec![PoolSpec {
            id: PoolId::new("ga").unwrap(),
            name: "GA".into(),
            capacity: 100_000,
        }],
        sale_window: None,
        policy: Policy::default(),
    }
}

async fn connect(server: &Server, prefix: &str) -> RedisStore {
    let config = RedisStoreConfig::new(server.url())
        .key_prefix(prefix)
        .unwrap()
        .retries(2, Duration::from_millis(20))
        .response_timeout(Duration::from_secs(2));
    RedisStore::connect(config).await.unwrap()
}

/// One buyer: reserve two seats (hot: random among all) and a GA unit, commit, until told
/// to stop or the server is gone; records every acknowledged order.
async fn buyer(
    store: RedisStore,
    seed: u64,
    stop: Arc<AtomicBool>,
    ledger: Arc<Mutex<Vec<Order>>>,
) {
    let event = EventId::new("durable").unwrap();
    let mut round = 0u64;
    while !stop.load(Ordering::SeqCst) {
        round += 1;
        let first = (seed * 7919 + round * 104_729) % u64::from(SEATS) + 1;
        let second = first % u64::from(SEATS) + 1;
        let mut request =
            ReserveRequest::new(event.clone(), HolderId::new(format!("b{seed}")).unwrap())
                .ga(PoolId::new("ga").unwrap(), 1);
        // Every fourth order also takes two seats (hot: often taken already).
        if round.is_multiple_of(4) {
            request = request.seats([
                SeatId::new(format!("S-{first}")).unwrap(),
                SeatId::new(format!("S-{second}")).unwrap(),
            ]);
        }
        let Ok(reservation) = store.reserve(request).await else {
            // Taken seats, or the server is down: try again until stopped.
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        };
        let key = IdempotencyKey::new(format!("pay-{seed}-{round}")).unwrap();
        let commit = CommitRequest::new(reservation.token.clone().unwrap(), key);
        if let Ok(order) = store.commit(&reservation.id, commit).await {
            ledger.lock().await.push(order);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_commits_survive_sigkill() {
    let dir = TempDir::new("durability");
    let mut server = Server::start(
        &dir.0,
        free_port(),
        &["--appendonly", "yes", "--appendfsync", "always"],
    );
    let prefix = "durability:";
    let first = connect(&server, prefix).await;
    first.create_event(spec()).await.unwrap();
    let store = first.clone();

    let stop = Arc::new(AtomicBool::new(false));
    let ledger = Arc::new(Mutex::new(Vec::new()));
    let buyers: Vec<_> = (0..BUYERS)
        .map(|seed| {
            tokio::spawn(buyer(
                store.clone(),
                seed as u64,
                stop.clone(),
                ledger.clone(),
            ))
        })
        .collect();
    // Let them work, then pull the plug mid-run.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let earlier = ledger.lock().await.len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = ledger.lock().await.len();
    server.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    for buyer in buyers {
        buyer.await.unwrap();
    }
    let acknowledged = ledger.lock().await.clone();
    assert!(
        earlier > 20,
        "the buyers committed too little before the kill: {earlier}"
    );
    assert!(
        before > earlier,
        "commits had stopped before the kill: not mid-run"
    );

    let event = EventId::new("durable").unwrap();
    // While the server is down: a clear, transient backend error.
    let down = first.availability(&event).await.unwrap_err();
    assert!(down.is_transient(), "{down}");

    server.restart();
    // The store that was connected before the crash reconnects by itself, and its scripts
    // are loaded again (the restarted server's script cache is empty: NOSCRIPT).
    let request = ReserveRequest::new(event.clone(), HolderId::new("reconnected").unwrap())
        .ga(PoolId::new("ga").unwrap(), 1);
    first.reserve(request).await.unwrap();
    let store = connect(&server, prefix).await;
    // Every acknowledged order is there, ticket for ticket.
    for order in &acknowledged {
        let stored = store.order(&order.id).await.unwrap();
        assert_eq!(
            &stored, order,
            "acknowledged order {} changed or vanished",
            order.id
        );
    }
    // No seat on two orders; every sold seat is on exactly one valid ticket.
    let availability = check_store(&store, &event)
        .await
        .unwrap_or_else(|why| panic!("invariants after restart: {why}"));
    let mut sold_by_orders = BTreeSet::new();
    for order in &acknowledged {
        for ticket in &order.tickets {
            if let TicketItem::Seat(seat) = &ticket.item {
                assert!(
                    sold_by_orders.insert(seat.clone()),
                    "seat {seat} sold twice"
                );
            }
        }
    }
    let layout = store.event(&event).await.unwrap();
    for seat in &sold_by_orders {
        let index = layout.seats.iter().position(|s| &s.id == seat).unwrap();
        assert_eq!(availability.seats[index], SeatStatus::Sold, "{seat}");
    }
    // The store keeps working after the restart.
    let request = ReserveRequest::new(event.clone(), HolderId::new("after").unwrap())
        .ga(PoolId::new("ga").unwrap(), 1);
    store.reserve(request).await.unwrap();
    eprintln!(
        "{} commits acknowledged before SIGKILL, all present after restart",
        acknowledged.len()
    );
}
