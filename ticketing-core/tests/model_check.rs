//! The in-memory store against the reference model: random operation sequences.
#![cfg(feature = "testkit")]
#![allow(missing_docs)]

#[test]
fn memory_store_agrees_with_the_model() {
    let factory = ticketing_core::testkit::factory(ticketing_core::testkit::memory_store_for_test);
    ticketing_core::testkit::model_check::model_check(factory);
}
