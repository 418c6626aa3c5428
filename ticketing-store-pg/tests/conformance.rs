//! The whole conformance kit of `ticketing_core::testkit` against a real PostgreSQL server:
//! every scripted scenario, the model check and the stress run, each on a schema of its own.
#![allow(missing_docs, clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;

use ticketing_core::ManualClock;
use ticketing_core::testkit::TestStore;

mod common;

async fn pg_store_for_test() -> TestStore {
    let clock = ManualClock::default();
    let store = common::fresh_store(&clock).await;
    TestStore {
        store: Arc::new(store),
        clock,
    }
}

ticketing_core::conformance_suite!(pg_store_for_test);
