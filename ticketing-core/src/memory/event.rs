//! One event's state: per-seat locks, the journal (change log, pool counts, expiry queue),
//! holder accounts and idempotency records.
//!
//! Lock order, everywhere: gate → idempotency shard → sweep → waitlist → reservation →
//! tickets (in order) → holder accounts (by id) → seats (ascending index) → journal. The
//! journal is the last lock taken and the event's serialization point for its change log:
//! every change is appended while the locks of the items it changes are still held, so the
//! log's order agrees with the order in which items changed hands.
//!
//! The gate exists for events with a waitlist (see [`Gate`]); other events never touch it.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

use crate::domain::{
    Availability, Change, ChangeKind, Event, GaRequest, PoolAvailability, SeatStatus,
};
use crate::error::{Entity, Error, Result};
use crate::id::{ClientReservationId, HolderId, IdempotencyKey, PoolId, SeatId};
use crate::sync::{
    Arc, AtomicU64, Mutex, MutexGuard, Ordering, RwLock, RwLockReadGuard, RwLockWriteGuard,
};
use crate::time::Timestamp;

use super::reservation::{CommitRecord, ReservationCell, ReserveRecord};
use super::shards::{FastHasher, Shards};
use super::waitlist::Waitlist;

/// Where a seat is, as the deciding code sees it.
#[derive(Debug, Clone)]
pub(crate) enum SeatSlot {
    Free,
    /// Held by `owner` (lapsed holds are finalized before any decision reads a slot).
    Held {
        owner: Arc<ReservationCell>,
    },
    Sold,
    Blocked,
}

impl SeatSlot {
    pub(crate) fn is_free(&self) -> bool {
        matches!(self, SeatSlot::Free)
    }

    pub(crate) fn is_held_by(&self, cell: &Arc<ReservationCell>) -> bool {
        matches!(self, SeatSlot::Held { owner, .. } if Arc::ptr_eq(owner, cell))
    }
}

/// A GA pool's counters. `held` includes units of lapsed reservations not yet finalized;
/// decisions are made after finalizing them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PoolCounts {
    pub(crate) capacity: u32,
    pub(crate) held: u32,
    pub(crate) sold: u32,
    pub(crate) blocked: u32,
}

impl PoolCounts {
    pub(crate) fn used(&self) -> u32 {
        self.held + self.sold + self.blocked
    }

    pub(crate) fn free(&self) -> u32 {
        self.capacity.saturating_sub(self.used())
    }

    fn assert_fits(&self) {
        assert!(self.used() <= self.capacity, "pool over capacity: {self:?}");
    }
}

/// An entry of the expiry queue: the earliest `expires_at` first.
#[derive(Debug)]
pub(crate) struct Due {
    pub(crate) expires_at: Timestamp,
    pub(crate) serial: u64,
    pub(crate) cell: Arc<ReservationCell>,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        (self.expires_at, self.serial) == (other.expires_at, other.serial)
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.expires_at, self.serial).cmp(&(other.expires_at, other.serial))
    }
}

/// The event's log and everything decided in the same critical section.
#[derive(Debug)]
pub(crate) struct Journal {
    changes: VecDeque<Change>,
    /// Sequence number of the next change.
    next_seq: u64,
    /// The log replayed: what `availability` reports.
    seat_view: Vec<SeatStatus>,
    pub(crate) pools: Vec<PoolCounts>,
    due: BinaryHeap<Reverse<Due>>,
    due_serial: u64,
}

