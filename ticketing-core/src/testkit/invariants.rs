//! The invariants, checked by replaying an event's change log.
//!
//! The replay is strict: it rejects any change that the state before it does not allow — a
//! seat reserved while held or sold (two live claims), a release of items the reservation
//! does not hold, a pool going over capacity, a sequence gap. Its end state must equal the
//! store's own snapshot at the same sequence number. So the change log, which every
//! backend writes in the same step as the state change, is a witness that no seat was ever
//! in two live claims.

use std::collections::BTreeMap;

use crate::{
    Availability, Change, ChangeKind, Event, EventId, GaRequest, InventoryStore, PoolAvailability,
    PoolId, RefundTo, ReservationId, SeatId, SeatStatus,
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

struct Replay<'a> {
    event: &'a Event,
    seat_index: BTreeMap<&'a SeatId, usize>,
    seats: Vec<SeatState>,
    pools: BTreeMap<PoolId, PoolState>,
    live: BTreeMap<ReservationId, Held>,
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
        }
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
                    seats: seats.clone(),
                    ga: ga.clone(),
                };
                if self.live.insert(reservation.clone(), held).is_some() {
                    return Err(format!("reservation {reservation} reserved twice"));
                }
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
                let state = self.pool(pool)?;
                state.capacity = *capacity;
                if state.used() > u64::from(*capacity) {
                    return Err(format!("pool {pool} resized below its usage"));
                }
            }
            ChangeKind::PoolBlocked { pool, blocked } => {
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
    Ok(replay.availability(seq))
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
/// section 3 as far as the log can witness them.
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
    let replayed = replay(&layout, &changes)?;
    if replayed != snapshot {
        return Err(format!(
            "replaying the log of {event} does not give its snapshot at seq {}:\n replayed {replayed:?}\n snapshot {snapshot:?}",
            snapshot.seq
        ));
    }
    Ok(snapshot)
}
