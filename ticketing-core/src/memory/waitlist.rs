//! The in-memory waitlist: entries per event, and the serve step that offers freed
//! inventory to them while the event's gate is held exclusively (see
//! [`Gate`](super::event::Gate)), so nobody else can take it first.
//!
//! Every operation of an event with a waitlist [enters](MemoryStore::enter) it: the gate,
//! then its lapsed reservations finalized (and, if that freed anything while entries wait,
//! the waitlist served). An operation that frees inventory under the exclusive gate serves
//! the waitlist before it lets go of the gate.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::domain::{BestAvailable, ChangeKind, SeatStatus};
use crate::error::{ConflictReason, Entity, Error, Result};
use crate::id::{EventId, HolderId, WaitlistEntryId};
use crate::sync::{Arc, Ordering};
use crate::time::Timestamp;
use crate::token::ReservationToken;
use crate::validate;
use crate::waitlist::{WaitlistEntry, WaitlistJoined, WaitlistRequest, WaitlistState};

use super::MemoryStore;
use super::event::{EventState, Gate, SeatSlot};
use super::reservation::ReservationCell;

/// An event's waitlist. Changed only under the event's exclusive gate.
#[derive(Debug, Default)]
pub(crate) struct Waitlist {
    next_serial: u64,
    /// Waiting entries by join serial: the queue, head first.
    queue: BTreeMap<u64, WaitlistEntryId>,
    /// Each holder's latest entry; it is open while it waits or its offer is live.
    latest: HashMap<HolderId, WaitlistEntryId>,
    entries: HashMap<WaitlistEntryId, EntryCell>,
}

#[derive(Debug)]
struct EntryCell {
    request: WaitlistRequest,
    wants: Wants,
    joined_at: Timestamp,
    token: ReservationToken,
    state: EntryState,
}

/// What an entry wants, resolved against the layout.
#[derive(Debug, Clone)]
enum Wants {
    Seats(BestAvailable),
    Pool { index: usize, quantity: u32 },
}

#[derive(Debug)]
enum EntryState {
    Waiting { serial: u64 },
    Offered(Arc<ReservationCell>),
    Left,
}

impl Waitlist {
    fn view(&self, id: &WaitlistEntryId) -> Option<WaitlistEntry> {
        let entry = self.entries.get(id)?;
        let state = match &entry.state {
            EntryState::Waiting { serial } => WaitlistState::Waiting {
                position: self.queue.range(..*serial).count() as u64 + 1,
            },
            EntryState::Offered(cell) => WaitlistState::Offered {
                reservation: cell.id.clone(),
            },
            EntryState::Left => WaitlistState::Left,
        };
        Some(WaitlistEntry {
            id: id.clone(),
            request: entry.request.clone(),
            joined_at: entry.joined_at,
            state,
        })
    }

    /// The holder's open entry: waiting, or offered with the offer still live at `now`.
    fn open_entry(&self, holder: &HolderId, now: Timestamp) -> Option<&WaitlistEntryId> {
        let id = self.latest.get(holder)?;
        let open = match &self.entries.get(id)?.state {
            EntryState::Waiting { .. } => true,
            EntryState::Offered(cell) => cell.is_live(now),
            EntryState::Left => false,
        };
        open.then_some(id)
    }
}

