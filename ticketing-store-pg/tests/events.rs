//! The PostgreSQL store's foundation against a real server: schemas, migrations, events.
//! Every test uses a schema of its own and fails — never skips — when PostgreSQL is
//! unreachable (`DATABASE_URL`, default the local server; `scripts/test` starts one).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ticketing_core::{Clock, ConflictReason, Error, EventId, ManualClock, Page};
use ticketing_store_pg::{PgStore, PgStoreConfig};

mod common;
use common::{database_url, fresh_config, fresh_store, spec};

#[tokio::test]
async fn events_are_created_read_and_listed_in_id_order() {
    let clock = ManualClock::default();
    let store = fresh_store(&clock).await;
    // Free text reaches SQL only as parameters: quotes and emoji come back intact.
    let awkward = "O'Brien's \"Night\"; DROP TABLE events; -- 🎫";
    let mut created = Vec::new();
    for (id, name) in [("b", "second"), ("a", awkward), ("B", "upper")] {
        let event = store.create_event(spec(id, name)).await.unwrap();
        assert_eq!(
            event.created_at,
            clock.now(),
            "the injected clock is the store's time"
        );
        created.push(event);
    }
    let read = store.event(&EventId::new("a").unwrap()).await.unwrap();
    assert_eq!(read, created[1], "read back exactly as created");
    assert_eq!(read.name, awkward);
    let first = store
        .events(Page {
            after: None,
            limit: 2,
        })
        .await
        .unwrap();
    // Byte order, as Rust orders strings: "B" < "a" < "b".
    assert_eq!(
        first.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["B", "a"]
    );
    let rest = store
        .events(Page {
            after: Some(first[1].id.clone()),
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(
        rest.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["b"]
    );
    assert_eq!((rest[0].seats, rest[0].pools), (3, 1));
    store.drop_schema().await.unwrap();
}

#[tokio::test]
async fn refusals_change_nothing() {
    let clock = ManualClock::default();
    let store = fresh_store(&clock).await;
    store.create_event(spec("e", "first")).await.unwrap();
    assert_eq!(
        store.create_event(spec("e", "again")).await.unwrap_err(),
        Error::Conflict {
            reason: ConflictReason::EventExists
        }
    );
    let mut empty = spec("f", "no items");
    (empty.seats, empty.pools) = (vec![], vec![]);
    assert_eq!(
        store.create_event(empty).await.unwrap_err().code(),
        "invalid_request"
    );
    // This store serves waitlists: the policy is kept and read back as it was given.
    let mut waitlisted = spec("w", "waitlist on");
    waitlisted.policy.waitlist = true;
    waitlisted.policy.waitlist_offer_ttl_seconds = 120;
    let created = store.create_event(waitlisted.clone()).await.unwrap();
    assert_eq!(created.policy, waitlisted.policy);
    let read = store.event(&EventId::new("w").unwrap()).await.unwrap();
    assert_eq!(read, created, "the waitlist policy round-trips");
    assert!(read.policy.waitlist);
    assert_eq!(read.policy.waitlist_offer_ttl_seconds, 120);
    let mut duplicate = spec("g", "twice");
    duplicate.seats.push(duplicate.seats[0].clone());
    assert_eq!(
        store.create_event(duplicate).await.unwrap_err().code(),
        "invalid_request"
    );
    assert_eq!(
        store.event(&EventId::new("g").unwrap()).await.unwrap_err(),
        Error::not_found(ticketing_core::Entity::Event, "g")
    );
    assert_eq!(
        store
            .events(Page {
                after: None,
                limit: 0
            })
            .await
            .unwrap_err()
            .code(),
        "invalid_request"
    );
    let all = store.events(Page::default()).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["e", "w"],
        "none of the bad events was made"
    );
    assert_eq!(
        all[0].name, "first",
        "the refused duplicate changed nothing"
    );
    store.drop_schema().await.unwrap();
}

#[tokio::test]
async fn instances_migrating_at_once_all_succeed() {
    let config = fresh_config();
    let migrators = (0..4).map(|_| {
        let config = config.clone();
        tokio::spawn(async move { PgStore::connect(config).await })
    });
    let mut stores = Vec::new();
    for migrator in migrators {
        stores.push(migrator.await.unwrap().unwrap());
    }
    // Migrating again is a no-op.
    stores[0].migrate().await.unwrap();
    stores[1].create_event(spec("e", "shared")).await.unwrap();
    assert_eq!(stores[2].events(Page::default()).await.unwrap().len(), 1);
    stores[0].drop_schema().await.unwrap();
}

#[tokio::test]
async fn schemas_keep_stores_apart() {
    let clock = ManualClock::default();
    let (one, two) = (fresh_store(&clock).await, fresh_store(&clock).await);
    one.create_event(spec("e", "one")).await.unwrap();
    two.create_event(spec("e", "two")).await.unwrap();
    assert_eq!(
        one.event(&EventId::new("e").unwrap()).await.unwrap().name,
        "one"
    );
    assert_eq!(
        two.event(&EventId::new("e").unwrap()).await.unwrap().name,
        "two"
    );
    one.drop_schema().await.unwrap();
    two.drop_schema().await.unwrap();
}

#[tokio::test]
async fn schema_names_and_urls_are_checked_before_use() {
    for bad in [
        "",
        "1abc",
        "Upper",
        "a-b",
        "a;drop",
        "pg_catalog",
        "x\"y",
        &"a".repeat(64),
    ] {
        assert_eq!(
            PgStoreConfig::new(database_url())
                .schema(bad)
                .unwrap_err()
                .code(),
            "invalid_request",
            "{bad:?}"
        );
    }
    assert_eq!(
        PgStoreConfig::new(database_url())
            .schema("tenant_42")
            .unwrap()
            .schema_name(),
        "tenant_42"
    );
    assert_eq!(
        PgStore::connect_lazy(PgStoreConfig::new("postgres://[::1"))
            .unwrap_err()
            .code(),
        "invalid_request"
    );
}

#[tokio::test]
async fn an_unreachable_server_is_a_backend_error_without_sql() {
    // Port 9 (discard) on loopback: nothing listens; the connection is refused at once.
    let config = PgStoreConfig::new("postgres://postgres@127.0.0.1:9/test")
        .acquire_timeout(std::time::Duration::from_secs(2));
    let error = PgStore::connect(config).await.unwrap_err();
    assert_eq!(error.code(), "backend");
    let text = error.to_string();
    assert!(
        text.starts_with("postgres backend error: connect"),
        "{text}"
    );
    assert!(!text.to_lowercase().contains("select"), "{text}");
}

#[tokio::test]
async fn a_new_event_reads_as_its_log_replayed() {
    let clock = ManualClock::default();
    let store = fresh_store(&clock).await;
    let event = store.create_event(spec("e", "fresh")).await.unwrap();
    let availability = store.availability(&event.id).await.unwrap();
    assert_eq!(availability.seq, 1);
    assert!(
        availability
            .seats
            .iter()
            .all(|s| *s == ticketing_core::SeatStatus::Available)
    );
    assert_eq!(availability.seats.len(), 3);
    let pool = &availability.pools[0];
    assert_eq!(
        (
            pool.capacity,
            pool.held,
            pool.sold,
            pool.blocked,
            pool.available
        ),
        (100, 0, 0, 0, 100)
    );
    let log = store.changes(&event.id, 0, 10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].at, clock.now());
    let replayed = ticketing_core::testkit::invariants::replay(&event, &log).unwrap();
    assert_eq!(replayed, availability, "the log replays to the snapshot");
    assert!(store.changes(&event.id, 1, 10).await.unwrap().is_empty());
    let missing = EventId::new("missing").unwrap();
    assert_eq!(
        store.changes(&missing, 0, 10).await.unwrap_err(),
        Error::not_found(ticketing_core::Entity::Event, "missing")
    );
    assert_eq!(
        store.availability(&missing).await.unwrap_err(),
        Error::not_found(ticketing_core::Entity::Event, "missing")
    );
    assert_eq!(
        store.changes(&event.id, 0, 0).await.unwrap_err().code(),
        "invalid_request"
    );
    store.drop_schema().await.unwrap();
}

#[tokio::test]
async fn works_without_a_statement_cache_as_behind_pgbouncer() {
    let config = fresh_config().statement_cache(false);
    let store = PgStore::connect(config).await.unwrap();
    store.create_event(spec("e", "pooled")).await.unwrap();
    for _ in 0..3 {
        assert_eq!(store.events(Page::default()).await.unwrap().len(), 1);
    }
    store.drop_schema().await.unwrap();
}
