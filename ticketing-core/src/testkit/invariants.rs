//! The invariants, checked by replaying an event's change log.
//!
//! The replay is strict: it rejects any change that the state before it does not allow — a
//! seat reserved while held or sold (two live claims), a release of items the reservation
//! does not hold, a pool going over capacity, a sequence gap. Its end state must equal the
//! store's own snapshot at the same sequence number. So the change log, which every
//! backend writes in the same step as the state change, is a witness that no seat was ever
//! in two live claims.
//!
//! The replay also follows the waitlist (`WaitlistJoined`, `WaitlistLeft`, `OfferMade`) and
//! checks its promise: no change takes free inventory (a reservation, a late commit, a
//! block, a pool shrunk or blocked) while a waiting entry could be satisfied by it; every
//! offer goes to the first waiting entry that free inventory satisfies, in full and in its
//! holder's name; and, at the snapshot, no waiting entry is left satisfiable.

use std::collections::BTreeMap;

use crate::{
    Availability, Change, ChangeKind, Event, EventId, GaRequest, HolderId, InventoryStore,
    PoolAvailability, PoolId, RefundTo, ReservationId, SeatId, SeatStatus, WaitlistEntryId,
};

/// How many changes one read fetches while replaying.
const PAGE: usize = 1_000;

#[derive(Debug, Clone, PartialEq, Eq)]
enum SeatState {
    Available,
    Held(ReservationId),
    Sold,
    Blocked,
}

#[derive(Debug, Clone, Default)]
struct PoolState {
    capacity: u32,
    held: u32,
    sold: u32,
    blocked: u32,
}

impl PoolState {
    fn used(&self) -> u64 {
        u64::from(self.held) + u64::from(self.sold) + u64::from(self.blocked)
    }

    fn available(&self) -> u64 {
        u64::from(self.capacity).saturating_sub(self.used())
    }
}

/// What a live reservation holds, as the log told it.
#[derive(Debug, Clone)]
struct Held {
    seats: Vec<SeatId>,
    ga: Vec<GaRequest>,
}

/// A waiting entry, as the log told it.
#[derive(Debug, Clone)]
struct Waiting {
    entry: WaitlistEntryId,
    holder: HolderId,
    quantity: u32,
    adjacent: bool,
    section: Option<String>,
    pool: Option<PoolId>,
}

struct Replay<'a> {
    event: &'a Event,
    seat_index: BTreeMap<&'a SeatId, usize>,
    /// (section, row, number) → seat index, for adjacency.
    places: BTreeMap<(&'a str, &'a str, u32), usize>,
    seats: Vec<SeatState>,
    pools: BTreeMap<PoolId, PoolState>,
    live: BTreeMap<ReservationId, Held>,
    /// Waiting entries in join order.
    waiting: Vec<Waiting>,
    /// Every entry that ever joined.
    joined: std::collections::BTreeSet<WaitlistEntryId>,
}

type Outcome<T = ()> = std::result::Result<T, String>;

impl<'a> Replay<'a> {
    fn new(event: &'a Event) -> Self {
        Self {
            event,
            seat_index: event
                .seats
                .iter()
                .enumerate()
                .map(|(index, seat)| (&seat.id, index))
                .collect(),
            places: event
                .seats
                .iter()
                .enumerate()
                .map(|(index, seat)| {
                    (
                        (seat.section.as_str(), seat.row.as_str(), seat.number),
                        index,
                    )
                })
                .collect(),
            seats: vec![SeatState::Available; event.seats.len()],
            pools: event
                .pools
                .iter()
                .map(|pool| {
                    let state = PoolState {
                        capacity: pool.capacity,
                        ..PoolState::default()
                    };
                    (pool.id.clone(), state)
                })
                .collect(),
            live: BTreeMap::new(),
            waiting: Vec::new(),
            joined: std::collections::BTreeSet::new(),
        }
    }

