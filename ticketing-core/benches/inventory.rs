//! Benchmarks of the in-memory store, each beside a naive `Mutex<HashMap>` doing the same
//! operation in the same run (the natural limit: what one lock and one map cost).
//!
//! `cargo bench -p ticketing-core --bench inventory`; see BENCHMARKS.md for the figures.
//! Only the operations are timed: building events and stores happens between timed chunks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::HashMap;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use parking_lot::Mutex;
use ticketing_core::{
    BestAvailable, CommitRequest, EventId, EventSpec, HolderId, IdempotencyKey, InventoryStore,
    ManualClock, MemoryStore, Policy, PoolId, PoolSpec, ReserveRequest, Seat, SeatId,
};

// Applications choose their allocator; these figures are measured with mimalloc, whose
// per-thread heaps let two threads allocate without meeting: with glibc's malloc, two
// threads on two stores that share nothing ran slower than one thread (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Seats per venue: 50 sections × 40 rows × 25 seats.
const VENUE_SEATS: u32 = 50_000;

/// The in-memory store's futures never wait.
fn ready<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the in-memory store never waits"),
    }
}

fn seat_id(index: u32) -> SeatId {
    SeatId::new(format!("s{index}")).unwrap()
}

/// A fresh store with one 50,000-seat event (and a GA pool of `pool` units).
fn venue(pool: u32) -> (MemoryStore, EventId, Vec<SeatId>) {
    let store = MemoryStore::with_clock(Arc::new(ManualClock::default()));
    let (event, ids) = add_venue(&store, "bench", pool);
    (store, event, ids)
}

/// Adds a 50,000-seat event `id` (and a GA pool of `pool` units) to `store`.
fn add_venue(store: &MemoryStore, id: &str, pool: u32) -> (EventId, Vec<SeatId>) {
    let event = EventId::new(id).unwrap();
    let ids: Vec<SeatId> = (0..VENUE_SEATS).map(seat_id).collect();
    let seats = ids
        .iter()
        .enumerate()
        .map(|(index, id)| {
            let index = index as u32;
            Seat {
                id: id.clone(),
                section: format!("S{}", index / 1_000),
                row: format!("R{}", index / 25 % 40),
                number: index % 25 + 1,
                category: "standard".into(),
                accessible: false,
                position: Default::default(),
            }
        })
        .collect();
    ready(store.create_event(EventSpec {
        id: event.clone(),
        name: "bench".into(),
        seats,
        pools: vec![PoolSpec {
            id: PoolId::new("ga").unwrap(),
            name: "GA".into(),
            capacity: pool,
        }],
        sale_window: None,
        policy: Policy::default(),
    }))
    .unwrap();
    (event, ids)
}

/// The naive baseline: one lock around one map of seat → holder, plus a GA counter.
#[derive(Default)]
struct Naive {
    state: Mutex<NaiveState>,
}

#[derive(Default)]
struct NaiveState {
    seats: HashMap<SeatId, (u64, bool)>,
    ga_held: u32,
    next: u64,
}

impl Naive {
    /// Holds every seat or none; returns a reservation number.
    fn reserve(&self, seats: &[SeatId]) -> Option<u64> {
        let mut state = self.state.lock();
        if seats.iter().any(|seat| state.seats.contains_key(seat)) {
            return None;
        }
        state.next += 1;
        let id = state.next;
        for seat in seats {
            state.seats.insert(seat.clone(), (id, false));
        }
        Some(id)
    }

    fn commit(&self, seats: &[SeatId], id: u64) -> bool {
        let mut state = self.state.lock();
        for seat in seats {
            match state.seats.get_mut(seat) {
                Some((owner, sold)) if *owner == id && !*sold => *sold = true,
                _ => return false,
            }
        }
        true
    }

    fn cancel(&self, seats: &[SeatId], id: u64) {
        let mut state = self.state.lock();
        for seat in seats {
            if state.seats.get(seat).is_some_and(|(owner, _)| *owner == id) {
                state.seats.remove(seat);
            }
        }
    }

