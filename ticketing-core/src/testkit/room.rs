//! The waiting room's conformance suite: every [`WaitingRoom`] backend runs it against a
//! real server through [`room_conformance_suite!`](crate::room_conformance_suite), on a
//! manual clock (time only moves when a scenario moves it).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Entity, Error};
use crate::id::{EventId, HolderId, QueueTicketId};
use crate::room::{QueueStatus, QueueTicket, RoomSettings, WaitingRoom};
use crate::time::{Clock, ManualClock};

/// A fresh, isolated waiting room store for one test, and the manual clock it runs on.
#[derive(Clone)]
pub struct TestRoom {
    /// The rooms under test.
    pub rooms: Arc<dyn WaitingRoom>,
    /// Their clock.
    pub clock: ManualClock,
}

/// Makes a fresh, isolated [`TestRoom`].
pub type RoomFactory =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = TestRoom> + Send>> + Send + Sync>;

/// In-memory rooms on a manual clock: the in-memory backend's own factory.
pub async fn memory_room_for_test() -> TestRoom {
    let clock = ManualClock::default();
    let rooms = crate::room::MemoryWaitingRoom::with_clock(Arc::new(clock.clone()));
    TestRoom {
        rooms: Arc::new(rooms),
        clock,
    }
}

/// Plenty of inventory: never the bound in scenarios about rate and cap.
const PLENTY: u64 = 1_000_000;

fn event(name: &str) -> EventId {
    EventId::new(name).unwrap()
}

fn visitor(n: usize) -> HolderId {
    HolderId::new(format!("visitor-{n:04}")).unwrap()
}

async fn status(t: &TestRoom, ticket: &QueueTicketId) -> QueueStatus {
    t.rooms.status(ticket).await.unwrap().status
}

async fn position(t: &TestRoom, ticket: &QueueTicketId) -> u64 {
    match status(t, ticket).await {
        QueueStatus::Waiting { position, .. } => position,
        other => panic!("expected waiting, got {other:?}"),
    }
}

async fn join_all(t: &TestRoom, event: &EventId, visitors: &[HolderId]) -> Vec<QueueTicket> {
    let mut tickets = Vec::new();
    for visitor in visitors {
        tickets.push(t.rooms.join(event, visitor).await.unwrap());
    }
    tickets
}

/// The visitors in queue order (position 1 first); panics unless positions are exactly
/// 1..=n.
async fn queue_order(t: &TestRoom, tickets: &[QueueTicket]) -> Vec<HolderId> {
    let mut by_position = BTreeMap::new();
    for ticket in tickets {
        let position = position(t, &ticket.id).await;
        assert!(
            by_position
                .insert(position, ticket.visitor.clone())
                .is_none(),
            "two visitors at position {position}"
        );
    }
    let positions: Vec<u64> = by_position.keys().copied().collect();
    let expected: Vec<u64> = (1..=tickets.len() as u64).collect();
    assert_eq!(positions, expected, "positions are not 1..=n");
    by_position.into_values().collect()
}

/// One place per visitor, FIFO positions, an estimated wait from the configured rate.
pub async fn join_is_one_place_per_visitor(t: TestRoom) {
    let event = event("room-join");
    t.rooms
        .configure(&event, RoomSettings::rate(10))
        .await
        .unwrap();
    let visitors: Vec<HolderId> = (0..25).map(visitor).collect();
    let tickets = join_all(&t, &event, &visitors).await;
    assert_eq!(queue_order(&t, &tickets).await, visitors, "arrival order");
    let again = t.rooms.join(&event, &visitors[3]).await.unwrap();
    assert_eq!(again, tickets[3], "joining again returns the same ticket");
    let distinct: BTreeSet<_> = tickets.iter().map(|ticket| ticket.id.clone()).collect();
    assert_eq!(distinct.len(), tickets.len());
    let state = t.rooms.status(&tickets[24].id).await.unwrap();
    assert_eq!(state.ticket, tickets[24]);
    assert_eq!(
        state.status,
        QueueStatus::Waiting {
            position: 25,
            estimated_wait_seconds: Some(3)
        },
        "25 ahead at 10 a second: 3 s (rounded up)"
    );
    let stats = t.rooms.stats(&event).await.unwrap();
    assert_eq!(
        (stats.waiting, stats.active, stats.admitted_total),
        (25, 0, 0)
    );
    assert!(stats.opened_at.is_some(), "a room without opens_at is open");
}