    /// Whether free inventory satisfies `entry` in full right now.
    fn satisfiable(&self, entry: &Waiting) -> bool {
        if let Some(pool) = &entry.pool {
            return self
                .pools
                .get(pool)
                .is_some_and(|state| state.available() >= u64::from(entry.quantity));
        }
        let free = |index: usize| {
            self.seats[index] == SeatState::Available
                && entry
                    .section
                    .as_ref()
                    .is_none_or(|section| &self.event.seats[index].section == section)
        };
        if !entry.adjacent {
            let count = (0..self.seats.len()).filter(|index| free(*index)).count();
            return count >= entry.quantity as usize;
        }
        (0..self.seats.len())
            .filter(|index| free(*index))
            .any(|start| {
                let seat = &self.event.seats[start];
                (0..entry.quantity).all(|offset| {
                    seat.number.checked_add(offset).is_some_and(|number| {
                        self.places
                            .get(&(seat.section.as_str(), seat.row.as_str(), number))
                            .is_some_and(|index| free(*index))
                    })
                })
            })
    }

    /// The first waiting entry, in join order, that free inventory satisfies.
    fn first_satisfiable(&self) -> Option<&Waiting> {
        self.waiting.iter().find(|entry| self.satisfiable(entry))
    }

    /// Fails if a waiting entry could have what a change is about to take.
    fn nothing_waits_for_free(&self) -> Outcome {
        match self.first_satisfiable() {
            Some(entry) => Err(format!(
                "free inventory taken while entry {} (waiting) could have had it",
                entry.entry
            )),
            None => Ok(()),
        }
    }

    /// Checks that an offer is the first satisfiable entry's, in full and in its name.
    fn check_offer(
        &self,
        entry: &WaitlistEntryId,
        holder: &HolderId,
        seats: &[SeatId],
        ga: &[GaRequest],
    ) -> Outcome<usize> {
        let position = self
            .waiting
            .iter()
            .position(|waiting| &waiting.entry == entry)
            .ok_or_else(|| format!("offer to entry {entry}, which is not waiting"))?;
        let waiting = &self.waiting[position];
        match self.first_satisfiable() {
            Some(first) if &first.entry == entry => {}
            first => {
                return Err(format!(
                    "offer to entry {entry}, but the first satisfiable entry is {:?}",
                    first.map(|first| &first.entry)
                ));
            }
        }
        if &waiting.holder != holder {
            return Err(format!("offer to {holder} for {}'s entry", waiting.holder));
        }
        let whole = match &waiting.pool {
            Some(pool) => {
                seats.is_empty()
                    && ga.len() == 1
                    && &ga[0].pool == pool
                    && ga[0].quantity == waiting.quantity
            }
            None => {
                ga.is_empty()
                    && seats.len() == waiting.quantity as usize
                    && self.seats_fit(waiting, seats)
            }
        };
        if !whole {
            return Err(format!(
                "offer of {seats:?} and {ga:?} does not fit entry {entry} ({waiting:?})"
            ));
        }
        Ok(position)
    }

    /// Whether `seats` are in the entry's section and, if it asks, adjacent in one row.
    fn seats_fit(&self, waiting: &Waiting, seats: &[SeatId]) -> bool {
        let Some(layout) = seats
            .iter()
            .map(|seat| {
                self.seat_index
                    .get(seat)
                    .map(|index| &self.event.seats[*index])
            })
            .collect::<Option<Vec<_>>>()
        else {
            return false;
        };
        let in_section = layout.iter().all(|seat| {
            waiting
                .section
                .as_ref()
                .is_none_or(|section| &seat.section == section)
        });
        if !waiting.adjacent {
            return in_section;
        }
        let mut numbers: Vec<u32> = layout.iter().map(|seat| seat.number).collect();
        numbers.sort_unstable();
        in_section
            && layout
                .iter()
                .all(|seat| seat.section == layout[0].section && seat.row == layout[0].row)
            && numbers.windows(2).all(|pair| pair[0] + 1 == pair[1])
    }

    fn seat(&mut self, seat: &SeatId) -> Outcome<&mut SeatState> {
        let index = *self
            .seat_index
            .get(seat)
            .ok_or_else(|| format!("unknown seat {seat}"))?;
        Ok(&mut self.seats[index])
    }

    fn pool(&mut self, pool: &PoolId) -> Outcome<&mut PoolState> {
        self.pools
            .get_mut(pool)
            .ok_or_else(|| format!("unknown pool {pool}"))
    }

    /// Moves a seat from `from` to `to`, or says why it cannot.
    fn move_seat(&mut self, seat: &SeatId, from: &SeatState, to: SeatState) -> Outcome {
        let state = self.seat(seat)?;
        if state != from {
            return Err(format!(
                "seat {seat} is {state:?}, expected {from:?} (going to {to:?})"
            ));
        }
        *state = to;
        Ok(())
    }

