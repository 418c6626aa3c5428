//! The in-memory waiting room.
//!
//! One mutex over all rooms: every call is a few map operations (a join is a hash insert
//! and a B-tree append), so the lock is held for well under a microsecond and rooms need
//! none of the inventory store's fine-grained locking. Positions are exact without
//! counting the queue: admission takes visitors in ordinal order, so the visitors ahead
//! of ordinal `o` are `o - head` minus those who left in between, and leaving is rare.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;

use super::{
    AdmissionBudget, AdmitStep, QueueState, QueueStatus, QueueTicket, RoomSettings, RoomStats,
    WaitingRoom, check_room_settings, estimated_wait_seconds, shuffle_key,
};
use crate::error::{Entity, Error, Result};
use crate::id::{EventId, HolderId, QueueTicketId};
use crate::time::{Clock, SystemClock, Timestamp};

/// Waiting rooms in process memory: the embedded default, and the reference the durable
/// backends are checked against.
#[derive(Debug, Clone)]
pub struct MemoryWaitingRoom {
    clock: Arc<dyn Clock>,
    state: Arc<Mutex<Rooms>>,
}

impl Default for MemoryWaitingRoom {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryWaitingRoom {
    /// Rooms on the system clock.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// Rooms on `clock` (a [`ManualClock`](crate::ManualClock) in tests and simulations).
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            state: Arc::new(Mutex::new(Rooms::default())),
        }
    }
}

#[derive(Debug, Default)]
struct Rooms {
    rooms: BTreeMap<EventId, Room>,
    /// Which room a ticket belongs to.
    tickets: HashMap<QueueTicketId, EventId>,
}

#[derive(Debug)]
struct Room {
    settings: RoomSettings,
    opened_at: Option<Timestamp>,
    last_step_at: Timestamp,
    credit: u64,
    sold_out: bool,
    admitted_total: u64,
    next_ordinal: u64,
    /// Waiting visitors by ordinal: the queue, head first.
    queue: BTreeMap<u64, QueueTicketId>,
    /// Ordinals of visitors who left the queue while waiting, beyond the head.
    left: BTreeSet<u64>,
    /// Visitors who joined before the opening: (shuffle key, arrival, ticket).
    prequeue: Vec<(u64, u64, QueueTicketId)>,
    /// Live passes by expiry.
    active: BTreeSet<(Timestamp, QueueTicketId)>,
    /// Each visitor's current ticket (pre-queue, waiting or admitted).
    places: HashMap<HolderId, QueueTicketId>,
    entries: HashMap<QueueTicketId, Entry>,
}

#[derive(Debug, Clone)]
struct Entry {
    ticket: QueueTicket,
    place: Place,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    PreQueue,
    Waiting { ordinal: u64 },
    Admitted { expires_at: Timestamp },
    Lapsed,
    Left,
}

impl Room {
    fn new(settings: RoomSettings, now: Timestamp) -> Self {
        let mut room = Self {
            settings,
            opened_at: None,
            last_step_at: now,
            credit: 0,
            sold_out: false,
            admitted_total: 0,
            next_ordinal: 1,
            queue: BTreeMap::new(),
            left: BTreeSet::new(),
            prequeue: Vec::new(),
            active: BTreeSet::new(),
            places: HashMap::new(),
            entries: HashMap::new(),
        };
        room.open_if_due(now);
        room
    }

    /// Opens the room once its time has come: the pre-queue, in shuffle-key order, takes
    /// the first ordinals, and the rate starts with one second's credit.
    fn open_if_due(&mut self, now: Timestamp) {
        if self.opened_at.is_some() || self.settings.opens_at.is_some_and(|at| now < at) {
            return;
        }
        self.opened_at = Some(now);
        self.last_step_at = now;
        self.credit = AdmissionBudget::opening_credit(&self.settings);
        let mut prequeue = std::mem::take(&mut self.prequeue);
        prequeue.sort_unstable_by_key(|(key, arrival, _)| (*key, *arrival));
        for (_, _, ticket) in prequeue {
            self.enqueue(ticket);
        }
    }

    fn enqueue(&mut self, ticket: QueueTicketId) {
        let ordinal = self.next_ordinal;
        self.next_ordinal += 1;
        if let Some(entry) = self.entries.get_mut(&ticket) {
            entry.place = Place::Waiting { ordinal };
        }
        self.queue.insert(ordinal, ticket);
    }

    fn waiting(&self) -> u64 {
        (self.queue.len() + self.prequeue.len()) as u64
    }

