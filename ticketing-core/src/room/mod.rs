//! The waiting room: fair admission to a hot on-sale.
//!
//! A gated event has a room. Visitors [`join`](WaitingRoom::join) it and get a
//! [`QueueTicket`]; the room admits them in order, at a configured rate and/or up to a
//! number of active shoppers, never more than the event's free inventory can serve. An
//! admitted visitor holds a pass until it lapses; the application signs it with a
//! [`PassKey`] so any instance can check it without asking the store, and requires it on
//! reserve while the event is gated.
//!
//! The room is advanced by [`WaitingRoom::admit`], a step the sweeper runs (see
//! [`spawn_room_sweeper`](crate::sweeper::spawn_room_sweeper)); admission is never a side
//! effect of a visitor polling, so the rate holds however often visitors ask.
//!
//! ## The rules, on every backend
//!
//! - **One place per visitor.** Joining again while waiting or admitted returns the same
//!   ticket. After the pass lapsed or the visitor left, joining again queues at the back.
//! - **Order.** Visitors are admitted in queue order. Without `opens_at` the order is
//!   arrival order. With it, visitors who join before `opens_at` are in a *pre-queue* and
//!   are put in random order at the opening (ordered by a keyed hash of the room's
//!   `shuffle_seed` and the visitor, so the order is fixed by the seed and unknowable
//!   without it); later arrivals queue behind them in arrival order.
//! - **Rate.** With `admit_per_second = r`, admission earns `r` places per second of
//!   clock time between steps, keeps at most one second's worth unused, and starts with one
//!   second's worth at the opening: over any span of `t` seconds at most `r·(t + 1)` are
//!   admitted.
//! - **Cap.** With `active_max = m`, at most `m` passes are live at once.
//! - **Inventory.** At most `free_units / seats_per_buyer` passes are live at once, where
//!   `free_units` is what the event has free to sell (the caller of `admit` reads it from
//!   the inventory store). With nothing free the room is *sold out*: nobody is admitted and
//!   every waiting visitor reads [`QueueStatus::SoldOut`] at once; a later step with free
//!   inventory resumes admission.
//! - **Lapse.** A pass is live until `pass_expires_at` (`pass_ttl_seconds` after
//!   admission) or until the visitor leaves; then its slot is free for the next step.
//! - **Positions** are exact: 1 + the number of visitors still waiting ahead.
//! - **Estimated wait**: the position divided by the rate measured since the opening
//!   (admitted visitors over elapsed seconds, at least one second), or by the configured
//!   rate before anyone was admitted; `None` when there is neither.
//!
//! The room does not check that its event exists in an inventory store: rooms and
//! inventory may live in different backends.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::{EventId, HolderId, QueueTicketId};
use crate::time::Timestamp;

mod memory;
mod pass;

pub use memory::MemoryWaitingRoom;
pub use pass::{PASS_KEY_BYTES_MIN, Pass, PassError, PassKey};

/// The most visitors one [`WaitingRoom::admit`] step admits, so a step on a room with a
/// cap and a million visitors stays short; the next step admits more.
pub const ADMIT_PER_STEP_MAX: u32 = 10_000;
/// The highest admission rate a room may have.
pub const ADMIT_PER_SECOND_MAX: u32 = 100_000;
/// The highest cap on active shoppers.
pub const ACTIVE_MAX_MAX: u32 = 10_000_000;
/// The shortest pass.
pub const PASS_TTL_SECONDS_MIN: u32 = 10;
/// The longest pass.
pub const PASS_TTL_SECONDS_MAX: u32 = 3_600;
/// The most seats a room may assume one buyer takes.
pub const SEATS_PER_BUYER_MAX: u32 = 100;

