//! Prometheus metrics, served at `/metrics` in the OpenMetrics text format.
//!
//! Built on `prometheus-client`: the registry is a value owned by the router, not a global
//! recorder, so several routers (tests, several stores in one process) never clash.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    event: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: &'static str,
}

fn latency_histogram() -> Histogram {
    // 0.1 ms to about 3.3 s.
    Histogram::new(exponential_buckets(0.000_1, 2.0, 16))
}

struct Inner {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    reservations: Family<OutcomeLabels, Counter>,
    errors: Family<CodeLabels, Counter>,
    conflicts: Counter,
    sweeper_lag_seconds: Gauge<f64, AtomicU64>,
    sweeper_last_success_millis: AtomicU64,
    queue_joins: Counter,
    queue_admitted: Family<EventLabels, Counter>,
    queue_waiting: Family<EventLabels, Gauge>,
    queue_active: Family<EventLabels, Gauge>,
    queue_wait_seconds: Family<EventLabels, Gauge>,
}

/// The metrics a router records; cheap to clone (shared).
///
/// | metric | what |
/// |---|---|
/// | `http_requests_total{method,route,status}` | requests answered |
/// | `http_request_duration_seconds{method,route}` | time to the response head |
/// | `ticketing_reservations_total{outcome}` | `created`, `committed`, `cancelled`, `expired` |
/// | `ticketing_errors_total{code}` | store errors by stable code |
/// | `ticketing_conflicts_total` | reservations refused for seats or units taken |
/// | `ticketing_sweeper_lag_seconds` | time since the expiry sweeper last succeeded |
/// | `ticketing_queue_joins_total` | waiting room joins |
/// | `ticketing_queue_admitted_total{event}` | visitors admitted (the admission rate) |
/// | `ticketing_queue_waiting{event}`, `ticketing_queue_active{event}` | queue depth, live passes |
/// | `ticketing_queue_wait_seconds{event}` | estimated wait at the back of the queue |
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn now_millis() -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

impl Metrics {
    /// A fresh registry with every metric at zero.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency =
            Family::<RouteLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> _);
        let reservations = Family::<OutcomeLabels, Counter>::default();
        let errors = Family::<CodeLabels, Counter>::default();
        let conflicts = Counter::default();
        let sweeper_lag_seconds = Gauge::<f64, AtomicU64>::default();
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time to the response head",
            latency.clone(),
        );
        registry.register(
            "ticketing_reservations",
            "Reservations by outcome",
            reservations.clone(),
        );
        registry.register("ticketing_errors", "Store errors by code", errors.clone());
        registry.register(
            "ticketing_conflicts",
            "Reservations refused because seats or units were taken",
            conflicts.clone(),
        );
        registry.register(
            "ticketing_sweeper_lag_seconds",
            "Seconds since the expiry sweeper last succeeded (0 before its first run)",
            sweeper_lag_seconds.clone(),
        );
        let queue_joins = Counter::default();
        let queue_admitted = Family::<EventLabels, Counter>::default();
        let queue_waiting = Family::<EventLabels, Gauge>::default();
        let queue_active = Family::<EventLabels, Gauge>::default();
        let queue_wait_seconds = Family::<EventLabels, Gauge>::default();
        registry.register(
            "ticketing_queue_joins",
            "Waiting room joins",
            queue_joins.clone(),
        );
        registry.register(
            "ticketing_queue_admitted",
            "Visitors admitted from a waiting room",
            queue_admitted.clone(),
        );
        registry.register(
            "ticketing_queue_waiting",
            "Visitors waiting in a room (its depth)",
            queue_waiting.clone(),
        );
        registry.register(
            "ticketing_queue_active",
            "Live admission passes of a room",
            queue_active.clone(),
        );
        registry.register(
            "ticketing_queue_wait_seconds",
            "Estimated wait at the back of a room's queue, at the rate measured since it opened",
            queue_wait_seconds.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                queue_joins,
                queue_admitted,
                queue_waiting,
                queue_active,
                queue_wait_seconds,
                registry,
                requests,
                latency,
                reservations,
                errors,
                conflicts,
                sweeper_lag_seconds,
                sweeper_last_success_millis: AtomicU64::new(0),
            }),
        }
    }

    pub(crate) fn request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let labels = RouteLabels {
            method: method.to_owned(),
            route: route.to_owned(),
        };
        self.inner
            .latency
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        self.inner
            .requests
            .get_or_create(&RequestLabels {
                method: labels.method,
                route: labels.route,
                status,
            })
            .inc();
    }

    /// Counts `count` reservations reaching `outcome` (`created`, `committed`,
    /// `cancelled`, `expired`).
    pub fn reservations(&self, outcome: &'static str, count: u64) {
        self.inner
            .reservations
            .get_or_create(&OutcomeLabels { outcome })
            .inc_by(count);
    }

    pub(crate) fn store_error(&self, error: &ticketing_core::Error) {
        let code = error.code();
        self.inner.errors.get_or_create(&CodeLabels { code }).inc();
        if matches!(code, "seat_unavailable" | "sold_out") {
            self.inner.conflicts.inc();
        }
    }

    /// Records a successful sweep (resets the lag).
    pub fn sweep_succeeded(&self) {
        self.inner
            .sweeper_last_success_millis
            .store(now_millis(), Ordering::Relaxed);
    }

    /// Counts a waiting room join.
    pub fn queue_joined(&self) {
        self.inner.queue_joins.inc();
    }

    /// Records one admission step of `event`'s room.
    pub fn room_step(&self, event: &ticketing_core::EventId, step: &ticketing_core::AdmitStep) {
        let labels = EventLabels {
            event: event.to_string(),
        };
        let stats = &step.stats;
        let gauge = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        self.inner
            .queue_admitted
            .get_or_create(&labels)
            .inc_by(u64::from(step.admitted));
        self.inner
            .queue_waiting
            .get_or_create(&labels)
            .set(gauge(stats.waiting));
        self.inner
            .queue_active
            .get_or_create(&labels)
            .set(gauge(stats.active));
        // The wait of the last visitor in line at the rate measured since the opening (no
        // configured rate here: before the first admission there is no estimate, so 0).
        let now = ticketing_core::Timestamp::from_millis(now_millis());
        let wait = ticketing_core::room::estimated_wait_seconds(
            &ticketing_core::RoomSettings::cap(u32::MAX),
            stats,
            now,
            stats.waiting,
        )
        .unwrap_or(0);
        self.inner
            .queue_wait_seconds
            .get_or_create(&labels)
            .set(gauge(wait));
    }

    /// The metrics in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let last = self
            .inner
            .sweeper_last_success_millis
            .load(Ordering::Relaxed);
        let lag = if last == 0 {
            0.0
        } else {
            Duration::from_millis(now_millis().saturating_sub(last)).as_secs_f64()
        };
        self.inner.sweeper_lag_seconds.set(lag);
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.inner.registry).is_err() {
            text.clear();
        }
        text
    }
}
