//! The whole conformance kit through `Coalescing` over PostgreSQL: concurrent reservations
//! grouped into `reserve_batch` round trips keep every semantic and invariant.
#![allow(missing_docs, clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;

use ticketing_core::testkit::TestStore;
use ticketing_core::{Coalescing, CoalescingConfig, ManualClock};

mod common;

async fn coalescing_pg_store() -> TestStore {
    let clock = ManualClock::default();
    let store = common::fresh_store(&clock).await;
    TestStore {
        store: Arc::new(Coalescing::with_config(
            store,
            CoalescingConfig::default().max_batch(32),
        )),
        clock,
    }
}

ticketing_core::conformance_suite!(coalescing_pg_store);