    /// Takes a live reservation off the books, checking that it holds exactly what the
    /// change says it releases or sells.
    fn finish(
        &mut self,
        reservation: &ReservationId,
        seats: &[&SeatId],
        ga: &[&GaRequest],
    ) -> Outcome<Held> {
        let held = self
            .live
            .remove(reservation)
            .ok_or_else(|| format!("reservation {reservation} is not live"))?;
        let mut expected: Vec<&SeatId> = held.seats.iter().collect();
        let mut got = seats.to_vec();
        expected.sort();
        got.sort();
        if expected != got {
            return Err(format!(
                "reservation {reservation} held seats {expected:?}, the change accounts for {got:?}"
            ));
        }
        for pool in held
            .ga
            .iter()
            .map(|ga| &ga.pool)
            .chain(ga.iter().map(|ga| &ga.pool))
        {
            let want: u32 = held
                .ga
                .iter()
                .filter(|ga| &ga.pool == pool)
                .map(|ga| ga.quantity)
                .sum();
            let have: u32 = ga
                .iter()
                .filter(|ga| &ga.pool == pool)
                .map(|ga| ga.quantity)
                .sum();
            if want != have {
                return Err(format!(
                    "reservation {reservation} held {want} of pool {pool}, the change accounts for {have}"
                ));
            }
        }
        Ok(held)
    }

    /// Free items go to a new live reservation.
    fn take(&mut self, reservation: &ReservationId, seats: &[SeatId], ga: &[GaRequest]) -> Outcome {
        for seat in seats {
            self.move_seat(
                seat,
                &SeatState::Available,
                SeatState::Held(reservation.clone()),
            )?;
        }
        for request in ga {
            let pool = self.pool(&request.pool)?;
            if u64::from(request.quantity) > pool.available() {
                return Err(format!(
                    "pool {} oversold: {} reserved with {} available",
                    request.pool,
                    request.quantity,
                    pool.available()
                ));
            }
            pool.held += request.quantity;
        }
        let held = Held {
            seats: seats.to_vec(),
            ga: ga.to_vec(),
        };
        if self.live.insert(reservation.clone(), held).is_some() {
            return Err(format!("reservation {reservation} reserved twice"));
        }
        Ok(())
    }