impl Journal {
    /// Appends a change; `changed_seats` are the new statuses it gives seats.
    pub(crate) fn append(
        &mut self,
        event: &EventState,
        at: Timestamp,
        kind: ChangeKind,
        changed_seats: impl IntoIterator<Item = (u32, SeatStatus)>,
    ) {
        for (index, status) in changed_seats {
            self.seat_view[index as usize] = status;
            event.set_free(index, status == SeatStatus::Available);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.changes.push_back(Change {
            event: event.event.id.clone(),
            seq,
            at,
            kind,
        });
        if self.changes.len() > event.change_retention {
            self.changes.pop_front();
        }
    }

    /// Queues `cell` for expiry at `expires_at` and keeps `next_due` a lower bound of the queue.
    pub(crate) fn push_due(
        &mut self,
        event: &EventState,
        cell: Arc<ReservationCell>,
        expires_at: Timestamp,
    ) {
        self.due_serial += 1;
        self.due.push(Reverse(Due {
            expires_at,
            serial: self.due_serial,
            cell,
        }));
        if expires_at.as_millis() < event.next_due.load(Ordering::Acquire) {
            event
                .next_due
                .store(expires_at.as_millis(), Ordering::Release);
        }
    }

    fn pop_due(&mut self, now: Timestamp) -> Option<Due> {
        if self
            .due
            .peek()
            .is_some_and(|Reverse(due)| due.expires_at <= now)
        {
            self.due.pop().map(|Reverse(due)| due)
        } else {
            None
        }
    }

    pub(crate) fn pool_mut(&mut self, index: usize) -> &mut PoolCounts {
        &mut self.pools[index]
    }

    /// Asserts the pool invariant after a mutation (cheap; runs in release builds too).
    pub(crate) fn assert_pools(&self) {
        for pool in &self.pools {
            pool.assert_fits();
        }
    }
}

/// Per-holder counts for the policy's limits (kept only when the event has limits).
#[derive(Debug, Default)]
pub(crate) struct HolderAccount {
    /// Active reservations: (cell, expires_at, items). Lapsed ones are ignored when counting.
    pub(crate) holds: Vec<(Arc<ReservationCell>, Timestamp, u32)>,
    /// Valid or checked-in tickets owned.
    pub(crate) tickets: u32,
    /// Waiting waitlist entries: each counts as a live reservation of its quantity.
    pub(crate) waiting_entries: u32,
    /// The quantities of the waiting entries.
    pub(crate) waiting_items: u32,
}

impl HolderAccount {
    pub(crate) fn live_reservations(&self, now: Timestamp) -> u32 {
        let holds = self
            .holds
            .iter()
            .filter(|(_, expires_at, _)| *expires_at > now)
            .count() as u32;
        holds + self.waiting_entries
    }

    pub(crate) fn items(&self, now: Timestamp) -> u32 {
        let held: u32 = self
            .holds
            .iter()
            .filter(|(_, expires_at, _)| *expires_at > now)
            .map(|(_, _, items)| *items)
            .sum();
        held + self.tickets + self.waiting_items
    }

    pub(crate) fn forget(&mut self, cell: &Arc<ReservationCell>) {
        self.holds.retain(|(held, _, _)| !Arc::ptr_eq(held, cell));
    }
}

/// The immutable layout and its indexes.
#[derive(Debug)]
pub(crate) struct Layout {
    seat_index: HashMap<SeatId, u32, FastHasher>,
    pool_index: HashMap<PoolId, usize, FastHasher>,
    /// For each seat, the seat of the same section and row numbered one higher.
    pub(crate) next_in_row: Vec<Option<u32>>,
    /// Bit `i` set when seat `i + 1` is next in seat `i`'s row: runs of adjacent seats are
    /// runs of set bits, found a word at a time.
    pub(crate) next_is_following: Box<[u64]>,
    /// Whether every row is laid out in number order, so that `next_is_following` describes
    /// every adjacency.
    pub(crate) rows_in_order: bool,
    /// What the layout could ever give one waitlist entry: all seats, and each section's.
    pub(crate) capacity_all: SeatCapacity,
    pub(crate) capacity_by_section: HashMap<String, SeatCapacity, FastHasher>,
    /// Each section's seats as a mask over the free-seat bitmap, so that best available in
    /// one section reads only that section's words and compares no strings.
    pub(crate) section_masks: HashMap<String, SeatMask, FastHasher>,
    /// The same for each category.
    pub(crate) category_masks: HashMap<String, SeatMask, FastHasher>,
}

/// A set of seats as bits over the words of the free-seat bitmap that hold any of them
/// (`first_word..first_word + words.len()`); every other word is all zeros.
#[derive(Debug, Default)]
pub(crate) struct SeatMask {
    first_word: usize,
    words: Vec<u64>,
}

impl SeatMask {
    /// Masks of the seats grouped by `key`, in one pass over the layout.
    fn group_by<'a>(seats: impl Iterator<Item = &'a str>) -> HashMap<String, SeatMask, FastHasher> {
        let mut masks: HashMap<String, SeatMask, FastHasher> = HashMap::default();
        for (index, key) in seats.enumerate() {
            let word = index / 64;
            let mask = masks.entry(key.to_owned()).or_insert_with(|| SeatMask {
                first_word: word,
                words: Vec::new(),
            });
            // Seats come in layout order, so a group's words only ever grow at the end.
            let at = word - mask.first_word;
            if mask.words.len() <= at {
                mask.words.resize(at + 1, 0);
            }
            mask.words[at] |= 1 << (index % 64);
        }
        masks
    }