/// How a room admits visitors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomSettings {
    /// Visitors admitted per second; `None` for no rate (the cap alone governs).
    #[serde(default)]
    pub admit_per_second: Option<u32>,
    /// Most passes live at once; `None` for no cap (the rate alone governs).
    #[serde(default)]
    pub active_max: Option<u32>,
    /// How long a pass lasts after admission.
    #[serde(default = "RoomSettings::pass_ttl_default")]
    pub pass_ttl_seconds: u32,
    /// Seats a typical buyer takes: the room keeps live passes times this within the
    /// event's free inventory.
    #[serde(default = "RoomSettings::seats_per_buyer_default")]
    pub seats_per_buyer: u32,
    /// The on-sale: visitors who join before it are shuffled at it; nobody is admitted
    /// before it. `None`: the room is open now, arrival order.
    #[serde(default)]
    pub opens_at: Option<Timestamp>,
    /// The key of the pre-queue shuffle: the same seed and visitors give the same order.
    #[serde(default)]
    pub shuffle_seed: u64,
}

impl RoomSettings {
    /// The default pass: 10 minutes.
    pub const PASS_TTL_SECONDS_DEFAULT: u32 = 600;
    /// The default seats per buyer.
    pub const SEATS_PER_BUYER_DEFAULT: u32 = 2;

    fn pass_ttl_default() -> u32 {
        Self::PASS_TTL_SECONDS_DEFAULT
    }

    fn seats_per_buyer_default() -> u32 {
        Self::SEATS_PER_BUYER_DEFAULT
    }

    /// A room admitting `per_second` visitors a second, with the defaults otherwise and a
    /// random shuffle seed.
    pub fn rate(per_second: u32) -> Self {
        Self {
            admit_per_second: Some(per_second),
            ..Self::default()
        }
    }

    /// A room keeping at most `active_max` shoppers at once, with the defaults otherwise.
    pub fn cap(active_max: u32) -> Self {
        Self {
            active_max: Some(active_max),
            ..Self::default()
        }
    }

    /// Sets the cap on active shoppers.
    pub fn active_max(mut self, active_max: u32) -> Self {
        self.active_max = Some(active_max);
        self
    }

    /// Sets the pass lifetime.
    pub fn pass_ttl_seconds(mut self, seconds: u32) -> Self {
        self.pass_ttl_seconds = seconds;
        self
    }

    /// Sets the seats a typical buyer takes.
    pub fn seats_per_buyer(mut self, seats: u32) -> Self {
        self.seats_per_buyer = seats;
        self
    }

    /// Sets the on-sale time (pre-queue before it).
    pub fn opens_at(mut self, opens_at: Timestamp) -> Self {
        self.opens_at = Some(opens_at);
        self
    }

    /// Sets the pre-queue shuffle seed.
    pub fn shuffle_seed(mut self, seed: u64) -> Self {
        self.shuffle_seed = seed;
        self
    }

    /// The pass lifetime as a duration.
    pub fn pass_ttl(&self) -> Duration {
        Duration::from_secs(u64::from(self.pass_ttl_seconds))
    }
}

impl Default for RoomSettings {
    /// No rate and no cap (not valid until one is set), 10-minute passes, 2 seats per
    /// buyer, open now, a random shuffle seed.
    fn default() -> Self {
        Self {
            admit_per_second: None,
            active_max: None,
            pass_ttl_seconds: Self::PASS_TTL_SECONDS_DEFAULT,
            seats_per_buyer: Self::SEATS_PER_BUYER_DEFAULT,
            opens_at: None,
            shuffle_seed: rand::random(),
        }
    }
}

/// What [`WaitingRoom::join`] gives a visitor: its place in the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueTicket {
    /// The ticket's id: what the visitor polls with. Unguessable.
    pub id: QueueTicketId,
    /// The event whose room it is.
    pub event: EventId,
    /// Who joined.
    pub visitor: HolderId,
    /// When the visitor joined (this ticket).
    pub joined_at: Timestamp,
}

/// Where a visitor stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum QueueStatus {
    /// Joined before the on-sale; the order is drawn at `opens_at`.
    PreQueue {
        /// When the room opens and the pre-queue is shuffled.
        opens_at: Timestamp,
    },
    /// In the queue.
    Waiting {
        /// 1 for the next visitor to be admitted.
        position: u64,
        /// Seconds until admission at the measured rate, if there is a rate to go by.
        estimated_wait_seconds: Option<u64>,
    },
    /// The event has nothing left to sell; admission resumes if inventory comes back.
    SoldOut,
    /// Admitted: the visitor may shop until the pass lapses.
    Admitted {
        /// When the pass lapses.
        pass_expires_at: Timestamp,
    },
    /// The pass lapsed; joining again queues at the back.
    Lapsed,
    /// The visitor left; joining again queues at the back.
    Left,
}