/// Concurrent joins: every visitor one ticket, positions a permutation of 1..=n, and
/// admission follows the positions.
pub async fn concurrent_joins_are_fifo(t: TestRoom) {
    let event = event("room-race");
    t.rooms
        .configure(&event, RoomSettings::cap(8))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for n in 0..64 {
        let rooms = t.rooms.clone();
        let event = event.clone();
        tasks.push(tokio::spawn(async move {
            let first = rooms.join(&event, &visitor(n)).await.unwrap();
            let second = rooms.join(&event, &visitor(n)).await.unwrap();
            assert_eq!(first, second, "a visitor joining twice keeps one place");
            first
        }));
    }
    let mut tickets = Vec::new();
    for task in tasks {
        tickets.push(task.await.unwrap());
    }
    let order = queue_order(&t, &tickets).await;
    let ticket_of: HashMap<HolderId, QueueTicketId> = tickets
        .iter()
        .map(|ticket| (ticket.visitor.clone(), ticket.id.clone()))
        .collect();
    // Admit 8 at a time (the cap), letting each batch leave: admission in queue order.
    let mut admitted_order = Vec::new();
    for _ in 0..8 {
        let step = t.rooms.admit(&event, PLENTY).await.unwrap();
        assert_eq!(step.admitted, 8);
        let mut batch = Vec::new();
        for visitor in &order {
            let ticket = &ticket_of[visitor];
            if let QueueStatus::Admitted { .. } = status(&t, ticket).await {
                batch.push(visitor.clone());
                t.rooms.leave(ticket).await.unwrap();
            }
        }
        admitted_order.extend(batch);
    }
    assert_eq!(admitted_order, order, "admitted in queue order, each once");
    let stats = t.rooms.stats(&event).await.unwrap();
    assert_eq!(
        (stats.waiting, stats.active, stats.admitted_total),
        (0, 0, 64)
    );
}

/// The rate holds over a simulated minute of 100 ms steps, never more than one second's
/// worth at once, and visitors are admitted once each.
pub async fn admission_rate_is_respected(t: TestRoom) {
    let event = event("room-rate");
    let rate = 20;
    t.rooms
        .configure(&event, RoomSettings::rate(rate).pass_ttl_seconds(3_600))
        .await
        .unwrap();
    let visitors: Vec<HolderId> = (0..1_500).map(visitor).collect();
    let tickets = join_all(&t, &event, &visitors).await;
    let mut per_second = vec![0u64; 61];
    let mut total = 0;
    for step in 0..600 {
        t.clock.advance(Duration::from_millis(100));
        let admitted = t.rooms.admit(&event, PLENTY).await.unwrap().admitted;
        per_second[step / 10] += u64::from(admitted);
        total += u64::from(admitted);
    }
    let rate = u64::from(rate);
    assert!(
        (60 * rate..=61 * rate).contains(&total),
        "admitted {total} in 60 s at {rate}/s"
    );
    for (second, admitted) in per_second.iter().enumerate().skip(1) {
        assert!(
            *admitted <= rate + 1,
            "second {second}: {admitted} admitted at {rate}/s"
        );
    }
    // Exactly the first `total` visitors hold passes; the rest wait, in order.
    for (index, ticket) in tickets.iter().enumerate() {
        let status = status(&t, &ticket.id).await;
        if (index as u64) < total {
            assert!(
                matches!(status, QueueStatus::Admitted { .. }),
                "{index}: {status:?}"
            );
        } else {
            assert_eq!(
                status,
                QueueStatus::Waiting {
                    position: index as u64 - total + 1,
                    estimated_wait_seconds: status_wait(&status),
                }
            );
        }
    }
    let stats = t.rooms.stats(&event).await.unwrap();
    assert_eq!(stats.admitted_total, total);
    assert_eq!(stats.active, total);
    // The measured rate drives the estimate: position p waits about p / rate seconds.
    let next = &tickets[total as usize];
    let QueueStatus::Waiting {
        estimated_wait_seconds: Some(wait),
        ..
    } = status(&t, &next.id).await
    else {
        panic!("the next visitor has an estimate");
    };
    assert!(
        wait <= 1,
        "next in line waits about a step, estimated {wait} s"
    );
}