    fn reserve_ga(&self, capacity: u32, quantity: u32) -> bool {
        let mut state = self.state.lock();
        if state.ga_held + quantity > capacity {
            return false;
        }
        state.ga_held += quantity;
        true
    }
}

/// Times `op(i)` for `iters` iterations over fresh stores of `per_store` operations each;
/// building the stores is not timed.
fn timed_chunks<S>(
    iters: u64,
    per_store: u64,
    mut setup: impl FnMut() -> S,
    mut op: impl FnMut(&S, u64),
) -> Duration {
    let mut elapsed = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let chunk = per_store.min(iters - done);
        let state = setup();
        let start = Instant::now();
        for i in 0..chunk {
            op(&state, i);
        }
        elapsed += start.elapsed();
        done += chunk;
        drop(state);
    }
    elapsed
}

fn holder() -> HolderId {
    HolderId::new("buyer").unwrap()
}

fn reserve_single(c: &mut Criterion) {
    let mut group = c.benchmark_group("reserve_single");
    group.throughput(Throughput::Elements(1));
    group.bench_function("store", |b| {
        b.iter_custom(|iters| {
            timed_chunks(
                iters,
                u64::from(VENUE_SEATS),
                || venue(1),
                |(store, event, ids), i| {
                    let request = ReserveRequest::new(event.clone(), holder())
                        .seats([ids[i as usize].clone()]);
                    black_box(ready(store.reserve(request)).unwrap());
                },
            )
        });
    });
    let ids: Vec<SeatId> = (0..VENUE_SEATS).map(seat_id).collect();
    group.bench_function("naive", |b| {
        b.iter_custom(|iters| {
            timed_chunks(iters, u64::from(VENUE_SEATS), Naive::default, |naive, i| {
                black_box(
                    naive
                        .reserve(std::slice::from_ref(&ids[i as usize]))
                        .unwrap(),
                );
            })
        });
    });
    group.finish();
}

fn reserve_commit_single(c: &mut Criterion) {
    let mut group = c.benchmark_group("reserve_commit_single");
    group.throughput(Throughput::Elements(1));
    let keys: Vec<IdempotencyKey> = (0..VENUE_SEATS)
        .map(|i| IdempotencyKey::new(format!("k{i}")).unwrap())
        .collect();
    group.bench_function("store", |b| {
        b.iter_custom(|iters| {
            timed_chunks(
                iters,
                u64::from(VENUE_SEATS),
                || venue(1),
                |(store, event, ids), i| {
                    let request = ReserveRequest::new(event.clone(), holder())
                        .seats([ids[i as usize].clone()]);
                    let held = ready(store.reserve(request)).unwrap();
                    let commit = CommitRequest::new(held.token.unwrap(), keys[i as usize].clone());
                    black_box(ready(store.commit(&held.id, commit)).unwrap());
                },
            )
        });
    });
    let ids: Vec<SeatId> = (0..VENUE_SEATS).map(seat_id).collect();
    group.bench_function("naive", |b| {
        b.iter_custom(|iters| {
            timed_chunks(iters, u64::from(VENUE_SEATS), Naive::default, |naive, i| {
                let seats = std::slice::from_ref(&ids[i as usize]);
                let id = naive.reserve(seats).unwrap();
                assert!(naive.commit(seats, id));
            })
        });
    });
    group.finish();
}

