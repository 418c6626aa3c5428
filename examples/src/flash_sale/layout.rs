//! The event on sale (the example server's demo stadium, or the first part of it) and the
//! seat map the buyers choose from.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

use rand::Rng;
use ticketing_core::{Event, EventId, EventSpec, Policy, PoolId, SeatId};

use super::SaleError;
use super::config::EventShape;
use crate::server::demo_event;

/// The demo stadium (`server::demo_event`), cut down to `shape`, as event `id`, with a
/// default hold of `hold_ttl_seconds`.
pub fn sale_event(
    id: &str,
    shape: &EventShape,
    hold_ttl_seconds: u32,
) -> Result<EventSpec, SaleError> {
    let demo = demo_event()?;
    let sections = first_distinct(demo.seats.iter().map(|seat| &seat.section), shape.sections)
        .map_err(|have| too_many("--sections", "sections", have))?;
    let rows = first_distinct(demo.seats.iter().map(|seat| &seat.row), shape.rows)
        .map_err(|have| too_many("--rows", "rows per section", have))?;
    let numbers_max = demo.seats.iter().map(|seat| seat.number).max().unwrap_or(0);
    let numbers = match shape.seats_per_row {
        Some(wanted) if wanted == 0 || wanted > numbers_max => {
            return Err(too_many("--seats-per-row", "seats per row", numbers_max));
        }
        Some(wanted) => wanted,
        None => numbers_max,
    };
    let seats = demo
        .seats
        .into_iter()
        .filter(|seat| {
            sections.contains(&seat.section) && rows.contains(&seat.row) && seat.number <= numbers
        })
        .collect::<Vec<_>>();
    let mut pools = demo.pools;
    if let Some(capacity) = shape.ga_capacity {
        pools.retain(|_| capacity > 0);
        pools.iter_mut().for_each(|pool| pool.capacity = capacity);
    }
    Ok(EventSpec {
        id: EventId::new(id)?,
        name: format!("Flash sale: {}", demo.name),
        seats,
        pools,
        sale_window: None,
        policy: Policy {
            reservation_ttl_seconds: hold_ttl_seconds,
            ..demo.policy
        },
    })
}

fn too_many(flag: &str, what: &str, have: u32) -> SaleError {
    SaleError::Invalid(format!(
        "{flag} must be from 1 to {have}: the demo stadium has {have} {what}"
    ))
}

/// The first `wanted` distinct values in order (all when `None`); `Err(count)` when there
/// are fewer than `wanted`, or `wanted` is 0.
fn first_distinct<'a>(
    values: impl Iterator<Item = &'a String>,
    wanted: Option<u32>,
) -> Result<HashSet<String>, u32> {
    let mut seen: Vec<&String> = Vec::new();
    let mut set = HashSet::new();
    for value in values {
        if set.insert(value.as_str()) {
            seen.push(value);
        }
    }
    let have = u32::try_from(seen.len()).unwrap_or(u32::MAX);
    let take = match wanted {
        Some(0) => return Err(have),
        Some(wanted) if wanted > have => return Err(have),
        Some(wanted) => wanted as usize,
        None => seen.len(),
    };
    Ok(seen.into_iter().take(take).cloned().collect())
}

/// One row: (seat number, index in the layout), by number.
type Row = Vec<(u32, u32)>;

/// A section's name and rows, front row first.
#[derive(Debug)]
pub(crate) struct Section {
    pub(crate) name: String,
    pub(crate) rows: Vec<Row>,
}

/// The layout as buyers browse it: sections in layout order (the most popular first), rows,
/// seats, and the GA pool.
#[derive(Debug)]
pub(crate) struct Layout {
    pub(crate) seat_ids: Vec<SeatId>,
    pub(crate) sections: Vec<Section>,
    pub(crate) index_of: HashMap<SeatId, u32>,
    pub(crate) pool: Option<(PoolId, u32)>,
}

impl Layout {
    pub(crate) fn new(event: &Event) -> Self {
        let mut sections: Vec<Section> = Vec::new();
        let mut where_is: HashMap<(&str, &str), (usize, usize)> = HashMap::new();
        for (index, seat) in event.seats.iter().enumerate() {
            let key = (seat.section.as_str(), seat.row.as_str());
            let (section, row) = *where_is.entry(key).or_insert_with(|| {
                let section = match sections.iter().position(|s| s.name == seat.section) {
                    Some(section) => section,
                    None => {
                        sections.push(Section {
                            name: seat.section.clone(),
                            rows: Vec::new(),
                        });
                        sections.len() - 1
                    }
                };
                sections[section].rows.push(Vec::new());
                (section, sections[section].rows.len() - 1)
            });
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            sections[section].rows[row].push((seat.number, index));
        }
        for row in sections.iter_mut().flat_map(|s| s.rows.iter_mut()) {
            row.sort_unstable();
        }
        let seat_ids: Vec<SeatId> = event.seats.iter().map(|seat| seat.id.clone()).collect();
        let index_of = (0..)
            .zip(&seat_ids)
            .map(|(index, id)| (id.clone(), index))
            .collect();
        Self {
            seat_ids,
            sections,
            index_of,
            pool: event
                .pools
                .first()
                .map(|pool| (pool.id.clone(), pool.capacity)),
        }
    }

