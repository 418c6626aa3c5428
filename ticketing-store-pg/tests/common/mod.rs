//! Shared by the integration tests: a fresh store in a schema of its own, and a small event.
#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;

use ticketing_core::{EventId, EventSpec, ManualClock, Policy, PoolId, PoolSpec, Seat, SeatId};
use ticketing_store_pg::{PgStore, PgStoreConfig};

pub(crate) fn database_url() -> String {
    ticketing_store_pg::testkit::database_url()
}

pub(crate) fn fresh_config() -> PgStoreConfig {
    ticketing_store_pg::testkit::fresh_config()
}

pub(crate) async fn fresh_store(clock: &ManualClock) -> PgStore {
    let config = fresh_config().clock(Arc::new(clock.clone()));
    ticketing_store_pg::testkit::connect_for_test(config).await
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
