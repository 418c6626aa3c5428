//! Hostile input cannot break the key layout or the scripts: ids full of `:` and `.`, ids
//! that look like key tags, the longest ids, braces and unicode in free text, forged store
//! ids, huge lists. Each is refused with a clear error or stored verbatim, and nothing
//! leaks between events.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use ticketing_core::testkit::invariants::check_store;
use ticketing_core::{
    BestAvailable, ClientReservationId, CommitRequest, Entity, Error, EventId, EventSpec, HolderId,
    ID_LENGTH_MAX, IdempotencyKey, ManualClock, OrderId, Policy, PoolId, PoolSpec, ReservationId,
    ReservationToken, ReserveRequest, Seat, SeatId, SeatStatus, TicketCode, TicketId, validate,
};
use ticketing_store_redis::testkit::{connect_for_test, fresh_config};
use ticketing_store_redis::{RedisStore, RedisStoreConfig};

async fn store() -> RedisStore {
    connect_for_test(fresh_config().clock(Arc::new(ManualClock::default()))).await
}

fn seat(id: &str, section: &str, row: &str, number: u32, category: &str) -> Seat {
    Seat {
        id: SeatId::new(id).unwrap(),
        section: section.into(),
        row: row.into(),
        number,
        category: category.into(),
        accessible: false,
        position: Default::default(),
    }
}

fn spec(id: &str, seats: Vec<Seat>) -> EventSpec {
    EventSpec {
        id: EventId::new(id).unwrap(),
        name: format!("event {id}"),
        seats,
        pools: vec![PoolSpec {
            id: PoolId::new("ga").unwrap(),
            name: "GA".into(),
            capacity: 3,
        }],
        sale_window: None,
        policy: Policy::default(),
    }
}

