//! Reserving: all or nothing, over explicit seats, GA units and best-available seats.

use std::ops::{ControlFlow, Range};

use crate::domain::{BestAvailable, ChangeKind, Reservation, ReserveRequest, SeatStatus};
use crate::error::{Error, HolderLimit, Result};
use crate::sync::Arc;
use crate::time::Timestamp;
use crate::token::ReservationToken;
use crate::validate;

use super::MemoryStore;
use super::event::{EventState, SeatMask, SeatSlot};
use super::reservation::{ReservationCell, ReserveRecord};

/// Attempts at a best-available claim whose picks were taken between the scan and the lock.
const CLAIM_ATTEMPTS_MAX: usize = 64;

/// Where explicit and best-available seats stand after looking them up.
struct Claim<'a> {
    request: &'a ReserveRequest,
    seats: Vec<u32>,
    ga: Vec<(usize, u32)>,
    now: Timestamp,
    expires_at: Timestamp,
}

/// The outcome of a best-available scan: the picks, or how many candidates there were.
type Picks = std::result::Result<Vec<u32>, u32>;

impl MemoryStore {
    pub(super) fn reserve_now(&self, request: ReserveRequest) -> Result<Reservation> {
        validate::check_reserve(&request)?;
        let event = self.event_state(&request.event)?;
        let now = self.now();
        let _gate = self.enter(&event, now);
        let Some(key) = request.client_reservation_id.clone() else {
            return self.reserve_fresh(&event, &request, now);
        };
        // The key's shard stays locked until the outcome is recorded: a concurrent repeat
        // waits and then sees the first outcome.
        let mut keys = event.reserve_keys.lock(&key);
        if let Some(record) = keys.get(&key)
            && self.remembered(record.made_at, now)
        {
            if let Some(field) = record.mismatch(&request) {
                return Err(Error::IdempotencyMismatch { field });
            }
            return match &record.outcome {
                Ok(id) => self.reservation_now(id),
                Err(error) => Err(error.clone()),
            };
        }
        let outcome = self.reserve_fresh(&event, &request, now);
        let recorded = outcome
            .as_ref()
            .map(|reservation| reservation.id.clone())
            .map_err(Clone::clone);
        keys.insert(
            key,
            ReserveRecord {
                request,
                made_at: now,
                outcome: recorded,
            },
        );
        outcome
    }

    fn reserve_fresh(
        &self,
        event: &EventState,
        request: &ReserveRequest,
        now: Timestamp,
    ) -> Result<Reservation> {
        let policy = &event.event.policy;
        let ttl_seconds = request
            .ttl_seconds
            .unwrap_or(policy.reservation_ttl_seconds);
        if ttl_seconds > policy.reservation_ttl_seconds_max {
            return Err(Error::invalid(
                "ttl_seconds",
                format!(
                    "this event allows at most {} seconds",
                    policy.reservation_ttl_seconds_max
                ),
            ));
        }
        let seats = request
            .seats
            .iter()
            .map(|seat| event.seat_index(seat))
            .collect::<Result<Vec<_>>>()?;
        let ga = request
            .ga
            .iter()
            .map(|ga| Ok((event.pool_index(&ga.pool)?, ga.quantity)))
            .collect::<Result<Vec<_>>>()?;
        if let Some(window) = &event.event.sale_window
            && !window.contains(now)
        {
            let (opens_at, closed_at) = match window.opens_at {
                Some(opens) if now < opens => (Some(opens), None),
                _ => (None, window.closes_at),
            };
            return Err(Error::NotOnSale {
                opens_at,
                closed_at,
            });
        }
        event.sweep_if_due(now);
        let expires_at = now.saturating_add(std::time::Duration::from_secs(u64::from(ttl_seconds)));
        let claim = Claim {
            request,
            seats,
            ga,
            now,
            expires_at,
        };
        for _ in 0..CLAIM_ATTEMPTS_MAX {
            if let Some(reservation) = self.try_claim(event, &claim)? {
                return Ok(reservation);
            }
        }
        // Every attempt lost its best-available picks to a racing buyer: the seats went fast.
        Err(Error::SoldOut {
            pool: None,
            remaining: 0,
        })
    }

