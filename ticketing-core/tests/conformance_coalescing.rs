//! The whole conformance kit through `Coalescing` over the in-memory store: batching
//! concurrent reservations must keep every semantic and every invariant, the waitlist's
//! included.
#![cfg(feature = "testkit")]
#![allow(missing_docs)]

use std::sync::Arc;

use ticketing_core::testkit::TestStore;
use ticketing_core::testkit::waitlist::TestWaitlist;
use ticketing_core::{Coalescing, CoalescingConfig, ManualClock, MemoryStore};

async fn coalescing_memory_store() -> TestStore {
    let clock = ManualClock::default();
    let inner = MemoryStore::with_clock(Arc::new(clock.clone()));
    let config = CoalescingConfig::default().max_batch(8);
    TestStore {
        store: Arc::new(Coalescing::with_config(inner, config)),
        clock,
    }
}

ticketing_core::conformance_suite!(coalescing_memory_store);

mod waitlist {
    use super::*;

    async fn coalescing_memory_waitlist() -> TestWaitlist {
        let clock = ManualClock::default();
        let inner = MemoryStore::with_clock(Arc::new(clock.clone()));
        let config = CoalescingConfig::default().max_batch(8);
        TestWaitlist {
            store: Arc::new(Coalescing::with_config(inner, config)),
            clock,
        }
    }

    ticketing_core::waitlist_conformance_suite!(coalescing_memory_waitlist);
}