fn status_wait(status: &QueueStatus) -> Option<u64> {
    match status {
        QueueStatus::Waiting {
            estimated_wait_seconds,
            ..
        } => *estimated_wait_seconds,
        _ => None,
    }
}

/// The cap bounds live passes; leaving and lapsing free slots; a lapsed visitor queues
/// anew at the back.
pub async fn cap_and_lapse(t: TestRoom) {
    let event = event("room-cap");
    t.rooms
        .configure(&event, RoomSettings::cap(3).pass_ttl_seconds(30))
        .await
        .unwrap();
    let visitors: Vec<HolderId> = (0..8).map(visitor).collect();
    let tickets = join_all(&t, &event, &visitors).await;
    assert_eq!(t.rooms.admit(&event, PLENTY).await.unwrap().admitted, 3);
    assert_eq!(t.rooms.admit(&event, PLENTY).await.unwrap().admitted, 0);
    let pass = Clock::now(&t.clock).saturating_add(Duration::from_secs(30));
    assert_eq!(
        status(&t, &tickets[0].id).await,
        QueueStatus::Admitted {
            pass_expires_at: pass
        }
    );
    assert_eq!(position(&t, &tickets[3].id).await, 1);
    // Giving back a pass frees its slot for the next visitor.
    t.rooms.leave(&tickets[1].id).await.unwrap();
    t.rooms.leave(&tickets[1].id).await.unwrap();
    assert_eq!(status(&t, &tickets[1].id).await, QueueStatus::Left);
    let step = t.rooms.admit(&event, PLENTY).await.unwrap();
    assert_eq!((step.admitted, step.stats.active), (1, 3));
    assert!(matches!(
        status(&t, &tickets[3].id).await,
        QueueStatus::Admitted { .. }
    ));
    // Passes lapse at their time and free their slots.
    t.clock.advance(Duration::from_secs(30));
    assert_eq!(status(&t, &tickets[0].id).await, QueueStatus::Lapsed);
    let step = t.rooms.admit(&event, PLENTY).await.unwrap();
    assert_eq!((step.lapsed, step.admitted, step.stats.active), (3, 3, 3));
    for ticket in &tickets[4..7] {
        assert!(matches!(
            status(&t, &ticket.id).await,
            QueueStatus::Admitted { .. }
        ));
    }
    // Lapsed and left visitors queue again at the back, with a new ticket.
    let rejoined = t.rooms.join(&event, &visitors[0]).await.unwrap();
    assert_ne!(rejoined.id, tickets[0].id);
    assert_eq!(position(&t, &rejoined.id).await, 2, "behind visitor 7");
    let rejoined_left = t.rooms.join(&event, &visitors[1]).await.unwrap();
    assert_ne!(rejoined_left.id, tickets[1].id);
    assert_eq!(position(&t, &rejoined_left.id).await, 3);
    assert_eq!(status(&t, &tickets[0].id).await, QueueStatus::Lapsed);
    let stats = t.rooms.stats(&event).await.unwrap();
    assert_eq!(
        (stats.waiting, stats.active, stats.admitted_total),
        (3, 3, 7)
    );
}