    /// One attempt: `Ok(None)` when best-available picks were taken before they were locked.
    fn try_claim(&self, event: &EventState, claim: &Claim<'_>) -> Result<Option<Reservation>> {
        let request = claim.request;
        let mut holders = event.holder_shard(&request.holder);
        let best_count = request.best_available.as_ref().map_or(0, |best| best.count);
        let requested =
            claim.seats.len() as u32 + claim.ga.iter().map(|(_, q)| q).sum::<u32>() + best_count;
        if let Some(holders) = holders.as_deref() {
            check_limits(event, holders.get(&request.holder), requested, claim.now)?;
        }
        // A single seat that the bitmap shows taken is refused without taking its lock: on a
        // hot seat, losers go away at the cost of one load, and the winner is not slowed by
        // them. (Lapsed holds were finalized above; the bitmap changes in the same critical
        // section as the change log, so the refusal is the state at that instant.)
        if let [index] = claim.seats[..]
            && !is_free(event, index)
        {
            return Err(Error::SeatUnavailable {
                seats: vec![event.seat_id(index)],
            });
        }
        let picks: Picks = match &request.best_available {
            Some(best) => best_available(event, best, &claim.seats),
            None => Ok(Vec::new()),
        };
        let mut sorted = claim.seats.clone();
        sorted.extend(picks.as_deref().unwrap_or_default());
        sorted.sort_unstable();
        let mut guards = event.lock_seats(&sorted);
        let slot = |index: u32| {
            sorted
                .binary_search(&index)
                .unwrap_or_else(|_| unreachable!("locked"))
        };
        let unavailable: Vec<_> = claim
            .seats
            .iter()
            .filter(|index| !guards[slot(**index)].is_free())
            .map(|index| event.seat_id(*index))
            .collect();
        if !unavailable.is_empty() {
            return Err(Error::SeatUnavailable { seats: unavailable });
        }
        if let Ok(picks) = &picks
            && picks.iter().any(|index| !guards[slot(*index)].is_free())
        {
            return Ok(None);
        }
        // Build everything that needs no shared state before taking the journal, the one
        // event-wide lock, so that it is held only to decide GA counts and append.
        let prepared = picks.as_ref().ok().map(|picks| {
            let mut seats = claim.seats.clone();
            seats.extend(picks);
            let token = ReservationToken::generate();
            let cell = Arc::new(ReservationCell::new(
                request,
                token.clone(),
                claim.now,
                claim.expires_at,
                seats.into_boxed_slice(),
                claim.ga.clone().into_boxed_slice(),
            ));
            let kind = ChangeKind::Reserved {
                reservation: cell.id.clone(),
                holder: cell.holder.clone(),
                seats: event.seat_ids(&cell.seats),
                ga: request.ga.clone(),
                expires_at: claim.expires_at,
            };
            (token, cell, kind)
        });
        let mut journal = event.journal.lock();
        for (pool, quantity) in &claim.ga {
            let free = journal.pools[*pool].free();
            if *quantity > free {
                return Err(Error::SoldOut {
                    pool: Some(event.pool_id(*pool)),
                    remaining: free,
                });
            }
        }
        let Some((token, cell, kind)) = prepared else {
            return Err(Error::SoldOut {
                pool: None,
                remaining: picks.err().unwrap_or_default(),
            });
        };
        for (pool, quantity) in &claim.ga {
            journal.pool_mut(*pool).held += quantity;
        }
        journal.assert_pools();
        journal.append(
            event,
            claim.now,
            kind,
            sorted.iter().map(|index| (*index, SeatStatus::Held)),
        );
        journal.push_due(event, cell.clone(), claim.expires_at);
        drop(journal);
        // The seat locks are still held: nobody sees these slots before they say "held".
        for guard in guards.iter_mut() {
            **guard = SeatSlot::Held {
                owner: cell.clone(),
            };
        }
        drop(guards);
        if let Some(holders) = holders.as_deref_mut() {
            let account = holders.entry(request.holder.clone()).or_default();
            account
                .holds
                .push((cell.clone(), claim.expires_at, requested));
        }
        drop(holders);
        self.reservations.insert(cell.id.clone(), cell.clone());
        let state = cell.state.lock();
        Ok(Some(cell.view(event, &state, claim.now, Some(token))))
    }
}

pub(super) fn check_limits(
    event: &EventState,
    account: Option<&super::event::HolderAccount>,
    requested: u32,
    now: Timestamp,
) -> Result<()> {
    let policy = &event.event.policy;
    let (live, items) = account.map_or((0, 0), |account| {
        (account.live_reservations(now), account.items(now))
    });
    if let Some(max) = policy.holder_reservations_max
        && live + 1 > max
    {
        return Err(Error::LimitExceeded {
            limit: HolderLimit::Reservations,
            max,
        });
    }
    if let Some(max) = policy.holder_seats_max
        && items + requested > max
    {
        return Err(Error::LimitExceeded {
            limit: HolderLimit::Seats,
            max,
        });
    }
    Ok(())
}

