//! Organizer operations: create events, block seats, size pools.

use crate::domain::{ChangeKind, Event, EventSpec, SeatStatus};
use crate::error::{ConflictReason, Error, Result};
use crate::id::{EventId, PoolId, SeatId};
use crate::sync::Arc;
use crate::validate;

use super::MemoryStore;
use super::event::{EventState, SeatSlot};
use crate::time::Timestamp;

/// Which pool number an organizer sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PoolField {
    Capacity,
    Blocked,
}

impl MemoryStore {
    pub(super) fn create_event_now(&self, spec: EventSpec) -> Result<Event> {
        validate::check_event_spec(&spec)?;
        let mut events = self.events.write();
        if events.contains_key(&spec.id) {
            return Err(Error::Conflict {
                reason: ConflictReason::EventExists,
            });
        }
        let event = Event::from_spec(spec, self.now());
        let state = EventState::new(event.clone(), self.config.change_retention);
        events.insert(event.id.clone(), Arc::new(state));
        Ok(event)
    }

    pub(super) fn block_now(&self, event: &EventId, seats: &[SeatId], blocked: bool) -> Result<()> {
        validate::check_block(seats)?;
        let state = self.event_state(event)?;
        let indices = seats
            .iter()
            .map(|seat| state.seat_index(seat))
            .collect::<Result<Vec<u32>>>()?;
        let now = self.now();
        let gate = self.enter(&state, now);
        let changed = self.block_seats(&state, &indices, blocked, now)?;
        if gate.serves() && changed && !blocked {
            self.serve(&state, now);
        }
        drop(gate);
        Ok(())
    }

    /// Blocks or unblocks seats (by index); whether any changed.
    fn block_seats(
        &self,
        state: &EventState,
        indices: &[u32],
        blocked: bool,
        now: Timestamp,
    ) -> Result<bool> {
        state.sweep_if_due(now);
        let mut sorted = indices.to_vec();
        sorted.sort_unstable();
        let mut guards = state.lock_seats(&sorted);
        let slot = |index: u32| {
            sorted
                .binary_search(&index)
                .unwrap_or_else(|_| unreachable!("locked"))
        };
        if blocked {
            let unavailable: Vec<SeatId> = indices
                .iter()
                .filter(|index| {
                    !matches!(*guards[slot(**index)], SeatSlot::Free | SeatSlot::Blocked)
                })
                .map(|index| state.seat_id(*index))
                .collect();
            if !unavailable.is_empty() {
                return Err(Error::SeatUnavailable { seats: unavailable });
            }
        }
        let (from_free, to) = if blocked {
            (true, SeatSlot::Blocked)
        } else {
            (false, SeatSlot::Free)
        };
        let changing: Vec<u32> = indices
            .iter()
            .copied()
            .filter(|index| {
                let current = &*guards[slot(*index)];
                if from_free {
                    current.is_free()
                } else {
                    matches!(current, SeatSlot::Blocked)
                }
            })
            .collect();
        if changing.is_empty() {
            return Ok(false);
        }
        for index in &changing {
            *guards[slot(*index)] = to.clone();
        }
        let seat_ids = state.seat_ids(&changing);
        let (kind, status) = if blocked {
            (
                ChangeKind::SeatsBlocked { seats: seat_ids },
                SeatStatus::Blocked,
            )
        } else {
            (
                ChangeKind::SeatsUnblocked { seats: seat_ids },
                SeatStatus::Available,
            )
        };
        let mut journal = state.journal.lock();
        journal.append(
            state,
            now,
            kind,
            changing.iter().map(|index| (*index, status)),
        );
        drop(journal);
        drop(guards);
        Ok(true)
    }

    pub(super) fn set_pool_now(
        &self,
        event: &EventId,
        pool: &PoolId,
        field: PoolField,
        value: u32,
    ) -> Result<()> {
        validate::check_capacity(value)?;
        let state = self.event_state(event)?;
        let index = state.pool_index(pool)?;
        let now = self.now();
        let gate = self.enter(&state, now);
        let changed = set_pool_counts(&state, pool, index, field, value, now)?;
        if gate.serves() && changed {
            self.serve(&state, now);
        }
        drop(gate);
        Ok(())
    }
}

/// Sets a pool's capacity or blocked count; whether it changed.
fn set_pool_counts(
    state: &EventState,
    pool: &PoolId,
    index: usize,
    field: PoolField,
    value: u32,
    now: Timestamp,
) -> Result<bool> {
    state.sweep_if_due(now);
    let mut journal = state.journal.lock();
    let counts = journal.pool_mut(index);
    let (capacity, blocked) = match field {
        PoolField::Capacity => (value, counts.blocked),
        PoolField::Blocked => (counts.capacity, value),
    };
    if counts.held + counts.sold + blocked > capacity {
        return Err(Error::Conflict {
            reason: ConflictReason::CapacityBelowUsage {
                used: counts.used(),
            },
        });
    }
    if (capacity, blocked) == (counts.capacity, counts.blocked) {
        return Ok(false);
    }
    counts.capacity = capacity;
    counts.blocked = blocked;
    let kind = match field {
        PoolField::Capacity => ChangeKind::PoolResized {
            pool: pool.clone(),
            capacity,
        },
        PoolField::Blocked => ChangeKind::PoolBlocked {
            pool: pool.clone(),
            blocked,
        },
    };
    journal.append(state, now, kind, []);
    journal.assert_pools();
    Ok(true)
}