/// A ticket with its status: what [`WaitingRoom::status`] answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueState {
    /// The ticket.
    pub ticket: QueueTicket,
    /// Where it stands now.
    #[serde(flatten)]
    pub status: QueueStatus,
}

/// What one [`WaitingRoom::admit`] step did, and the room after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AdmitStep {
    /// Visitors admitted by this step.
    pub admitted: u32,
    /// Passes this step found lapsed.
    pub lapsed: u32,
    /// The room after the step.
    pub stats: RoomStats,
}

/// A room's counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RoomStats {
    /// Visitors waiting (pre-queue included).
    pub waiting: u64,
    /// Live passes.
    pub active: u64,
    /// Visitors admitted since the room was configured.
    pub admitted_total: u64,
    /// Whether the last step found the event sold out.
    pub sold_out: bool,
    /// When the room opened (admission began), if it has.
    pub opened_at: Option<Timestamp>,
}

/// A waiting room store: queues per gated event, with the rules of the
/// [module documentation](self). Every call is atomic.
#[async_trait]
pub trait WaitingRoom: Send + Sync {
    /// Gates `event` with a room, or changes its settings (the queue and live passes stay;
    /// a new `opens_at` only matters if the room has not opened yet).
    ///
    /// Errors: `invalid_request` (see [`check_room_settings`]).
    async fn configure(&self, event: &EventId, settings: RoomSettings) -> Result<()>;

    /// The room's settings, or `None` when the event is not gated.
    async fn settings(&self, event: &EventId) -> Result<Option<RoomSettings>>;

    /// Every gated event, in id order: what the sweeper steps.
    async fn rooms(&self) -> Result<Vec<EventId>>;

    /// Queues `visitor` (or returns its place if it has one).
    ///
    /// Errors: `not_found` (no room for the event).
    async fn join(&self, event: &EventId, visitor: &HolderId) -> Result<QueueTicket>;

    /// Where a ticket stands.
    ///
    /// Errors: `not_found` (no such ticket).
    async fn status(&self, ticket: &QueueTicketId) -> Result<QueueState>;

    /// Leaves the queue, or gives back a live pass. Leaving twice, or after the pass
    /// lapsed, changes nothing.
    ///
    /// Errors: `not_found`.
    async fn leave(&self, ticket: &QueueTicketId) -> Result<()>;

    /// The admission step: lapses passes past their time, then admits the next visitors
    /// as the rate, the cap and `free_units` (what the event has free to sell now) allow,
    /// at most [`ADMIT_PER_STEP_MAX`].
    ///
    /// Errors: `not_found` (no room).
    async fn admit(&self, event: &EventId, free_units: u64) -> Result<AdmitStep>;

    /// The room's counts.
    ///
    /// Errors: `not_found` (no room).
    async fn stats(&self, event: &EventId) -> Result<RoomStats>;
}

/// Checks a room's settings: a rate or a cap (or both) within bounds, a pass lifetime and
/// seats per buyer within bounds.
pub fn check_room_settings(settings: &RoomSettings) -> Result<()> {
    if settings.admit_per_second.is_none() && settings.active_max.is_none() {
        return Err(Error::invalid(
            "admit_per_second",
            "a room needs admit_per_second, active_max or both",
        ));
    }
    if let Some(rate) = settings.admit_per_second
        && !(1..=ADMIT_PER_SECOND_MAX).contains(&rate)
    {
        return Err(Error::invalid(
            "admit_per_second",
            format!("must be 1 to {ADMIT_PER_SECOND_MAX}, got {rate}"),
        ));
    }
    if let Some(cap) = settings.active_max
        && !(1..=ACTIVE_MAX_MAX).contains(&cap)
    {
        return Err(Error::invalid(
            "active_max",
            format!("must be 1 to {ACTIVE_MAX_MAX}, got {cap}"),
        ));
    }
    if !(PASS_TTL_SECONDS_MIN..=PASS_TTL_SECONDS_MAX).contains(&settings.pass_ttl_seconds) {
        return Err(Error::invalid(
            "pass_ttl_seconds",
            format!(
                "must be {PASS_TTL_SECONDS_MIN} to {PASS_TTL_SECONDS_MAX}, got {}",
                settings.pass_ttl_seconds
            ),
        ));
    }
    if !(1..=SEATS_PER_BUYER_MAX).contains(&settings.seats_per_buyer) {
        return Err(Error::invalid(
            "seats_per_buyer",
            format!(
                "must be 1 to {SEATS_PER_BUYER_MAX}, got {}",
                settings.seats_per_buyer
            ),
        ));
    }
    Ok(())
}

