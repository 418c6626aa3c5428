//! The audit: after the sale, re-read the seat map, every reservation the buyers made and
//! every order, and the whole change log; then check what must hold.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use serde::Serialize;
use ticketing_core::testkit::invariants::{check_counts, replay};
use ticketing_core::{
    Availability, Event, Order, Reservation, ReservationStatus, SeatId, SeatStatus, TicketItem,
    TicketStatus, Timestamp,
};

use super::buyer::{Entry, Sale, Seen};
use super::stats::read;
use super::target::Failure;

/// How long after the last hold let lapse the audit sweeps (clock granularity, skew).
const SWEEP_MARGIN: Duration = Duration::from_millis(1_500);
/// How far past its expiry an active reservation may be read (clock skew between us and
/// the store's clock).
const EXPIRY_SKEW: Duration = Duration::from_secs(2);
/// Problems described in the summary at most (all are counted).
const PROBLEMS_MAX: usize = 20;

/// Reservations by their final status, as the store tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct StatusCounts {
    /// Every reservation the buyers made.
    pub reserved: u64,
    /// Committed.
    pub committed: u64,
    /// Cancelled.
    pub cancelled: u64,
    /// Expired.
    pub expired: u64,
    /// Still active (their hold has not lapsed).
    pub active: u64,
}

impl StatusCounts {
    /// Whether `reserved = committed + cancelled + expired + active`.
    pub fn add_up(&self) -> bool {
        self.committed + self.cancelled + self.expired + self.active == self.reserved
    }
}

/// What the audit found. It passes when every count of trouble is 0 and the log replays.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Audit {
    /// Everything holds.
    pub passed: bool,
    /// Seats on two valid tickets, or held by two live reservations, or both sold and held.
    pub oversold_seats: u64,
    /// GA places beyond a pool's capacity (held + sold + blocked over capacity).
    pub oversold_ga: u64,
    /// Seats and GA places held on the seat map with no live reservation behind them.
    pub orphaned_holds: u64,
    /// Reservations still active past their expiry after the final sweep.
    pub active_past_expiry: u64,
    /// Orders whose tickets do not match their reservation or the seat map (a sold seat
    /// with no ticket, a ticket on a seat that is not sold, pool counts that differ).
    pub orders_not_matching: u64,
    /// Reservations whose final status contradicts what their buyer was told (committed
    /// but not committed, a refused late commit that went through...).
    pub disagreements: u64,
    /// Late commits the store accepted after the hold lapsed (expiry must be final).
    pub late_commits_accepted: u64,
    /// Reads that failed (each leaves something unchecked).
    pub read_failures: u64,
    /// The change log replays, change by change, to the final seat map.
    pub log_replays: bool,
    /// Changes replayed.
    pub log_changes: u64,
    /// Reservations finalized by the closing sweep.
    pub swept: u64,
    /// Reservations by final status.
    pub reservations: StatusCounts,
    /// The first problems found, described.
    pub problems: Vec<String>,
}

impl Audit {
    fn problem(&mut self, text: String) {
        if self.problems.len() < PROBLEMS_MAX {
            self.problems.push(text);
        }
    }

    fn conclude(&mut self) {
        self.passed = self.oversold_seats == 0
            && self.oversold_ga == 0
            && self.orphaned_holds == 0
            && self.active_past_expiry == 0
            && self.orders_not_matching == 0
            && self.disagreements == 0
            && self.late_commits_accepted == 0
            && self.read_failures == 0
            && self.log_replays
            && self.reservations.add_up();
    }
}

/// A reservation re-read, with its order when committed.
struct Read {
    entry: Entry,
    reservation: Reservation,
    order: Option<Order>,
}

