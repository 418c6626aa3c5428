//! Group commit: concurrent `reserve` calls for one event become one `reserve_batch` call,
//! and concurrent `commit` calls one `commit_batch` call.
//!
//! A durable backend pays a round trip (and, on PostgreSQL, the event's lock and a WAL flush)
//! per call; at a flash sale's peak most of that is waiting. [`Coalescing`] queues each
//! `reserve` per event, and, on a store whose `commit_batch` is one round trip
//! ([`InventoryStore::batches_commits`]), each `commit` in one queue for all events (a commit
//! names its reservation, not its event); while a batch of a queue is in flight, new calls wait and go
//! together in the next one. Under no load a call goes alone at once (no added wait
//! unless [`CoalescingConfig::max_wait`] asks for one); under load batches grow up to
//! [`CoalescingConfig::max_batch`]. Every caller gets its own result; requests are
//! independent inside a batch, so one caller's bad input never fails another's.
//!
//! If the wrapped store panics inside a batch, that batch's callers get a `backend` error
//! and the queue goes on.
//!
//! If a caller stops waiting (its future is dropped), its request still runs: like a
//! request whose response was lost, it may hold seats until its hold lapses — use a client
//! reservation id to find it again.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::domain::{
    Availability, Change, CommitRequest, Event, EventSpec, EventSummary, Order, Page, Refund,
    Reservation, ReserveRequest, Ticket,
};
use crate::error::{Error, Result};
use crate::id::{
    EventId, HolderId, OrderId, PoolId, ReservationId, SeatId, TicketCode, TicketId,
    WaitlistEntryId,
};
use crate::store::InventoryStore;
use crate::token::ReservationToken;
use crate::validate;
use crate::waitlist::{WaitlistEntry, WaitlistJoined, WaitlistRequest, WaitlistStore};

/// How [`Coalescing`] forms batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CoalescingConfig {
    /// The most calls in one batch (at most [`validate::BATCH_SIZE_MAX`]).
    pub max_batch: usize,
    /// How long the first call of an idle event waits for company before its batch goes.
    /// Zero (the default): batches form only from calls that arrive while one is in flight.
    pub max_wait: Duration,
}

impl Default for CoalescingConfig {
    fn default() -> Self {
        Self {
            max_batch: 256,
            max_wait: Duration::ZERO,
        }
    }
}

impl CoalescingConfig {
    /// Sets the largest batch (clamped to 1 ..= [`validate::BATCH_SIZE_MAX`]).
    pub fn max_batch(mut self, max_batch: usize) -> Self {
        self.max_batch = max_batch.clamp(1, validate::BATCH_SIZE_MAX);
        self
    }

    /// Sets how long an idle event's first call waits for others.
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }
}

/// A queued call: its request and where its answer goes.
type Waiter<R, O> = (R, oneshot::Sender<Result<O>>);

/// Calls waiting for the next batch of one queue, and whether a drain task runs for it.
struct Queue<R, O> {
    waiting: Vec<Waiter<R, O>>,
    draining: bool,
}

impl<R, O> Default for Queue<R, O> {
    fn default() -> Self {
        Self {
            waiting: Vec::new(),
            draining: false,
        }
    }
}

impl<R, O> Queue<R, O> {
    /// Queues a call; true when no drain task runs for this queue yet (the caller starts one).
    fn push(&mut self, waiter: Waiter<R, O>) -> bool {
        self.waiting.push(waiter);
        !std::mem::replace(&mut self.draining, true)
    }

    /// The next batch, at most `max` calls in arrival order; `None` when nothing waits, and
    /// the queue is then idle (the next call starts a new drain task).
    fn next_batch(&mut self, max: usize) -> Option<Vec<Waiter<R, O>>> {
        if self.waiting.is_empty() {
            self.draining = false;
            return None;
        }
        let take = self.waiting.len().min(max);
        Some(self.waiting.drain(..take).collect())
    }
}

type ReserveQueue = Queue<ReserveRequest, Reservation>;
type CommitQueue = Queue<(ReservationId, CommitRequest), Order>;

