//! What the buyers saw, as it happens: counters, latency histograms, and a timeline.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde::Serialize;

use super::SaleError;

/// The highest latency recorded, in microseconds (longer ones count as this).
const LATENCY_MICROS_MAX: u64 = 120_000_000;
/// The longest wait in a queue recorded, in milliseconds (longer ones count as this).
const WAIT_MILLIS_MAX: u64 = 24 * 60 * 60 * 1_000;

/// Counters of the sale, shared by every buyer.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) buyers_done: AtomicU64,
    pub(crate) arrived: AtomicU64,
    pub(crate) turned_away: AtomicU64,
    pub(crate) reserve_calls: AtomicU64,
    pub(crate) reserved: AtomicU64,
    pub(crate) seat_conflicts: AtomicU64,
    pub(crate) sold_out_answers: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) gave_up: AtomicU64,
    pub(crate) commit_calls: AtomicU64,
    pub(crate) committed: AtomicU64,
    pub(crate) commits_refused_expired: AtomicU64,
    pub(crate) late_commits_refused: AtomicU64,
    pub(crate) late_commits_accepted: AtomicU64,
    pub(crate) cancel_calls: AtomicU64,
    pub(crate) cancelled: AtomicU64,
    pub(crate) walked_away: AtomicU64,
    pub(crate) lost_tokens: AtomicU64,
    pub(crate) rate_limited: AtomicU64,
    pub(crate) transient: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) sold_seats: AtomicU64,
    pub(crate) sold_ga: AtomicU64,
    /// Queue calls answered (join, status, leave; retried transient failures too).
    pub(crate) queue_calls: AtomicU64,
    pub(crate) queue_joined: AtomicU64,
    pub(crate) queue_admitted: AtomicU64,
    pub(crate) queue_sold_out: AtomicU64,
    pub(crate) queue_starved: AtomicU64,
    pub(crate) queue_closed: AtomicU64,
    pub(crate) queue_join_failed: AtomicU64,
    pub(crate) queue_poll_failed: AtomicU64,
    pub(crate) queue_left: AtomicU64,
    pub(crate) queue_leave_failed: AtomicU64,
    pub(crate) status_polls: AtomicU64,
    pub(crate) pass_refused: AtomicU64,
}

/// Adds one.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Reads a counter.
pub(crate) fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// The operations whose latency is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Reserve,
    Commit,
    Cancel,
    /// Waiting room calls: join, status, leave.
    Queue,
}

/// Latencies of one operation: the whole run, and the current timeline interval.
#[derive(Debug)]
struct Latency {
    total: Histogram<u64>,
    interval: Histogram<u64>,
}

impl Latency {
    fn new() -> Result<Self, SaleError> {
        let histogram = || {
            Histogram::new_with_bounds(1, LATENCY_MICROS_MAX, 3)
                .map_err(|error| SaleError::Invalid(format!("a latency histogram: {error}")))
        };
        Ok(Self {
            total: histogram()?,
            interval: histogram()?,
        })
    }
}

/// Percentiles of one operation, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct LatencyFigures {
    /// Calls measured (every answer, conflicts included).
    pub count: u64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Slowest.
    pub max_us: u64,
}

impl LatencyFigures {
    fn of(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        Self {
            count: histogram.len(),
            p50_us: histogram.value_at_quantile(0.50),
            p90_us: histogram.value_at_quantile(0.90),
            p99_us: histogram.value_at_quantile(0.99),
            max_us: histogram.max(),
        }
    }
}

/// How long admitted buyers waited in the queue, from joining to reading their pass, in
/// milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct WaitFigures {
    /// Buyers admitted.
    pub count: u64,
    /// Median.
    pub p50_ms: u64,
    /// 90th percentile.
    pub p90_ms: u64,
    /// 99th percentile.
    pub p99_ms: u64,
    /// Longest.
    pub max_ms: u64,
}

impl WaitFigures {
    fn of(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        Self {
            count: histogram.len(),
            p50_ms: histogram.value_at_quantile(0.50),
            p90_ms: histogram.value_at_quantile(0.90),
            p99_ms: histogram.value_at_quantile(0.99),
            max_ms: histogram.max(),
        }
    }
}

