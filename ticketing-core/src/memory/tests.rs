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
