//! What a sale simulates: the event's shape, the buyers' behaviour and the load's bounds.

use std::time::Duration;

use serde::Serialize;
use ticketing_core::RoomSettings;
use ticketing_core::room::{
    ACTIVE_MAX_MAX, ADMIT_PER_SECOND_MAX, PASS_TTL_SECONDS_MAX, PASS_TTL_SECONDS_MIN,
    SEATS_PER_BUYER_MAX,
};

use super::SaleError;

/// Most buyers one run may simulate.
pub const BUYERS_MAX: u64 = 10_000_000;
/// Most operations in flight at once.
pub const CONCURRENCY_MAX: usize = 65_536;
/// Most buyers shopping at once.
pub const SESSIONS_MAX: usize = 1_048_576;
/// Most reserve attempts a buyer makes after a conflict.
pub const RETRIES_MAX: u32 = 16;
/// The longest think time a buyer may take before commit or cancel.
pub const THINK_MAX: Duration = Duration::from_secs(600);
/// The shortest pause between a queued buyer's status polls.
pub const QUEUE_POLL_MIN: Duration = Duration::from_millis(10);
/// The longest pause between a queued buyer's status polls.
pub const QUEUE_POLL_MAX: Duration = Duration::from_secs(10);
/// How many seats or places a buyer wants, and how often: pairs most of all.
pub(crate) const BLOCK_SIZES: [(u32, f64); 4] = [(1, 0.15), (2, 0.45), (3, 0.15), (4, 0.25)];

/// How much of the demo stadium is on sale (`None`: all of it, as `demo_event` builds it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct EventShape {
    /// The first this many sections of the layout.
    pub sections: Option<u32>,
    /// The first this many rows of each section.
    pub rows: Option<u32>,
    /// The first this many seats of each row.
    pub seats_per_row: Option<u32>,
    /// The standing field's capacity; 0 takes the pool away.
    pub ga_capacity: Option<u32>,
}

/// The shares of the buyers' behaviours, each between 0 and 1.
///
/// A buyer asks for best available (`best_available`), for GA places (`ga`), or else picks
/// a block of seats in a row itself. Once it holds them it cancels (`abandon`), walks away
/// and lets a short hold expire (`expire`), pays too late on a short hold (`late`: the
/// commit must be refused), or else commits after its think time. On a conflict, a share
/// (`retry`) tries again, at most `retries` more times.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Mix {
    /// Share of buyers asking for the best available adjacent seats.
    pub best_available: f64,
    /// Share of buyers asking for standing (GA) places.
    pub ga: f64,
    /// Share of holders that cancel after thinking.
    pub abandon: f64,
    /// Share of holders that walk away from a short hold.
    pub expire: f64,
    /// Share of holders that commit after their short hold lapsed.
    pub late: f64,
    /// Share of buyers that retry after a conflict.
    pub retry: f64,
    /// How many more attempts a retrying buyer makes.
    pub retries: u32,
    /// The exponent of the Zipf law over sections by popularity (layout order): 0 is
    /// uniform; 1 makes the first section twice as popular as the second.
    pub zipf_exponent: f64,
}

impl Default for Mix {
    fn default() -> Self {
        Self {
            best_available: 0.15,
            ga: 0.15,
            abandon: 0.10,
            expire: 0.05,
            late: 0.02,
            retry: 0.6,
            retries: 3,
            zipf_exponent: 1.0,
        }
    }
}

