//! Test support: fresh, isolated stores on a real server (feature `testkit`).
//!
//! **Not stable API**: it follows [`ticketing_core::testkit`]. [`pg_store_for_test`] is the
//! factory the conformance kit takes, for this crate's tests and for any crate that wants to
//! run its own tests against PostgreSQL (an HTTP adapter, an application):
//!
//! ```ignore
//! // tests/conformance.rs
//! ticketing_core::conformance_suite!(ticketing_store_pg::testkit::pg_store_for_test);
//! ```
//!
//! Each store lives in a schema of its own, so tests run in parallel on one database. A
//! test fails, never skips, when the server is unreachable.
// Test support: a panic is how a factory reports that it cannot make a store.
#![allow(clippy::panic)]

use std::sync::Arc;

use ticketing_core::ManualClock;
use ticketing_core::testkit::TestStore;
use ticketing_core::testkit::room::TestRoom;
use ticketing_core::testkit::waitlist::TestWaitlist;

use crate::{PgStore, PgStoreConfig};

/// The server tests use when `DATABASE_URL` is unset: the local one, as `scripts/test`
/// starts it.
pub const DATABASE_URL_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The server tests use: `DATABASE_URL`, else [`DATABASE_URL_DEFAULT`].
pub fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| DATABASE_URL_DEFAULT.to_owned())
}

/// A configuration for [`database_url`] in a schema nobody else uses: `t_` and 16 random
/// hex digits, the pattern `scripts/test` drops before a run.
pub fn fresh_config() -> PgStoreConfig {
    let schema = format!("t_{:016x}", rand::random::<u64>());
    match PgStoreConfig::new(database_url()).schema(schema) {
        Ok(config) => config,
        Err(error) => unreachable!("t_ and hex digits is a valid schema name: {error}"),
    }
}

/// Connects `config` and migrates its schema.
///
/// Panics, saying what to do, when the server is unreachable or refuses the migration.
pub async fn connect_for_test(config: PgStoreConfig) -> PgStore {
    match PgStore::connect(config).await {
        Ok(store) => store,
        Err(error) => panic!(
            "PostgreSQL at {} is unreachable or refused the migration: {error}. \
             Start it (scripts/test does) or set DATABASE_URL.",
            database_url()
        ),
    }
}

/// GA pools of the conformance kit's events are striped over this many counter rows, so
/// the kit runs every GA operation through stripes (one-row pools: tests/shared_reserves.rs).
pub const CONFORMANCE_GA_STRIPES: u16 = 3;

/// A fresh store in a schema of its own, on a [`ManualClock`] that only the test moves, GA
/// pools striped over [`CONFORMANCE_GA_STRIPES`] rows: the factory of
/// `ticketing_core::conformance_suite!`.
///
/// Panics, saying what to do, when the server is unreachable.
pub async fn pg_store_for_test() -> TestStore {
    let clock = ManualClock::default();
    let config = match fresh_config().ga_stripes(CONFORMANCE_GA_STRIPES) {
        Ok(config) => config,
        Err(error) => unreachable!("3 stripes is within the limit: {error}"),
    };
    let store = connect_for_test(config.clock(Arc::new(clock.clone()))).await;
    TestStore {
        store: Arc::new(store),
        clock,
    }
}

/// Fresh waiting rooms in a schema of their own, on a [`ManualClock`] that only the test
/// moves: the factory of `ticketing_core::room_conformance_suite!`.
///
/// Panics, saying what to do, when the server is unreachable.
pub async fn pg_room_for_test() -> TestRoom {
    let clock = ManualClock::default();
    let store = connect_for_test(fresh_config().clock(Arc::new(clock.clone()))).await;
    TestRoom {
        rooms: Arc::new(store.waiting_room()),
        clock,
    }
}

/// A fresh store with waitlists in a schema of its own, on a [`ManualClock`] that only the
/// test moves: the factory of `ticketing_core::waitlist_conformance_suite!`.
///
/// Panics, saying what to do, when the server is unreachable.
pub async fn pg_waitlist_for_test() -> TestWaitlist {
    let clock = ManualClock::default();
    let store = connect_for_test(fresh_config().clock(Arc::new(clock.clone()))).await;
    TestWaitlist {
        store: Arc::new(store),
        clock,
    }
}
