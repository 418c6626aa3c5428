//! The expiry sweeper with metrics: the core's sweep step ([`InventoryStore::expire_due`])
//! run periodically, counting what it expires and when it last succeeded.

use std::sync::Arc;

use std::time::Duration;

use ticketing_core::sweeper::{RoomSweeperStats, SweeperConfig};
use ticketing_core::{InventoryStore, WaitingRoom};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::metrics::Metrics;

/// A running sweeper; [`Sweeper::stop`] ends it after the current step.
#[derive(Debug)]
pub struct Sweeper {
    stop: watch::Sender<bool>,
    task: JoinHandle<u64>,
}

impl Sweeper {
    /// Stops the sweeper, waits for it, and returns how many reservations it expired.
    pub async fn stop(self) -> u64 {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or_default()
    }
}

/// Spawns the waiting rooms' admission step ([`ticketing_core::sweeper::spawn_room_sweeper`])
/// every `interval`, recording queue depth, live passes, admissions and the estimated wait
/// per event in `metrics`.
pub fn spawn_room_sweeper(
    rooms: Arc<dyn WaitingRoom>,
    store: Arc<dyn InventoryStore>,
    metrics: Metrics,
    interval: Duration,
) -> ticketing_core::sweeper::Sweeper<RoomSweeperStats> {
    ticketing_core::sweeper::spawn_room_sweeper(rooms, store, interval, move |event, step| {
        metrics.room_step(event, step);
    })
}

/// Spawns a sweeper for `store` on the current tokio runtime, recording
/// `ticketing_reservations_total{outcome="expired"}` and the sweeper lag in `metrics`.
/// Running several (one per instance) is safe.
pub fn spawn_sweeper(
    store: Arc<dyn InventoryStore>,
    metrics: Metrics,
    config: SweeperConfig,
) -> Sweeper {
    let (stop, mut stopped) = watch::channel(false);
    let batch = config.batch.max(1);
    let task = tokio::spawn(async move {
        let mut expired_total = 0u64;
        loop {
            let full = match store.expire_due(batch).await {
                Ok(expired) => {
                    metrics.sweep_succeeded();
                    metrics.reservations("expired", expired as u64);
                    expired_total += expired as u64;
                    expired >= batch
                }
                Err(error) => {
                    tracing::warn!(%error, "expiry sweep failed");
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
                () = tokio::time::sleep(config.interval) => {}
                _ = stopped.changed() => break,
            }
        }
        expired_total
    });
    Sweeper { stop, task }
}
