//! The in-memory store's own tests: what the conformance kit (`testkit::scenarios`, run on
//! this store by `tests/conformance.rs`) cannot cover generically, such as its settings.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use crate::*;

fn ready<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the in-memory store never waits"),
    }
}

fn holder(id: &str) -> HolderId {
    HolderId::new(id).unwrap()
}

#[test]
fn change_log_retention_prunes_old_changes() {
    let clock = ManualClock::default();
    let store = MemoryStore::with_config(
        Arc::new(clock),
        MemoryStoreConfig::default().change_retention(3),
    );
    let event = EventId::new("e").unwrap();
    let pool = PoolId::new("ga").unwrap();
    let spec = EventSpec {
        id: event.clone(),
        name: "e".into(),
        seats: vec![],
        pools: vec![PoolSpec {
            id: pool.clone(),
            name: String::new(),
            capacity: 100,
        }],
        sale_window: None,
        policy: Policy::default(),
    };
    ready(store.create_event(spec)).unwrap();
    for n in 0..5 {
        ready(store.reserve(
            ReserveRequest::new(event.clone(), holder(&format!("h{n}"))).ga(pool.clone(), 1),
        ))
        .unwrap();
    }
    assert_eq!(
        ready(store.changes(&event, 0, 10)).unwrap_err(),
        Error::ChangesPruned { first_retained: 4 }
    );
    let kept = ready(store.changes(&event, 3, 10)).unwrap();
    assert_eq!(
        kept.iter().map(|change| change.seq).collect::<Vec<_>>(),
        vec![4, 5, 6]
    );
    assert_eq!(ready(store.availability(&event)).unwrap().seq, 6);
}

#[test]
fn waitlist_holds_at_most_its_maximum_of_waiting_entries() {
    let store = MemoryStore::with_clock(Arc::new(ManualClock::default()));
    let event = EventId::new("e").unwrap();
    let pool = PoolId::new("ga").unwrap();
    let spec = EventSpec {
        id: event.clone(),
        name: "e".into(),
        seats: vec![],
        pools: vec![PoolSpec {
            id: pool.clone(),
            name: String::new(),
            capacity: 1,
        }],
        sale_window: None,
        policy: Policy {
            waitlist: true,
            ..Policy::default()
        },
    };
    ready(store.create_event(spec)).unwrap();
    ready(store.reserve(ReserveRequest::new(event.clone(), holder("owner")).ga(pool.clone(), 1)))
        .unwrap();
    let join = |n: usize| {
        ready(store.waitlist_join(WaitlistRequest::ga(
            event.clone(),
            holder(&format!("h{n}")),
            pool.clone(),
            1,
        )))
    };
    let mut first = None;
    for n in 0..validate::WAITLIST_ENTRIES_MAX {
        let joined = join(n).unwrap();
        first.get_or_insert(joined.entry.id);
    }
    let full = Error::Conflict {
        reason: ConflictReason::WaitlistFull,
    };
    let before = ready(store.availability(&event)).unwrap();
    assert_eq!(join(validate::WAITLIST_ENTRIES_MAX).unwrap_err(), full);
    assert_eq!(
        ready(store.availability(&event)).unwrap(),
        before,
        "refused: no change"
    );
    let first = first.unwrap();
    ready(store.waitlist_leave(&event, &first, &holder("h0"))).unwrap();
    let last = join(validate::WAITLIST_ENTRIES_MAX).unwrap();
    assert_eq!(
        last.entry.state,
        WaitlistState::Waiting {
            position: validate::WAITLIST_ENTRIES_MAX as u64
        }
    );
}
