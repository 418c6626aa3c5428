//! The concurrent stress run on the in-memory store (16 tasks, hot seats, a GA pool at
//! capacity, expiry racing commit, cancel racing commit), checked against the invariants.
#![cfg(feature = "testkit")]
#![allow(missing_docs)]

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_survives_the_stress_run() {
    let t = ticketing_core::testkit::memory_store_for_test().await;
    ticketing_core::testkit::stress::stress_hot_seats(&t).await;
}