fn reserve_four_seats(c: &mut Criterion) {
    let mut group = c.benchmark_group("reserve_4_seats");
    group.throughput(Throughput::Elements(1));
    let per_store = u64::from(VENUE_SEATS / 4);
    group.bench_function("store", |b| {
        b.iter_custom(|iters| {
            timed_chunks(
                iters,
                per_store,
                || venue(1),
                |(store, event, ids), i| {
                    let first = i as usize * 4;
                    let request = ReserveRequest::new(event.clone(), holder())
                        .seats(ids[first..first + 4].iter().cloned());
                    black_box(ready(store.reserve(request)).unwrap());
                },
            )
        });
    });
    let ids: Vec<SeatId> = (0..VENUE_SEATS).map(seat_id).collect();
    group.bench_function("naive", |b| {
        b.iter_custom(|iters| {
            timed_chunks(iters, per_store, Naive::default, |naive, i| {
                let first = i as usize * 4;
                black_box(naive.reserve(&ids[first..first + 4]).unwrap());
            })
        });
    });
    group.finish();
}

fn reserve_ga_two(c: &mut Criterion) {
    let mut group = c.benchmark_group("reserve_ga_2");
    group.throughput(Throughput::Elements(1));
    let capacity = 1_000_000;
    let pool = PoolId::new("ga").unwrap();
    group.bench_function("store", |b| {
        b.iter_custom(|iters| {
            timed_chunks(
                iters,
                u64::from(capacity / 2),
                || venue(capacity),
                |(store, event, _), _| {
                    let request = ReserveRequest::new(event.clone(), holder()).ga(pool.clone(), 2);
                    black_box(ready(store.reserve(request)).unwrap());
                },
            )
        });
    });
    group.bench_function("naive", |b| {
        b.iter_custom(|iters| {
            timed_chunks(
                iters,
                u64::from(capacity / 2),
                Naive::default,
                |naive, _| {
                    assert!(naive.reserve_ga(capacity, 2));
                },
            )
        });
    });
    group.finish();
}

/// Best available, 4 adjacent, in a venue whose front third is already 60% taken (every
/// seat whose number is 1, 2 or 4 mod 5), so each search walks past broken runs.
fn best_available_adjacent(c: &mut Criterion) {
    let mut group = c.benchmark_group("best_available_4_adjacent");
    group.throughput(Throughput::Elements(1));
    let taken: Vec<u32> = (0..VENUE_SEATS / 3)
        .filter(|index| matches!(index % 5, 1 | 2 | 4))
        .collect();
    let per_store = 5_000;
    let best = BestAvailable {
        count: 4,
        adjacent: true,
        section: None,
        category: None,
    };
    group.bench_function("store", |b| {
        b.iter_custom(|iters| {
            timed_chunks(
                iters,
                per_store,
                || {
                    let (store, event, ids) = venue(1);
                    for chunk in taken.chunks(64) {
                        let request =
                            ReserveRequest::new(event.clone(), HolderId::new("front").unwrap())
                                .seats(chunk.iter().map(|index| ids[*index as usize].clone()));
                        ready(store.reserve(request)).unwrap();
                    }
                    (store, event)
                },
                |(store, event), _| {
                    let request =
                        ReserveRequest::new(event.clone(), holder()).best_available(best.clone());
                    black_box(ready(store.reserve(request)).unwrap());
                },
            )
        });
    });
    // The naive way: scan the layout from the front, under the one lock, for 4 free seats in
    // one row with consecutive numbers.
    let layout: Vec<(u32, u32)> = (0..VENUE_SEATS)
        .map(|index| (index / 25, index % 25))
        .collect();
    let ids: Vec<SeatId> = (0..VENUE_SEATS).map(seat_id).collect();
    group.bench_function("naive", |b| {
        b.iter_custom(|iters| {
            timed_chunks(
                iters,
                per_store,
                || {
                    let naive = Naive::default();
                    for index in &taken {
                        naive
                            .reserve(std::slice::from_ref(&ids[*index as usize]))
                            .unwrap();
                    }
                    naive
                },
                |naive, _| {
                    let mut state = naive.state.lock();
                    let start = (0..VENUE_SEATS as usize - 3)
                        .find(|&first| {
                            (first..first + 4).all(|index| {
                                layout[index].0 == layout[first].0
                                    && !state.seats.contains_key(&ids[index])
                            })
                        })
                        .unwrap();
                    state.next += 1;
                    let id = state.next;
                    for seat in &ids[start..start + 4] {
                        state.seats.insert(seat.clone(), (id, false));
                    }
                },
            )
        });
    });
    group.finish();
}