/// Admission stays within what the free inventory can serve; with nothing free every
/// waiting visitor reads sold out at once, and admission resumes when inventory returns.
pub async fn inventory_bounds_admission(t: TestRoom) {
    let event = event("room-stock");
    t.rooms
        .configure(&event, RoomSettings::cap(100).seats_per_buyer(2))
        .await
        .unwrap();
    let visitors: Vec<HolderId> = (0..20).map(visitor).collect();
    let tickets = join_all(&t, &event, &visitors).await;
    let step = t.rooms.admit(&event, 7).await.unwrap();
    assert_eq!(step.admitted, 3, "7 free units serve 3 buyers of 2");
    assert!(!step.stats.sold_out);
    let step = t.rooms.admit(&event, 0).await.unwrap();
    assert_eq!(step.admitted, 0);
    assert!(step.stats.sold_out);
    assert_eq!(status(&t, &tickets[5].id).await, QueueStatus::SoldOut);
    assert!(
        matches!(
            status(&t, &tickets[0].id).await,
            QueueStatus::Admitted { .. }
        ),
        "admitted visitors keep their pass"
    );
    let step = t.rooms.admit(&event, 20).await.unwrap();
    assert_eq!(step.admitted, 7, "20 units serve 10 buyers, 3 are shopping");
    assert!(!step.stats.sold_out);
    assert_eq!(position(&t, &tickets[10].id).await, 1);
}

/// Visitors who join before the opening are shuffled at it: positions are a permutation,
/// the order is fixed by the seed (and not by arrival), later arrivals queue behind.
pub async fn prequeue_is_shuffled_at_opening(t: TestRoom) {
    let opens_at = Clock::now(&t.clock).saturating_add(Duration::from_secs(60));
    let visitors: Vec<HolderId> = (0..40).map(visitor).collect();
    let settings = RoomSettings::rate(5).opens_at(opens_at).shuffle_seed(42);
    let first = event("room-pre-1");
    let second = event("room-pre-2");
    let other_seed = event("room-pre-3");
    t.rooms.configure(&first, settings).await.unwrap();
    t.rooms.configure(&second, settings).await.unwrap();
    t.rooms
        .configure(&other_seed, settings.shuffle_seed(43))
        .await
        .unwrap();
    let tickets = join_all(&t, &first, &visitors).await;
    let reversed: Vec<HolderId> = visitors.iter().rev().cloned().collect();
    let tickets_second = join_all(&t, &second, &reversed).await;
    let tickets_other = join_all(&t, &other_seed, &visitors).await;
    assert_eq!(
        status(&t, &tickets[0].id).await,
        QueueStatus::PreQueue { opens_at }
    );
    let step = t.rooms.admit(&first, PLENTY).await.unwrap();
    assert_eq!(step.admitted, 0, "nobody is admitted before the opening");
    assert_eq!(step.stats.waiting, 40);
    assert_eq!(step.stats.opened_at, None);

    t.clock.advance(Duration::from_secs(60));
    let late: Vec<HolderId> = (100..105).map(visitor).collect();
    let late_tickets = join_all(&t, &first, &late).await;
    let mut all = tickets.clone();
    all.extend(late_tickets.iter().cloned());
    let order = queue_order(&t, &all).await;
    assert_eq!(
        &order[40..],
        &late[..],
        "later arrivals behind, in arrival order"
    );
    let shuffled = &order[..40];
    let as_set: BTreeSet<_> = shuffled.iter().collect();
    assert_eq!(as_set.len(), 40, "a permutation of the pre-queue");
    assert_ne!(shuffled, &visitors[..], "not arrival order");
    assert_eq!(
        queue_order(&t, &tickets_second).await,
        shuffled,
        "the same seed gives the same order whatever the arrival order"
    );
    assert_ne!(
        queue_order(&t, &tickets_other).await,
        shuffled,
        "another seed gives another order"
    );
    let step = t.rooms.admit(&first, PLENTY).await.unwrap();
    assert_eq!(step.admitted, 5, "one second's worth at the opening");
    assert!(step.stats.opened_at.is_some());
    let admitted: Vec<&HolderId> = order.iter().take(5).collect();
    for ticket in &tickets {
        let is_admitted = matches!(status(&t, &ticket.id).await, QueueStatus::Admitted { .. });
        assert_eq!(is_admitted, admitted.contains(&&ticket.visitor));
    }
}