    /// Word `word` of the mask.
    pub(crate) fn word(&self, word: usize) -> u64 {
        word.checked_sub(self.first_word)
            .and_then(|at| self.words.get(at))
            .copied()
            .unwrap_or(0)
    }

    /// The words outside which the mask is all zeros.
    pub(crate) fn words(&self) -> std::ops::Range<usize> {
        self.first_word..self.first_word + self.words.len()
    }
}

/// How many seats a part of the layout has, and its longest run of adjacent seats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SeatCapacity {
    pub(crate) seats: u32,
    pub(crate) run_max: u32,
}

impl SeatCapacity {
    fn add_run(&mut self, length: u32) {
        self.seats += length;
        self.run_max = self.run_max.max(length);
    }
}

/// Seat capacities of the whole layout and of each section: runs follow `next_in_row`
/// from each seat that no seat precedes (a row's numbers are distinct, so runs are chains).
fn seat_capacities(
    event: &Event,
    next_in_row: &[Option<u32>],
) -> (SeatCapacity, HashMap<String, SeatCapacity, FastHasher>) {
    let mut preceded = vec![false; next_in_row.len()];
    for next in next_in_row.iter().flatten() {
        preceded[*next as usize] = true;
    }
    let mut all = SeatCapacity::default();
    let mut by_section: HashMap<String, SeatCapacity, FastHasher> = HashMap::default();
    for start in (0..next_in_row.len()).filter(|index| !preceded[*index]) {
        let mut length = 1;
        let mut at = start;
        while let Some(next) = next_in_row[at] {
            length += 1;
            at = next as usize;
        }
        all.add_run(length);
        by_section
            .entry(event.seats[start].section.clone())
            .or_default()
            .add_run(length);
    }
    (all, by_section)
}

/// An event's gate: how an operation on an event with a waitlist excludes the others.
///
/// With no entry waiting, operations share the gate (and no entry can join while they run:
/// joining takes it exclusively), so they run as on any event. With entries waiting, every
/// operation takes it exclusively: it finalizes lapsed reservations, does its work, and
/// offers what it freed to the waitlist before anyone else runs, so freed inventory is
/// never free for others while a waiting entry could have it. Events without a waitlist
/// are [`Gate::Open`] and never touch the lock.
#[derive(Debug)]
pub(crate) enum Gate<'a> {
    Open,
    #[allow(dead_code)] // held for its guard
    Shared(RwLockReadGuard<'a, ()>),
    #[allow(dead_code)] // held for its guard
    Exclusive(RwLockWriteGuard<'a, ()>),
}

impl Gate<'_> {
    /// Whether the holder runs alone and must serve the waitlist after freeing items.
    pub(crate) fn serves(&self) -> bool {
        matches!(self, Gate::Exclusive(_))
    }

    /// Whether the event has a waitlist (the gate is held, shared or exclusive).
    pub(crate) fn is_gated(&self) -> bool {
        !matches!(self, Gate::Open)
    }
}