/// Where the threads of a parallel case spent their time, summed over every run of the case
/// (Linux only: read from `/proc/thread-self/schedstat`). On a shared machine this tells
/// "our threads waited for a CPU" (neighbours) apart from "our threads ran but did little"
/// (contention in the code).
#[derive(Default)]
struct CpuAccount {
    /// Operations done.
    ops: AtomicU64,
    /// Wall time of the runs times their thread count: what the threads could have run.
    wall_ns: AtomicU64,
    /// Time the threads ran on a CPU.
    run_ns: AtomicU64,
    /// Time the threads were ready to run but waited for a CPU.
    wait_ns: AtomicU64,
}

impl CpuAccount {
    /// Prints the account to stderr (criterion's own output is on stdout) and resets it.
    fn report(&self, case: &str) {
        let (ops, wall, run, wait) = (
            self.ops.swap(0, Ordering::Relaxed),
            self.wall_ns.swap(0, Ordering::Relaxed),
            self.run_ns.swap(0, Ordering::Relaxed),
            self.wait_ns.swap(0, Ordering::Relaxed),
        );
        if wall == 0 || run == 0 {
            return;
        }
        let share = |ns: u64| 100.0 * ns as f64 / wall as f64;
        eprintln!(
            "cpu-account {case}: on a CPU {:.0}%, waiting for a CPU {:.0}%, neither \
             (blocked, spawning) {:.0}% of the threads' time; {:.3} M ops per CPU-second",
            share(run),
            share(wait),
            share(wall.saturating_sub(run + wait)),
            ops as f64 / run as f64 * 1e3,
        );
    }
}

/// This thread's time on a CPU and waiting for one, in nanoseconds (`None` off Linux).
fn schedstat() -> Option<(u64, u64)> {
    // The kernel brings a running thread's figures up to date only when it schedules;
    // yielding makes it do so now.
    std::thread::yield_now();
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let mut fields = text.split_whitespace().map(str::parse::<u64>);
    Some((fields.next()?.ok()?, fields.next()?.ok()?))
}

/// Runs `work(t)` for `t` in `0..threads`, each on a thread of its own, and returns the wall
/// time until the last one finished; `work` returns how many operations it did.
fn on_threads(threads: u64, account: &CpuAccount, work: impl Fn(u64) -> u64 + Sync) -> Duration {
    let start = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..threads {
            let work = &work;
            scope.spawn(move || {
                let before = schedstat();
                let ops = work(t);
                if let (Some(before), Some(after)) = (before, schedstat()) {
                    account
                        .run_ns
                        .fetch_add(after.0 - before.0, Ordering::Relaxed);
                    account
                        .wait_ns
                        .fetch_add(after.1 - before.1, Ordering::Relaxed);
                }
                account.ops.fetch_add(ops, Ordering::Relaxed);
            });
        }
    });
    let elapsed = start.elapsed();
    account.wall_ns.fetch_add(
        u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX) * threads,
        Ordering::Relaxed,
    );
    elapsed
}

/// What this machine gives two threads right now: a fixed computation (no memory, no
/// locks, nothing shared) on 1 and on 2 threads. On an idle 2-core machine 2 threads do
/// 2× the work of one; whatever less this shows is taken by neighbours, and bounds every
/// other parallel figure of the same run.
fn parallel_limit(c: &mut Criterion) {
    let mut group = c.benchmark_group("parallel_limit");
    group.throughput(Throughput::Elements(1));
    let account = CpuAccount::default();
    for threads in [1u64, 2] {
        group.bench_with_input(
            BenchmarkId::new("compute", threads),
            &threads,
            |b, &threads| {
                b.iter_custom(|iters| {
                    on_threads(threads, &account, |t| {
                        let mut ops = 0;
                        for i in (t..iters).step_by(threads as usize) {
                            black_box(compute(black_box(i)));
                            ops += 1;
                        }
                        ops
                    })
                });
            },
        );
        account.report(&format!("parallel_limit/compute/{threads}"));
    }
    group.finish();
}