/// Leaving keeps every other position exact.
pub async fn leaving_keeps_positions_exact(t: TestRoom) {
    let event = event("room-leave");
    t.rooms
        .configure(&event, RoomSettings::cap(1))
        .await
        .unwrap();
    let visitors: Vec<HolderId> = (0..8).map(visitor).collect();
    let tickets = join_all(&t, &event, &visitors).await;
    t.rooms.leave(&tickets[3].id).await.unwrap();
    t.rooms.leave(&tickets[5].id).await.unwrap();
    assert_eq!(position(&t, &tickets[2].id).await, 3);
    assert_eq!(position(&t, &tickets[4].id).await, 4);
    assert_eq!(position(&t, &tickets[7].id).await, 6);
    t.rooms.leave(&tickets[0].id).await.unwrap();
    assert_eq!(position(&t, &tickets[1].id).await, 1);
    assert_eq!(position(&t, &tickets[7].id).await, 5);
    assert_eq!(t.rooms.admit(&event, PLENTY).await.unwrap().admitted, 1);
    assert_eq!(position(&t, &tickets[2].id).await, 1);
    assert_eq!(position(&t, &tickets[7].id).await, 4);
    assert_eq!(t.rooms.stats(&event).await.unwrap().waiting, 4);
}

/// Bad settings change nothing; unknown rooms and tickets are `not_found`; settings and
/// the list of rooms read back; reconfiguring keeps the queue.
pub async fn room_error_paths(t: TestRoom) {
    let event = event("room-errors");
    let error = t
        .rooms
        .configure(&event, RoomSettings::rate(0))
        .await
        .unwrap_err();
    assert_eq!(error.code(), "invalid_request");
    assert_eq!(t.rooms.settings(&event).await.unwrap(), None);
    assert_eq!(
        t.rooms.join(&event, &visitor(1)).await.unwrap_err(),
        Error::not_found(Entity::Room, &event)
    );
    assert_eq!(
        t.rooms.admit(&event, PLENTY).await.unwrap_err(),
        Error::not_found(Entity::Room, &event)
    );
    assert_eq!(
        t.rooms.stats(&event).await.unwrap_err(),
        Error::not_found(Entity::Room, &event)
    );
    let unknown = QueueTicketId::new("q_01KNOWNNOTHING").unwrap();
    assert_eq!(
        t.rooms.status(&unknown).await.unwrap_err(),
        Error::not_found(Entity::QueueTicket, &unknown)
    );
    assert_eq!(
        t.rooms.leave(&unknown).await.unwrap_err(),
        Error::not_found(Entity::QueueTicket, &unknown)
    );

    let settings = RoomSettings::rate(3).active_max(9).shuffle_seed(5);
    t.rooms.configure(&event, settings).await.unwrap();
    assert_eq!(t.rooms.settings(&event).await.unwrap(), Some(settings));
    let ticket = t.rooms.join(&event, &visitor(1)).await.unwrap();
    let bad = RoomSettings::cap(5).pass_ttl_seconds(1);
    assert_eq!(
        t.rooms.configure(&event, bad).await.unwrap_err().code(),
        "invalid_request"
    );
    assert_eq!(t.rooms.settings(&event).await.unwrap(), Some(settings));
    let changed = RoomSettings::cap(2).shuffle_seed(5);
    t.rooms.configure(&event, changed).await.unwrap();
    assert_eq!(t.rooms.settings(&event).await.unwrap(), Some(changed));
    assert_eq!(position(&t, &ticket.id).await, 1, "the queue stays");
    let second = EventId::new("room-errors-0").unwrap();
    t.rooms.configure(&second, settings).await.unwrap();
    let rooms = t.rooms.rooms().await.unwrap();
    let ours: Vec<&EventId> = rooms
        .iter()
        .filter(|id| id.as_str().starts_with("room-errors"))
        .collect();
    assert_eq!(ours, vec![&event, &second], "rooms in id order");
}

