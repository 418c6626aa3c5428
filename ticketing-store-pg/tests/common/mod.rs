//! Shared by the integration tests: a fresh store in a schema of its own, and a small event.
#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;

use ticketing_core::{EventId, EventSpec, ManualClock, Policy, PoolId, PoolSpec, Seat, SeatId};
use ticketing_store_pg::{PgStore, PgStoreConfig};

pub(crate) fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

pub(crate) fn fresh_config() -> PgStoreConfig {
    let schema = format!("t_{:016x}", rand::random::<u64>());
    PgStoreConfig::new(database_url()).schema(schema).unwrap()
}

pub(crate) async fn fresh_store(clock: &ManualClock) -> PgStore {
    let config = fresh_config().clock(Arc::new(clock.clone()));
    match PgStore::connect(config).await {
        Ok(store) => store,
        Err(error) => panic!(
            "PostgreSQL at {} is unreachable or refused the migration: {error}. \
             Start it (scripts/test does) or set DATABASE_URL.",
            database_url()
        ),
    }
}

pub(crate) fn spec(id: &str, name: &str) -> EventSpec {
    EventSpec {
        id: EventId::new(id).unwrap(),
        name: name.to_owned(),
        seats: (1..=3)
            .map(|number| Seat {
                id: SeatId::new(format!("A-{number}")).unwrap(),
                section: "Floor".into(),
                row: "A".into(),
                number,
                category: "standard".into(),
                accessible: number == 1,
                position: Default::default(),
            })
            .collect(),
        pools: vec![PoolSpec {
            id: PoolId::new("ga").unwrap(),
            name: "GA".into(),
            capacity: 100,
        }],
        sale_window: None,
        policy: Policy::default(),
    }
}