impl MemoryStore {
    /// Enters `event` for an operation at `now` (see the module documentation).
    pub(super) fn enter<'e>(&self, event: &'e EventState, now: Timestamp) -> Gate<'e> {
        let gate = event.gate();
        self.finalize_lapsed(event, &gate, now, usize::MAX);
        gate
    }

    /// Enters `event` to read it: shared while nothing has lapsed (readers do not exclude
    /// each other), as [`MemoryStore::enter`] otherwise.
    pub(super) fn enter_read<'e>(&self, event: &'e EventState, now: Timestamp) -> Gate<'e> {
        let gate = event.gate_read();
        if gate.is_gated() && event.may_have_due(now) {
            drop(gate);
            return self.enter(event, now);
        }
        gate
    }

    /// Finalizes up to `limit` lapsed reservations of an event with a waitlist and returns
    /// how many; once none is left lapsed, offers what they freed. Without a waitlist,
    /// does nothing (the operations finalize as they need).
    pub(super) fn finalize_lapsed(
        &self,
        event: &EventState,
        gate: &Gate<'_>,
        now: Timestamp,
        limit: usize,
    ) -> usize {
        if !gate.is_gated() || !event.may_have_due(now) {
            return 0;
        }
        let expired = event.sweep(now, limit);
        if expired > 0 && gate.serves() && !event.may_have_due(now) {
            self.serve(event, now);
        }
        expired
    }

    /// Offers free inventory to every waiting entry it satisfies, in join order. Runs
    /// under the exclusive gate, so what it reads stays true until it has offered.
    pub(super) fn serve(&self, event: &EventState, now: Timestamp) {
        self.serve_from(event, 0, now);
    }

    /// [`MemoryStore::serve`] for the entries that joined at or after `first` (the others
    /// are known not to be satisfiable).
    fn serve_from(&self, event: &EventState, first: u64, now: Timestamp) {
        let mut waitlist = event.waitlist.lock();
        let mut free_seats = event.free_seat_count();
        let free_units = event
            .journal
            .lock()
            .pools
            .iter()
            .any(|pool| pool.free() > 0);
        if free_seats == 0 && !free_units {
            return;
        }
        let mut cursor = first;
        while let Some((serial, id)) = waitlist.queue.range(cursor..).next() {
            let (serial, id) = (*serial, id.clone());
            cursor = serial + 1;
            let Some(entry) = waitlist.entries.get(&id) else {
                unreachable!("a queued entry is an entry")
            };
            let Some((seats, ga)) = offerable(event, &entry.wants, free_seats) else {
                continue;
            };
            free_seats -= seats.len() as u32;
            let cell = self.offer(event, &id, entry, seats, ga, now);
            waitlist.queue.remove(&serial);
            if let Some(entry) = waitlist.entries.get_mut(&id) {
                entry.state = EntryState::Offered(cell);
            }
            let waiting = event.waiting.fetch_sub(1, Ordering::AcqRel);
            assert!(waiting > 0, "an offered entry was waiting");
        }
        assert_eq!(
            event.waiting.load(Ordering::Acquire),
            waitlist.queue.len() as u64
        );
    }

    /// Makes the offer: a reservation of `seats` and `ga` in the entry's holder's name,
    /// with the entry's token, logged as [`ChangeKind::OfferMade`].
    fn offer(
        &self,
        event: &EventState,
        id: &WaitlistEntryId,
        entry: &EntryCell,
        seats: Vec<u32>,
        ga: Vec<(usize, u32)>,
        now: Timestamp,
    ) -> Arc<ReservationCell> {
        let holder = &entry.request.holder;
        let quantity = entry.request.quantity;
        let ttl = Duration::from_secs(u64::from(event.event.policy.waitlist_offer_ttl_seconds));
        let expires_at = now.saturating_add(ttl);
        let cell = Arc::new(ReservationCell::offer(
            event.event.id.clone(),
            holder.clone(),
            entry.token.clone(),
            now,
            expires_at,
            seats.into_boxed_slice(),
            ga.into_boxed_slice(),
        ));
        assert_eq!(cell.item_count(), quantity, "an offer is all of the entry");
        let mut holders = event.holder_shard(holder);
        if let Some(holders) = holders.as_deref_mut() {
            let account = holders.entry(holder.clone()).or_default();
            assert!(account.waiting_entries >= 1 && account.waiting_items >= quantity);
            account.waiting_entries -= 1;
            account.waiting_items -= quantity;
            account.holds.push((cell.clone(), expires_at, quantity));
        }
        let sorted = cell.seats_sorted();
        let mut guards = event.lock_seats(&sorted);
        assert!(
            guards.iter().all(|guard| guard.is_free()),
            "offered seats are free"
        );
        let kind = ChangeKind::OfferMade {
            reservation: cell.id.clone(),
            holder: holder.clone(),
            entry: id.clone(),
            seats: event.seat_ids(&cell.seats),
            ga: event.ga_requests(&cell.ga),
            expires_at,
        };
        let mut journal = event.journal.lock();
        for (pool, quantity) in cell.ga.iter() {
            assert!(
                journal.pools[*pool].free() >= *quantity,
                "offered units are free"
            );
            journal.pool_mut(*pool).held += quantity;
        }
        journal.assert_pools();
        journal.append(
            event,
            now,
            kind,
            sorted.iter().map(|index| (*index, SeatStatus::Held)),
        );
        journal.push_due(event, cell.clone(), expires_at);
        drop(journal);
        for guard in guards.iter_mut() {
            **guard = SeatSlot::Held {
                owner: cell.clone(),
            };
        }
        drop(guards);
        drop(holders);
        self.reservations.insert(cell.id.clone(), cell.clone());
        cell
    }

    pub(super) fn waitlist_join_now(&self, request: WaitlistRequest) -> Result<WaitlistJoined> {
        validate::check_waitlist_request(&request)?;
        let event = self.event_state(&request.event)?;
        check_has_waitlist(&event)?;
        let now = self.now();
        let gate = event.gate_exclusive();
        self.finalize_lapsed(&event, &gate, now, usize::MAX);
        let mut waitlist = event.waitlist.lock();
        if let Some(open) = waitlist.open_entry(&request.holder, now) {
            let same = waitlist
                .entries
                .get(open)
                .is_some_and(|entry| entry.request == request);
            if !same {
                return Err(Error::Conflict {
                    reason: ConflictReason::WaitlistEntryExists,
                });
            }
            let Some(entry) = waitlist.view(open) else {
                unreachable!("an open entry is an entry")
            };
            return Ok(WaitlistJoined { entry, token: None });
        }
        let wants = wants(&event, &request)?;
        check_on_sale(&event, now)?;
        let mut holders = event.holder_shard(&request.holder);
        if let Some(holders) = holders.as_deref() {
            super::reserve::check_limits(
                &event,
                holders.get(&request.holder),
                request.quantity,
                now,
            )?;
        }
        if waitlist.queue.len() >= validate::WAITLIST_ENTRIES_MAX {
            return Err(Error::Conflict {
                reason: ConflictReason::WaitlistFull,
            });
        }
        if let Some(holders) = holders.as_deref_mut() {
            let account = holders.entry(request.holder.clone()).or_default();
            account.waiting_entries += 1;
            account.waiting_items += request.quantity;
        }
        drop(holders);
        let id = WaitlistEntryId::generate(now);
        let token = ReservationToken::generate();
        let kind = ChangeKind::WaitlistJoined {
            entry: id.clone(),
            holder: request.holder.clone(),
            quantity: request.quantity,
            adjacent: request.adjacent,
            section: request.section.clone(),
            pool: request.pool.clone(),
        };
        event.journal.lock().append(&event, now, kind, []);
        let serial = waitlist.next_serial;
        waitlist.next_serial += 1;
        waitlist.queue.insert(serial, id.clone());
        waitlist.latest.insert(request.holder.clone(), id.clone());
        waitlist.entries.insert(
            id.clone(),
            EntryCell {
                request,
                wants,
                joined_at: now,
                token: token.clone(),
                state: EntryState::Waiting { serial },
            },
        );
        event.waiting.fetch_add(1, Ordering::AcqRel);
        drop(waitlist);
        // Nothing else waiting is satisfiable (the last operation served them all): only
        // the new entry may be.
        self.serve_from(&event, serial, now);
        let entry = event.waitlist.lock().view(&id);
        drop(gate);
        let Some(entry) = entry else {
            unreachable!("a joined entry is an entry")
        };
        Ok(WaitlistJoined {
            entry,
            token: Some(token),
        })
    }

    pub(super) fn waitlist_entry_now(
        &self,
        event: &EventId,
        entry: &WaitlistEntryId,
    ) -> Result<WaitlistEntry> {
        let state = self.event_state(event)?;
        check_has_waitlist(&state)?;
        let now = self.now();
        let gate = self.enter_read(&state, now);
        let view = state.waitlist.lock().view(entry);
        drop(gate);
        view.ok_or_else(|| Error::not_found(Entity::WaitlistEntry, entry))
    }

    pub(super) fn waitlist_leave_now(
        &self,
        event: &EventId,
        entry: &WaitlistEntryId,
        holder: &HolderId,
    ) -> Result<()> {
        let state = self.event_state(event)?;
        check_has_waitlist(&state)?;
        let now = self.now();
        let gate = state.gate_exclusive();
        self.finalize_lapsed(&state, &gate, now, usize::MAX);
        let mut waitlist = state.waitlist.lock();
        let not_found = || Error::not_found(Entity::WaitlistEntry, entry);
        let cell = waitlist
            .entries
            .get_mut(entry)
            .filter(|cell| &cell.request.holder == holder)
            .ok_or_else(not_found)?;
        let serial = match cell.state {
            EntryState::Left => return Ok(()),
            EntryState::Offered(_) => {
                return Err(Error::Conflict {
                    reason: ConflictReason::WaitlistEntryOffered,
                });
            }
            EntryState::Waiting { serial } => serial,
        };
        cell.state = EntryState::Left;
        let quantity = cell.request.quantity;
        waitlist.queue.remove(&serial);
        if let Some(mut holders) = state.holder_shard(holder)
            && let Some(account) = holders.get_mut(holder)
        {
            assert!(account.waiting_entries >= 1 && account.waiting_items >= quantity);
            account.waiting_entries -= 1;
            account.waiting_items -= quantity;
        }
        let kind = ChangeKind::WaitlistLeft {
            entry: entry.clone(),
        };
        state.journal.lock().append(&state, now, kind, []);
        let waiting = state.waiting.fetch_sub(1, Ordering::AcqRel);
        assert!(waiting > 0, "a leaving entry was waiting");
        drop(waitlist);
        drop(gate);
        Ok(())
    }
}