/// How many visitors a step may admit, by the room's rules, and the rate credit left
/// after admitting them. Shared by every backend that computes in Rust; the SQL and Lua
/// backends implement the same arithmetic (the conformance kit checks they agree).
///
/// `credit` is in visitor-milliseconds (1,000 = one visitor): it grows by the rate per
/// millisecond elapsed, is capped at one second's worth, and pays 1,000 per admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionBudget {
    /// Visitors to admit now.
    pub admit: u64,
    /// Credit left for the next step.
    pub credit: u64,
}

impl AdmissionBudget {
    /// The budget of a step: `credit` carried from the last step, `elapsed_ms` since it,
    /// `active` live passes, `waiting` visitors, `free_units` free to sell.
    pub fn of(
        settings: &RoomSettings,
        credit: u64,
        elapsed_ms: u64,
        active: u64,
        waiting: u64,
        free_units: u64,
    ) -> Self {
        let mut admit = waiting.min(u64::from(ADMIT_PER_STEP_MAX));
        let mut credit = credit;
        if let Some(rate) = settings.admit_per_second {
            let full = u64::from(rate) * 1_000;
            credit = credit
                .saturating_add(u64::from(rate).saturating_mul(elapsed_ms))
                .min(full);
            admit = admit.min(credit / 1_000);
        }
        if let Some(cap) = settings.active_max {
            admit = admit.min(u64::from(cap).saturating_sub(active));
        }
        let servable = free_units / u64::from(settings.seats_per_buyer.max(1));
        admit = admit.min(servable.saturating_sub(active));
        if settings.admit_per_second.is_some() {
            credit -= admit * 1_000;
        }
        Self { admit, credit }
    }

    /// The credit a room starts with at its opening: one second's worth.
    pub fn opening_credit(settings: &RoomSettings) -> u64 {
        settings
            .admit_per_second
            .map_or(0, |rate| u64::from(rate) * 1_000)
    }
}

/// The estimated wait of the visitor at `position`: by the rate measured since the
/// opening, or the configured rate before anyone was admitted.
pub fn estimated_wait_seconds(
    settings: &RoomSettings,
    stats: &RoomStats,
    now: Timestamp,
    position: u64,
) -> Option<u64> {
    let measured = stats.opened_at.and_then(|opened| {
        let seconds = now.saturating_since(opened).as_secs().max(1);
        (stats.admitted_total > 0).then_some((stats.admitted_total, seconds))
    });
    let (admitted, seconds) = match measured {
        Some(rate) => rate,
        None => (u64::from(settings.admit_per_second?), 1),
    };
    // position / (admitted / seconds), rounded up.
    Some((position.saturating_mul(seconds)).div_ceil(admitted))
}

