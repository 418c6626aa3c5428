//! The flash-sale load generator behind `ticketing-flash-sale`: many virtual buyers
//! compete for one event, then an audit proves nothing was oversold.
//!
//! ```text
//! cargo run --release --bin ticketing-flash-sale -- --store memory
//! cargo run --release --bin ticketing-flash-sale -- --store postgres --coalesce
//! cargo run --release --bin ticketing-flash-sale -- --store redis --queue --queue-rate 2000
//! cargo run --release --bin ticketing-flash-sale -- --url http://127.0.0.1:8080 --admin-key KEY
//! ```
//!
//! **The sale.** The event is the example server's demo stadium (50,000 seats in 20
//! sections, a 10,000-place standing field), or its first sections, rows and seats
//! ([`EventShape`]). Buyers arrive one after another, [`SaleConfig::sessions`] of them
//! shopping at once, [`SaleConfig::concurrency`] operations in flight at once. Each draws a
//! plan from the seed ([`Mix`]): most pick a block of 1-4 adjacent seats themselves — a
//! section by a Zipf law over the layout order, a row nearer the front more often, on a
//! seat map fed by what the generator sees (a page fed by the change stream) — some ask for
//! the best available, some for standing places. Having a hold, most commit after a think
//! time; some cancel; some walk away from a short hold; a few pay after their short hold
//! lapsed (the store must refuse). Some retry after a conflict, a bounded number of times.
//! Once everything is sold, buyers who come are turned away; the sale also closes after
//! [`SaleConfig::duration`].
//!
//! **The audit** ([`Audit`]) waits for the holds let lapse, sweeps, re-reads the seat map,
//! every reservation the buyers made and every order, and replays the whole change log
//! with the core's strict replay (`ticketing_core::testkit::invariants::replay`): no seat
//! sold twice, no hold without a live reservation, every order matching the seat map,
//! every buyer's account matching the store's, and the log replaying to the final state.
//!
//! **The queue** (`--queue`, [`QueueConfig`]): every buyer first joins the event's waiting
//! room with its holder id, polls its ticket until admitted, then shops sending its pass
//! on each reserve, and leaves the room when done; a buyer the room tells it is sold out
//! is turned away. In process, the sale gates the event on the store's own backend, runs
//! the room's admission steps and checks passes as an embedding application would; over
//! HTTP it gates the event with the admin route and the server does the rest.
//!
//! Not a stable API: it is here so that tests run the very code the binary runs.

mod audit;
mod buyer;
mod cli;
mod config;
mod http;
mod layout;
mod queue;
mod report;
mod stats;
mod target;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

pub use audit::{Audit, StatusCounts};
pub use cli::{FlashSaleArgs, StoreChoice, main_with};
pub use config::{
    BUYERS_MAX, CONCURRENCY_MAX, EventShape, Mix, QUEUE_POLL_MAX, QUEUE_POLL_MIN, QueueConfig,
    RETRIES_MAX, SESSIONS_MAX, SaleConfig, THINK_MAX,
};
pub use http::{HttpTarget, loopback_base};
pub use layout::sale_event;
pub use report::{Counts, EventFigures, Latencies, QueueFigures, Rates, SoldFigures, Summary};
pub use stats::{LatencyFigures, Sample, WaitFigures};
pub use target::{StoreTarget, Target};

use buyer::{Sale, session};
use layout::Layout;
use report::grouped;
use stats::read;