/// Everything about one event.
#[derive(Debug)]
pub(crate) struct EventState {
    pub(crate) event: Event,
    pub(crate) layout: Layout,
    pub(crate) seats: Box<[Mutex<SeatSlot>]>,
    pub(crate) journal: Mutex<Journal>,
    /// Held while finalizing lapsed reservations, so a decision made after `sweep` returns
    /// never meets a lapsed hold that another thread is still finalizing.
    sweep_lock: Mutex<()>,
    /// A lower bound of the expiry queue's earliest entry (millis); `u64::MAX` when empty.
    next_due: AtomicU64,
    /// The free-seat bitmap, in layout order (see [`EventState::free_word`]).
    free_bits: Box<[AtomicU64]>,
    pub(crate) holders: Option<Shards<HolderId, HolderAccount>>,
    pub(crate) reserve_keys: Shards<ClientReservationId, ReserveRecord>,
    pub(crate) commit_keys: Shards<IdempotencyKey, CommitRecord>,
    change_retention: usize,
    /// See [`Gate`]; used only when the policy has a waitlist.
    gate: RwLock<()>,
    /// Entries waiting on the waitlist; changed only under the exclusive gate.
    pub(crate) waiting: AtomicU64,
    pub(crate) waitlist: Mutex<Waitlist>,
}

impl EventState {
    pub(crate) fn new(event: Event, change_retention: usize) -> Self {
        let seat_index: HashMap<SeatId, u32, FastHasher> = event
            .seats
            .iter()
            .enumerate()
            .map(|(index, seat)| (seat.id.clone(), index as u32))
            .collect();
        let pool_index = event
            .pools
            .iter()
            .enumerate()
            .map(|(index, pool)| (pool.id.clone(), index))
            .collect();
        let places: HashMap<(&str, &str, u32), u32> = event
            .seats
            .iter()
            .enumerate()
            .map(|(index, seat)| {
                (
                    (seat.section.as_str(), seat.row.as_str(), seat.number),
                    index as u32,
                )
            })
            .collect();
        let next_in_row: Vec<Option<u32>> = event
            .seats
            .iter()
            .map(|seat| {
                let next = seat.number.checked_add(1)?;
                places
                    .get(&(seat.section.as_str(), seat.row.as_str(), next))
                    .copied()
            })
            .collect();
        let mut next_is_following = vec![0u64; event.seats.len().div_ceil(64)];
        let mut rows_in_order = true;
        for (index, next) in next_in_row.iter().enumerate() {
            match next {
                Some(next) if *next as usize == index + 1 => {
                    next_is_following[index / 64] |= 1 << (index % 64);
                }
                Some(_) => rows_in_order = false,
                None => {}
            }
        }
        let pools = event
            .pools
            .iter()
            .map(|pool| PoolCounts {
                capacity: pool.capacity,
                ..PoolCounts::default()
            })
            .collect();
        let (capacity_all, capacity_by_section) = seat_capacities(&event, &next_in_row);
        let section_masks =
            SeatMask::group_by(event.seats.iter().map(|seat| seat.section.as_str()));
        let category_masks =
            SeatMask::group_by(event.seats.iter().map(|seat| seat.category.as_str()));
        let has_limits = event.policy.holder_seats_max.is_some()
            || event.policy.holder_reservations_max.is_some();
        let journal = Journal {
            changes: VecDeque::new(),
            next_seq: 1,
            seat_view: vec![SeatStatus::Available; event.seats.len()],
            pools,
            due: BinaryHeap::new(),
            due_serial: 0,
        };
        let state = Self {
            seats: event
                .seats
                .iter()
                .map(|_| Mutex::new(SeatSlot::Free))
                .collect(),
            layout: Layout {
                seat_index,
                pool_index,
                next_in_row,
                next_is_following: next_is_following.into_boxed_slice(),
                rows_in_order,
                capacity_all,
                capacity_by_section,
                section_masks,
                category_masks,
            },
            journal: Mutex::new(journal),
            sweep_lock: Mutex::new(()),
            next_due: AtomicU64::new(u64::MAX),
            free_bits: (0..event.seats.len().div_ceil(64))
                .map(|word| {
                    let seats_in_word = (event.seats.len() - word * 64).min(64);
                    AtomicU64::new(u64::MAX >> (64 - seats_in_word))
                })
                .collect(),
            holders: has_limits.then(Shards::new),
            reserve_keys: Shards::new(),
            commit_keys: Shards::new(),
            change_retention: change_retention.max(1),
            gate: RwLock::new(()),
            waiting: AtomicU64::new(0),
            waitlist: Mutex::new(Waitlist::default()),
            event,
        };
        let created_at = state.event.created_at;
        state
            .journal
            .lock()
            .append(&state, created_at, ChangeKind::EventCreated, []);
        state
    }

