//! `Idempotency-Key` per the IETF draft: the first response is replayed for the same key
//! and payload, another payload is 422, and a duplicate while the first is in flight is 409.
//!
//! Entries live in this process for the configured retention. The stores' own idempotency
//! (client reservation ids, commit keys) still applies underneath and spans processes.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderName, HeaderValue, StatusCode};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use crate::problem::{ApiError, Stored};

type Digest32 = [u8; 32];

/// A SHA-256 of length-prefixed parts, so part boundaries cannot be confused.
pub(crate) fn digest(parts: &[&[u8]]) -> Digest32 {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

enum Entry {
    InFlight {
        fingerprint: Digest32,
    },
    Done {
        fingerprint: Digest32,
        response: Stored,
        at: Instant,
    },
}

struct Inner {
    entries: HashMap<Digest32, Entry>,
    /// Completed entries, oldest first, for expiry and the size bound.
    order: VecDeque<(Digest32, Instant)>,
}

/// The remembered responses.
pub(crate) struct IdempotencyCache {
    inner: Mutex<Inner>,
    retention: Duration,
    entries_max: usize,
}

/// What to do with a request that carries a key.
pub(crate) enum Begin {
    /// Run it, then [`Guard::complete`].
    Proceed(Guard),
    /// Answer with the first response.
    Replay(Stored),
}

/// Holds a key in flight; dropped without completing (error, cancellation), it frees the key.
pub(crate) struct Guard {
    cache: Arc<IdempotencyCache>,
    scope: Digest32,
    done: bool,
}

impl IdempotencyCache {
    pub(crate) fn new(retention: Duration, entries_max: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                order: VecDeque::new(),
            }),
            retention,
            entries_max: entries_max.max(1),
        }
    }

    /// Starts a request under `scope` (who and which key) with the payload `fingerprint`.
    pub(crate) fn begin(
        self: &Arc<Self>,
        scope: Digest32,
        fingerprint: Digest32,
    ) -> Result<Begin, ApiError> {
        let now = Instant::now();
        let mut inner = self.inner.lock();
        self.evict(&mut inner, now);
        match inner.entries.get(&scope) {
            Some(Entry::Done {
                fingerprint: first,
                response,
                ..
            }) => {
                if *first != fingerprint {
                    return Err(mismatch());
                }
                let replay = response.clone().header(
                    HeaderName::from_static("idempotent-replayed"),
                    HeaderValue::from_static("true"),
                );
                Ok(Begin::Replay(replay))
            }
            Some(Entry::InFlight { fingerprint: first }) => {
                if *first != fingerprint {
                    return Err(mismatch());
                }
                Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "idempotency_in_flight",
                    "Request in flight",
                    "a request with this idempotency key is still being processed; retry later",
                )
                .retry_after(Duration::from_secs(1)))
            }
            None => {
                inner.entries.insert(scope, Entry::InFlight { fingerprint });
                Ok(Begin::Proceed(Guard {
                    cache: Arc::clone(self),
                    scope,
                    done: false,
                }))
            }
        }
    }

    fn evict(&self, inner: &mut Inner, now: Instant) {
        while let Some((scope, at)) = inner.order.front().copied() {
            let expired = now.saturating_duration_since(at) >= self.retention;
            if !expired && inner.order.len() < self.entries_max {
                break;
            }
            inner.order.pop_front();
            if matches!(inner.entries.get(&scope), Some(Entry::Done { at: stored, .. }) if *stored == at)
            {
                inner.entries.remove(&scope);
            }
        }
    }
}

fn mismatch() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_mismatch",
        "Idempotency key reused with another payload",
        "this idempotency key was used with a different request",
    )
}

impl Guard {
    /// Records `response` for replay when it is a decision (not 5xx or 429); frees the key
    /// otherwise.
    pub(crate) fn complete(mut self, response: &Stored) {
        self.done = true;
        let mut inner = self.cache.inner.lock();
        let fingerprint = match inner.entries.get(&self.scope) {
            Some(Entry::InFlight { fingerprint }) => *fingerprint,
            _ => return,
        };
        if response.is_final() {
            let at = Instant::now();
            inner.entries.insert(
                self.scope,
                Entry::Done {
                    fingerprint,
                    response: response.clone(),
                    at,
                },
            );
            inner.order.push_back((self.scope, at));
        } else {
            inner.entries.remove(&self.scope);
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut inner = self.cache.inner.lock();
        if matches!(inner.entries.get(&self.scope), Some(Entry::InFlight { .. })) {
            inner.entries.remove(&self.scope);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> Stored {
        Stored::json(StatusCode::OK, &serde_json::json!({"n": 1}))
    }

    #[test]
    fn replay_mismatch_in_flight_and_release() {
        let cache = Arc::new(IdempotencyCache::new(Duration::from_secs(60), 10));
        let scope = digest(&[b"k"]);
        let Ok(Begin::Proceed(guard)) = cache.begin(scope, digest(&[b"a"])) else {
            panic!("first request proceeds");
        };
        let in_flight = cache.begin(scope, digest(&[b"a"])).err().map(|e| e.code());
        assert_eq!(in_flight, Some("idempotency_in_flight"));
        let other = cache.begin(scope, digest(&[b"b"])).err().map(|e| e.code());
        assert_eq!(other, Some("idempotency_mismatch"));
        guard.complete(&ok());
        assert!(matches!(
            cache.begin(scope, digest(&[b"a"])),
            Ok(Begin::Replay(_))
        ));
        let other = cache.begin(scope, digest(&[b"b"])).err().map(|e| e.code());
        assert_eq!(other, Some("idempotency_mismatch"));

        // A dropped guard frees its key.
        let scope = digest(&[b"k2"]);
        let first = cache.begin(scope, digest(&[b"a"]));
        drop(first);
        assert!(matches!(
            cache.begin(scope, digest(&[b"a"])),
            Ok(Begin::Proceed(_))
        ));
    }

    #[test]
    fn transient_failures_are_not_remembered_and_size_is_bounded() {
        let cache = Arc::new(IdempotencyCache::new(Duration::from_secs(60), 2));
        let scope = digest(&[b"k"]);
        if let Ok(Begin::Proceed(guard)) = cache.begin(scope, digest(&[b"a"])) {
            guard.complete(&Stored::json(StatusCode::SERVICE_UNAVAILABLE, &1));
        }
        assert!(matches!(
            cache.begin(scope, digest(&[b"a"])),
            Ok(Begin::Proceed(_))
        ));
        for key in 0u8..5 {
            if let Ok(Begin::Proceed(guard)) = cache.begin(digest(&[&[key]]), digest(&[b"a"])) {
                guard.complete(&ok());
            }
        }
        assert!(cache.inner.lock().order.len() <= 2);
    }
}