/// The waiting room conformance suite for a backend: one `#[test]` per scenario, each on
/// a fresh [`TestRoom`] from `$factory` (an async fn).
///
/// ```ignore
/// ticketing_core::room_conformance_suite!(my_backend::room_for_test);
/// ```
#[macro_export]
macro_rules! room_conformance_suite {
    ($factory:path) => {
        $crate::room_conformance_suite!(@scenarios $factory;
            join_is_one_place_per_visitor,
            concurrent_joins_are_fifo,
            admission_rate_is_respected,
            cap_and_lapse,
            inventory_bounds_admission,
            prequeue_is_shuffled_at_opening,
            leaving_keeps_positions_exact,
            room_error_paths,
        );
    };
    (@scenarios $factory:path; $($scenario:ident,)*) => {
        $(
            #[test]
            fn $scenario() {
                $crate::testkit::block_on(async {
                    $crate::testkit::room::$scenario($factory().await).await;
                });
            }
        )*
    };
}

/// Throughput of a room backend: what [`bench_room`] measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoomFigures {
    /// Concurrent clients.
    pub clients: usize,
    /// Joins per second (every visitor new).
    pub joins_per_second: f64,
    /// Status polls per second.
    pub polls_per_second: f64,
    /// Median and 99th percentile latency of a join, in microseconds.
    pub join_p50_us: u64,
    /// 99th percentile join latency, in microseconds.
    pub join_p99_us: u64,
    /// Median status poll latency, in microseconds.
    pub poll_p50_us: u64,
    /// 99th percentile status poll latency, in microseconds.
    pub poll_p99_us: u64,
}

/// Measures joins/s and status polls/s on `event` (configured here with a cap so nobody is
/// admitted): `clients` tasks join `visitors` new visitors between them, then poll their
/// tickets `polls` times in all. A benchmark helper for the backends' bench programs, not a
/// test: it asserts only that every call succeeded.
pub async fn bench_room(
    rooms: Arc<dyn WaitingRoom>,
    event: &EventId,
    clients: usize,
    visitors: usize,
    polls: usize,
) -> RoomFigures {
    rooms
        .configure(event, RoomSettings::cap(1))
        .await
        .expect("configure the bench room");
    let clients = clients.max(1);
    let run = |phase: &'static str, per_client: usize, tickets: Arc<Vec<QueueTicketId>>| {
        let mut tasks = Vec::new();
        for client in 0..clients {
            let rooms = rooms.clone();
            let event = event.clone();
            let tickets = tickets.clone();
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_client);
                let mut joined = Vec::new();
                for n in 0..per_client {
                    let started = std::time::Instant::now();
                    if phase == "join" {
                        let visitor =
                            HolderId::new(format!("bench-{client}-{n}")).expect("a visitor id");
                        joined.push(rooms.join(&event, &visitor).await.expect("join").id);
                    } else {
                        let ticket = &tickets[(client * per_client + n) % tickets.len()];
                        rooms.status(ticket).await.expect("status");
                    }
                    latencies.push(started.elapsed().as_micros() as u64);
                }
                (latencies, joined)
            }));
        }
        tasks
    };
    let percentile = |sorted: &[u64], p: f64| -> u64 {
        sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
    };
    let started = std::time::Instant::now();
    let mut join_latencies = Vec::new();
    let mut tickets = Vec::new();
    for task in run("join", visitors.div_ceil(clients), Arc::new(Vec::new())) {
        let (latencies, joined) = task.await.expect("a join task");
        join_latencies.extend(latencies);
        tickets.extend(joined);
    }
    let join_seconds = started.elapsed().as_secs_f64();
    let started = std::time::Instant::now();
    let mut poll_latencies = Vec::new();
    for task in run("poll", polls.div_ceil(clients), Arc::new(tickets)) {
        poll_latencies.extend(task.await.expect("a poll task").0);
    }
    let poll_seconds = started.elapsed().as_secs_f64();
    join_latencies.sort_unstable();
    poll_latencies.sort_unstable();
    RoomFigures {
        clients,
        joins_per_second: join_latencies.len() as f64 / join_seconds,
        polls_per_second: poll_latencies.len() as f64 / poll_seconds,
        join_p50_us: percentile(&join_latencies, 0.5),
        join_p99_us: percentile(&join_latencies, 0.99),
        poll_p50_us: percentile(&poll_latencies, 0.5),
        poll_p99_us: percentile(&poll_latencies, 0.99),
    }
}