struct Shared<S> {
    inner: S,
    config: CoalescingConfig,
    /// Reserves, per event: a batch names one event, so it takes one event's lock.
    reserves: Mutex<HashMap<EventId, ReserveQueue>>,
    /// Commits of every event: a commit names its reservation, not its event, so commits
    /// share one queue and a batch may span events (the store locks them in order).
    commits: Mutex<CommitQueue>,
}

/// An [`InventoryStore`] that turns concurrent `reserve` calls for one event into
/// `reserve_batch` calls, and concurrent `commit` calls into `commit_batch` calls (where
/// the store batches commits), of the store it wraps; every other operation goes straight
/// through.
/// Needs a tokio runtime (feature `tokio`).
pub struct Coalescing<S> {
    shared: Arc<Shared<S>>,
}

impl<S> std::fmt::Debug for Coalescing<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coalescing")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl<S: InventoryStore + 'static> Coalescing<S> {
    /// Wraps `inner` with the default configuration.
    pub fn new(inner: S) -> Self {
        Self::with_config(inner, CoalescingConfig::default())
    }

    /// Wraps `inner`.
    pub fn with_config(inner: S, config: CoalescingConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                inner,
                config,
                reserves: Mutex::new(HashMap::new()),
                commits: Mutex::new(Queue::default()),
            }),
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.shared.inner
    }
}

impl<S: InventoryStore + 'static> Shared<S> {
    /// Runs batches until `next_batch` finds its queue empty: each batch through `run`, in
    /// a task of its own so that a store that panics fails that batch's callers and the
    /// queue goes on.
    async fn drain<R, O, F>(
        self: Arc<Self>,
        mut next_batch: impl FnMut(&Self) -> Option<Vec<Waiter<R, O>>> + Send,
        run: impl Fn(Arc<Self>, Vec<R>) -> F + Send,
    ) where
        R: Send + 'static,
        O: Send + 'static,
        F: Future<Output = Vec<Result<O>>> + Send + 'static,
    {
        if !self.config.max_wait.is_zero() {
            tokio::time::sleep(self.config.max_wait).await;
        }
        while let Some(batch) = next_batch(&self) {
            let (requests, senders): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
            let results = tokio::spawn(run(self.clone(), requests))
                .await
                .unwrap_or_default();
            let mut results = results.into_iter();
            for sender in senders {
                let result = results.next().unwrap_or_else(|| {
                    Err(Error::backend(
                        "coalescing",
                        std::io::Error::other("the store answered no result for this request"),
                    ))
                });
                // A caller that stopped waiting no longer wants its result.
                let _ = sender.send(result);
            }
        }
    }

    /// Runs the reserve batches of `event` until its queue is empty.
    async fn drain_reserves(self: Arc<Self>, event: EventId) {
        let max = self.config.max_batch;
        self.drain(
            move |shared: &Self| {
                let mut queues = shared.reserves.lock();
                let batch = queues.get_mut(&event)?.next_batch(max);
                if batch.is_none() {
                    queues.remove(&event);
                }
                batch
            },
            |shared, requests| async move { shared.inner.reserve_batch(requests).await },
        )
        .await;
    }

    /// Runs commit batches until the commit queue is empty.
    async fn drain_commits(self: Arc<Self>) {
        let max = self.config.max_batch;
        self.drain(
            move |shared: &Self| shared.commits.lock().next_batch(max),
            |shared, commits| async move { shared.inner.commit_batch(commits).await },
        )
        .await;
    }
}

/// A queued call's answer, once its batch has run.
async fn answer<O>(receiver: oneshot::Receiver<Result<O>>) -> Result<O> {
    receiver.await.map_err(|_| {
        Error::backend(
            "coalescing",
            std::io::Error::other("the batch task ended without an answer"),
        )
    })?
}