/// About half a microsecond of dependent arithmetic in registers.
fn compute(seed: u64) -> u64 {
    let mut x = seed | 1;
    for _ in 0..256 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    x
}

/// Single-seat reserves on disjoint seats from 1 and 2 threads at once: wall time for
/// `iters` reserves in all, on fresh venues (building them is not timed).
fn disjoint(c: &mut Criterion) {
    let mut group = c.benchmark_group("disjoint_seats");
    group.throughput(Throughput::Elements(1));
    let account = CpuAccount::default();
    let cases = [
        ("store/1", 1, Sharing::OneEvent),
        ("store/2", 2, Sharing::OneEvent),
        ("store_halves/2", 2, Sharing::OneEventHalves),
        ("event_per_thread/2", 2, Sharing::EventPerThread),
        ("store_per_thread/2", 2, Sharing::StorePerThread),
    ];
    for (name, threads, sharing) in cases {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| parallel_chunks(iters, threads, sharing, &account));
        });
        account.report(&format!("disjoint_seats/{name}"));
    }
    let ids: Vec<SeatId> = (0..VENUE_SEATS).map(seat_id).collect();
    for threads in [1u64, 2] {
        group.bench_with_input(
            BenchmarkId::new("naive", threads),
            &threads,
            |b, &threads| {
                b.iter_custom(|iters| {
                    let mut elapsed = Duration::ZERO;
                    let mut done = 0;
                    while done < iters {
                        let chunk = u64::from(VENUE_SEATS).min(iters - done);
                        let naive = Naive::default();
                        elapsed += on_threads(threads, &account, |t| {
                            let mut ops = 0;
                            for i in (t..chunk).step_by(threads as usize) {
                                naive
                                    .reserve(std::slice::from_ref(&ids[i as usize]))
                                    .unwrap();
                                ops += 1;
                            }
                            ops
                        });
                        done += chunk;
                    }
                    elapsed
                });
            },
        );
        account.report(&format!("disjoint_seats/naive/{threads}"));
    }
    group.finish();
}

/// What the threads of [`parallel_chunks`] share.
#[derive(Clone, Copy)]
enum Sharing {
    /// One event of one store; the threads take alternate seats (0, 2, 4… and 1, 3, 5…),
    /// so neighbouring seats go to different threads.
    OneEvent,
    /// One event of one store; each thread takes a contiguous half of the venue (its own
    /// sections), as buyers spread over a venue mostly do.
    OneEventHalves,
    /// One store, an event per thread.
    EventPerThread,
    /// A store per thread: nothing shared, what this machine's cores can do at best.
    StorePerThread,
}

