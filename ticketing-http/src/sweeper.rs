//! The expiry sweeper with metrics: the core's sweep step ([`InventoryStore::expire_due`])
//! run periodically, counting what it expires and when it last succeeded.

use std::sync::Arc;

use ticketing_core::InventoryStore;
use ticketing_core::sweeper::SweeperConfig;
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