impl Mix {
    /// Checks that every share is in 0..=1 and that each group sums to at most 1.
    pub fn check(&self) -> Result<(), SaleError> {
        let shares = [
            ("best_available", self.best_available),
            ("ga", self.ga),
            ("abandon", self.abandon),
            ("expire", self.expire),
            ("late", self.late),
            ("retry", self.retry),
        ];
        for (name, share) in shares {
            if !(0.0..=1.0).contains(&share) {
                return Err(SaleError::Invalid(format!(
                    "--{} must be a share from 0 to 1, got {share}",
                    name.replace('_', "-")
                )));
            }
        }
        if self.best_available + self.ga > 1.0 {
            return Err(SaleError::Invalid(
                "--best-available plus --ga is more than 1".to_owned(),
            ));
        }
        if self.abandon + self.expire + self.late > 1.0 {
            return Err(SaleError::Invalid(
                "--abandon plus --expire plus --late is more than 1".to_owned(),
            ));
        }
        if self.retries > RETRIES_MAX {
            return Err(SaleError::Invalid(format!(
                "--retries must be at most {RETRIES_MAX}"
            )));
        }
        if !(0.0..=8.0).contains(&self.zipf_exponent) {
            return Err(SaleError::Invalid("--zipf must be from 0 to 8".to_owned()));
        }
        Ok(())
    }
}

/// The waiting room every buyer goes through first (`--queue`): the room's settings and
/// how often a queued buyer polls.
///
/// A buyer joins the event's room with its holder id as the visitor, polls its ticket
/// until it is admitted (then shops, sending the pass on each reserve) or the room says
/// sold out (then leaves), and leaves the room when done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct QueueConfig {
    /// Visitors admitted per second.
    pub admit_per_second: u32,
    /// Most buyers shopping at once (live passes); `None`: the rate alone governs.
    pub active_max: Option<u32>,
    /// Seats a buyer takes, for the room's inventory bound (live passes times this stay
    /// within what is free); [`QueueConfig::seats_per_buyer_of_mix`] by default.
    pub seats_per_buyer: u32,
    /// How long a pass lasts after admission, in seconds.
    pub pass_ttl_seconds: u32,
    /// The pause between a queued buyer's status polls (each buyer jitters it by up to a
    /// fifth, so polls do not come in waves).
    pub poll_interval: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            admit_per_second: 2_000,
            active_max: None,
            seats_per_buyer: Self::seats_per_buyer_of_mix(),
            pass_ttl_seconds: 60,
            poll_interval: Duration::from_millis(200),
        }
    }
}

impl QueueConfig {
    /// The seats a buyer takes on average by the buyers' block sizes, rounded down (2):
    /// rounding down lets the room admit a little more than the free inventory serves at
    /// the end of the sale rather than leave a seat or two nobody is admitted for.
    pub fn seats_per_buyer_of_mix() -> u32 {
        let mean: f64 = BLOCK_SIZES
            .iter()
            .map(|(size, share)| f64::from(*size) * share)
            .sum();
        // The mean of sizes from 1 to 4: the cast cannot truncate anything but the fraction.
        (mean.floor() as u32).max(1)
    }

    /// The room's settings; `seed` fixes the (unused: the room opens at once) shuffle.
    pub fn settings(&self, seed: u64) -> RoomSettings {
        let mut settings = RoomSettings::rate(self.admit_per_second)
            .pass_ttl_seconds(self.pass_ttl_seconds)
            .seats_per_buyer(self.seats_per_buyer)
            .shuffle_seed(seed);
        settings.active_max = self.active_max;
        settings
    }

    /// Checks every bound, naming the flag.
    pub fn check(&self) -> Result<(), SaleError> {
        let invalid = |text: String| Err(SaleError::Invalid(text));
        if !(1..=ADMIT_PER_SECOND_MAX).contains(&self.admit_per_second) {
            return invalid(format!(
                "--queue-rate must be from 1 to {ADMIT_PER_SECOND_MAX} visitors a second, got {}",
                self.admit_per_second
            ));
        }
        if let Some(cap) = self.active_max
            && !(1..=ACTIVE_MAX_MAX).contains(&cap)
        {
            return invalid(format!(
                "--queue-cap must be from 1 to {ACTIVE_MAX_MAX} shoppers, got {cap}"
            ));
        }
        if !(1..=SEATS_PER_BUYER_MAX).contains(&self.seats_per_buyer) {
            return invalid(format!(
                "--queue-seats-per-buyer must be from 1 to {SEATS_PER_BUYER_MAX}, got {}",
                self.seats_per_buyer
            ));
        }
        if !(PASS_TTL_SECONDS_MIN..=PASS_TTL_SECONDS_MAX).contains(&self.pass_ttl_seconds) {
            return invalid(format!(
                "--queue-pass-ttl-seconds must be from {PASS_TTL_SECONDS_MIN} to {PASS_TTL_SECONDS_MAX}, got {}",
                self.pass_ttl_seconds
            ));
        }
        if !(QUEUE_POLL_MIN..=QUEUE_POLL_MAX).contains(&self.poll_interval) {
            return invalid(format!(
                "--queue-poll-ms must be from {} to {}, got {}",
                QUEUE_POLL_MIN.as_millis(),
                QUEUE_POLL_MAX.as_millis(),
                self.poll_interval.as_millis()
            ));
        }
        Ok(())
    }
}