#[async_trait]
impl<S: InventoryStore + 'static> InventoryStore for Coalescing<S> {
    async fn reserve(&self, request: ReserveRequest) -> Result<Reservation> {
        let (sender, receiver) = oneshot::channel();
        let event = request.event.clone();
        let start_drain = self
            .shared
            .reserves
            .lock()
            .entry(event.clone())
            .or_default()
            .push((request, sender));
        if start_drain {
            tokio::spawn(self.shared.clone().drain_reserves(event));
        }
        answer(receiver).await
    }

    async fn reserve_batch(&self, requests: Vec<ReserveRequest>) -> Vec<Result<Reservation>> {
        self.shared.inner.reserve_batch(requests).await
    }

    async fn create_event(&self, spec: EventSpec) -> Result<Event> {
        self.shared.inner.create_event(spec).await
    }

    async fn event(&self, event: &EventId) -> Result<Event> {
        self.shared.inner.event(event).await
    }

    async fn events(&self, page: Page) -> Result<Vec<EventSummary>> {
        self.shared.inner.events(page).await
    }

    async fn resize_pool(&self, event: &EventId, pool: &PoolId, capacity: u32) -> Result<()> {
        self.shared.inner.resize_pool(event, pool, capacity).await
    }

    async fn set_pool_blocked(&self, event: &EventId, pool: &PoolId, blocked: u32) -> Result<()> {
        self.shared
            .inner
            .set_pool_blocked(event, pool, blocked)
            .await
    }

    async fn block(&self, event: &EventId, seats: &[SeatId], blocked: bool) -> Result<()> {
        self.shared.inner.block(event, seats, blocked).await
    }

    async fn commit(&self, reservation: &ReservationId, request: CommitRequest) -> Result<Order> {
        if !self.shared.inner.batches_commits() {
            return self.shared.inner.commit(reservation, request).await;
        }
        let (sender, receiver) = oneshot::channel();
        let start_drain = self
            .shared
            .commits
            .lock()
            .push(((reservation.clone(), request), sender));
        if start_drain {
            tokio::spawn(self.shared.clone().drain_commits());
        }
        answer(receiver).await
    }

    async fn commit_batch(
        &self,
        commits: Vec<(ReservationId, CommitRequest)>,
    ) -> Vec<Result<Order>> {
        self.shared.inner.commit_batch(commits).await
    }

    fn batches_commits(&self) -> bool {
        self.shared.inner.batches_commits()
    }

    async fn extend(
        &self,
        reservation: &ReservationId,
        token: &ReservationToken,
        ttl_seconds: u32,
    ) -> Result<Reservation> {
        self.shared
            .inner
            .extend(reservation, token, ttl_seconds)
            .await
    }

    async fn cancel(&self, reservation: &ReservationId, token: &ReservationToken) -> Result<()> {
        self.shared.inner.cancel(reservation, token).await
    }

    async fn refund(&self, order: &OrderId, tickets: Option<&[TicketId]>) -> Result<Refund> {
        self.shared.inner.refund(order, tickets).await
    }

    async fn transfer(&self, ticket: &TicketId, to: &HolderId) -> Result<Ticket> {
        self.shared.inner.transfer(ticket, to).await
    }

    async fn check_in(&self, code: &TicketCode) -> Result<Ticket> {
        self.shared.inner.check_in(code).await
    }

    async fn expire_due(&self, limit: usize) -> Result<usize> {
        self.shared.inner.expire_due(limit).await
    }

    async fn availability(&self, event: &EventId) -> Result<Availability> {
        self.shared.inner.availability(event).await
    }

    async fn changes(&self, event: &EventId, after: u64, limit: usize) -> Result<Vec<Change>> {
        self.shared.inner.changes(event, after, limit).await
    }

    async fn reservation(&self, reservation: &ReservationId) -> Result<Reservation> {
        self.shared.inner.reservation(reservation).await
    }

    async fn order(&self, order: &OrderId) -> Result<Order> {
        self.shared.inner.order(order).await
    }

    async fn ticket(&self, ticket: &TicketId) -> Result<Ticket> {
        self.shared.inner.ticket(ticket).await
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;
    use crate::{MemoryStore, Policy, PoolSpec};

    /// The in-memory store, recording the size of every batch; a request for holder
    /// "panic" makes the batch panic. Only what the tests use is delegated.
    struct Recorder {
        inner: MemoryStore,
        batches: Mutex<Vec<usize>>,
        commit_batches: Mutex<Vec<usize>>,
    }

    fn unused<T>() -> Result<T> {
        Err(Error::invalid("test", "not used by these tests"))
    }

    #[async_trait]
    impl InventoryStore for Recorder {
        async fn reserve_batch(&self, requests: Vec<ReserveRequest>) -> Vec<Result<Reservation>> {
            assert!(
                requests.iter().all(|r| r.holder.as_str() != "panic"),
                "inner store panics"
            );
            self.batches.lock().push(requests.len());
            // Give callers time to pile up, as a database round trip would.
            tokio::time::sleep(Duration::from_millis(5)).await;
            self.inner.reserve_batch(requests).await
        }
        async fn reserve(&self, request: ReserveRequest) -> Result<Reservation> {
            self.inner.reserve(request).await
        }
        async fn create_event(&self, spec: EventSpec) -> Result<Event> {
            self.inner.create_event(spec).await
        }
        async fn event(&self, _: &EventId) -> Result<Event> {
            unused()
        }
        async fn events(&self, _: Page) -> Result<Vec<EventSummary>> {
            unused()
        }
        async fn resize_pool(&self, _: &EventId, _: &PoolId, _: u32) -> Result<()> {
            unused()
        }
        async fn set_pool_blocked(&self, _: &EventId, _: &PoolId, _: u32) -> Result<()> {
            unused()
        }
        async fn block(&self, _: &EventId, _: &[SeatId], _: bool) -> Result<()> {
            unused()
        }
        async fn commit(
            &self,
            reservation: &ReservationId,
            request: CommitRequest,
        ) -> Result<Order> {
            self.inner.commit(reservation, request).await
        }
        fn batches_commits(&self) -> bool {
            true
        }
        async fn commit_batch(
            &self,
            commits: Vec<(ReservationId, CommitRequest)>,
        ) -> Vec<Result<Order>> {
            self.commit_batches.lock().push(commits.len());
            tokio::time::sleep(Duration::from_millis(5)).await;
            self.inner.commit_batch(commits).await
        }
        async fn extend(
            &self,
            _: &ReservationId,
            _: &ReservationToken,
            _: u32,
        ) -> Result<Reservation> {
            unused()
        }
        async fn cancel(&self, _: &ReservationId, _: &ReservationToken) -> Result<()> {
            unused()
        }
        async fn refund(&self, _: &OrderId, _: Option<&[TicketId]>) -> Result<Refund> {
            unused()
        }
        async fn transfer(&self, _: &TicketId, _: &HolderId) -> Result<Ticket> {
            unused()
        }
        async fn check_in(&self, _: &TicketCode) -> Result<Ticket> {
            unused()
        }
        async fn expire_due(&self, _: usize) -> Result<usize> {
            unused()
        }
        async fn availability(&self, event: &EventId) -> Result<Availability> {
            self.inner.availability(event).await
        }
        async fn changes(&self, _: &EventId, _: u64, _: usize) -> Result<Vec<Change>> {
            unused()
        }
        async fn reservation(&self, _: &ReservationId) -> Result<Reservation> {
            unused()
        }
        async fn order(&self, _: &OrderId) -> Result<Order> {
            unused()
        }
        async fn ticket(&self, _: &TicketId) -> Result<Ticket> {
            unused()
        }
    }

    async fn store(max_batch: usize) -> Arc<Coalescing<Recorder>> {
        let recorder = Recorder {
            inner: MemoryStore::new(),
            batches: Mutex::new(Vec::new()),
            commit_batches: Mutex::new(Vec::new()),
        };
        let store =
            Coalescing::with_config(recorder, CoalescingConfig::default().max_batch(max_batch));
        store
            .create_event(EventSpec {
                id: EventId::new("e").unwrap(),
                name: "e".into(),
                seats: vec![],
                pools: vec![PoolSpec {
                    id: PoolId::new("ga").unwrap(),
                    name: String::new(),
                    capacity: 100,
                }],
                sale_window: None,
                policy: Policy::default(),
            })
            .await
            .unwrap();
        Arc::new(store)
    }

    fn request(holder: &str, quantity: u32) -> ReserveRequest {
        ReserveRequest::new(EventId::new("e").unwrap(), HolderId::new(holder).unwrap())
            .ga(PoolId::new("ga").unwrap(), quantity)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_calls_share_batches_and_keep_their_own_results() {
        let store = store(16).await;
        let calls: Vec<_> = (0..64)
            .map(|n| {
                let store = store.clone();
                // Every 8th request is malformed (zero units): it fails alone.
                let quantity = if n % 8 == 0 { 0 } else { 1 };
                tokio::spawn(
                    async move { store.reserve(request(&format!("h{n}"), quantity)).await },
                )
            })
            .collect();
        let mut held = 0;
        for (n, call) in calls.into_iter().enumerate() {
            match call.await.unwrap() {
                Ok(reservation) => {
                    assert_eq!(
                        reservation.holder.as_str(),
                        format!("h{n}"),
                        "each caller its own result"
                    );
                    assert!(reservation.token.is_some());
                    held += 1;
                }
                Err(error) => {
                    assert_eq!(n % 8, 0, "only the malformed requests fail: {error}");
                    assert_eq!(error.code(), "invalid_request");
                }
            }
        }
        assert_eq!(held, 56);
        let batches = store.inner().batches.lock().clone();
        assert_eq!(batches.iter().sum::<usize>(), 64);
        assert!(batches.iter().all(|size| *size <= 16), "{batches:?}");
        assert!(batches.len() < 64, "calls were batched: {batches:?}");
        let availability = store
            .availability(&EventId::new("e").unwrap())
            .await
            .unwrap();
        assert_eq!(availability.pools[0].held, 56);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_commits_share_batches_and_keep_their_own_results() {
        let store = store(16).await;
        let mut holds = Vec::new();
        for n in 0..48 {
            holds.push(store.reserve(request(&format!("h{n}"), 1)).await.unwrap());
        }
        let calls: Vec<_> = holds
            .into_iter()
            .enumerate()
            .map(|(n, hold)| {
                let store = store.clone();
                // Every 8th commit has the wrong token: it fails alone.
                let token = if n % 8 == 0 {
                    ReservationToken::generate()
                } else {
                    hold.token.unwrap()
                };
                let key = crate::IdempotencyKey::new(format!("k{n}")).unwrap();
                tokio::spawn(async move {
                    store
                        .commit(&hold.id, CommitRequest::new(token, key))
                        .await
                        .map(|order| (order, hold.id))
                })
            })
            .collect();
        let mut sold = 0;
        for (n, call) in calls.into_iter().enumerate() {
            match call.await.unwrap() {
                Ok((order, reservation)) => {
                    assert_eq!(order.reservation, reservation, "each caller its own order");
                    assert_eq!(order.holder.as_str(), format!("h{n}"));
                    sold += 1;
                }
                Err(error) => {
                    assert_eq!(n % 8, 0, "only the wrong tokens fail: {error}");
                    assert_eq!(error.code(), "invalid_token");
                }
            }
        }
        assert_eq!(sold, 42);
        let batches = store.inner().commit_batches.lock().clone();
        assert_eq!(batches.iter().sum::<usize>(), 48);
        assert!(batches.iter().all(|size| *size <= 16), "{batches:?}");
        assert!(batches.len() < 48, "commits were batched: {batches:?}");
        let availability = store
            .availability(&EventId::new("e").unwrap())
            .await
            .unwrap();
        assert_eq!(availability.pools[0].sold, 42);
        assert_eq!(availability.pools[0].held, 6);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_store_fails_its_callers_instead_of_hanging() {
        let store = store(16).await;
        let error = store.reserve(request("panic", 1)).await.unwrap_err();
        assert_eq!(error.code(), "backend");
        // The next call for the event starts afresh.
        assert!(store.reserve(request("after", 1)).await.is_ok());
    }
}

/// The waitlist goes straight through to the wrapped store: joins and leaves are not
/// batched, and the wrapped store serves the waitlist in the steps that free inventory.
#[async_trait]
impl<S: WaitlistStore + 'static> WaitlistStore for Coalescing<S> {
    async fn waitlist_join(&self, request: WaitlistRequest) -> Result<WaitlistJoined> {
        self.shared.inner.waitlist_join(request).await
    }

    async fn waitlist_entry(
        &self,
        event: &EventId,
        entry: &WaitlistEntryId,
    ) -> Result<WaitlistEntry> {
        self.shared.inner.waitlist_entry(event, entry).await
    }

    async fn waitlist_leave(
        &self,
        event: &EventId,
        entry: &WaitlistEntryId,
        holder: &HolderId,
    ) -> Result<()> {
        self.shared.inner.waitlist_leave(event, entry, holder).await
    }
}
