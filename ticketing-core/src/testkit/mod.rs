//! The reference model and the conformance kit every backend runs.
//!
//! **Not stable API**: it changes with the conformance suite. Backends use it as a
//! dev-dependency through [`conformance_suite!`](crate::conformance_suite):
//!
//! ```ignore
//! // ticketing-store-redis/tests/conformance.rs
//! ticketing_core::conformance_suite!(redis_store_for_test);
//! ```
//!
//! - [`model`]: a naive, obviously correct model of the invariants, written apart from the
//!   in-memory store (BTreeMaps, no cleverness).
//! - [`scenarios`]: one scripted scenario per error code and transition.
//! - [`model_check`]: proptest sequences of operations and clock advances, each result
//!   compared with the model's and the invariants checked after every step.
//! - [`stress`]: many tasks on hot seats, then invariants and a log replay.
//! - [`invariants`]: the checks, and the log replay.
//! - [`room`]: the waiting room's conformance suite.
//! - [`waitlist`]: the waitlist's conformance suite, model check and race.
// Test support: panics are the failure reports, and the model takes arguments by value as
// the trait does.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::needless_pass_by_value
)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::store::InventoryStore;
use crate::time::ManualClock;

pub mod fuzz;
pub mod invariants;
pub mod model;
pub mod model_check;
pub mod room;
pub mod scenarios;
pub mod stress;
pub mod waitlist;

/// A fresh, isolated store for one test, and the manual clock it runs on.
#[derive(Clone)]
pub struct TestStore {
    /// The store under test.
    pub store: Arc<dyn InventoryStore>,
    /// Its clock: only this moves time for the store.
    pub clock: ManualClock,
}

/// Makes a fresh, isolated [`TestStore`] (its own schema, key prefix or process memory).
pub type StoreFactory =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = TestStore> + Send>> + Send + Sync>;

/// A [`StoreFactory`] from an async function.
pub fn factory<F, Fut>(make: F) -> StoreFactory
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = TestStore> + Send + 'static,
{
    Arc::new(move || Box::pin(make()))
}

/// Runs a conformance test body on a two-worker tokio runtime, so the backend crates'
/// tests need no runtime of their own.
pub fn block_on<F: Future<Output = ()>>(body: F) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(body);
}

/// A fresh in-memory store on a manual clock: the in-memory store's own factory.
pub async fn memory_store_for_test() -> TestStore {
    let clock = ManualClock::default();
    let store = crate::MemoryStore::with_clock(Arc::new(clock.clone()));
    TestStore {
        store: Arc::new(store),
        clock,
    }
}