fn check_has_waitlist(event: &EventState) -> Result<()> {
    if event.event.policy.waitlist {
        Ok(())
    } else {
        Err(Error::not_found(Entity::Waitlist, &event.event.id))
    }
}

fn check_on_sale(event: &EventState, now: Timestamp) -> Result<()> {
    match &event.event.sale_window {
        Some(window) if !window.contains(now) => {
            let (opens_at, closed_at) = match window.opens_at {
                Some(opens) if now < opens => (Some(opens), None),
                _ => (None, window.closes_at),
            };
            Err(Error::NotOnSale {
                opens_at,
                closed_at,
            })
        }
        _ => Ok(()),
    }
}

/// What `request` wants of the event, if its layout could ever give it.
fn wants(event: &EventState, request: &WaitlistRequest) -> Result<Wants> {
    if let Some(pool) = &request.pool {
        return Ok(Wants::Pool {
            index: event.pool_index(pool)?,
            quantity: request.quantity,
        });
    }
    if event.event.seats.is_empty() {
        return Err(Error::invalid(
            "pool",
            "the event has no seats: name a GA pool",
        ));
    }
    let capacity = match &request.section {
        None => event.layout.capacity_all,
        Some(section) => *event
            .layout
            .capacity_by_section
            .get(section)
            .ok_or_else(|| {
                Error::invalid("section", format!("no seat is in section '{section}'"))
            })?,
    };
    if request.quantity > capacity.seats {
        return Err(Error::invalid(
            "quantity",
            format!("there are only {} such seats", capacity.seats),
        ));
    }
    if request.adjacent && request.quantity > capacity.run_max {
        return Err(Error::invalid(
            "quantity",
            format!(
                "at most {} such seats are adjacent in one row",
                capacity.run_max
            ),
        ));
    }
    Ok(Wants::Seats(BestAvailable {
        count: request.quantity,
        adjacent: request.adjacent,
        section: request.section.clone(),
        category: None,
    }))
}

/// Seat indices and (pool index, units) of an offer.
type Items = (Vec<u32>, Vec<(usize, u32)>);

/// The items free inventory would give an entry now, if it satisfies it in full.
fn offerable(event: &EventState, wants: &Wants, free_seats: u32) -> Option<Items> {
    match wants {
        Wants::Pool { index, quantity } => {
            let free = event.journal.lock().pools[*index].free();
            (free >= *quantity).then(|| (Vec::new(), vec![(*index, *quantity)]))
        }
        Wants::Seats(best) => {
            if free_seats < best.count {
                return None;
            }
            let picks = super::reserve::best_available(event, best, &[]).ok()?;
            Some((picks, Vec::new()))
        }
    }
}