/// One point of the timeline: rates and latencies over the interval that ended at `t`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sample {
    /// Seconds since the sale opened.
    pub t_seconds: f64,
    /// Reserve calls answered per second (conflicts included).
    pub reserve_calls_per_second: f64,
    /// Reservations made per second.
    pub reservations_per_second: f64,
    /// Commits per second.
    pub commits_per_second: f64,
    /// Conflicts (seat taken, sold out) per second.
    pub conflicts_per_second: f64,
    /// Reserve latency, median, in milliseconds.
    pub reserve_p50_ms: f64,
    /// Reserve latency, 99th percentile, in milliseconds.
    pub reserve_p99_ms: f64,
    /// Commit latency, 99th percentile, in milliseconds.
    pub commit_p99_ms: f64,
    /// Seats and GA places sold so far.
    pub sold: u64,
}

/// Everything the buyers record.
#[derive(Debug)]
pub(crate) struct Stats {
    pub(crate) started: Instant,
    pub(crate) counters: Counters,
    pub(crate) sold_out: AtomicBool,
    pub(crate) sold_out_after: OnceLock<Duration>,
    capacity: u64,
    reserve: Mutex<Latency>,
    commit: Mutex<Latency>,
    cancel: Mutex<Latency>,
    queue: Mutex<Latency>,
    /// Queue waits of admitted buyers, in milliseconds.
    waits: Mutex<Histogram<u64>>,
    /// Buyers admitted and not yet gone (they leave the room when done).
    shopping: AtomicU64,
    /// When a buyer last read its admission, in milliseconds since `started`.
    last_admission_ms: AtomicU64,
    timeline: Mutex<Timeline>,
}

/// Where the last sample left off.
#[derive(Debug, Default)]
struct Timeline {
    samples: Vec<Sample>,
    last_t: f64,
    last: [u64; 4],
}

impl Stats {
    pub(crate) fn new(capacity: u64) -> Result<Self, SaleError> {
        Ok(Self {
            started: Instant::now(),
            counters: Counters::default(),
            sold_out: AtomicBool::new(capacity == 0),
            sold_out_after: OnceLock::new(),
            capacity,
            reserve: Mutex::new(Latency::new()?),
            commit: Mutex::new(Latency::new()?),
            cancel: Mutex::new(Latency::new()?),
            queue: Mutex::new(Latency::new()?),
            waits: Mutex::new(Histogram::new_with_bounds(1, WAIT_MILLIS_MAX, 3).map_err(
                |error| SaleError::Invalid(format!("the queue wait histogram: {error}")),
            )?),
            shopping: AtomicU64::new(0),
            last_admission_ms: AtomicU64::new(0),
            timeline: Mutex::new(Timeline::default()),
        })
    }

    fn latency(&self, op: Op) -> &Mutex<Latency> {
        match op {
            Op::Reserve => &self.reserve,
            Op::Commit => &self.commit,
            Op::Cancel => &self.cancel,
            Op::Queue => &self.queue,
        }
    }

    fn since_start_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Counts an admission after `waited` in the queue; the buyer shops until
    /// [`Stats::gone`].
    pub(crate) fn admitted(&self, waited: Duration) {
        bump(&self.counters.queue_admitted);
        self.shopping.fetch_add(1, Ordering::Relaxed);
        self.last_admission_ms
            .fetch_max(self.since_start_ms(), Ordering::Relaxed);
        let millis = u64::try_from(waited.as_millis()).unwrap_or(u64::MAX).max(1);
        self.waits.lock().saturating_record(millis);
    }

    /// An admitted buyer is done shopping.
    pub(crate) fn gone(&self) {
        let before = self.shopping.fetch_sub(1, Ordering::Relaxed);
        assert!(before > 0, "a buyer left that was never admitted");
    }

