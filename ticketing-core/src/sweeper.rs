//! The sweepers: [`spawn_sweeper`] runs [`InventoryStore::expire_due`], and
//! [`spawn_room_sweeper`] the waiting rooms' admission steps, on a tokio runtime.
//!
//! Expiry is lazy (a lapsed hold's items are free at once), so the sweeper only keeps the
//! change log and reservation statuses current; running it late or on several instances at
//! once is safe.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::id::EventId;
use crate::room::{AdmitStep, WaitingRoom};
use crate::store::InventoryStore;

/// How the sweeper runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SweeperConfig {
    /// Pause between sweeps when the last one found nothing more to do.
    pub interval: Duration,
    /// Reservations finalized per call; a full batch is followed at once by another.
    pub batch: usize,
}

impl Default for SweeperConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_millis(500),
            batch: 1_000,
        }
    }
}

impl SweeperConfig {
    /// Sets the pause between sweeps.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Sets the batch size (at least 1).
    pub fn batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }
}

/// A running sweeper; [`Sweeper::stop`] ends it after the current step and returns what it
/// did (`S`: [`SweeperStats`] for the expiry sweeper, [`RoomSweeperStats`] for rooms).
#[derive(Debug)]
pub struct Sweeper<S = SweeperStats> {
    stop: watch::Sender<bool>,
    task: JoinHandle<S>,
}

/// What a sweeper did over its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweeperStats {
    /// Reservations it expired.
    pub expired: u64,
    /// Calls that failed (backend errors; the sweeper keeps going).
    pub errors: u64,
}

impl<S: Default> Sweeper<S> {
    /// Stops the sweeper and waits for it; returns what it did.
    pub async fn stop(self) -> S {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or_default()
    }
}

/// Spawns a sweeper for `store` on the current tokio runtime.
pub fn spawn_sweeper(store: Arc<dyn InventoryStore>, config: SweeperConfig) -> Sweeper {
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        let mut stats = SweeperStats::default();
        loop {
            let full = match store.expire_due(config.batch).await {
                Ok(expired) => {
                    stats.expired += expired as u64;
                    expired >= config.batch
                }
                Err(_) => {
                    stats.errors += 1;
                    false
                }
            };
            if *stopped.borrow() {
                break;
            }
            if full {
                tokio::task::yield_now().await;
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(config.interval) => {}
                _ = stopped.changed() => break,
            }
        }
        stats
    });
    Sweeper { stop, task }
}

/// What a room sweeper did over its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoomSweeperStats {
    /// Admission steps run.
    pub steps: u64,
    /// Visitors admitted.
    pub admitted: u64,
    /// Passes lapsed.
    pub lapsed: u64,
    /// Steps that failed (backend errors, or a room whose event the store does not know;
    /// the sweeper keeps going).
    pub errors: u64,
}

/// Spawns the admission step of every room of `rooms`, every `interval`, on the current
/// tokio runtime: each step reads the event's free inventory from `store` (seats available
/// plus pool units available) and passes it to [`WaitingRoom::admit`]; `observe` sees each
/// step's outcome (metrics). Safe to run on several instances at once: each step is atomic
/// and the rate is kept by the room's own clock, so more steppers only mean finer steps.
pub fn spawn_room_sweeper(
    rooms: Arc<dyn WaitingRoom>,
    store: Arc<dyn InventoryStore>,
    interval: Duration,
    observe: impl Fn(&EventId, &AdmitStep) + Send + 'static,
) -> Sweeper<RoomSweeperStats> {
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        let mut stats = RoomSweeperStats::default();
        loop {
            let events = rooms.rooms().await.unwrap_or_else(|_| {
                stats.errors += 1;
                Vec::new()
            });
            for event in events {
                let step = match store.availability(&event).await {
                    Ok(availability) => rooms.admit(&event, availability.free_units()).await,
                    Err(error) => Err(error),
                };
                match step {
                    Ok(step) => {
                        observe(&event, &step);
                        stats.steps += 1;
                        stats.admitted += u64::from(step.admitted);
                        stats.lapsed += u64::from(step.lapsed);
                    }
                    Err(_) => stats.errors += 1,
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stopped.changed() => break,
            }
            if *stopped.borrow() {
                break;
            }
        }
        stats
    });
    Sweeper { stop, task }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        EventId, EventSpec, HolderId, ManualClock, MemoryStore, PoolId, PoolSpec, ReserveRequest,
    };

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn sweeper_expires_lapsed_reservations_and_stops() {
        let clock = ManualClock::default();
        let store = Arc::new(MemoryStore::with_clock(Arc::new(clock.clone())));
        let event = EventId::new("e").unwrap();
        let pool = PoolId::new("ga").unwrap();
        let spec = EventSpec {
            id: event.clone(),
            name: "e".into(),
            seats: vec![],
            pools: vec![PoolSpec {
                id: pool.clone(),
                name: String::new(),
                capacity: 10,
            }],
            sale_window: None,
            policy: Default::default(),
        };
        store.create_event(spec).await.unwrap();
        for holder in ["a", "b", "c"] {
            let request = ReserveRequest::new(event.clone(), HolderId::new(holder).unwrap())
                .ga(pool.clone(), 1)
                .ttl_seconds(1);
            store.reserve(request).await.unwrap();
        }
        let sweeper = spawn_sweeper(
            store.clone(),
            SweeperConfig::default()
                .batch(2)
                .interval(Duration::from_millis(10)),
        );
        clock.advance(Duration::from_secs(2));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let stats = sweeper.stop().await;
        assert_eq!(
            stats,
            SweeperStats {
                expired: 3,
                errors: 0
            }
        );
        assert_eq!(store.availability(&event).await.unwrap().pools[0].held, 0);
    }
}
