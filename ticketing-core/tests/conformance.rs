//! The conformance kit on the in-memory store: every scripted scenario, the model check
//! and the stress run (see `ticketing_core::testkit`).
#![cfg(feature = "testkit")]
#![allow(missing_docs)]

ticketing_core::conformance_suite!(ticketing_core::testkit::memory_store_for_test);