/// One run of the load generator.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SaleConfig {
    /// Virtual buyers, each arriving once.
    pub buyers: u64,
    /// Operations (store calls or HTTP requests) in flight at once.
    pub concurrency: usize,
    /// Buyers shopping at once (a buyer thinking holds no operation slot).
    pub sessions: usize,
    /// The sale closes after this long: no buyer starts a step after it, buyers holding
    /// seats check out without thinking.
    pub duration: Duration,
    /// Seeds every buyer's choices (buyer `i` draws from `seed` and `i`).
    pub seed: u64,
    /// The event to create.
    pub event_id: String,
    /// How much of the demo stadium is on sale.
    pub shape: EventShape,
    /// The event's default hold, in seconds (committing and cancelling buyers).
    pub hold_ttl_seconds: u32,
    /// The short hold of buyers that let it expire or pay too late, in seconds.
    pub short_ttl_seconds: u32,
    /// Least think time before commit or cancel.
    pub think_min: Duration,
    /// Most think time before commit or cancel.
    pub think_max: Duration,
    /// Who does what.
    pub mix: Mix,
    /// How often the timeline (and the progress bar) is sampled.
    pub sample_interval: Duration,
    /// Draw a progress bar on a terminal's stderr.
    pub progress: bool,
    /// Send every buyer through the event's waiting room first; `None`: straight in.
    pub queue: Option<QueueConfig>,
}

impl Default for SaleConfig {
    fn default() -> Self {
        Self {
            buyers: 100_000,
            concurrency: 256,
            sessions: 4_096,
            duration: Duration::from_secs(300),
            seed: 42,
            event_id: "flash-sale".to_owned(),
            shape: EventShape::default(),
            hold_ttl_seconds: 300,
            short_ttl_seconds: 1,
            think_min: Duration::from_millis(10),
            think_max: Duration::from_millis(100),
            mix: Mix::default(),
            sample_interval: Duration::from_millis(250),
            progress: false,
            queue: None,
        }
    }
}

impl SaleConfig {
    /// Checks every bound.
    pub fn check(&self) -> Result<(), SaleError> {
        let invalid = |text: &str| Err(SaleError::Invalid(text.to_owned()));
        if self.buyers == 0 || self.buyers > BUYERS_MAX {
            return invalid("--buyers must be from 1 to 10,000,000");
        }
        if self.concurrency == 0 || self.concurrency > CONCURRENCY_MAX {
            return invalid("--concurrency must be from 1 to 65,536");
        }
        if self.sessions == 0 || self.sessions > SESSIONS_MAX {
            return invalid("--sessions must be from 1 to 1,048,576");
        }
        if self.duration.is_zero() {
            return invalid("--duration must be more than zero");
        }
        if self.think_min > self.think_max || self.think_max > THINK_MAX {
            return invalid("--think-ms-min must not pass --think-ms-max, nor it 600,000");
        }
        if self.short_ttl_seconds == 0 || self.short_ttl_seconds > self.hold_ttl_seconds {
            return invalid("--short-ttl-seconds must be from 1 to --hold-ttl-seconds");
        }
        if self.sample_interval < Duration::from_millis(10) {
            return invalid("--sample-ms must be at least 10");
        }
        if let Some(queue) = &self.queue {
            queue.check()?;
        }
        self.mix.check()
    }
}