    fn apply(&mut self, change: &Change) -> Outcome {
        match &change.kind {
            ChangeKind::EventCreated => {
                if change.seq != 1 {
                    return Err("EventCreated after seq 1".into());
                }
            }
            ChangeKind::Reserved {
                reservation,
                seats,
                ga,
                ..
            } => {
                self.nothing_waits_for_free()?;
                self.take(reservation, seats, ga)?;
            }
            ChangeKind::OfferMade {
                reservation,
                holder,
                entry,
                seats,
                ga,
                ..
            } => {
                let position = self.check_offer(entry, holder, seats, ga)?;
                self.waiting.remove(position);
                self.take(reservation, seats, ga)?;
            }
            ChangeKind::WaitlistJoined {
                entry,
                holder,
                quantity,
                adjacent,
                section,
                pool,
            } => {
                if !self.joined.insert(entry.clone()) {
                    return Err(format!("entry {entry} joined twice"));
                }
                if let Some(pool) = pool {
                    self.pool(pool)?;
                }
                self.waiting.push(Waiting {
                    entry: entry.clone(),
                    holder: holder.clone(),
                    quantity: *quantity,
                    adjacent: *adjacent,
                    section: section.clone(),
                    pool: pool.clone(),
                });
            }
            ChangeKind::WaitlistLeft { entry } => {
                let position = self
                    .waiting
                    .iter()
                    .position(|waiting| &waiting.entry == entry)
                    .ok_or_else(|| format!("entry {entry} left, but it was not waiting"))?;
                self.waiting.remove(position);
            }
            ChangeKind::Extended { reservation, .. } => {
                if !self.live.contains_key(reservation) {
                    return Err(format!("extended {reservation}, which is not live"));
                }
            }
            ChangeKind::Committed {
                reservation,
                seats,
                ga,
                released_seats,
                released_ga,
                after_expiry,
                ..
            } => {
                if *after_expiry {
                    self.nothing_waits_for_free()?;
                    if self.live.contains_key(reservation) {
                        return Err(format!("late commit of {reservation}, which is still live"));
                    }
                    for seat in seats {
                        self.move_seat(seat, &SeatState::Available, SeatState::Sold)?;
                    }
                    for request in ga {
                        let pool = self.pool(&request.pool)?;
                        if u64::from(request.quantity) > pool.available() {
                            return Err(format!("late commit oversells pool {}", request.pool));
                        }
                        pool.sold += request.quantity;
                    }
                } else {
                    let all_seats: Vec<&SeatId> = seats.iter().chain(released_seats).collect();
                    let all_ga: Vec<&GaRequest> = ga.iter().chain(released_ga).collect();
                    self.finish(reservation, &all_seats, &all_ga)?;
                    let holder = SeatState::Held(reservation.clone());
                    for seat in seats {
                        self.move_seat(seat, &holder, SeatState::Sold)?;
                    }
                    for seat in released_seats {
                        self.move_seat(seat, &holder, SeatState::Available)?;
                    }
                    for request in ga {
                        let pool = self.pool(&request.pool)?;
                        pool.held -= request.quantity;
                        pool.sold += request.quantity;
                    }
                    for request in released_ga {
                        self.pool(&request.pool)?.held -= request.quantity;
                    }
                }
            }
            ChangeKind::Cancelled {
                reservation,
                seats,
                ga,
            }
            | ChangeKind::Expired {
                reservation,
                seats,
                ga,
            } => {
                let seat_refs: Vec<&SeatId> = seats.iter().collect();
                let ga_refs: Vec<&GaRequest> = ga.iter().collect();
                self.finish(reservation, &seat_refs, &ga_refs)?;
                let holder = SeatState::Held(reservation.clone());
                for seat in seats {
                    self.move_seat(seat, &holder, SeatState::Available)?;
                }
                for request in ga {
                    self.pool(&request.pool)?.held -= request.quantity;
                }
            }
            ChangeKind::Refunded { seats, ga, to, .. } => {
                let target = match to {
                    RefundTo::Sale => SeatState::Available,
                    RefundTo::Blocked => SeatState::Blocked,
                };
                for seat in seats {
                    self.move_seat(seat, &SeatState::Sold, target.clone())?;
                }
                for request in ga {
                    let pool = self.pool(&request.pool)?;
                    if pool.sold < request.quantity {
                        return Err(format!("refund of unsold units of pool {}", request.pool));
                    }
                    pool.sold -= request.quantity;
                    if *to == RefundTo::Blocked {
                        pool.blocked += request.quantity;
                    }
                }
            }
            ChangeKind::Transferred { .. } | ChangeKind::CheckedIn { .. } => {}
            ChangeKind::SeatsBlocked { seats } => {
                self.nothing_waits_for_free()?;
                for seat in seats {
                    self.move_seat(seat, &SeatState::Available, SeatState::Blocked)?;
                }
            }
            ChangeKind::SeatsUnblocked { seats } => {
                for seat in seats {
                    self.move_seat(seat, &SeatState::Blocked, SeatState::Available)?;
                }
            }
            ChangeKind::PoolResized { pool, capacity } => {
                if *capacity < self.pool(pool)?.capacity {
                    self.nothing_waits_for_free()?;
                }
                let state = self.pool(pool)?;
                state.capacity = *capacity;
                if state.used() > u64::from(*capacity) {
                    return Err(format!("pool {pool} resized below its usage"));
                }
            }
            ChangeKind::PoolBlocked { pool, blocked } => {
                if *blocked > self.pool(pool)?.blocked {
                    self.nothing_waits_for_free()?;
                }
                let state = self.pool(pool)?;
                state.blocked = *blocked;
                if state.used() > u64::from(state.capacity) {
                    return Err(format!("pool {pool} blocked beyond its capacity"));
                }
            }
        }
        Ok(())
    }

    fn availability(&self, seq: u64) -> Availability {
        Availability {
            event: self.event.id.clone(),
            seq,
            seats: self
                .seats
                .iter()
                .map(|state| match state {
                    SeatState::Available => SeatStatus::Available,
                    SeatState::Held(_) => SeatStatus::Held,
                    SeatState::Sold => SeatStatus::Sold,
                    SeatState::Blocked => SeatStatus::Blocked,
                })
                .collect(),
            pools: self
                .event
                .pools
                .iter()
                .map(|pool| {
                    let state = &self.pools[&pool.id];
                    PoolAvailability {
                        pool: pool.id.clone(),
                        capacity: state.capacity,
                        held: state.held,
                        sold: state.sold,
                        blocked: state.blocked,
                        available: u32::try_from(state.available()).unwrap_or(u32::MAX),
                    }
                })
                .collect(),
        }
    }
}

