//! The waitlist against a real Redis server: every scenario of
//! `ticketing_core::testkit::waitlist`, the waitlist model check and the 16-task race, each
//! under a key prefix of its own on a manual clock.
#![allow(missing_docs)]

ticketing_core::waitlist_conformance_suite!(
    ticketing_store_redis::testkit::redis_waitlist_for_test
);
