//! Test support: fresh, isolated stores on a real server (feature `testkit`).
//!
//! **Not stable API**: it follows [`ticketing_core::testkit`]. [`redis_store_for_test`] is
//! the factory the conformance kit takes, for this crate's tests and for any crate that
//! wants to run its own tests against Redis:
//!
//! ```ignore
//! // tests/conformance.rs
//! ticketing_core::conformance_suite!(ticketing_store_redis::testkit::redis_store_for_test);
//! ```
//!
//! [`redis_room_for_test`] is the same for the waiting room's
//! `ticketing_core::room_conformance_suite!`, and [`redis_waitlist_for_test`] for the
//! waitlist's `ticketing_core::waitlist_conformance_suite!`.
//!
//! Each store lives under a key prefix of its own (`ttest:` and 16 random hex digits), so
//! tests run in parallel on one server. A test fails, never skips, when the server is
//! unreachable.
// Test support: a panic is how a factory reports that it cannot make a store.
#![allow(clippy::panic)]

use std::sync::Arc;

use ticketing_core::ManualClock;
use ticketing_core::testkit::TestStore;
use ticketing_core::testkit::room::TestRoom;
use ticketing_core::testkit::waitlist::TestWaitlist;

use crate::{RedisStore, RedisStoreConfig, RedisWaitingRoom};

/// The server tests use when `REDIS_URL` is unset: the local one, as `scripts/test` starts it.
pub const REDIS_URL_DEFAULT: &str = "redis://127.0.0.1:6379";

/// The server tests use: `REDIS_URL`, else [`REDIS_URL_DEFAULT`].
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| REDIS_URL_DEFAULT.to_owned())
}

/// A fresh key prefix: `ttest:`, 16 random hex digits and `:`.
pub fn fresh_prefix() -> String {
    format!("ttest:{:016x}:", rand::random::<u64>())
}

/// A configuration for [`redis_url`] under a prefix nobody else uses.
pub fn fresh_config() -> RedisStoreConfig {
    match RedisStoreConfig::new(redis_url()).key_prefix(fresh_prefix()) {
        Ok(config) => config,
        Err(error) => unreachable!("ttest: and hex digits is a valid prefix: {error}"),
    }
}

/// Connects `config`.
///
/// Panics, saying what to do, when the server is unreachable.
pub async fn connect_for_test(config: RedisStoreConfig) -> RedisStore {
    match RedisStore::connect(config).await {
        Ok(store) => store,
        Err(error) => panic!(
            "Redis at {} is unreachable: {error}. Start it (scripts/test does) or set REDIS_URL.",
            redis_url()
        ),
    }
}

/// A fresh store under a prefix of its own, on a [`ManualClock`] that only the test moves:
/// the factory of `ticketing_core::conformance_suite!`.
///
/// Panics, saying what to do, when the server is unreachable.
pub async fn redis_store_for_test() -> TestStore {
    let clock = ManualClock::default();
    let store = connect_for_test(fresh_config().clock(Arc::new(clock.clone()))).await;
    TestStore {
        store: Arc::new(store),
        clock,
    }
}

/// Fresh waiting rooms under a prefix of their own, on a [`ManualClock`] that only the test
/// moves: the factory of `ticketing_core::room_conformance_suite!`.
///
/// Panics, saying what to do, when the server is unreachable.
pub async fn redis_room_for_test() -> TestRoom {
    let clock = ManualClock::default();
    let store = connect_for_test(fresh_config().clock(Arc::new(clock.clone()))).await;
    let rooms = RedisWaitingRoom::new(&store);
    if let Err(error) = rooms.load_scripts().await {
        panic!(
            "Redis at {} cannot load the room scripts: {error}",
            redis_url()
        );
    }
    TestRoom {
        rooms: Arc::new(rooms),
        clock,
    }
}

/// A fresh store with waitlists under a prefix of its own, on a [`ManualClock`] that only
/// the test moves: the factory of `ticketing_core::waitlist_conformance_suite!`.
///
/// Panics, saying what to do, when the server is unreachable.
pub async fn redis_waitlist_for_test() -> TestWaitlist {
    let clock = ManualClock::default();
    let store = connect_for_test(fresh_config().clock(Arc::new(clock.clone()))).await;
    TestWaitlist {
        store: Arc::new(store),
        clock,
    }
}
