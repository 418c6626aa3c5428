//! Reserves that run beside each other (migration 0014): concurrent reserves, commits and
//! cancels on one event, on a one-row pool and a striped one, never oversell, lose no unit in
//! a stripe, keep holder limits, and leave a gap-free log that replays to the snapshot.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use ticketing_core::testkit::invariants::check_store;
use ticketing_core::{
    CommitRequest, Error, EventId, EventSpec, HolderId, IdempotencyKey, ManualClock, Policy,
    PoolId, PoolSpec, ReserveRequest, Seat, SeatId,
};
use ticketing_store_pg::PgStore;

mod common;

const SEATS: u32 = 40;
const CAPACITY: u32 = 60;

fn event_spec(policy: Policy) -> EventSpec {
    EventSpec {
        id: EventId::new("hot").unwrap(),
        name: "hot".into(),
        seats: (1..=SEATS)
            .map(|number| Seat {
                id: SeatId::new(format!("s{number}")).unwrap(),
                section: "Floor".into(),
                row: "A".into(),
                number,
                category: "standard".into(),
                accessible: false,
                position: Default::default(),
            })
            .collect(),
        pools: ["one", "striped"]
            .into_iter()
            .map(|id| PoolSpec {
                id: PoolId::new(id).unwrap(),
                name: id.into(),
                capacity: CAPACITY,
            })
            .collect(),
        sale_window: None,
        policy,
    }
}

fn event() -> EventId {
    EventId::new("hot").unwrap()
}

fn pool(id: &str) -> PoolId {
    PoolId::new(id).unwrap()
}

/// A small deterministic generator per task (xorshift), so a failure replays.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

async fn hot_event(clock: &ManualClock, policy: Policy) -> Arc<PgStore> {
    let store = common::fresh_store(clock).await;
    store.create_event(event_spec(policy)).await.unwrap();
    store
        .set_pool_stripes(&event(), &pool("striped"), 4)
        .await
        .unwrap();
    Arc::new(store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_reserves_commits_and_cancels_never_oversell_and_replay() {
    let clock = ManualClock::default();
    let store = hot_event(&clock, Policy::default()).await;
    let mut tasks = Vec::new();
    for task in 0..16u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut state = 0x9e37_79b9_7f4a_7c15 ^ (task + 1);
            let mut reserved = 0u32;
            for n in 0..30u64 {
                let holder = HolderId::new(format!("h{task}")).unwrap();
                let mut request = ReserveRequest::new(event(), holder);
                let roll = next(&mut state);
                if roll % 3 != 1 {
                    let first = next(&mut state) % u64::from(SEATS) + 1;
                    request = request.seats([SeatId::new(format!("s{first}")).unwrap()]);
                    if roll.is_multiple_of(5) {
                        let second = first % u64::from(SEATS) + 1;
                        request = request.seats([SeatId::new(format!("s{second}")).unwrap()]);
                    }
                }
                if !roll.is_multiple_of(3) {
                    let which = if roll.is_multiple_of(2) {
                        "one"
                    } else {
                        "striped"
                    };
                    let quantity = u32::try_from(next(&mut state) % 3 + 1).unwrap();
                    request = request.ga(pool(which), quantity);
                }
                let held = match store.reserve(request).await {
                    Ok(held) => held,
                    Err(Error::SeatUnavailable { .. } | Error::SoldOut { .. }) => continue,
                    Err(other) => panic!("task {task} reserve {n}: {other}"),
                };
                reserved += 1;
                let token = held.token.clone().unwrap();
                match next(&mut state) % 3 {
                    0 => store.cancel(&held.id, &token).await.unwrap(),
                    1 => {
                        let key = IdempotencyKey::new(format!("k{task}-{n}")).unwrap();
                        store
                            .commit(&held.id, CommitRequest::new(token, key))
                            .await
                            .unwrap();
                    }
                    _ => {}
                }
            }
            reserved
        }));
    }
    let mut reserved = 0;
    for task in tasks {
        reserved += task.await.unwrap();
    }
    assert!(reserved > 0, "no reserve succeeded");
    let snapshot = check_store(store.as_ref(), &event()).await.unwrap();
    for counts in &snapshot.pools {
        assert!(counts.held + counts.sold + counts.blocked <= counts.capacity);
    }
    // Whatever is still free can be reserved one unit at a time, to the last one: no unit
    // is stranded in a stripe.
    for id in ["one", "striped"] {
        let free = snapshot
            .pools
            .iter()
            .find(|counts| counts.pool == pool(id))
            .unwrap()
            .available;
        for unit in 0..free {
            store
                .reserve(
                    ReserveRequest::new(event(), HolderId::new("last").unwrap()).ga(pool(id), 1),
                )
                .await
                .unwrap_or_else(|error| panic!("{id}: unit {unit} of {free}: {error}"));
        }
        let refused = store
            .reserve(ReserveRequest::new(event(), HolderId::new("last").unwrap()).ga(pool(id), 1))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), "sold_out", "{id}: {refused}");
    }
    let snapshot = check_store(store.as_ref(), &event()).await.unwrap();
    for counts in &snapshot.pools {
        assert_eq!(counts.available, 0, "{counts:?}");
        assert_eq!(counts.held + counts.sold, counts.capacity, "{counts:?}");
    }
    store.drop_schema().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_holders_racing_reserves_stay_within_its_limits() {
    let clock = ManualClock::default();
    let policy = Policy {
        holder_seats_max: Some(3),
        holder_reservations_max: Some(2),
        ..Policy::default()
    };
    let store = hot_event(&clock, policy).await;
    let mut tasks = Vec::new();
    for n in 1..=12u32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let holder = HolderId::new("one-holder").unwrap();
            let request = if n.is_multiple_of(2) {
                ReserveRequest::new(event(), holder).seats([SeatId::new(format!("s{n}")).unwrap()])
            } else {
                ReserveRequest::new(event(), holder).ga(pool("striped"), 1)
            };
            match store.reserve(request).await {
                Ok(_) => 1u32,
                Err(Error::LimitExceeded { .. }) => 0,
                Err(other) => panic!("{other}"),
            }
        }));
    }
    let mut granted = 0;
    for task in tasks {
        granted += task.await.unwrap();
    }
    assert_eq!(granted, 2, "two reservations at most, and two fit");
    check_store(store.as_ref(), &event()).await.unwrap();
    store.drop_schema().await.unwrap();
}