    /// Seats plus GA places.
    pub(crate) fn capacity(&self) -> u64 {
        self.seat_ids.len() as u64 + self.pool.as_ref().map_or(0, |(_, c)| u64::from(*c))
    }

    /// Layout indexes of `seats` (unknown ones skipped).
    pub(crate) fn indexes<'a>(&self, seats: impl IntoIterator<Item = &'a SeatId>) -> Vec<u32> {
        seats
            .into_iter()
            .filter_map(|seat| self.index_of.get(seat).copied())
            .collect()
    }
}

/// Sections chosen by a Zipf law over their popularity rank (layout order).
#[derive(Debug)]
pub(crate) struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    pub(crate) fn new(count: usize, exponent: f64) -> Self {
        let mut total = 0.0;
        let cumulative = (1..=count)
            .map(|rank| {
                total += 1.0 / (rank as f64).powf(exponent);
                total
            })
            .collect();
        Self { cumulative }
    }

    /// A rank from 0; `None` when there is nothing to choose from.
    pub(crate) fn sample(&self, rng: &mut impl Rng) -> Option<usize> {
        let total = *self.cumulative.last()?;
        let point = rng.random::<f64>() * total;
        let rank = self.cumulative.partition_point(|&c| c <= point);
        Some(rank.min(self.cumulative.len() - 1))
    }
}

/// Sections a buyer looks at before giving up on picking seats itself.
const SECTION_TRIES: usize = 3;
/// Rows of a section a buyer looks at.
const ROW_TRIES: usize = 4;

/// The seat map the buyers see: which seats look taken. Fed by what the generator sees
/// (holds, conflicts, cancels, holds it let lapse), as a page fed by the change stream
/// would be; stale by the operations in flight, so buyers race for the same free seats.
#[derive(Debug)]
pub(crate) struct SeatView {
    taken: Vec<AtomicBool>,
}

impl SeatView {
    pub(crate) fn new(seats: usize) -> Self {
        Self {
            taken: (0..seats).map(|_| AtomicBool::new(false)).collect(),
        }
    }

    pub(crate) fn mark(&self, seats: &[u32], taken: bool) {
        for &seat in seats {
            if let Some(flag) = self.taken.get(seat as usize) {
                flag.store(taken, Ordering::Relaxed);
            }
        }
    }

    fn free(&self, seat: u32) -> bool {
        self.taken
            .get(seat as usize)
            .is_some_and(|flag| !flag.load(Ordering::Relaxed))
    }

    /// A block of `size` adjacent seats that look free: a section by popularity, a row
    /// nearer the front more often, then the first free block from a random seat on.
    /// `None` when the buyer found none where it looked.
    pub(crate) fn pick(
        &self,
        layout: &Layout,
        zipf: &Zipf,
        size: usize,
        rng: &mut impl Rng,
    ) -> Option<Vec<u32>> {
        for _ in 0..SECTION_TRIES {
            let section = &layout.sections[zipf.sample(rng)?];
            for _ in 0..ROW_TRIES {
                let front_bias = rng.random::<f64>().powi(2);
                let row_index = (front_bias * section.rows.len() as f64) as usize;
                let row = section.rows.get(row_index)?;
                let start = rng.random_range(0..row.len().max(1));
                if let Some(block) = self.block_in(row, size, start) {
                    return Some(block);
                }
            }
        }
        None
    }

    fn block_in(&self, row: &Row, size: usize, start: usize) -> Option<Vec<u32>> {
        if size == 0 || row.len() < size {
            return None;
        }
        let starts = row.len() - size + 1;
        (0..starts)
            .map(|offset| (start + offset) % starts)
            .find_map(|first| {
                let block = &row[first..first + size];
                let adjacent = block.windows(2).all(|pair| pair[1].0 == pair[0].0 + 1);
                (adjacent && block.iter().all(|&(_, seat)| self.free(seat)))
                    .then(|| block.iter().map(|&(_, seat)| seat).collect())
            })
    }
}