/// Why a sale could not run (its audit's verdict is in the [`Summary`], not here).
#[derive(Debug, thiserror::Error)]
pub enum SaleError {
    /// A flag or setting out of bounds, or a target that cannot be used.
    #[error("{0}")]
    Invalid(String),
    /// The store refused or failed (creating the event, opening it).
    #[error("store: {0}")]
    Store(#[from] ticketing_core::Error),
    /// The server refused or failed.
    #[error("HTTP: {0}")]
    Http(String),
    /// Writing a file.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Drawing the chart.
    #[error("plot: {0}")]
    Plot(String),
}

/// Runs a sale on `target` until every buyer came, the sale sold out and the rest were
/// turned away, [`SaleConfig::duration`] passed, or `interrupt` completed (Ctrl-C); then
/// audits it. Creates the event `config.event_id` first, and with [`SaleConfig::queue`]
/// gates it with a waiting room.
pub async fn run(
    target: Target,
    config: SaleConfig,
    interrupt: impl Future<Output = ()> + Send + 'static,
) -> Result<Summary, SaleError> {
    config.check()?;
    let spec = sale_event(&config.event_id, &config.shape, config.hold_ttl_seconds)?;
    let event = target.create_event(spec).await?;
    if let Some(queue) = &config.queue {
        target
            .configure_room(&event.id, &queue.settings(config.seed))
            .await?;
    }
    let layout = Layout::new(&event);
    let sessions = usize::try_from(config.buyers)
        .unwrap_or(usize::MAX)
        .min(config.sessions);
    let sale = Arc::new(Sale::new(target, config, event.id.clone(), layout)?);
    let sweeper = sale.target.spawn_sweeper();
    let room_sweeper = sale.target.spawn_room_sweeper();
    let progress = progress_bar(&sale);
    let sampler = tokio::spawn(sample(Arc::clone(&sale), progress.clone()));
    let closer = tokio::spawn(close_after(Arc::clone(&sale), interrupt));
    let tasks: Vec<_> = (0..sessions)
        .map(|_| tokio::spawn(session(Arc::clone(&sale))))
        .collect();
    let mut ledger = Vec::new();
    let mut failed = None;
    for task in tasks {
        match task.await {
            Ok(entries) => ledger.extend(entries),
            Err(error) => failed = Some(error),
        }
    }
    let elapsed = sale.stats.started.elapsed();
    sale.finish();
    if let Some(sweeper) = sweeper {
        sweeper.stop().await;
    }
    if let Some(sweeper) = room_sweeper {
        sweeper.stop().await;
    }
    closer.abort();
    let _ = sampler.await;
    progress.finish_and_clear();
    if let Some(error) = failed {
        return Err(SaleError::Invalid(format!(
            "a buyer session failed: {error}"
        )));
    }
    if sale.config.progress {
        eprintln!("sale over after {elapsed:.2?}; auditing...");
    }
    let audit = audit::audit(&sale, &event, ledger).await;
    Ok(report::summarize(&sale, elapsed, audit))
}

async fn close_after(sale: Arc<Sale>, interrupt: impl Future<Output = ()>) {
    tokio::select! {
        () = tokio::time::sleep(sale.config.duration) => {}
        () = interrupt => {}
    }
    sale.close();
}

fn progress_bar(sale: &Sale) -> ProgressBar {
    if !sale.config.progress {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(sale.config.buyers);
    let style = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:32} {pos}/{len} buyers  {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

/// Samples the timeline, frees lapsed holds on the buyers' seat map and draws progress,
/// until the sale is over; then takes a last sample.
async fn sample(sale: Arc<Sale>, progress: ProgressBar) {
    let mut ticker = tokio::time::interval(sale.config.sample_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut redraw = 0_u32;
    while !sale.is_finished() {
        ticker.tick().await;
        let point = sale.stats.sample();
        sale.release_lapsed();
        let c = &sale.stats.counters;
        progress.set_position(read(&c.buyers_done));
        // The message at most about twice a second, whatever the sample interval.
        redraw += 1;
        let every = (Duration::from_millis(500).as_millis()
            / sale.config.sample_interval.as_millis().max(1))
        .max(1);
        if u128::from(redraw) >= every {
            redraw = 0;
            let queue = if sale.config.queue.is_some() {
                format!(
                    "  queue: waiting {} admitted {}",
                    grouped(sale.stats.queue_waiting()),
                    grouped(read(&c.queue_admitted)),
                )
            } else {
                String::new()
            };
            progress.set_message(format!(
                "sold {}/{}  {:.0} reserves/s  {:.0} commits/s  p99 {:.1} ms  conflicts {}{queue}",
                grouped(point.sold),
                grouped(sale.layout.capacity()),
                point.reserve_calls_per_second,
                point.commits_per_second,
                point.reserve_p99_ms,
                grouped(read(&c.seat_conflicts) + read(&c.sold_out_answers)),
            ));
        }
    }
    sale.stats.sample();
}