    pub(crate) fn seat_index(&self, seat: &SeatId) -> Result<u32> {
        self.layout
            .seat_index
            .get(seat)
            .copied()
            .ok_or_else(|| Error::not_found(Entity::Seat, seat))
    }

    pub(crate) fn pool_index(&self, pool: &PoolId) -> Result<usize> {
        self.layout
            .pool_index
            .get(pool)
            .copied()
            .ok_or_else(|| Error::not_found(Entity::Pool, pool))
    }

    pub(crate) fn seat_id(&self, index: u32) -> SeatId {
        self.event.seats[index as usize].id.clone()
    }

    pub(crate) fn pool_id(&self, index: usize) -> PoolId {
        self.event.pools[index].id.clone()
    }

    pub(crate) fn seat_ids(&self, indices: &[u32]) -> Vec<SeatId> {
        indices.iter().map(|index| self.seat_id(*index)).collect()
    }

    pub(crate) fn ga_requests(&self, ga: &[(usize, u32)]) -> Vec<GaRequest> {
        ga.iter()
            .map(|(pool, quantity)| GaRequest {
                pool: self.pool_id(*pool),
                quantity: *quantity,
            })
            .collect()
    }

    /// Locks seats in ascending index order (the global order, so no deadlock).
    /// `indices` must be sorted and distinct.
    pub(crate) fn lock_seats(&self, indices: &[u32]) -> Vec<MutexGuard<'_, SeatSlot>> {
        debug_assert!(indices.windows(2).all(|pair| pair[0] < pair[1]));
        indices
            .iter()
            .map(|index| self.seats[*index as usize].lock())
            .collect()
    }

    /// The holder account shard for `holder`, when the event has limits.
    pub(crate) fn holder_shard(
        &self,
        holder: &HolderId,
    ) -> Option<MutexGuard<'_, super::shards::Shard<HolderId, HolderAccount>>> {
        self.holders.as_ref().map(|holders| holders.lock(holder))
    }

    // ---- the gate ------------------------------------------------------------------

    /// Enters the event for an operation (see [`Gate`]): open without a waitlist, shared
    /// while nobody waits, exclusive otherwise. Taken once per operation, before any other
    /// lock of the event.
    pub(crate) fn gate(&self) -> Gate<'_> {
        if !self.event.policy.waitlist {
            return Gate::Open;
        }
        let shared = self.gate.read();
        if self.waiting.load(Ordering::Acquire) == 0 {
            return Gate::Shared(shared);
        }
        drop(shared);
        Gate::Exclusive(self.gate.write())
    }

    /// The gate, shared whatever waits: for reads. Without a waitlist, [`Gate::Open`].
    pub(crate) fn gate_read(&self) -> Gate<'_> {
        if !self.event.policy.waitlist {
            return Gate::Open;
        }
        Gate::Shared(self.gate.read())
    }

    /// The gate, exclusively (joining and leaving change who waits). Without a waitlist,
    /// [`Gate::Open`].
    pub(crate) fn gate_exclusive(&self) -> Gate<'_> {
        if !self.event.policy.waitlist {
            return Gate::Open;
        }
        Gate::Exclusive(self.gate.write())
    }

    // ---- free-seat bitmap --------------------------------------------------------

    /// Bit `index % 64` of word `index / 64` of the free-seat bitmap: set while the seat is
    /// available. Best-available scans read it without locks and re-check their picks under
    /// the seat locks.
    pub(crate) fn free_word(&self, word: usize) -> u64 {
        self.free_bits
            .get(word)
            .map_or(0, |bits| bits.load(Ordering::Acquire))
    }

    /// How many seats are available (a count of the free-seat bitmap).
    pub(crate) fn free_seat_count(&self) -> u32 {
        (0..self.free_words())
            .map(|word| self.free_word(word).count_ones())
            .sum()
    }

    /// How many words the free-seat bitmap has.
    pub(crate) fn free_words(&self) -> usize {
        self.free_bits.len()
    }

    /// Called by [`Journal::append`] only, under the journal lock: the one writer.
    fn set_free(&self, index: u32, free: bool) {
        let word = &self.free_bits[index as usize / 64];
        let bit = 1u64 << (index % 64);
        let bits = word.load(Ordering::Acquire);
        word.store(
            if free { bits | bit } else { bits & !bit },
            Ordering::Release,
        );
    }

    // ---- expiry --------------------------------------------------------------------

    /// Whether some reservation of this event may have lapsed by `now`.
    pub(crate) fn may_have_due(&self, now: Timestamp) -> bool {
        self.next_due.load(Ordering::Acquire) <= now.as_millis()
    }

    /// Finalizes up to `limit` reservations lapsed by `now`; returns how many it expired.
    /// Afterwards [`EventState::may_have_due`] is false unless the limit left some lapsed.
    pub(crate) fn sweep(&self, now: Timestamp, limit: usize) -> usize {
        let _sweeping = self.sweep_lock.lock();
        let mut expired = 0;
        loop {
            let Some(due) = self.journal.lock().pop_due(now) else {
                break;
            };
            if expired >= limit {
                // Keep a lapsed reservation queued for the next sweep; an entry left behind
                // by an extension or a finished reservation just goes.
                if super::reservation::is_lapsed(&due.cell, now) {
                    self.journal.lock().push_due(self, due.cell, due.expires_at);
                    break;
                }
                continue;
            }
            if super::reservation::expire_if_lapsed(&due.cell, self, now) {
                expired += 1;
            }
        }
        let journal = self.journal.lock();
        let earliest = journal
            .due
            .peek()
            .map_or(u64::MAX, |Reverse(due)| due.expires_at.as_millis());
        self.next_due.store(earliest, Ordering::Release);
        drop(journal);
        expired
    }

    /// Finalizes everything lapsed by `now` if anything may have.
    pub(crate) fn sweep_if_due(&self, now: Timestamp) {
        if self.may_have_due(now) {
            self.sweep(now, usize::MAX);
        }
    }

    // ---- reads ---------------------------------------------------------------------

    pub(crate) fn availability(&self) -> Availability {
        let journal = self.journal.lock();
        let pools = journal
            .pools
            .iter()
            .zip(self.event.pools.iter())
            .map(|(counts, spec)| PoolAvailability {
                pool: spec.id.clone(),
                capacity: counts.capacity,
                held: counts.held,
                sold: counts.sold,
                blocked: counts.blocked,
                available: counts.free(),
            })
            .collect();
        Availability {
            event: self.event.id.clone(),
            seq: journal.next_seq - 1,
            seats: journal.seat_view.clone(),
            pools,
        }
    }

    pub(crate) fn changes(&self, after: u64, limit: usize) -> Result<Vec<Change>> {
        let journal = self.journal.lock();
        let first_retained = journal
            .changes
            .front()
            .map_or(journal.next_seq, |change| change.seq);
        if after + 1 < first_retained {
            return Err(Error::ChangesPruned { first_retained });
        }
        let skip = usize::try_from(after + 1 - first_retained).unwrap_or(usize::MAX);
        Ok(journal
            .changes
            .iter()
            .skip(skip)
            .take(limit)
            .cloned()
            .collect())
    }

    /// Forgets idempotency records made before `cutoff`.
    pub(crate) fn prune_idempotency(&self, cutoff: Timestamp) {
        self.reserve_keys
            .for_each_shard(|shard| shard.retain(|_, record| record.made_at >= cutoff));
        self.commit_keys
            .for_each_shard(|shard| shard.retain(|_, record| record.made_at >= cutoff));
    }
}