#[test]
fn braces_unicode_and_binary_never_become_ids() {
    for bad in [
        "{ev:x}",
        "a}b",
        "{",
        "ünïcødé",
        "nul\0byte",
        "tab\t",
        "ev {x}",
        "",
    ] {
        assert_eq!(
            EventId::new(bad).unwrap_err().code(),
            "invalid_request",
            "{bad:?}"
        );
        assert_eq!(
            SeatId::new(bad).unwrap_err().code(),
            "invalid_request",
            "{bad:?}"
        );
    }
    assert!(serde_json::from_str::<EventId>(r#""\u0000\u00ff{}""#).is_err());
    assert_eq!(
        EventId::new("x".repeat(ID_LENGTH_MAX + 1))
            .unwrap_err()
            .code(),
        "invalid_request"
    );
    // A prefix with a brace would move every key's hash tag: refused.
    for bad in ["{x}:", "a}", "pre fix", "ü"] {
        assert_eq!(
            RedisStoreConfig::new("redis://127.0.0.1")
                .key_prefix(bad)
                .unwrap_err()
                .code(),
            "invalid_request"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_full_of_separators_and_tag_lookalikes_stay_apart() {
    let store = store().await;
    let tag_like = format!("x.{}", RedisStore::event_tag(&EventId::new("a").unwrap()));
    let ids = [
        "a".to_owned(),
        "a:".to_owned(),
        ":a".to_owned(),
        "a::b".to_owned(),
        "ev:a".to_owned(),
        "a.b.c|d@e+f".to_owned(),
        tag_like,
        "z".repeat(ID_LENGTH_MAX),
    ];
    for id in &ids {
        let seats = vec![seat(&"s".repeat(ID_LENGTH_MAX), "S", "1", 1, "c")];
        store.create_event(spec(id, seats)).await.unwrap();
    }
    // Each event has its own inventory: one unit taken in each, by the longest holder id.
    let holder = HolderId::new("h".repeat(ID_LENGTH_MAX)).unwrap();
    for id in &ids {
        let event = EventId::new(id).unwrap();
        let request = ReserveRequest::new(event.clone(), holder.clone())
            .seats([SeatId::new("s".repeat(ID_LENGTH_MAX)).unwrap()])
            .ga(PoolId::new("ga").unwrap(), 1)
            .client_reservation_id(ClientReservationId::new("c".repeat(ID_LENGTH_MAX)).unwrap());
        let reservation = store.reserve(request).await.unwrap();
        assert!(reservation.id.as_str().len() <= ID_LENGTH_MAX);
        let order = store
            .commit(
                &reservation.id,
                CommitRequest::new(
                    reservation.token.clone().unwrap(),
                    IdempotencyKey::new("k".repeat(ID_LENGTH_MAX)).unwrap(),
                ),
            )
            .await
            .unwrap();
        assert!(
            order
                .tickets
                .iter()
                .all(|t| t.id.as_str().len() <= ID_LENGTH_MAX)
        );
        assert!(
            order
                .tickets
                .iter()
                .all(|t| t.code.as_str().len() <= ID_LENGTH_MAX)
        );
        let availability = check_store(&store, &event).await.unwrap();
        assert_eq!(availability.seats, vec![SeatStatus::Sold], "{id}");
        assert_eq!(availability.pools[0].sold, 1, "{id}: its own pool only");
    }
    let listed = store
        .events(ticketing_core::Page {
            after: None,
            limit: 100,
        })
        .await
        .unwrap();
    let mut expected: Vec<&str> = ids.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(
        listed.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        expected
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_foreign_ids_are_not_found() {
    let store = store().await;
    store
        .create_event(spec("one", vec![seat("A-1", "S", "1", 1, "c")]))
        .await
        .unwrap();
    store
        .create_event(spec("two", vec![seat("A-1", "S", "1", 1, "c")]))
        .await
        .unwrap();
    let one = EventId::new("one").unwrap();
    let request = ReserveRequest::new(one.clone(), HolderId::new("h").unwrap())
        .seats([SeatId::new("A-1").unwrap()]);
    let held = store.reserve(request).await.unwrap();
    let token = held.token.clone().unwrap();
    // The same id with the other event's tag, ids without a tag, a tag of nobody.
    let other_tag = RedisStore::event_tag(&EventId::new("two").unwrap());
    let (stem, _) = held.id.as_str().rsplit_once('.').unwrap();
    let foreign = format!("{stem}.{other_tag}");
    for forged in [
        foreign.as_str(),
        stem,
        "rsv_x.AAAAAAAAAAAAAAAA",
        "rsv_x.aaaaaaaaaaaaaaaa",
        "..........",
        ":{}",
    ] {
        let Ok(id) = ReservationId::new(forged) else {
            continue;
        };
        let expected = Error::not_found(Entity::Reservation, &id);
        assert_eq!(
            store.reservation(&id).await.unwrap_err(),
            expected,
            "{forged}"
        );
        assert_eq!(
            store.cancel(&id, &token).await.unwrap_err(),
            expected,
            "{forged}"
        );
        let commit = CommitRequest::new(token.clone(), IdempotencyKey::new("k").unwrap());
        assert_eq!(
            store.commit(&id, commit).await.unwrap_err(),
            expected,
            "{forged}"
        );
    }
    let order = OrderId::new(format!("ord_x.{other_tag}")).unwrap();
    assert_eq!(store.order(&order).await.unwrap_err().code(), "not_found");
    assert_eq!(
        store.refund(&order, None).await.unwrap_err().code(),
        "not_found"
    );
    let ticket = TicketId::new(format!("tkt_x.{other_tag}")).unwrap();
    assert_eq!(store.ticket(&ticket).await.unwrap_err().code(), "not_found");
    let code = TicketCode::new(format!("CODE.{other_tag}")).unwrap();
    assert_eq!(
        store.check_in(&code).await.unwrap_err(),
        Error::not_found(Entity::Ticket, &code)
    );
    // A wrong token is refused, the right one still works.
    assert_eq!(
        store
            .cancel(&held.id, &ReservationToken::generate())
            .await
            .unwrap_err(),
        Error::InvalidToken
    );
    store.cancel(&held.id, &token).await.unwrap();
    check_store(&store, &one).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn free_text_is_stored_verbatim_and_filters_match_it() {
    let store = store().await;
    let section = "Große {Tribüne} \"Nord\" \\ ]] -- ' ; 🎫";
    let category = "ж:{}[]";
    let event = spec(
        "text",
        vec![
            seat("A-1", "plain", "1", 1, "c"),
            seat("B-1", section, "{row}", 1, category),
            seat("B-2", section, "{row}", 2, category),
        ],
    );
    let mut named = event.clone();
    named.name = "\"}]); redis.call('FLUSHALL') --".into();
    let created = store.create_event(named.clone()).await.unwrap();
    assert_eq!(store.event(&created.id).await.unwrap(), created);
    let request = ReserveRequest::new(created.id.clone(), HolderId::new("h").unwrap())
        .best_available(BestAvailable {
            count: 2,
            adjacent: true,
            section: Some(section.into()),
            category: Some(category.into()),
        });
    let reservation = store.reserve(request).await.unwrap();
    assert_eq!(
        reservation.seats,
        vec![SeatId::new("B-1").unwrap(), SeatId::new("B-2").unwrap()]
    );
    let summaries = store.events(ticketing_core::Page::default()).await.unwrap();
    assert_eq!(summaries[0].name, named.name, "stored verbatim, never run");
    check_store(&store, &created.id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_lists_are_refused_or_handled_whole() {
    let store = store().await;
    let seats: Vec<Seat> = (1..=20_000)
        .map(|n| seat(&format!("S-{n}"), "floor", &format!("{}", n / 100), n, "c"))
        .collect();
    let created = store.create_event(spec("big", seats)).await.unwrap();
    let event = created.id.clone();
    // Too many items in one reservation, too many seats in one block: refused up front.
    let too_many: Vec<SeatId> = (1..=65)
        .map(|n| SeatId::new(format!("S-{n}")).unwrap())
        .collect();
    let request = ReserveRequest::new(event.clone(), HolderId::new("h").unwrap()).seats(too_many);
    assert_eq!(
        store.reserve(request).await.unwrap_err().code(),
        "invalid_request"
    );
    let over: Vec<SeatId> = (1..=validate::SEATS_PER_BLOCK_MAX + 1)
        .map(|n| SeatId::new(format!("S-{n}")).unwrap())
        .collect();
    assert_eq!(
        store.block(&event, &over, true).await.unwrap_err().code(),
        "invalid_request"
    );
    // The largest allowed lists work whole, in one script each.
    let most: Vec<SeatId> = (1..=validate::SEATS_PER_BLOCK_MAX)
        .map(|n| SeatId::new(format!("S-{n}")).unwrap())
        .collect();
    store.block(&event, &most, true).await.unwrap();
    let widest: Vec<SeatId> = (10_001..=10_064)
        .map(|n| SeatId::new(format!("S-{n}")).unwrap())
        .collect();
    let request = ReserveRequest::new(event.clone(), HolderId::new("h").unwrap()).seats(widest);
    assert_eq!(store.reserve(request).await.unwrap().seats.len(), 64);
    // A missing seat at the end of a long list is named.
    let mut unknown = most.clone();
    unknown.pop();
    unknown.push(SeatId::new("nope").unwrap());
    assert_eq!(
        store.block(&event, &unknown, false).await.unwrap_err(),
        Error::not_found(Entity::Seat, "nope")
    );
    let availability = check_store(&store, &event).await.unwrap();
    assert_eq!(availability.seats.len(), 20_000);
    assert_eq!(
        availability
            .seats
            .iter()
            .filter(|s| **s == SeatStatus::Blocked)
            .count(),
        validate::SEATS_PER_BLOCK_MAX
    );
    // Best available finds the first free seat past the blocked and held ones.
    let request = ReserveRequest::new(event.clone(), HolderId::new("b").unwrap()).best_available(
        BestAvailable {
            count: 3,
            adjacent: true,
            ..Default::default()
        },
    );
    let picked = store.reserve(request).await.unwrap();
    assert_eq!(picked.seats[0], SeatId::new("S-10065").unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waitlist_policy_round_trips() {
    let store = store().await;
    let mut waitlisted = spec("w", vec![seat("A-1", "floor", "A", 1, "c")]);
    waitlisted.policy.waitlist = true;
    waitlisted.policy.waitlist_offer_ttl_seconds = 300;
    let created = store.create_event(waitlisted.clone()).await.unwrap();
    assert_eq!(created.policy, waitlisted.policy);
    let read = store.event(&EventId::new("w").unwrap()).await.unwrap();
    assert_eq!(read.policy, waitlisted.policy);
    assert!(read.policy.waitlist);
    assert_eq!(read.policy.waitlist_offer_ttl_seconds, 300);
    // Without the policy, the event has no waitlist.
    store
        .create_event(spec("plain", vec![seat("A-1", "floor", "A", 1, "c")]))
        .await
        .unwrap();
    let read = store.event(&EventId::new("plain").unwrap()).await.unwrap();
    assert!(!read.policy.waitlist);
}