fn now() -> Timestamp {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::from_millis(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

/// Audits the sale once it is over: waits for the holds let lapse, sweeps, re-reads.
pub(crate) async fn audit(sale: &Sale, event: &Event, ledger: Vec<Entry>) -> Audit {
    let mut audit = Audit {
        late_commits_accepted: read(&sale.stats.counters.late_commits_accepted),
        ..Audit::default()
    };
    if let Some(last) = sale.last_lapse() {
        tokio::time::sleep_until((last + SWEEP_MARGIN).into()).await;
    }
    match sale.target.sweep().await {
        Ok(swept) => audit.swept = swept,
        Err(failure) => {
            audit.read_failures += 1;
            audit.problem(format!("the closing sweep failed: {failure}"));
        }
    }
    let reads = read_all(sale, ledger, &mut audit).await;
    let snapshot = match sale.target.availability(&event.id).await {
        Ok(snapshot) => snapshot,
        Err(failure) => {
            audit.read_failures += 1;
            audit.problem(format!("reading the seat map failed: {failure}"));
            audit.conclude();
            return audit;
        }
    };
    compare(event, &snapshot, &reads, &mut audit);
    check_log(sale, event, &snapshot, &mut audit).await;
    audit.conclude();
    audit
}

/// Re-reads every reservation and the order of each committed one.
async fn read_all(sale: &Sale, ledger: Vec<Entry>, audit: &mut Audit) -> Vec<Read> {
    let target = &sale.target;
    let results: Vec<Result<Read, String>> = futures_util::stream::iter(ledger)
        .map(|entry| async move {
            let reservation = target
                .reservation(&entry.id)
                .await
                .map_err(|failure| format!("reading reservation {}: {failure}", entry.id))?;
            let order = match &reservation.order {
                Some(order) if reservation.status == ReservationStatus::Committed => Some(
                    target
                        .order(order)
                        .await
                        .map_err(|failure: Failure| format!("reading order {order}: {failure}"))?,
                ),
                _ => None,
            };
            Ok(Read {
                entry,
                reservation,
                order,
            })
        })
        .buffer_unordered(sale.config.concurrency)
        .collect()
        .await;
    let mut reads = Vec::with_capacity(results.len());
    for result in results {
        match result {
            Ok(read) => reads.push(read),
            Err(problem) => {
                audit.read_failures += 1;
                audit.problem(problem);
            }
        }
    }
    reads
}

/// What the re-read reservations and orders claim.
#[derive(Default)]
struct Claims<'a> {
    held: HashMap<&'a SeatId, usize>,
    held_ga: u64,
    sold: HashMap<&'a SeatId, usize>,
    sold_ga: u64,
}

/// Tallies statuses and claims, and checks each reservation against its buyer's account
/// and its order.
fn claims<'a>(reads: &'a [Read], audit: &mut Audit) -> Claims<'a> {
    let mut claims = Claims::default();
    let deadline = now();
    for read in reads {
        let reservation = &read.reservation;
        let counts = &mut audit.reservations;
        counts.reserved += 1;
        match reservation.status {
            ReservationStatus::Active => counts.active += 1,
            ReservationStatus::Committed => counts.committed += 1,
            ReservationStatus::Cancelled => counts.cancelled += 1,
            ReservationStatus::Expired => counts.expired += 1,
        }
        agree(read, audit);
        if reservation.status == ReservationStatus::Active {
            if reservation.expires_at.saturating_add(EXPIRY_SKEW) < deadline {
                audit.active_past_expiry += 1;
                audit.problem(format!(
                    "reservation {} is active, its hold lapsed at {}",
                    reservation.id, reservation.expires_at
                ));
            }
            for seat in &reservation.seats {
                *claims.held.entry(seat).or_default() += 1;
            }
            claims.held_ga += reservation
                .ga
                .iter()
                .map(|ga| u64::from(ga.quantity))
                .sum::<u64>();
        }
        if let Some(order) = &read.order {
            check_order(reservation, order, audit);
            for ticket in &order.tickets {
                if ticket.status == TicketStatus::Refunded {
                    continue;
                }
                match &ticket.item {
                    TicketItem::Seat(seat) => *claims.sold.entry(seat).or_default() += 1,
                    TicketItem::Pool(_) => claims.sold_ga += 1,
                }
            }
        }
    }
    claims
}

/// The buyer's account against the store's record.
fn agree(read: &Read, audit: &mut Audit) {
    let status = read.reservation.status;
    let agrees = match read.entry.seen {
        Seen::Committed => {
            status == ReservationStatus::Committed && read.reservation.order == read.entry.order
        }
        Seen::Cancelled => status == ReservationStatus::Cancelled,
        Seen::Expired => status == ReservationStatus::Expired,
        Seen::Unknown => true,
    };
    if !agrees {
        audit.disagreements += 1;
        audit.problem(format!(
            "reservation {}: its buyer saw {:?}, the store says {status}",
            read.reservation.id, read.entry.seen
        ));
    }
}

