//! The whole conformance kit through `Coalescing` over Redis: concurrent reservations
//! grouped into `reserve_batch` script calls keep every semantic and invariant.
#![allow(missing_docs)]

use std::sync::Arc;

use ticketing_core::testkit::TestStore;
use ticketing_core::{Coalescing, CoalescingConfig, ManualClock};
use ticketing_store_redis::testkit::{connect_for_test, fresh_config};

async fn coalescing_redis_store() -> TestStore {
    let clock = ManualClock::default();
    let store = connect_for_test(fresh_config().clock(Arc::new(clock.clone()))).await;
    TestStore {
        store: Arc::new(Coalescing::with_config(
            store,
            CoalescingConfig::default().max_batch(32),
        )),
        clock,
    }
}

ticketing_core::conformance_suite!(coalescing_redis_store);
