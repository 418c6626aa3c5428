//! The free-seat index (keys `free`, `place`, `next` and the run hints `adj`, described in
//! `lua/common.lua`): best available answers as the in-memory store does on a large
//! fragmented layout (walks over many pages of candidates, hints kept across script calls),
//! the index and the hints stay in step with the seat states through every operation that
//! takes or frees a seat, and an event made before the index (or before this version of
//! it) gets it on first use. The conformance kit checks best available against the model on small
//! layouts; these tests add the large one and look at the keys themselves.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use ticketing_core::{
    BestAvailable, CommitRequest, EventId, EventSpec, HolderId, IdempotencyKey, InventoryStore,
    ManualClock, MemoryStore, Policy, Reservation, ReservationToken, ReserveRequest, Seat, SeatId,
    WaitlistRequest, WaitlistState,
};
use ticketing_store_redis::RedisStore;
use ticketing_store_redis::testkit::{connect_for_test, fresh_config, redis_url};

/// Positions of the event's keys in `RedisStore::event_keys`.
const EV: usize = 0;
const ST: usize = 3;
const FREE: usize = 19;
const PLACE: usize = 20;
const NEXT: usize = 21;
const ADJ: usize = 22;
/// The longest run the hints track (`RUN_TRACKED_MAX` in `lua/common.lua`).
const RUN_TRACKED_MAX: usize = 4;

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

fn spec(id: &str, seats: Vec<Seat>, policy: Policy) -> EventSpec {
    EventSpec {
        id: EventId::new(id).unwrap(),
        name: id.into(),
        seats,
        pools: Vec::new(),
        sale_window: None,
        policy,
    }
}

/// Two sections of two rows, two categories, and rows whose layout order is not their
/// number order (3, 1, 2, 4, 6, 5); seats numbered 6 are of category `s`.
fn small_layout() -> Vec<Seat> {
    let mut seats = Vec::new();
    for (section, category) in [("A", "p"), ("B", "s")] {
        for row in ["1", "2"] {
            for number in [3, 1, 2, 4, 6, 5] {
                let category = if number == 6 { "s" } else { category };
                let id = format!("{section}{row}-{number}");
                seats.push(seat(&id, section, row, number, category));
            }
        }
    }
    seats
}