/// The pre-queue shuffle key of `visitor` under `seed`: the first 8 bytes, big-endian, of
/// SHA-256 over the seed's 8 big-endian bytes followed by the visitor id. Pre-queue
/// visitors are admitted in increasing key order (ties, which need a 64-bit collision, by
/// arrival). PostgreSQL computes the same with `sha256`.
pub fn shuffle_key(seed: u64, visitor: &HolderId) -> u64 {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(seed.to_be_bytes());
    hasher.update(visitor.as_str().as_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked() {
        let codes = |settings: RoomSettings| {
            check_room_settings(&settings).map_err(|error| match error {
                Error::InvalidRequest { field, .. } => field,
                other => panic!("{other:?}"),
            })
        };
        assert_eq!(codes(RoomSettings::default()), Err("admit_per_second"));
        assert_eq!(codes(RoomSettings::rate(0)), Err("admit_per_second"));
        assert_eq!(
            codes(RoomSettings::rate(ADMIT_PER_SECOND_MAX + 1)),
            Err("admit_per_second")
        );
        assert_eq!(codes(RoomSettings::cap(0)), Err("active_max"));
        assert_eq!(
            codes(RoomSettings::rate(5).pass_ttl_seconds(5)),
            Err("pass_ttl_seconds")
        );
        assert_eq!(
            codes(RoomSettings::rate(5).seats_per_buyer(0)),
            Err("seats_per_buyer")
        );
        assert_eq!(codes(RoomSettings::rate(5).active_max(3)), Ok(()));
        assert_eq!(codes(RoomSettings::cap(ACTIVE_MAX_MAX)), Ok(()));
    }

    #[test]
    fn the_budget_follows_rate_cap_and_inventory() {
        let rate = RoomSettings::rate(10);
        // One second's credit at the opening: 10 visitors.
        let open = AdmissionBudget::opening_credit(&rate);
        let step = AdmissionBudget::of(&rate, open, 0, 0, 100, 1_000);
        assert_eq!((step.admit, step.credit), (10, 0));
        // 250 ms later: 2.5 visitors' worth, 2 admitted, half a visitor carried.
        let step = AdmissionBudget::of(&rate, 0, 250, 10, 90, 1_000);
        assert_eq!((step.admit, step.credit), (2, 500));
        // Idle for a minute: still only one second's worth.
        let step = AdmissionBudget::of(&rate, 500, 60_000, 0, 100, 1_000);
        assert_eq!(step.admit, 10);
        // The cap and the inventory bound it; the credit not spent is kept.
        let capped = RoomSettings::rate(10).active_max(4);
        let step = AdmissionBudget::of(&capped, 10_000, 0, 1, 100, 1_000);
        assert_eq!((step.admit, step.credit), (3, 7_000));
        let step = AdmissionBudget::of(&rate, 10_000, 0, 1, 100, 7);
        assert_eq!(
            step.admit, 2,
            "7 free units serve 3 buyers of 2, 1 is shopping"
        );
        let step = AdmissionBudget::of(&rate, 10_000, 0, 0, 100, 0);
        assert_eq!(step.admit, 0);
        // Cap alone: no credit involved.
        let cap = RoomSettings::cap(50);
        let step = AdmissionBudget::of(&cap, 0, 0, 20, 100, 1_000);
        assert_eq!((step.admit, step.credit), (30, 0));
        // Never more than a step's maximum.
        let big = RoomSettings::cap(ACTIVE_MAX_MAX);
        let step = AdmissionBudget::of(&big, 0, 0, 0, 1_000_000, u64::MAX);
        assert_eq!(step.admit, u64::from(ADMIT_PER_STEP_MAX));
    }

    #[test]
    fn the_wait_is_estimated_from_the_measured_rate() {
        let settings = RoomSettings::rate(10);
        let start = Timestamp::from_millis(1_000_000);
        let before = RoomStats::default();
        assert_eq!(
            estimated_wait_seconds(&settings, &before, start, 25),
            Some(3)
        );
        let stats = RoomStats {
            admitted_total: 50,
            opened_at: Some(start),
            ..RoomStats::default()
        };
        let later = start.saturating_add(Duration::from_secs(10));
        // 5 a second measured: position 25 waits 5 s.
        assert_eq!(
            estimated_wait_seconds(&settings, &stats, later, 25),
            Some(5)
        );
        assert_eq!(
            estimated_wait_seconds(&RoomSettings::cap(5), &before, start, 3),
            None
        );
    }

    #[test]
    fn the_shuffle_key_is_keyed_by_the_seed() {
        let visitor = HolderId::new("alice").unwrap();
        assert_eq!(shuffle_key(7, &visitor), shuffle_key(7, &visitor));
        assert_ne!(shuffle_key(7, &visitor), shuffle_key(8, &visitor));
    }
}
