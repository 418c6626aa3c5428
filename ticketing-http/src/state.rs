//! What every handler shares: the store, credentials, limiters, caches, metrics.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use parking_lot::Mutex;
use ticketing_core::{Event, EventId, HolderId, InventoryStore};
use tokio::sync::{Semaphore, watch};

use crate::config::{HttpConfig, JwtConfig, RateLimit};
use crate::idempotency::IdempotencyCache;
use crate::metrics::Metrics;
use crate::problem::ApiError;

/// Rate-limited keys are pruned every this many checks.
const LIMITER_PRUNE_EVERY: u64 = 4_096;
/// Events whose layout and last seat map are cached.
const SEATMAP_CACHE_EVENTS_MAX: usize = 1_024;

/// A keyed token bucket.
pub(crate) struct Limiter<K: std::hash::Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    checks: AtomicU64,
}

impl<K: std::hash::Hash + Eq + Clone> Limiter<K> {
    fn new(limit: RateLimit) -> Self {
        let quota = Quota::per_second(limit.per_second).allow_burst(limit.burst);
        Self {
            limiter: RateLimiter::keyed(quota),
            checks: AtomicU64::new(0),
        }
    }

    /// Takes one request for `key`, or says how long to wait (429).
    pub(crate) fn check(&self, key: &K, what: &'static str) -> Result<(), ApiError> {
        if self
            .checks
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(LIMITER_PRUNE_EVERY)
        {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "Too many requests",
                format!("too many requests from this {what}; retry later"),
            )
            .with(
                "retry_after_ms",
                u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            )
            .retry_after(wait.max(Duration::from_millis(1)))
        })
    }
}

/// Wakes change streams when this router writes to an event.
#[derive(Default)]
pub(crate) struct ChangeNotifier {
    senders: Mutex<HashMap<EventId, watch::Sender<()>>>,
}

impl ChangeNotifier {
    pub(crate) fn subscribe(&self, event: &EventId) -> watch::Receiver<()> {
        let mut senders = self.senders.lock();
        senders
            .entry(event.clone())
            .or_insert_with(|| watch::channel(()).0)
            .subscribe()
    }

    pub(crate) fn notify(&self, event: &EventId) {
        let mut senders = self.senders.lock();
        let unused = match senders.get(event) {
            Some(sender) => {
                sender.send_replace(());
                sender.receiver_count() == 0
            }
            None => false,
        };
        if unused {
            senders.remove(event);
        }
    }
}

/// An event's immutable layout and its last serialized seat map.
#[derive(Clone)]
pub(crate) struct SeatMapEntry {
    pub(crate) event: Arc<Event>,
    pub(crate) last: Option<(String, Bytes)>,
}

/// The router's shared state.
pub(crate) struct AppState {
    pub(crate) store: Arc<dyn InventoryStore>,
    pub(crate) jwt: Option<JwtConfig>,
    pub(crate) admin_key: Option<String>,
    pub(crate) client_limiter: Option<Limiter<IpAddr>>,
    pub(crate) holder_limiter: Option<Limiter<HolderId>>,
    pub(crate) trust_forwarded_for: bool,
    pub(crate) body_limit_bytes: usize,
    pub(crate) event_body_limit_bytes: usize,
    pub(crate) idempotency: Arc<IdempotencyCache>,
    pub(crate) metrics: Metrics,
    pub(crate) notifier: ChangeNotifier,
    pub(crate) seatmaps: Mutex<HashMap<EventId, SeatMapEntry>>,
    pub(crate) sse_permits: Arc<Semaphore>,
    pub(crate) sse_poll_interval: Duration,
    pub(crate) rooms: Option<crate::queue::Rooms>,
    pub(crate) waitlist: Option<Arc<dyn ticketing_core::WaitlistStore>>,
}

impl AppState {
    pub(crate) fn new(store: Arc<dyn InventoryStore>, config: HttpConfig) -> Self {
        Self {
            store,
            jwt: config.jwt,
            admin_key: config.admin_key.filter(|key| !key.is_empty()),
            client_limiter: config.client_rate_limit.map(Limiter::new),
            holder_limiter: config.holder_rate_limit.map(Limiter::new),
            trust_forwarded_for: config.trust_forwarded_for,
            body_limit_bytes: config.body_limit_bytes,
            event_body_limit_bytes: config.event_body_limit_bytes,
            idempotency: Arc::new(IdempotencyCache::new(
                config.idempotency_retention,
                config.idempotency_entries_max,
            )),
            metrics: config.metrics,
            notifier: ChangeNotifier::default(),
            seatmaps: Mutex::new(HashMap::new()),
            sse_permits: Arc::new(Semaphore::new(config.sse_streams_max)),
            sse_poll_interval: config.sse_poll_interval.max(Duration::from_millis(10)),
            rooms: config.waiting_room.map(crate::queue::Rooms::new),
            waitlist: config.waitlist,
        }
    }

    /// Records a store error and turns it into a problem.
    pub(crate) fn store_error(&self, error: ticketing_core::Error) -> ApiError {
        self.metrics.store_error(&error);
        ApiError::from(error)
    }

    /// The cached entry for `event`, loading the layout on a miss.
    pub(crate) async fn seatmap_entry(&self, event: &EventId) -> Result<SeatMapEntry, ApiError> {
        if let Some(entry) = self.seatmaps.lock().get(event) {
            return Ok(entry.clone());
        }
        let loaded = self
            .store
            .event(event)
            .await
            .map_err(|error| self.store_error(error))?;
        let entry = SeatMapEntry {
            event: Arc::new(loaded),
            last: None,
        };
        let mut cache = self.seatmaps.lock();
        if cache.len() >= SEATMAP_CACHE_EVENTS_MAX {
            cache.clear();
        }
        cache.insert(event.clone(), entry.clone());
        Ok(entry)
    }

    /// Remembers the seat map serialized under `etag`.
    pub(crate) fn remember_seatmap(&self, event: &EventId, etag: &str, body: &Bytes) {
        if let Some(entry) = self.seatmaps.lock().get_mut(event) {
            entry.last = Some((etag.to_owned(), body.clone()));
        }
    }
}