async fn connection() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Whether a seat is a candidate of a FREE prefix (`a\0`, `s\0<section>\0`,
/// `c\0<category>\0`, `x\0<section>\0<category>\0`).
fn in_prefix(prefix: &[u8], seat: &Seat) -> bool {
    let parts: Vec<&[u8]> = prefix.split(|&byte| byte == 0).collect();
    let name = |part: &[u8]| String::from_utf8(part.to_vec()).unwrap();
    match parts.as_slice() {
        [b"a", b""] => true,
        [b"s", section, b""] => seat.section == name(section),
        [b"c", category, b""] => seat.category == name(category),
        [b"x", section, category, b""] => {
            seat.section == name(section) && seat.category == name(category)
        }
        _ => panic!("not a FREE prefix: {prefix:?}"),
    }
}

/// A JSON array as cjson writes it (an empty one as `{}`) of layout indices.
fn indices(value: &serde_json::Value) -> Vec<usize> {
    match value {
        serde_json::Value::Array(items) => items
            .iter()
            .map(|item| usize::try_from(item.as_u64().unwrap()).unwrap())
            .collect(),
        serde_json::Value::Object(map) if map.is_empty() => Vec::new(),
        other => panic!("not a list of indices: {other}"),
    }
}

/// `adj` keeps its promise: for each prefix it holds and each count k, every candidate that
/// starts a run of k candidates (following the numbers of its row) lies at the field's
/// bound F_k or later, or is one of the exceptions listed with it, which all lie before F_k.
fn assert_hints_hold(
    spec: &EventSpec,
    taken: &HashMap<String, String>,
    hints: &HashMap<Vec<u8>, String>,
    following: &HashMap<usize, usize>,
) {
    for (prefix, raw) in hints {
        let lists: Vec<serde_json::Value> = serde_json::from_str(raw).unwrap();
        assert_eq!(lists.len(), RUN_TRACKED_MAX - 1, "{raw}");
        let candidate = |index: usize| {
            !taken.contains_key(&index.to_string()) && in_prefix(prefix, &spec.seats[index - 1])
        };
        for (offset, list) in lists.iter().enumerate() {
            let count = offset + 2;
            let list = indices(list);
            let (bound, exceptions) = list.split_first().unwrap();
            assert!(exceptions.iter().all(|start| start < bound), "{raw}");
            for start in 1..=spec.seats.len() {
                let mut run = vec![start];
                while run.len() < count {
                    match following.get(run.last().unwrap()) {
                        Some(&after) => run.push(after),
                        None => break,
                    }
                }
                let starts_run = run.len() == count && run.iter().all(|&index| candidate(index));
                if starts_run {
                    assert!(
                        start >= *bound || exceptions.contains(&start),
                        "a run of {count} at {start} hides before the hint {raw} of {prefix:?}"
                    );
                }
            }
        }
    }
}

/// `free` holds exactly the four members of each seat that `st` does not hold, `place`
/// names every seat with its neighbours in number order, `next` links each seat to the one
/// numbered one more in its row, and the run hints in `adj` hold.
async fn assert_index_matches(store: &RedisStore, spec: &EventSpec) {
    let keys = store.event_keys(&spec.id);
    let mut connection = connection().await;
    let taken: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(&keys[ST])
        .query_async(&mut connection)
        .await
        .unwrap();
    let members: Vec<Vec<u8>> = redis::cmd("ZRANGE")
        .arg(&keys[FREE])
        .arg(0)
        .arg(-1)
        .query_async(&mut connection)
        .await
        .unwrap();
    let places: HashMap<usize, String> = redis::cmd("HGETALL")
        .arg(&keys[PLACE])
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(places.len(), spec.seats.len());
    let hints: HashMap<Vec<u8>, String> = redis::cmd("HGETALL")
        .arg(&keys[ADJ])
        .query_async(&mut connection)
        .await
        .unwrap();
    let nexts: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(&keys[NEXT])
        .query_async(&mut connection)
        .await
        .unwrap();
    let numbered: HashMap<(&str, &str, u32), usize> = spec
        .seats
        .iter()
        .enumerate()
        .map(|(offset, seat)| {
            (
                (seat.section.as_str(), seat.row.as_str(), seat.number),
                offset + 1,
            )
        })
        .collect();
    let expected_nexts: HashMap<String, String> = spec
        .seats
        .iter()
        .enumerate()
        .filter_map(|(offset, seat)| {
            let after =
                numbered.get(&(seat.section.as_str(), seat.row.as_str(), seat.number + 1))?;
            Some(((offset + 1).to_string(), after.to_string()))
        })
        .collect();
    assert_eq!(nexts, expected_nexts);
    for (offset, seat) in spec.seats.iter().enumerate() {
        let place: Vec<serde_json::Value> = serde_json::from_str(&places[&(offset + 1)]).unwrap();
        assert_eq!(place[0], seat.id.as_str());
        assert_eq!(place[1], seat.section.as_str());
        assert_eq!(place[2], seat.category.as_str());
        for (slot, step) in [(3, 1i64), (4, -1)] {
            let expected: Vec<usize> = (1..RUN_TRACKED_MAX as i64)
                .map_while(|k| {
                    let number = u32::try_from(i64::from(seat.number) + k * step).ok()?;
                    numbered
                        .get(&(seat.section.as_str(), seat.row.as_str(), number))
                        .copied()
                })
                .collect();
            assert_eq!(indices(&place[slot]), expected, "{}", seat.id);
        }
    }
    let following: HashMap<usize, usize> = nexts
        .iter()
        .map(|(from, to)| (from.parse().unwrap(), to.parse().unwrap()))
        .collect();
    assert_hints_hold(spec, &taken, &hints, &following);
    let mut expected = BTreeSet::new();
    for (offset, seat) in spec.seats.iter().enumerate() {
        let index = offset + 1;
        if !taken.contains_key(&index.to_string()) {
            let at = format!("{index:06}");
            let (section, category) = (&seat.section, &seat.category);
            expected.insert(format!("a\0{at}").into_bytes());
            expected.insert(format!("s\0{section}\0{at}").into_bytes());
            expected.insert(format!("c\0{category}\0{at}").into_bytes());
            expected.insert(format!("x\0{section}\0{category}\0{at}").into_bytes());
        }
    }
    let actual: BTreeSet<Vec<u8>> = members.into_iter().collect();
    assert_eq!(actual.len(), expected.len());
    assert!(
        actual == expected,
        "the free-seat index drifted from the seat states"
    );
}

fn best(
    count: u32,
    adjacent: bool,
    section: Option<&str>,
    category: Option<&str>,
) -> BestAvailable {
    BestAvailable {
        count,
        adjacent,
        section: section.map(Into::into),
        category: category.map(Into::into),
    }
}

fn seat_ids(reservation: &Reservation) -> Vec<&str> {
    reservation.seats.iter().map(SeatId::as_str).collect()
}

fn request(event: &EventId, holder: &str) -> ReserveRequest {
    ReserveRequest::new(event.clone(), HolderId::new(holder).unwrap())
}

fn seat_id(id: &str) -> SeatId {
    SeatId::new(id).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_follows_every_take_and_release() {
    let clock = ManualClock::default();
    let store = connect_for_test(fresh_config().clock(Arc::new(clock.clone()))).await;
    let spec = spec("indexed", small_layout(), Policy::default());
    let event = spec.id.clone();
    store.create_event(spec.clone()).await.unwrap();
    assert_index_matches(&store, &spec).await;

    // Explicit seats and best available in one request: the explicit seat is no candidate,
    // and the run follows the numbers, not the layout order.
    let first = store
        .reserve(
            request(&event, "h1")
                .seats([seat_id("A1-1")])
                .best_available(best(3, true, Some("A"), None)),
        )
        .await
        .unwrap();
    assert_eq!(seat_ids(&first), ["A1-1", "A1-3", "A1-4", "A1-5"]);
    assert_index_matches(&store, &spec).await;
    let second = store
        .reserve(request(&event, "h2").best_available(best(2, false, None, Some("s"))))
        .await
        .unwrap();
    assert_eq!(seat_ids(&second), ["A1-6", "A2-6"]);
    assert_index_matches(&store, &spec).await;

    // A commit of some seats releases the others; a cancel releases all.
    let token = first.token.clone().unwrap();
    let buy = CommitRequest {
        seats: Some(vec![seat_id("A1-3")]),
        ..CommitRequest::new(token, IdempotencyKey::new("k1").unwrap())
    };
    let order = store.commit(&first.id, buy).await.unwrap();
    assert_index_matches(&store, &spec).await;
    store
        .cancel(&second.id, second.token.as_ref().unwrap())
        .await
        .unwrap();
    assert_index_matches(&store, &spec).await;

    // Blocking a free seat and a blocked one, then unblocking one.
    let blocked = [seat_id("B1-3"), seat_id("B1-1")];
    store.block(&event, &blocked[..1], true).await.unwrap();
    store.block(&event, &blocked, true).await.unwrap();
    assert_index_matches(&store, &spec).await;
    store.block(&event, &blocked[1..], false).await.unwrap();
    assert_index_matches(&store, &spec).await;

    // A refund puts the sold seat back on sale.
    store.refund(&order.id, None).await.unwrap();
    assert_index_matches(&store, &spec).await;

    // B1-3 is blocked, so B1-1 and B1-2 start no run of 4 and B1 has numbers 4 to 6 only.
    let lapsing = store
        .reserve(request(&event, "h3").best_available(best(4, true, Some("B"), Some("s"))))
        .await
        .unwrap();
    assert_eq!(seat_ids(&lapsing), ["B2-3", "B2-4", "B2-5", "B2-6"]);
    assert_index_matches(&store, &spec).await;
    // A lapsed hold comes back when it is swept, or when the next reserve finalizes it.
    clock.advance(Duration::from_secs(
        Policy::default().reservation_ttl_seconds.into(),
    ));
    assert_eq!(store.expire_due(100).await.unwrap(), 1);
    assert_index_matches(&store, &spec).await;
    store
        .reserve(request(&event, "h4").best_available(best(1, false, None, None)))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(
        Policy::default().reservation_ttl_seconds.into(),
    ));
    let sold_out = store
        .reserve(request(&event, "h5").best_available(best(7, true, None, None)))
        .await
        .unwrap_err();
    // Every seat but the blocked one is a candidate once the lapsed hold is finalized.
    assert_eq!(
        sold_out,
        ticketing_core::Error::SoldOut {
            pool: None,
            remaining: 23
        }
    );
    assert_index_matches(&store, &spec).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waitlist_offers_take_seats_from_the_index() {
    let store = connect_for_test(fresh_config().clock(Arc::new(ManualClock::default()))).await;
    let policy = Policy {
        waitlist: true,
        ..Policy::default()
    };
    let spec = spec("waitlisted", small_layout(), policy);
    let event = spec.id.clone();
    store.create_event(spec.clone()).await.unwrap();
    let all = store
        .reserve(request(&event, "h1").best_available(best(24, false, None, None)))
        .await
        .unwrap();
    assert_index_matches(&store, &spec).await;
    let joined = store
        .waitlist_join(WaitlistRequest {
            adjacent: true,
            section: Some("B".into()),
            ..WaitlistRequest::seats(event.clone(), HolderId::new("w").unwrap(), 3)
        })
        .await
        .unwrap();
    assert!(matches!(
        joined.entry.state,
        WaitlistState::Waiting { position: 1 }
    ));
    // The cancel frees every seat and offers three of them in the same script.
    store
        .cancel(&all.id, all.token.as_ref().unwrap())
        .await
        .unwrap();
    let entry = store
        .waitlist_entry(&event, &joined.entry.id)
        .await
        .unwrap();
    let WaitlistState::Offered { reservation } = entry.state else {
        panic!("the entry was not offered: {entry:?}");
    };
    let offer = store.reservation(&reservation).await.unwrap();
    // B1-3 comes first in the layout, and B1-4 and B1-5 follow it in number.
    assert_eq!(seat_ids(&offer), ["B1-3", "B1-4", "B1-5"]);
    assert_index_matches(&store, &spec).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_made_before_the_index_gets_it_on_first_use() {
    let store = connect_for_test(fresh_config().clock(Arc::new(ManualClock::default()))).await;
    let spec = spec("older", small_layout(), Policy::default());
    let event = spec.id.clone();
    store.create_event(spec.clone()).await.unwrap();
    store
        .reserve(request(&event, "h1").seats([seat_id("A1-3"), seat_id("A1-1")]))
        .await
        .unwrap();
    // What an event made before the index looks like: no `free`, `place`, `next` or flag.
    let keys = store.event_keys(&event);
    let mut connection = connection().await;
    let _: () = redis::pipe()
        .del(&keys[FREE])
        .ignore()
        .del(&keys[PLACE])
        .ignore()
        .del(&keys[NEXT])
        .ignore()
        .hdel(&keys[EV], "fx")
        .ignore()
        .query_async(&mut connection)
        .await
        .unwrap();
    let picked = store
        .reserve(request(&event, "h2").best_available(best(2, true, None, None)))
        .await
        .unwrap();
    // A1-2 starts no run (A1-3 is held): the first pair is A1-4 and A1-5.
    assert_eq!(seat_ids(&picked), ["A1-4", "A1-5"]);
    assert_index_matches(&store, &spec).await;

    // What an event made by the first version of the index looks like: `fx` 1, `place`
    // without neighbours, no hints (here a stale one that would hide every run).
    let old_places: Vec<(usize, String)> = spec
        .seats
        .iter()
        .enumerate()
        .map(|(offset, seat)| {
            let place = serde_json::json!([seat.id.as_str(), seat.section, seat.category]);
            (offset + 1, place.to_string())
        })
        .collect();
    let _: () = redis::pipe()
        .hset_multiple(&keys[PLACE], &old_places)
        .ignore()
        .hset(&keys[ADJ], "a\0", "[[1000000],[1000000],[1000000]]")
        .ignore()
        .hset(&keys[EV], "fx", 1)
        .ignore()
        .query_async(&mut connection)
        .await
        .unwrap();
    let picked = store
        .reserve(request(&event, "h3").best_available(best(3, true, None, None)))
        .await
        .unwrap();
    // Row A1 has no three free seats in a row (A1-1, A1-3, A1-4 and A1-5 are held); the
    // first candidate of row A2 in layout order, A2-3, starts one.
    assert_eq!(seat_ids(&picked), ["A2-3", "A2-4", "A2-5"]);
    assert_index_matches(&store, &spec).await;
}

/// One request of the comparison: best available of a random shape, sometimes with an
/// explicit seat beside it.
fn random_request(rng: &mut StdRng, event: &EventId, seats: &[Seat], n: usize) -> ReserveRequest {
    let section = ["S0", "S1", "S2"][rng.random_range(0..3)];
    let category = ["c0", "c1"][rng.random_range(0..2)];
    let best = BestAvailable {
        count: rng.random_range(1..=6),
        adjacent: rng.random_bool(0.6),
        section: rng.random_bool(0.4).then(|| section.to_owned()),
        category: rng.random_bool(0.3).then(|| category.to_owned()),
    };
    let mut request = request(event, &format!("h{n}")).best_available(best);
    if rng.random_bool(0.2) {
        request = request.seats([seats[rng.random_range(0..seats.len())].id.clone()]);
    }
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn best_available_answers_as_the_memory_store_on_a_large_fragmented_layout() {
    // Three sections of eight rows of 40 seats, each row in a shuffled number order,
    // categories in runs of five; a third of the seats blocked at random.
    let mut rng = StdRng::seed_from_u64(7);
    let mut seats = Vec::new();
    for section in 0..3 {
        for row in 0..8 {
            let mut numbers: Vec<u32> = (1..=40).collect();
            numbers.shuffle(&mut rng);
            for number in numbers {
                let category = format!("c{}", (number / 5) % 2);
                let id = format!("S{section}-{row}-{number}");
                seats.push(seat(
                    &id,
                    &format!("S{section}"),
                    &row.to_string(),
                    number,
                    &category,
                ));
            }
        }
    }
    let spec = spec("large", seats.clone(), Policy::default());
    let event = spec.id.clone();
    let clock = ManualClock::default();
    let redis = connect_for_test(fresh_config().clock(Arc::new(clock.clone()))).await;
    let memory = MemoryStore::with_clock(Arc::new(clock));
    redis.create_event(spec.clone()).await.unwrap();
    memory.create_event(spec.clone()).await.unwrap();
    let blocked: Vec<SeatId> = seats
        .iter()
        .filter(|_| rng.random_bool(0.33))
        .map(|seat| seat.id.clone())
        .collect();
    redis.block(&event, &blocked, true).await.unwrap();
    memory.block(&event, &blocked, true).await.unwrap();
    // Single requests, then batches (one script each: later walks of a batch resume where
    // earlier ones stopped), with holds cancelled between them so seats come back mid-row.
    let mut held = Vec::new();
    for round in 0..200 {
        let size = if round < 100 { 1 } else { 8 };
        let requests: Vec<ReserveRequest> = (0..size)
            .map(|k| random_request(&mut rng, &event, &seats, round * 8 + k))
            .collect();
        let from_redis = redis.reserve_batch(requests.clone()).await;
        let from_memory = memory.reserve_batch(requests.clone()).await;
        for ((request, a), b) in requests.iter().zip(from_redis).zip(from_memory) {
            match (a, b) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a.seats, b.seats, "{request:?}");
                    held.push((a, b));
                }
                (Err(a), Err(b)) => assert_eq!(a, b, "{request:?}"),
                (a, b) => panic!("{request:?}: redis {a:?}, memory {b:?}"),
            }
        }
        if round % 25 == 24 {
            assert_index_matches(&redis, &spec).await;
        }
        while rng.random_bool(0.4) && !held.is_empty() {
            let (a, b) = held.swap_remove(rng.random_range(0..held.len()));
            redis
                .cancel(&a.id, a.token.as_ref().unwrap())
                .await
                .unwrap();
            memory
                .cancel(&b.id, b.token.as_ref().unwrap())
                .await
                .unwrap();
        }
    }
    assert_index_matches(&redis, &spec).await;
}

/// The Redis store and the in-memory store side by side, on one clock.
struct Pair {
    redis: RedisStore,
    memory: MemoryStore,
    clock: ManualClock,
    spec: EventSpec,
}

impl Pair {
    /// Reserves on both; both answer alike (the same seats, or the same error).
    async fn reserve(&self, request: ReserveRequest) -> Option<(Reservation, Reservation)> {
        let a = self.redis.reserve(request.clone()).await;
        let b = self.memory.reserve(request.clone()).await;
        match (a, b) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a.seats, b.seats, "{request:?}");
                Some((a, b))
            }
            (Err(a), Err(b)) => {
                assert_eq!(a, b, "{request:?}");
                None
            }
            (a, b) => panic!("{request:?}: redis {a:?}, memory {b:?}"),
        }
    }

    /// Adjacent best available of every tracked count, with and without the section: the
    /// hints learn where runs start.
    async fn learn(&self, holder: &str) {
        for count in 2..=4 {
            for section in [Some("A"), None] {
                let request =
                    request(&self.spec.id, holder).best_available(best(count, true, section, None));
                self.reserve(request).await;
            }
        }
        assert_index_matches(&self.redis, &self.spec).await;
    }

    async fn block(&self, seats: &[&str], blocked: bool) {
        let seats: Vec<SeatId> = seats.iter().map(|seat| seat_id(seat)).collect();
        self.redis
            .block(&self.spec.id, &seats, blocked)
            .await
            .unwrap();
        self.memory
            .block(&self.spec.id, &seats, blocked)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_hints_list_the_runs_every_kind_of_release_makes() {
    let clock = ManualClock::default();
    let spec = spec("hinted", small_layout(), Policy::default());
    let pair = Pair {
        redis: connect_for_test(fresh_config().clock(Arc::new(clock.clone()))).await,
        memory: MemoryStore::with_clock(Arc::new(clock.clone())),
        clock,
        spec: spec.clone(),
    };
    let event = spec.id.clone();
    pair.redis.create_event(spec.clone()).await.unwrap();
    pair.memory.create_event(spec.clone()).await.unwrap();
    let seats = |ids: &[&str]| ids.iter().map(|id| seat_id(id)).collect::<Vec<_>>();
    let hold = |holder: &str, ids: &[&str]| request(&event, holder).seats(seats(ids));

    // Row A1 taken every way (held, held to be partly bought, held briefly, blocked), then
    // hints learnt past it.
    let cancelled = pair.reserve(hold("h1", &["A1-1", "A1-2"])).await.unwrap();
    let bought = pair.reserve(hold("h2", &["A1-4", "A1-5"])).await.unwrap();
    let lapsing = pair
        .reserve(hold("h3", &["B1-1", "B1-2"]).ttl_seconds(10))
        .await
        .unwrap();
    let swept = pair
        .reserve(hold("h4", &["B1-4", "B1-5"]).ttl_seconds(10))
        .await
        .unwrap();
    pair.block(&["A1-3", "A1-6", "B1-3"], true).await;
    pair.learn("l1").await;

    // A cancel frees a pair before the hints.
    let (a, b) = cancelled;
    pair.redis
        .cancel(&a.id, a.token.as_ref().unwrap())
        .await
        .unwrap();
    pair.memory
        .cancel(&b.id, b.token.as_ref().unwrap())
        .await
        .unwrap();
    assert_index_matches(&pair.redis, &spec).await;
    pair.learn("l2").await;

    // A commit of some seats frees the others; an unblock makes a run of them.
    let (a, b) = bought;
    let buy = |token: ReservationToken| CommitRequest {
        seats: Some(vec![seat_id("A1-5")]),
        ..CommitRequest::new(token, IdempotencyKey::new("k1").unwrap())
    };
    let order = pair
        .redis
        .commit(&a.id, buy(a.token.clone().unwrap()))
        .await
        .unwrap();
    let memory_order = pair
        .memory
        .commit(&b.id, buy(b.token.clone().unwrap()))
        .await
        .unwrap();
    pair.block(&["A1-3"], false).await;
    assert_index_matches(&pair.redis, &spec).await;
    pair.learn("l3").await;

    // A refund puts A1-5 back on sale.
    pair.redis.refund(&order.id, None).await.unwrap();
    pair.memory.refund(&memory_order.id, None).await.unwrap();
    assert_index_matches(&pair.redis, &spec).await;
    pair.learn("l4").await;

    // Lapsed holds: one finalized by the sweeper, one by the next reserve.
    pair.clock.advance(Duration::from_secs(11));
    let (a, _) = swept;
    let (c, _) = lapsing;
    assert!(pair.redis.expire_due(100).await.unwrap() >= 2);
    pair.memory.expire_due(100).await.unwrap();
    assert!(matches!(
        pair.redis.reservation(&a.id).await.unwrap().status,
        ticketing_core::ReservationStatus::Expired
    ));
    assert!(matches!(
        pair.redis.reservation(&c.id).await.unwrap().status,
        ticketing_core::ReservationStatus::Expired
    ));
    assert_index_matches(&pair.redis, &spec).await;
    pair.learn("l5").await;
}