/// `iters` single-seat reserves spread over `threads` threads, on fresh venues; each
/// thread takes seats of its own, so they never conflict.
fn parallel_chunks(iters: u64, threads: u64, sharing: Sharing, account: &CpuAccount) -> Duration {
    let mut elapsed = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let chunk = u64::from(VENUE_SEATS).min(iters - done);
        let stores: Vec<MemoryStore> = match sharing {
            Sharing::StorePerThread => (0..threads)
                .map(|_| MemoryStore::with_clock(Arc::new(ManualClock::default())))
                .collect(),
            _ => vec![MemoryStore::with_clock(Arc::new(ManualClock::default()))],
        };
        let venues: Vec<(&MemoryStore, EventId, Vec<SeatId>)> = match sharing {
            Sharing::OneEvent | Sharing::OneEventHalves => {
                let (event, ids) = add_venue(&stores[0], "bench", 1);
                vec![(&stores[0], event, ids)]
            }
            Sharing::EventPerThread => (0..threads)
                .map(|t| {
                    let (event, ids) = add_venue(&stores[0], &format!("bench-{t}"), 1);
                    (&stores[0], event, ids)
                })
                .collect(),
            Sharing::StorePerThread => stores
                .iter()
                .map(|store| {
                    let (event, ids) = add_venue(store, "bench", 1);
                    (store, event, ids)
                })
                .collect(),
        };
        elapsed += on_threads(threads, account, |t| {
            let (store, event, ids) = &venues[t as usize % venues.len()];
            // Each thread parses its own ids, as request handlers do: no shared reference
            // counts between the threads.
            let event = EventId::new(event.as_str()).unwrap();
            let holder = HolderId::new(format!("buyer-{t}")).unwrap();
            let (first, end, step) = match sharing {
                Sharing::OneEventHalves => (t * chunk / threads, (t + 1) * chunk / threads, 1),
                _ => (t, chunk, threads as usize),
            };
            let mut ops = 0;
            for i in (first..end).step_by(step) {
                let request = ReserveRequest::new(event.clone(), holder.clone())
                    .seats([ids[i as usize].clone()]);
                black_box(ready(store.reserve(request)).unwrap());
                ops += 1;
            }
            ops
        });
        done += chunk;
    }
    elapsed
}

/// Every thread reserves and cancels the same 4 seats, in step (at each step all threads
/// want the same seat): each attempt either wins (and cancels) or is refused. Throughput
/// counts attempts.
fn hot_seat(c: &mut Criterion) {
    let mut group = c.benchmark_group("hot_seat");
    group.throughput(Throughput::Elements(1));
    let account = CpuAccount::default();
    let per_store = 200_000;
    for threads in [1u64, 2] {
        group.bench_with_input(
            BenchmarkId::new("store", threads),
            &threads,
            |b, &threads| {
                b.iter_custom(|iters| {
                    let mut elapsed = Duration::ZERO;
                    let mut done = 0;
                    while done < iters {
                        let chunk = per_store.min(iters - done);
                        let (store, event, ids) = venue(1);
                        elapsed += on_threads(threads, &account, |t| {
                            let holder = HolderId::new(format!("buyer-{t}")).unwrap();
                            let mut ops = 0;
                            for i in (t..chunk).step_by(threads as usize) {
                                let seat = ids[(i / threads % 4) as usize].clone();
                                let request = ReserveRequest::new(event.clone(), holder.clone())
                                    .seats([seat]);
                                if let Ok(held) = ready(store.reserve(request)) {
                                    ready(store.cancel(&held.id, held.token.as_ref().unwrap()))
                                        .unwrap();
                                }
                                ops += 1;
                            }
                            ops
                        });
                        done += chunk;
                    }
                    elapsed
                });
            },
        );
        account.report(&format!("hot_seat/store/{threads}"));
    }
    let ids: Vec<SeatId> = (0..4).map(seat_id).collect();
    for threads in [1u64, 2] {
        group.bench_with_input(
            BenchmarkId::new("naive", threads),
            &threads,
            |b, &threads| {
                b.iter_custom(|iters| {
                    let naive = Naive::default();
                    on_threads(threads, &account, |t| {
                        let mut ops = 0;
                        for i in (t..iters).step_by(threads as usize) {
                            let seats = std::slice::from_ref(&ids[(i / threads % 4) as usize]);
                            if let Some(id) = naive.reserve(seats) {
                                naive.cancel(seats, id);
                            }
                            ops += 1;
                        }
                        ops
                    })
                });
            },
        );
        account.report(&format!("hot_seat/naive/{threads}"));
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = reserve_single, reserve_commit_single, reserve_four_seats, reserve_ga_two,
        best_available_adjacent, parallel_limit, disjoint, hot_seat
}
criterion_main!(benches);