/// Finds best-available seats without taking any lock: it reads the free-seat bitmap, and
/// the caller re-checks the picks once it has locked them all.
pub(super) fn best_available(event: &EventState, best: &BestAvailable, explicit: &[u32]) -> Picks {
    let count = best.count as usize;
    // A section or category no seat has: no candidates.
    let Some(filter) = Filter::of(event, best) else {
        return Err(0);
    };
    let matches = |index: u32| filter.contains(index) && !explicit.contains(&index);
    if best.adjacent && event.layout.rows_in_order {
        if let Some(run) = adjacent_run(event, count, &filter, explicit) {
            return Ok(run);
        }
        return Err(free_candidates(event, &filter, explicit, |_| {
            ControlFlow::Continue(())
        }));
    }
    let mut picks = Vec::with_capacity(count);
    let candidates = free_candidates(event, &filter, explicit, |index| {
        if best.adjacent {
            // Rows out of number order: follow the row from each candidate.
            let mut run = vec![index];
            while run.len() < count {
                match run
                    .last()
                    .and_then(|last| event.layout.next_in_row[*last as usize])
                {
                    Some(next) if is_free(event, next) && matches(next) => run.push(next),
                    _ => break,
                }
            }
            if run.len() == count {
                picks = run;
                return ControlFlow::Break(());
            }
        } else {
            picks.push(index);
            if picks.len() == count {
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    });
    if picks.len() == count {
        Ok(picks)
    } else {
        Err(candidates)
    }
}

/// The seats a best-available request's section and category allow, as masks over the
/// free-seat bitmap: a scan reads only the words that hold such seats and compares no
/// strings, so asking for a sold-out section costs that section's words, not the event's.
struct Filter<'a> {
    section: Option<&'a SeatMask>,
    category: Option<&'a SeatMask>,
    /// The words outside which no seat matches.
    words: Range<usize>,
}

impl<'a> Filter<'a> {
    /// The filter of `best`, or `None` when its section or category names no seat.
    fn of(event: &'a EventState, best: &BestAvailable) -> Option<Self> {
        let mask = |masks: &'a std::collections::HashMap<String, SeatMask, _>,
                    key: &Option<String>| match key {
            None => Some(None),
            Some(key) => masks.get(key).map(Some),
        };
        let section = mask(&event.layout.section_masks, &best.section)?;
        let category = mask(&event.layout.category_masks, &best.category)?;
        let mut words = 0..event.free_words();
        for mask in [section, category].into_iter().flatten() {
            let within = mask.words();
            words = words.start.max(within.start)..words.end.min(within.end);
        }
        Some(Self {
            section,
            category,
            words,
        })
    }

    /// Word `word` of the allowed seats.
    fn word(&self, word: usize) -> u64 {
        let of = |mask: Option<&SeatMask>| mask.map_or(u64::MAX, |mask| mask.word(word));
        of(self.section) & of(self.category)
    }

    fn contains(&self, index: u32) -> bool {
        self.word(index as usize / 64) & (1 << (index % 64)) != 0
    }
}

fn is_free(event: &EventState, index: u32) -> bool {
    event.free_word(index as usize / 64) & (1 << (index % 64)) != 0
}

/// Visits free seats that the filter allows and `explicit` does not hold, in layout order,
/// until `visit` breaks; returns how many it visited.
fn free_candidates(
    event: &EventState,
    filter: &Filter<'_>,
    explicit: &[u32],
    mut visit: impl FnMut(u32) -> ControlFlow<()>,
) -> u32 {
    let mut visited = 0;
    for word in filter.words.clone() {
        let mut bits = event.free_word(word) & filter.word(word);
        while bits != 0 {
            let index = (word * 64) as u32 + bits.trailing_zeros();
            bits &= bits - 1;
            if !explicit.contains(&index) {
                visited += 1;
                if visit(index).is_break() {
                    return visited;
                }
            }
        }
    }
    visited
}

/// The first run of `count` free, matching seats in one row with consecutive numbers, for
/// layouts whose rows are in number order: a run is `count` set bits in a row of the free
/// bitmap joined by set bits of `next_is_following`, found 64 starting seats at a time.
fn adjacent_run(
    event: &EventState,
    count: usize,
    filter: &Filter<'_>,
    explicit: &[u32],
) -> Option<Vec<u32>> {
    let following = &event.layout.next_is_following;
    let window = |bits: &dyn Fn(usize) -> u64, word: usize| {
        u128::from(bits(word)) | (u128::from(bits(word + 1)) << 64)
    };
    let free_bits = |word: usize| event.free_word(word) & filter.word(word);
    let following_bits = |word: usize| following.get(word).copied().unwrap_or(0);
    for word in filter.words.clone() {
        let free = window(&free_bits, word);
        let joined = window(&following_bits, word);
        // Bit i of `starts`: seats i..i+count are free and each is next in the other's row.
        // A count of at most 64 (the item limit) keeps every run inside the 128-bit window.
        let mut starts = free;
        for step in 1..count {
            starts &= (free >> step) & (joined >> (step - 1));
        }
        let mut starts = starts as u64;
        while starts != 0 {
            let first = (word * 64) as u32 + starts.trailing_zeros();
            starts &= starts - 1;
            if (first..first + count as u32).all(|index| !explicit.contains(&index)) {
                return Some((first..first + count as u32).collect());
            }
        }
    }
    None
}