/// Replays `changes` (the event's log from sequence 1, in order) from the event's empty
/// layout, checking every step, and returns the availability they produce.
///
/// Errors describe the first change the state before it does not allow.
pub fn replay(event: &Event, changes: &[Change]) -> Result<Availability, String> {
    let (replay, seq) = replay_state(event, changes)?;
    Ok(replay.availability(seq))
}

fn replay_state<'a>(event: &'a Event, changes: &[Change]) -> Result<(Replay<'a>, u64), String> {
    let mut replay = Replay::new(event);
    let mut seq = 0;
    for change in changes {
        if change.event != event.id {
            return Err(format!(
                "change {} belongs to event {}",
                change.seq, change.event
            ));
        }
        if change.seq != seq + 1 {
            return Err(format!("sequence gap: {} after {seq}", change.seq));
        }
        seq = change.seq;
        replay
            .apply(change)
            .map_err(|why| format!("change {} ({:?}): {why}", change.seq, change.kind))?;
    }
    if seq == 0 {
        return Err("the log has no EventCreated".into());
    }
    Ok((replay, seq))
}

/// The entries still waiting after `changes` (the event's log from sequence 1), in join
/// order, as (entry, holder, quantity); fails as [`replay`] does.
pub fn waiting_entries(
    event: &Event,
    changes: &[Change],
) -> Result<Vec<(WaitlistEntryId, HolderId, u32)>, String> {
    let (replay, _) = replay_state(event, changes)?;
    Ok(replay
        .waiting
        .iter()
        .map(|waiting| {
            (
                waiting.entry.clone(),
                waiting.holder.clone(),
                waiting.quantity,
            )
        })
        .collect())
}

/// Checks a snapshot on its own: every pool's counts add up to its capacity.
pub fn check_counts(availability: &Availability) -> Result<(), String> {
    for pool in &availability.pools {
        let sum = u64::from(pool.held)
            + u64::from(pool.sold)
            + u64::from(pool.blocked)
            + u64::from(pool.available);
        if sum != u64::from(pool.capacity) {
            return Err(format!(
                "pool {}: held {} + sold {} + blocked {} + available {} != capacity {}",
                pool.pool, pool.held, pool.sold, pool.blocked, pool.available, pool.capacity
            ));
        }
    }
    Ok(())
}

/// Reads the event's availability and its whole change log from `store`, replays the log
/// strictly up to the snapshot's sequence number and compares: the invariants of DESIGN
/// section 3 as far as the log can witness them, and the waitlist's promise (no waiting
/// entry is left satisfiable at the snapshot).
pub async fn check_store(
    store: &dyn InventoryStore,
    event: &EventId,
) -> Result<Availability, String> {
    let layout = store
        .event(event)
        .await
        .map_err(|error| format!("event {event}: {error}"))?;
    let snapshot = store
        .availability(event)
        .await
        .map_err(|error| format!("availability of {event}: {error}"))?;
    check_counts(&snapshot)?;
    let mut changes: Vec<Change> = Vec::new();
    while (changes.len() as u64) < snapshot.seq {
        let after = changes.len() as u64;
        let page = store
            .changes(event, after, PAGE)
            .await
            .map_err(|error| format!("changes of {event} after {after}: {error}"))?;
        if page.is_empty() {
            return Err(format!(
                "the log ends at {after}, the snapshot is at {}",
                snapshot.seq
            ));
        }
        changes.extend(page);
    }
    changes.truncate(usize::try_from(snapshot.seq).unwrap_or(usize::MAX));
    let (state, seq) = replay_state(&layout, &changes)?;
    if let Some(entry) = state.first_satisfiable() {
        return Err(format!(
            "at the snapshot (seq {seq}) entry {} still waits, though free inventory satisfies it",
            entry.entry
        ));
    }
    let replayed = state.availability(seq);
    if replayed != snapshot {
        return Err(format!(
            "replaying the log of {event} does not give its snapshot at seq {}:\n replayed {replayed:?}\n snapshot {snapshot:?}",
            snapshot.seq
        ));
    }
    Ok(snapshot)
}