#[tokio::test]
async fn a_reserve_is_in_the_log_at_once_and_restriping_keeps_every_count() {
    let clock = ManualClock::default();
    let store = hot_event(&clock, Policy::default()).await;
    let held = store
        .reserve(
            ReserveRequest::new(event(), HolderId::new("h").unwrap())
                .seats([SeatId::new("s1").unwrap()])
                .ga(pool("striped"), 5),
        )
        .await
        .unwrap();
    let changes = store.changes(&event(), 1, 10).await.unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].seq, 2);
    let before = check_store(store.as_ref(), &event()).await.unwrap();
    // Units out in stripes come back to the pool's row; the hold keeps them.
    for stripes in [1, 7, 64] {
        store
            .set_pool_stripes(&event(), &pool("striped"), stripes)
            .await
            .unwrap();
        let after = check_store(store.as_ref(), &event()).await.unwrap();
        assert_eq!(after.pools, before.pools);
        assert_eq!(
            after.seq, before.seq,
            "restriping is not a change of inventory"
        );
    }
    store.cancel(&held.id, &held.token.unwrap()).await.unwrap();
    let snapshot = check_store(store.as_ref(), &event()).await.unwrap();
    assert!(snapshot.pools.iter().all(|counts| counts.held == 0));
    store.drop_schema().await.unwrap();
}

#[tokio::test]
async fn bad_stripe_counts_and_unknown_names_are_refused() {
    let clock = ManualClock::default();
    let store = hot_event(&clock, Policy::default()).await;
    for stripes in [0, 65, u16::MAX] {
        let error = store
            .set_pool_stripes(&event(), &pool("one"), stripes)
            .await
            .unwrap_err();
        assert_eq!(error.code(), "invalid_request", "{stripes}: {error}");
        assert!(
            common::fresh_config().ga_stripes(stripes).is_err(),
            "config takes {stripes}"
        );
    }
    let unknown_event = store
        .set_pool_stripes(&EventId::new("nope").unwrap(), &pool("one"), 2)
        .await
        .unwrap_err();
    assert_eq!(unknown_event.code(), "not_found");
    let unknown_pool = store
        .set_pool_stripes(&event(), &pool("nope"), 2)
        .await
        .unwrap_err();
    assert_eq!(unknown_pool.code(), "not_found");
    // Refusals change nothing.
    let snapshot = check_store(store.as_ref(), &event()).await.unwrap();
    assert_eq!(snapshot.seq, 1);
    store.drop_schema().await.unwrap();
}