/// An order's tickets are its reservation's items, one each.
fn check_order(reservation: &Reservation, order: &Order, audit: &mut Audit) {
    let mut seats: Vec<&SeatId> = order
        .tickets
        .iter()
        .filter_map(|ticket| match &ticket.item {
            TicketItem::Seat(seat) => Some(seat),
            TicketItem::Pool(_) => None,
        })
        .collect();
    let mut held: Vec<&SeatId> = reservation.seats.iter().collect();
    seats.sort();
    held.sort();
    let units = order.tickets.len() - seats.len();
    let held_units: u32 = reservation.ga.iter().map(|ga| ga.quantity).sum();
    if order.reservation != reservation.id || seats != held || units != held_units as usize {
        audit.orders_not_matching += 1;
        audit.problem(format!(
            "order {} does not match reservation {}: tickets for {seats:?} and {units} places, held {held:?} and {held_units}",
            order.id, reservation.id
        ));
    }
}

/// The seat map against the claims of every reservation and order.
fn compare(event: &Event, snapshot: &Availability, reads: &[Read], audit: &mut Audit) {
    let claims = claims(reads, audit);
    for (seat, status) in event.seats.iter().zip(&snapshot.seats) {
        let held = claims.held.get(&seat.id).copied().unwrap_or(0);
        let sold = claims.sold.get(&seat.id).copied().unwrap_or(0);
        if held + sold > 1 {
            audit.oversold_seats += 1;
            audit.problem(format!(
                "seat {} is claimed {held} times by live holds and {sold} times by valid tickets",
                seat.id
            ));
            continue;
        }
        let fits = match status {
            SeatStatus::Held => held == 1,
            SeatStatus::Sold => sold == 1,
            SeatStatus::Available | SeatStatus::Blocked => held + sold == 0,
        };
        if fits {
            continue;
        }
        if *status == SeatStatus::Held {
            audit.orphaned_holds += 1;
            audit.problem(format!("seat {} is held by no live reservation", seat.id));
        } else {
            audit.orders_not_matching += 1;
            audit.problem(format!(
                "seat {} is {status:?} on the seat map; held {held}, on {sold} valid tickets",
                seat.id
            ));
        }
    }
    compare_pools(snapshot, &claims, audit);
}

fn compare_pools(snapshot: &Availability, claims: &Claims<'_>, audit: &mut Audit) {
    let (mut held, mut sold) = (0_u64, 0_u64);
    for pool in &snapshot.pools {
        let used = u64::from(pool.held) + u64::from(pool.sold) + u64::from(pool.blocked);
        if used > u64::from(pool.capacity) {
            audit.oversold_ga += used - u64::from(pool.capacity);
            audit.problem(format!(
                "pool {}: {used} places used of {}",
                pool.pool, pool.capacity
            ));
        }
        held += u64::from(pool.held);
        sold += u64::from(pool.sold);
    }
    if held > claims.held_ga {
        audit.orphaned_holds += held - claims.held_ga;
        audit.problem(format!(
            "{} GA places are held by no live reservation",
            held - claims.held_ga
        ));
    } else if held < claims.held_ga {
        audit.orders_not_matching += 1;
        audit.problem(format!(
            "live reservations hold {} GA places, the pools {held}",
            claims.held_ga
        ));
    }
    if sold != claims.sold_ga {
        audit.orders_not_matching += 1;
        audit.problem(format!(
            "valid tickets cover {} GA places, the pools sold {sold}",
            claims.sold_ga
        ));
    }
}

/// Replays the whole change log with the core's strict replay and compares its end state
/// with the seat map.
async fn check_log(sale: &Sale, event: &Event, snapshot: &Availability, audit: &mut Audit) {
    if let Err(why) = check_counts(snapshot) {
        audit.problem(format!("the seat map's counts: {why}"));
        return;
    }
    let started = Instant::now();
    let changes = match sale.target.changes_through(&event.id, snapshot.seq).await {
        Ok(changes) => changes,
        Err(failure) => {
            audit.read_failures += 1;
            audit.problem(format!("reading the change log failed: {failure}"));
            return;
        }
    };
    audit.log_changes = changes.len() as u64;
    match replay(event, &changes) {
        Ok(replayed) if replayed == *snapshot => audit.log_replays = true,
        Ok(replayed) => audit.problem(format!(
            "replaying {} changes gives another state than the seat map at seq {} (seq {})",
            changes.len(),
            snapshot.seq,
            replayed.seq
        )),
        Err(why) => audit.problem(format!("the change log does not replay: {why}")),
    }
    tracing::debug!(took = ?started.elapsed(), "log replayed");
}
