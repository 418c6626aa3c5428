//! How the router behaves: authentication, limits, timeouts, CORS, streams.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::metrics::Metrics;

/// Largest JSON body on ordinary routes: 64 KiB (a reservation names at most 64 items).
pub const BODY_LIMIT_BYTES_DEFAULT: usize = 64 * 1024;
/// Largest body of `POST /v1/events`: 32 MiB (a 250,000-seat layout).
pub const EVENT_BODY_LIMIT_BYTES_DEFAULT: usize = 32 * 1024 * 1024;

/// A token-bucket rate: `per_second` sustained, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests per second, sustained.
    pub per_second: NonZeroU32,
    /// Requests allowed at once after a quiet period.
    pub burst: NonZeroU32,
}

impl RateLimit {
    /// `per_second` sustained with a burst of `burst`; zero values become 1.
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self {
            per_second: NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN),
            burst: NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN),
        }
    }
}

/// How bearer JWTs are verified; the verified `sub` claim is the holder.
#[derive(Clone)]
pub struct JwtConfig {
    pub(crate) key: DecodingKey,
    pub(crate) validation: Validation,
}

impl JwtConfig {
    /// Tokens signed with HMAC-SHA256 and `secret`; `exp` is required.
    pub fn hs256(secret: &[u8]) -> Self {
        Self::new(
            DecodingKey::from_secret(secret),
            Validation::new(Algorithm::HS256),
        )
    }

    /// Tokens checked with `key` under `validation` (algorithms, required claims, audience,
    /// issuer, leeway): any key type jsonwebtoken supports (RSA, EC, EdDSA public keys).
    pub fn new(key: DecodingKey, mut validation: Validation) -> Self {
        validation.required_spec_claims.insert("sub".to_owned());
        Self { key, validation }
    }

    /// Accepts only tokens whose `aud` is one of `audience`.
    pub fn audience(mut self, audience: &[&str]) -> Self {
        self.validation.set_audience(audience);
        self
    }

    /// Accepts only tokens whose `iss` is one of `issuer`.
    pub fn issuer(mut self, issuer: &[&str]) -> Self {
        self.validation.set_issuer(issuer);
        self
    }
}

impl fmt::Debug for JwtConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtConfig")
            .field("algorithms", &self.validation.algorithms)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Everything [`crate::router`] needs besides the store. Start from [`HttpConfig::default`]
/// (development settings: no JWT, no admin key, rate limits on) and change what you need.
#[derive(Clone)]
#[non_exhaustive]
pub struct HttpConfig {
    /// Verifies `Authorization: Bearer` JWTs; `None`: development mode, the holder is the
    /// request body's `user_id`.
    pub jwt: Option<JwtConfig>,
    /// The secret the `X-Admin-Key` header must carry on admin routes; `None`: admin
    /// routes answer 403.
    pub admin_key: Option<String>,
    /// Requests per client address; `None`: unlimited.
    pub client_rate_limit: Option<RateLimit>,
    /// Reservations per holder; `None`: unlimited.
    pub holder_rate_limit: Option<RateLimit>,
    /// Take the client address from the first `X-Forwarded-For` entry (behind a proxy you
    /// trust) instead of the socket's peer.
    pub trust_forwarded_for: bool,
    /// Largest request body on ordinary routes, in bytes.
    pub body_limit_bytes: usize,
    /// Largest request body of `POST /v1/events`, in bytes.
    pub event_body_limit_bytes: usize,
    /// Longest time a request may take before it is answered 503 `timeout`.
    pub request_timeout: Duration,
    /// Requests served at once; more are answered 503 `overloaded` at once.
    pub concurrency_limit: usize,
    /// Origins allowed by CORS; empty (the default): no CORS headers at all.
    pub cors_allowed_origins: Vec<String>,
    /// How long an `Idempotency-Key` response is replayed.
    pub idempotency_retention: Duration,
    /// Most `Idempotency-Key` responses remembered; the oldest are forgotten first.
    pub idempotency_entries_max: usize,
    /// How often a caught-up change stream polls the store (writes through this router
    /// wake it at once).
    pub sse_poll_interval: Duration,
    /// Change streams open at once; more are answered 503.
    pub sse_streams_max: usize,
    /// Where request, reservation and sweeper metrics are recorded.
    pub metrics: Metrics,
    /// Waiting rooms: queue routes, and the admission pass reserve needs on gated events;
    /// `None`: the queue routes answer 404 `rooms_disabled` and no event is gated.
    pub waiting_room: Option<crate::queue::WaitingRoomConfig>,
    /// The store's waitlists (the same store the router serves, as a
    /// [`WaitlistStore`](ticketing_core::WaitlistStore)); `None`: the waitlist routes
    /// answer 404 `waitlist_disabled`.
    pub waitlist: Option<Arc<dyn ticketing_core::WaitlistStore>>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            jwt: None,
            admin_key: None,
            client_rate_limit: Some(RateLimit::new(50, 100)),
            holder_rate_limit: Some(RateLimit::new(5, 10)),
            trust_forwarded_for: false,
            body_limit_bytes: BODY_LIMIT_BYTES_DEFAULT,
            event_body_limit_bytes: EVENT_BODY_LIMIT_BYTES_DEFAULT,
            request_timeout: Duration::from_secs(10),
            concurrency_limit: 1_024,
            cors_allowed_origins: Vec::new(),
            idempotency_retention: Duration::from_secs(24 * 60 * 60),
            idempotency_entries_max: 100_000,
            sse_poll_interval: Duration::from_millis(250),
            sse_streams_max: 10_000,
            metrics: Metrics::new(),
            waiting_room: None,
            waitlist: None,
        }
    }
}

impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConfig")
            .field("jwt", &self.jwt)
            .field("admin_key", &self.admin_key.as_ref().map(|_| "<redacted>"))
            .field("client_rate_limit", &self.client_rate_limit)
            .field("holder_rate_limit", &self.holder_rate_limit)
            .field("body_limit_bytes", &self.body_limit_bytes)
            .field("request_timeout", &self.request_timeout)
            .field("concurrency_limit", &self.concurrency_limit)
            .field("cors_allowed_origins", &self.cors_allowed_origins)
            .finish_non_exhaustive()
    }
}

impl HttpConfig {
    /// Serves the waitlist routes from `store`, which must be the store the router is
    /// built on (offers are reservations of that store):
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ticketing_core::MemoryStore;
    /// use ticketing_http::{HttpConfig, router};
    ///
    /// let store = Arc::new(MemoryStore::new());
    /// let app = router(store.clone(), HttpConfig::default().waitlist(store));
    /// # drop(app);
    /// ```
    pub fn waitlist(mut self, store: Arc<dyn ticketing_core::WaitlistStore>) -> Self {
        self.waitlist = Some(store);
        self
    }

    /// Serves waiting rooms (see [`crate::WaitingRoomConfig::new`]).
    pub fn waiting_room(mut self, rooms: crate::queue::WaitingRoomConfig) -> Self {
        self.waiting_room = Some(rooms);
        self
    }

    /// Verifies bearer JWTs with `jwt`; the holder is their `sub`.
    pub fn jwt(mut self, jwt: JwtConfig) -> Self {
        self.jwt = Some(jwt);
        self
    }

    /// Sets the admin key (compared in constant time).
    pub fn admin_key(mut self, key: impl Into<String>) -> Self {
        self.admin_key = Some(key.into());
        self
    }

    /// Sets the per-client rate limit (`None`: off).
    pub fn client_rate_limit(mut self, limit: Option<RateLimit>) -> Self {
        self.client_rate_limit = limit;
        self
    }

    /// Sets the per-holder reservation rate limit (`None`: off).
    pub fn holder_rate_limit(mut self, limit: Option<RateLimit>) -> Self {
        self.holder_rate_limit = limit;
        self
    }

    /// Turns both rate limits off (benchmarks, trusted networks).
    pub fn without_rate_limits(self) -> Self {
        self.client_rate_limit(None).holder_rate_limit(None)
    }

    /// Trusts `X-Forwarded-For` for the client address.
    pub fn trust_forwarded_for(mut self, trust: bool) -> Self {
        self.trust_forwarded_for = trust;
        self
    }

    /// Sets the body limit of ordinary routes.
    pub fn body_limit_bytes(mut self, bytes: usize) -> Self {
        self.body_limit_bytes = bytes;
        self
    }

    /// Sets the body limit of event creation.
    pub fn event_body_limit_bytes(mut self, bytes: usize) -> Self {
        self.event_body_limit_bytes = bytes;
        self
    }

    /// Sets the request timeout.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets how many requests are served at once (at least 1).
    pub fn concurrency_limit(mut self, limit: usize) -> Self {
        self.concurrency_limit = limit.max(1);
        self
    }

    /// Allows these CORS origins (`*` for any).
    pub fn cors_allowed_origins(mut self, origins: impl IntoIterator<Item = String>) -> Self {
        self.cors_allowed_origins = origins.into_iter().collect();
        self
    }

    /// Sets how long idempotent responses are replayed.
    pub fn idempotency_retention(mut self, retention: Duration) -> Self {
        self.idempotency_retention = retention;
        self
    }

    /// Sets how often caught-up change streams poll the store.
    pub fn sse_poll_interval(mut self, interval: Duration) -> Self {
        self.sse_poll_interval = interval;
        self
    }

    /// Sets how many change streams may be open at once.
    pub fn sse_streams_max(mut self, streams: usize) -> Self {
        self.sse_streams_max = streams;
        self
    }

    /// Records metrics in `metrics` (share it with [`crate::spawn_sweeper`]).
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }
}
