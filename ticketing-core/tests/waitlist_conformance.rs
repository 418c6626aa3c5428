//! The waitlist conformance suite against the in-memory store: every scripted scenario, the
//! waitlist model check and the race (see `ticketing_core::testkit::waitlist`).
#![cfg(feature = "testkit")]
#![allow(missing_docs)]

ticketing_core::waitlist_conformance_suite!(
    ticketing_core::testkit::waitlist::memory_waitlist_for_test
);