/// How closely a room kept its configured rate: what [`admission_accuracy`] measured.
#[derive(Debug, Clone, PartialEq)]
pub struct AdmissionAccuracy {
    /// The configured rate, visitors a second.
    pub rate: u32,
    /// Simulated seconds.
    pub seconds: u32,
    /// Milliseconds between admission steps.
    pub step_ms: u64,
    /// What the rule allows over the run: the opening credit (one second's worth) plus
    /// `rate` a second.
    pub allowed: u64,
    /// Visitors admitted over the run.
    pub admitted: u64,
    /// Admitted by the steps of each simulated second (the first holds the opening
    /// credit; the step closing the run is in no second).
    pub per_second: Vec<u64>,
}

impl AdmissionAccuracy {
    /// `admitted / allowed`: 1.0 is exact.
    pub fn ratio(&self) -> f64 {
        self.admitted as f64 / self.allowed.max(1) as f64
    }

    /// The largest distance of a whole second after the first from `rate`.
    pub fn worst_second_error(&self) -> u64 {
        self.per_second
            .iter()
            .skip(1)
            .map(|&n| n.abs_diff(u64::from(self.rate)))
            .max()
            .unwrap_or(0)
    }
}

impl std::fmt::Display for AdmissionAccuracy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "admission over {} simulated seconds at {}/s, a step every {} ms: admitted {} of {} allowed (ratio {:.4}), worst whole second off by {}",
            self.seconds,
            self.rate,
            self.step_ms,
            self.admitted,
            self.allowed,
            self.ratio(),
            self.worst_second_error()
        )
    }
}

/// Simulates `seconds` of a rate-limited room on its manual clock: more visitors wait than
/// the run can admit, an admission step runs every `step_ms`, inventory never binds, and
/// passes outlive the run. Counts what each simulated second admitted. A benchmark helper
/// for the backends' bench programs: it asserts only that every call succeeded.
pub async fn admission_accuracy(
    room: &TestRoom,
    event: &EventId,
    rate: u32,
    seconds: u32,
    step_ms: u64,
) -> AdmissionAccuracy {
    let settings = RoomSettings::rate(rate).pass_ttl_seconds(seconds.saturating_mul(2).max(60));
    room.rooms
        .configure(event, settings)
        .await
        .expect("configure the simulated room");
    let allowed = u64::from(rate) * (u64::from(seconds) + 1);
    for n in 0..allowed + u64::from(rate) {
        let visitor = HolderId::new(format!("sim-{n}")).expect("a visitor id");
        room.rooms.join(event, &visitor).await.expect("join");
    }
    let step_ms = step_ms.max(1);
    let steps_per_second = (1_000 / step_ms).max(1);
    let mut per_second = Vec::with_capacity(seconds as usize);
    for _ in 0..seconds {
        let mut this_second = 0;
        for _ in 0..steps_per_second {
            let step = room.rooms.admit(event, u64::MAX).await.expect("admit");
            this_second += u64::from(step.admitted);
            room.clock.advance(Duration::from_millis(step_ms));
        }
        per_second.push(this_second);
    }
    // A last step at the end of the run takes what its last interval earned (it opens
    // the next second, so it is in the total but in no second).
    let last = room.rooms.admit(event, u64::MAX).await.expect("admit");
    AdmissionAccuracy {
        rate,
        seconds,
        step_ms,
        allowed,
        admitted: per_second.iter().sum::<u64>() + u64::from(last.admitted),
        per_second,
    }
}