    /// Whether the room has admitted nobody for `grace` (since the sale opened, or since
    /// the last admission) while nobody shops: it will not admit anyone (too little free
    /// to serve one buyer, or no admission steps), unless inventory comes back.
    pub(crate) fn room_starved(&self, grace: Duration) -> bool {
        let last = Duration::from_millis(self.last_admission_ms.load(Ordering::Relaxed));
        self.shopping.load(Ordering::Relaxed) == 0 && self.started.elapsed() > last + grace
    }

    /// Buyers in the queue now.
    pub(crate) fn queue_waiting(&self) -> u64 {
        let c = &self.counters;
        read(&c.queue_joined).saturating_sub(
            read(&c.queue_admitted)
                + read(&c.queue_sold_out)
                + read(&c.queue_starved)
                + read(&c.queue_closed)
                + read(&c.queue_poll_failed),
        )
    }

    pub(crate) fn waits(&self) -> WaitFigures {
        WaitFigures::of(&self.waits.lock())
    }

    pub(crate) fn record(&self, op: Op, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        let mut latency = self.latency(op).lock();
        latency.total.saturating_record(micros);
        latency.interval.saturating_record(micros);
    }

    /// Counts a commit's tickets; notes the moment everything is sold.
    pub(crate) fn sold(&self, seats: u32, ga_units: u32) {
        let c = &self.counters;
        c.sold_seats.fetch_add(u64::from(seats), Ordering::Relaxed);
        c.sold_ga.fetch_add(u64::from(ga_units), Ordering::Relaxed);
        if self.sold_units() >= self.capacity {
            let _ = self.sold_out_after.set(self.started.elapsed());
            self.sold_out.store(true, Ordering::Relaxed);
        }
    }

    pub(crate) fn sold_units(&self) -> u64 {
        read(&self.counters.sold_seats) + read(&self.counters.sold_ga)
    }

    /// Places not sold yet (held ones included).
    pub(crate) fn unsold(&self) -> u64 {
        self.capacity.saturating_sub(self.sold_units())
    }

    pub(crate) fn is_sold_out(&self) -> bool {
        self.sold_out.load(Ordering::Relaxed)
    }

    pub(crate) fn figures(&self, op: Op) -> LatencyFigures {
        LatencyFigures::of(&self.latency(op).lock().total)
    }

    /// Takes a timeline sample now; returns it.
    pub(crate) fn sample(&self) -> Sample {
        let t = self.started.elapsed().as_secs_f64();
        let c = &self.counters;
        let now = [
            read(&c.reserve_calls),
            read(&c.reserved),
            read(&c.committed),
            read(&c.seat_conflicts) + read(&c.sold_out_answers),
        ];
        let interval_ms = |op: Op, quantile: f64| {
            let mut latency = self.latency(op).lock();
            let value = if latency.interval.is_empty() {
                0.0
            } else {
                latency.interval.value_at_quantile(quantile) as f64 / 1_000.0
            };
            if quantile >= 0.99 {
                latency.interval.reset();
            }
            value
        };
        let reserve_p50_ms = interval_ms(Op::Reserve, 0.50);
        let reserve_p99_ms = interval_ms(Op::Reserve, 0.99);
        let commit_p99_ms = interval_ms(Op::Commit, 0.99);
        interval_ms(Op::Cancel, 0.99);
        interval_ms(Op::Queue, 0.99);
        let mut timeline = self.timeline.lock();
        let span = (t - timeline.last_t).max(1e-6);
        let rate = |i: usize| now[i].saturating_sub(timeline.last[i]) as f64 / span;
        let sample = Sample {
            t_seconds: t,
            reserve_calls_per_second: rate(0),
            reservations_per_second: rate(1),
            commits_per_second: rate(2),
            conflicts_per_second: rate(3),
            reserve_p50_ms,
            reserve_p99_ms,
            commit_p99_ms,
            sold: self.sold_units(),
        };
        timeline.samples.push(sample);
        timeline.last_t = t;
        timeline.last = now;
        sample
    }

    pub(crate) fn timeline(&self) -> Vec<Sample> {
        self.timeline.lock().samples.clone()
    }
}