    /// The place as of `now`: an admitted pass past its time reads as lapsed.
    fn place_at(&self, entry: &Entry, now: Timestamp) -> Place {
        match entry.place {
            Place::Admitted { expires_at } if expires_at <= now => Place::Lapsed,
            place => place,
        }
    }

    fn lapse_due(&mut self, now: Timestamp) -> u32 {
        let mut lapsed = 0;
        while let Some(first) = self.active.first()
            && first.0 <= now
        {
            if let Some((_, ticket)) = self.active.pop_first() {
                self.finish(&ticket, Place::Lapsed);
                lapsed += 1;
            }
        }
        lapsed
    }

    /// Ends a ticket's place: off the visitor's places, in state `end`.
    fn finish(&mut self, ticket: &QueueTicketId, end: Place) {
        if let Some(entry) = self.entries.get_mut(ticket) {
            entry.place = end;
            if self.places.get(&entry.ticket.visitor) == Some(ticket) {
                self.places.remove(&entry.ticket.visitor);
            }
        }
    }

    fn position(&self, ordinal: u64) -> u64 {
        let head = self
            .queue
            .first_key_value()
            .map_or(ordinal, |(head, _)| *head);
        let left_between = self.left.range(head..ordinal).count() as u64;
        ordinal - head - left_between + 1
    }

    fn stats(&self, now: Timestamp) -> RoomStats {
        RoomStats {
            waiting: self.waiting(),
            active: self.active.iter().filter(|(at, _)| *at > now).count() as u64,
            admitted_total: self.admitted_total,
            sold_out: self.sold_out,
            opened_at: self.opened_at,
        }
    }

    fn status(&self, entry: &Entry, now: Timestamp) -> QueueStatus {
        match self.place_at(entry, now) {
            Place::PreQueue => QueueStatus::PreQueue {
                opens_at: self.settings.opens_at.unwrap_or(now),
            },
            Place::Waiting { .. } if self.sold_out => QueueStatus::SoldOut,
            Place::Waiting { ordinal } => {
                let position = self.position(ordinal);
                QueueStatus::Waiting {
                    position,
                    estimated_wait_seconds: estimated_wait_seconds(
                        &self.settings,
                        &self.stats(now),
                        now,
                        position,
                    ),
                }
            }
            Place::Admitted { expires_at } => QueueStatus::Admitted {
                pass_expires_at: expires_at,
            },
            Place::Lapsed => QueueStatus::Lapsed,
            Place::Left => QueueStatus::Left,
        }
    }
}

fn no_room(event: &EventId) -> Error {
    Error::not_found(Entity::Room, event)
}

fn no_ticket(ticket: &QueueTicketId) -> Error {
    Error::not_found(Entity::QueueTicket, ticket)
}

impl Rooms {
    fn room_of(&mut self, ticket: &QueueTicketId) -> Result<&mut Room> {
        let event = self.tickets.get(ticket).ok_or_else(|| no_ticket(ticket))?;
        self.rooms.get_mut(event).ok_or_else(|| no_ticket(ticket))
    }
}

#[async_trait]
impl WaitingRoom for MemoryWaitingRoom {
    async fn configure(&self, event: &EventId, settings: RoomSettings) -> Result<()> {
        check_room_settings(&settings)?;
        let now = self.clock.now();
        let mut state = self.state.lock();
        match state.rooms.get_mut(event) {
            Some(room) => {
                room.settings = settings;
                room.credit = room
                    .credit
                    .min(AdmissionBudget::opening_credit(&room.settings));
                room.open_if_due(now);
            }
            None => {
                state.rooms.insert(event.clone(), Room::new(settings, now));
            }
        }
        Ok(())
    }

    async fn settings(&self, event: &EventId) -> Result<Option<RoomSettings>> {
        Ok(self.state.lock().rooms.get(event).map(|room| room.settings))
    }

    async fn rooms(&self) -> Result<Vec<EventId>> {
        Ok(self.state.lock().rooms.keys().cloned().collect())
    }

    async fn join(&self, event: &EventId, visitor: &HolderId) -> Result<QueueTicket> {
        let now = self.clock.now();
        let mut state = self.state.lock();
        let room = state.rooms.get_mut(event).ok_or_else(|| no_room(event))?;
        room.open_if_due(now);
        if let Some(ticket) = room.places.get(visitor).cloned()
            && let Some(entry) = room.entries.get(&ticket).cloned()
        {
            if room.place_at(&entry, now) != Place::Lapsed {
                return Ok(entry.ticket);
            }
            // A pass that lapsed and was not swept yet: finish it, then queue anew.
            if let Place::Admitted { expires_at } = entry.place {
                room.active.remove(&(expires_at, ticket.clone()));
            }
            room.finish(&ticket, Place::Lapsed);
        }
        let ticket = QueueTicket {
            id: QueueTicketId::generate(now),
            event: event.clone(),
            visitor: visitor.clone(),
            joined_at: now,
        };
        let id = ticket.id.clone();
        room.entries.insert(
            id.clone(),
            Entry {
                ticket: ticket.clone(),
                place: Place::PreQueue,
            },
        );
        room.places.insert(visitor.clone(), id.clone());
        if room.opened_at.is_some() {
            room.enqueue(id.clone());
        } else {
            let arrival = room.prequeue.len() as u64;
            let key = shuffle_key(room.settings.shuffle_seed, visitor);
            room.prequeue.push((key, arrival, id.clone()));
        }
        state.tickets.insert(id, event.clone());
        Ok(ticket)
    }

    async fn status(&self, ticket: &QueueTicketId) -> Result<QueueState> {
        let now = self.clock.now();
        let mut state = self.state.lock();
        let room = state.room_of(ticket)?;
        room.open_if_due(now);
        let entry = room.entries.get(ticket).ok_or_else(|| no_ticket(ticket))?;
        Ok(QueueState {
            ticket: entry.ticket.clone(),
            status: room.status(entry, now),
        })
    }

    async fn leave(&self, ticket: &QueueTicketId) -> Result<()> {
        let now = self.clock.now();
        let mut state = self.state.lock();
        let room = state.room_of(ticket)?;
        room.open_if_due(now);
        let entry = room.entries.get(ticket).ok_or_else(|| no_ticket(ticket))?;
        match room.place_at(entry, now) {
            Place::PreQueue => {
                room.prequeue.retain(|(_, _, id)| id != ticket);
            }
            Place::Waiting { ordinal } => {
                room.queue.remove(&ordinal);
                let head = room.queue.first_key_value().map(|(head, _)| *head);
                if head.is_some_and(|head| ordinal > head) {
                    room.left.insert(ordinal);
                }
            }
            Place::Admitted { expires_at } => {
                room.active.remove(&(expires_at, ticket.clone()));
            }
            Place::Lapsed | Place::Left => return Ok(()),
        }
        room.finish(ticket, Place::Left);
        Ok(())
    }

    async fn admit(&self, event: &EventId, free_units: u64) -> Result<AdmitStep> {
        let now = self.clock.now();
        let mut state = self.state.lock();
        let room = state.rooms.get_mut(event).ok_or_else(|| no_room(event))?;
        room.open_if_due(now);
        let lapsed = room.lapse_due(now);
        if room.opened_at.is_none() {
            return Ok(AdmitStep {
                admitted: 0,
                lapsed,
                stats: room.stats(now),
            });
        }
        room.sold_out = free_units == 0;
        let budget = AdmissionBudget::of(
            &room.settings,
            room.credit,
            now.saturating_since(room.last_step_at).as_millis() as u64,
            room.active.len() as u64,
            room.queue.len() as u64,
            free_units,
        );
        room.credit = budget.credit;
        room.last_step_at = now.max(room.last_step_at);
        let expires_at = now.saturating_add(room.settings.pass_ttl());
        let mut admitted = 0;
        while admitted < budget.admit {
            let Some((_, ticket)) = room.queue.pop_first() else {
                break;
            };
            if let Some(entry) = room.entries.get_mut(&ticket) {
                entry.place = Place::Admitted { expires_at };
            }
            room.active.insert((expires_at, ticket));
            admitted += 1;
        }
        room.admitted_total += admitted;
        // Leavers the head has passed no longer count for anyone's position.
        let head = room
            .queue
            .first_key_value()
            .map_or(u64::MAX, |(head, _)| *head);
        room.left = room.left.split_off(&head);
        Ok(AdmitStep {
            admitted: admitted as u32,
            lapsed,
            stats: room.stats(now),
        })
    }

    async fn stats(&self, event: &EventId) -> Result<RoomStats> {
        let now = self.clock.now();
        let mut state = self.state.lock();
        let room = state.rooms.get_mut(event).ok_or_else(|| no_room(event))?;
        room.open_if_due(now);
        Ok(room.stats(now))
    }
}
