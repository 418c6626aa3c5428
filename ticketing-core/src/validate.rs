//! Validation: every bound in one place, checked before any backend runs.
//!
//! Stores call these first, so a bad request gets the same specific error from every
//! backend and changes nothing. Checks that need the event (does this seat exist, is this
//! TTL within the event's maximum) are the stores' and come after these.

use std::collections::HashSet;

use crate::domain::{BestAvailable, CommitRequest, EventSpec, GaRequest, Page, ReserveRequest};
use crate::error::{Error, Result};
use crate::id::{ID_LENGTH_MAX, SeatId, TicketId};
use crate::waitlist::WaitlistRequest;

/// The longest hold any event may allow: 30 minutes.
pub const RESERVATION_TTL_SECONDS_MAX: u32 = 30 * 60;
/// Seats plus GA units plus best-available seats in one reservation.
pub const ITEMS_PER_RESERVATION_MAX: u32 = 64;
/// Assigned seats in one event's layout.
pub const SEATS_PER_EVENT_MAX: usize = 250_000;
/// GA pools in one event.
pub const POOLS_PER_EVENT_MAX: usize = 256;
/// Units in one GA pool.
pub const POOL_CAPACITY_MAX: u32 = 10_000_000;
/// Bytes in a name, section, row or category.
pub const TEXT_LENGTH_MAX: usize = 128;
/// Items in one page of a listing.
pub const PAGE_LIMIT_MAX: u32 = 1_000;
/// Changes in one read of a change log.
pub const CHANGES_LIMIT_MAX: usize = 10_000;
/// Seats in one [`crate::InventoryStore::block`] call.
pub const SEATS_PER_BLOCK_MAX: usize = 10_000;
/// Reservations in one [`crate::InventoryStore::reserve_batch`] call.
pub const BATCH_SIZE_MAX: usize = 1_024;
/// Entries waiting on one event's waitlist at once.
pub const WAITLIST_ENTRIES_MAX: usize = 10_000;

const _: () = assert!(ITEMS_PER_RESERVATION_MAX as usize <= u16::MAX as usize);
const _: () = assert!(SEATS_PER_EVENT_MAX <= u32::MAX as usize);
const _: () = assert!(POOL_CAPACITY_MAX as u64 * POOLS_PER_EVENT_MAX as u64 <= u32::MAX as u64);
const _: () = assert!(TEXT_LENGTH_MAX >= ID_LENGTH_MAX);

/// Checks free text: at most [`TEXT_LENGTH_MAX`] bytes, no control characters.
pub(crate) fn check_text(field: &'static str, text: &str, required: bool) -> Result<()> {
    if required && text.trim().is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if text.len() > TEXT_LENGTH_MAX {
        return Err(Error::invalid(
            field,
            format!("must be at most {TEXT_LENGTH_MAX} bytes"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// Checks a hold time against the absolute bounds (the event's own maximum comes later).
pub fn check_ttl_seconds(ttl_seconds: u32) -> Result<()> {
    if ttl_seconds == 0 || ttl_seconds > RESERVATION_TTL_SECONDS_MAX {
        return Err(Error::invalid(
            "ttl_seconds",
            format!("must be 1 to {RESERVATION_TTL_SECONDS_MAX}, got {ttl_seconds}"),
        ));
    }
    Ok(())
}

/// Checks an event before it is created.
pub fn check_event_spec(spec: &EventSpec) -> Result<()> {
    check_text("name", &spec.name, true)?;
    if spec.seats.is_empty() && spec.pools.is_empty() {
        return Err(Error::invalid(
            "seats",
            "an event needs at least one seat or GA pool",
        ));
    }
    if spec.seats.len() > SEATS_PER_EVENT_MAX {
        return Err(Error::invalid(
            "seats",
            format!("at most {SEATS_PER_EVENT_MAX} seats"),
        ));
    }
    if spec.pools.len() > POOLS_PER_EVENT_MAX {
        return Err(Error::invalid(
            "pools",
            format!("at most {POOLS_PER_EVENT_MAX} pools"),
        ));
    }
    let mut seat_ids = HashSet::with_capacity(spec.seats.len());
    let mut places = HashSet::with_capacity(spec.seats.len());
    for seat in &spec.seats {
        if !seat_ids.insert(&seat.id) {
            return Err(Error::invalid(
                "seats",
                format!("seat '{}' listed twice", seat.id),
            ));
        }
        // Adjacency is by number within a row, so a place must name one seat.
        if !places.insert((&seat.section, &seat.row, seat.number)) {
            return Err(Error::invalid(
                "seats",
                format!(
                    "seat '{}' has the same section, row and number as another",
                    seat.id
                ),
            ));
        }
        check_text("seats.section", &seat.section, false)?;
        check_text("seats.row", &seat.row, false)?;
        check_text("seats.category", &seat.category, false)?;
        if !seat.position.x.is_finite() || !seat.position.y.is_finite() {
            return Err(Error::invalid(
                "seats.position",
                "coordinates must be finite",
            ));
        }
    }
    let mut pool_ids = HashSet::with_capacity(spec.pools.len());
    for pool in &spec.pools {
        if !pool_ids.insert(&pool.id) {
            return Err(Error::invalid(
                "pools",
                format!("pool '{}' listed twice", pool.id),
            ));
        }
        check_text("pools.name", &pool.name, false)?;
        check_capacity(pool.capacity)?;
    }
    if let Some(window) = spec.sale_window
        && let (Some(opens), Some(closes)) = (window.opens_at, window.closes_at)
        && opens >= closes
    {
        return Err(Error::invalid(
            "sale_window",
            "opens_at must be before closes_at",
        ));
    }
    let policy = &spec.policy;
    check_ttl_seconds(policy.reservation_ttl_seconds_max).map_err(|_| {
        Error::invalid(
            "policy.reservation_ttl_seconds_max",
            format!("must be 1 to {RESERVATION_TTL_SECONDS_MAX}"),
        )
    })?;
    if policy.reservation_ttl_seconds == 0
        || policy.reservation_ttl_seconds > policy.reservation_ttl_seconds_max
    {
        return Err(Error::invalid(
            "policy.reservation_ttl_seconds",
            "must be 1 to policy.reservation_ttl_seconds_max",
        ));
    }
    if policy.holder_seats_max == Some(0) {
        return Err(Error::invalid(
            "policy.holder_seats_max",
            "must be at least 1",
        ));
    }
    if policy.holder_reservations_max == Some(0) {
        return Err(Error::invalid(
            "policy.holder_reservations_max",
            "must be at least 1",
        ));
    }
    check_ttl_seconds(policy.waitlist_offer_ttl_seconds).map_err(|_| {
        Error::invalid(
            "policy.waitlist_offer_ttl_seconds",
            format!("must be 1 to {RESERVATION_TTL_SECONDS_MAX}"),
        )
    })?;
    Ok(())
}

/// Checks a pool capacity against [`POOL_CAPACITY_MAX`].
pub fn check_capacity(capacity: u32) -> Result<()> {
    if capacity > POOL_CAPACITY_MAX {
        return Err(Error::invalid(
            "capacity",
            format!("at most {POOL_CAPACITY_MAX}"),
        ));
    }
    Ok(())
}

fn check_seat_list(field: &'static str, seats: &[SeatId]) -> Result<()> {
    if seats.len() > ITEMS_PER_RESERVATION_MAX as usize {
        return Err(Error::invalid(
            field,
            format!("at most {ITEMS_PER_RESERVATION_MAX} items"),
        ));
    }
    // Lists are short (bounded above): a quadratic scan beats hashing here.
    for (index, seat) in seats.iter().enumerate() {
        if seats[..index].contains(seat) {
            return Err(Error::invalid(field, format!("seat '{seat}' listed twice")));
        }
    }
    Ok(())
}

/// Checks a list of seats to block or unblock: 1 to [`SEATS_PER_BLOCK_MAX`], no duplicates.
pub fn check_block(seats: &[SeatId]) -> Result<()> {
    if seats.is_empty() {
        return Err(Error::invalid("seat_ids", "must not be empty"));
    }
    if seats.len() > SEATS_PER_BLOCK_MAX {
        return Err(Error::invalid(
            "seat_ids",
            format!("at most {SEATS_PER_BLOCK_MAX} seats"),
        ));
    }
    let mut seen = HashSet::with_capacity(seats.len());
    if let Some(seat) = seats.iter().find(|seat| !seen.insert(*seat)) {
        return Err(Error::invalid(
            "seat_ids",
            format!("seat '{seat}' listed twice"),
        ));
    }
    Ok(())
}

/// Checks the tickets named in a refund: `None` (all) or 1 to
/// [`ITEMS_PER_RESERVATION_MAX`] distinct tickets.
pub fn check_refund(tickets: Option<&[TicketId]>) -> Result<()> {
    let Some(tickets) = tickets else {
        return Ok(());
    };
    if tickets.is_empty() {
        return Err(Error::invalid(
            "ticket_ids",
            "must not be empty; omit it to refund all",
        ));
    }
    if tickets.len() > ITEMS_PER_RESERVATION_MAX as usize {
        return Err(Error::invalid(
            "ticket_ids",
            format!("at most {ITEMS_PER_RESERVATION_MAX} tickets"),
        ));
    }
    for (index, ticket) in tickets.iter().enumerate() {
        if tickets[..index].contains(ticket) {
            return Err(Error::invalid(
                "ticket_ids",
                format!("ticket '{ticket}' listed twice"),
            ));
        }
    }
    Ok(())
}

fn check_ga_list(field: &'static str, ga: &[GaRequest]) -> Result<u32> {
    if ga.len() > ITEMS_PER_RESERVATION_MAX as usize {
        return Err(Error::invalid(
            field,
            format!("at most {ITEMS_PER_RESERVATION_MAX} items"),
        ));
    }
    let mut units: u32 = 0;
    for (index, request) in ga.iter().enumerate() {
        if request.quantity == 0 {
            return Err(Error::invalid(
                field,
                format!("quantity for pool '{}' must be at least 1", request.pool),
            ));
        }
        if ga[..index]
            .iter()
            .any(|earlier| earlier.pool == request.pool)
        {
            return Err(Error::invalid(
                field,
                format!("pool '{}' listed twice", request.pool),
            ));
        }
        units = units.saturating_add(request.quantity);
    }
    Ok(units)
}

fn check_best_available(best: &BestAvailable) -> Result<()> {
    if best.count == 0 {
        return Err(Error::invalid("best_available.count", "must be at least 1"));
    }
    if let Some(section) = &best.section {
        check_text("best_available.section", section, true)?;
    }
    if let Some(category) = &best.category {
        check_text("best_available.category", category, true)?;
    }
    Ok(())
}

/// Checks a reservation request's shape: at least one item, no duplicates, no zero
/// quantities, at most [`ITEMS_PER_RESERVATION_MAX`] items, a TTL within bounds.
pub fn check_reserve(request: &ReserveRequest) -> Result<()> {
    check_seat_list("seat_ids", &request.seats)?;
    let ga_units = check_ga_list("ga", &request.ga)?;
    let best_count = match &request.best_available {
        Some(best) => {
            check_best_available(best)?;
            best.count
        }
        None => 0,
    };
    let seats = u32::try_from(request.seats.len()).unwrap_or(u32::MAX);
    let items = seats.saturating_add(ga_units).saturating_add(best_count);
    if items == 0 {
        return Err(Error::invalid(
            "seat_ids",
            "a reservation needs at least one seat, GA unit or best-available seat",
        ));
    }
    if items > ITEMS_PER_RESERVATION_MAX {
        return Err(Error::invalid(
            "seat_ids",
            format!("at most {ITEMS_PER_RESERVATION_MAX} items per reservation, got {items}"),
        ));
    }
    if let Some(ttl_seconds) = request.ttl_seconds {
        check_ttl_seconds(ttl_seconds)?;
    }
    Ok(())
}

/// Checks a commit request's shape (whether its items belong to the reservation is the
/// store's check).
pub fn check_commit(request: &CommitRequest) -> Result<()> {
    if let Some(seats) = &request.seats {
        check_seat_list("seat_ids", seats)?;
    }
    if let Some(ga) = &request.ga {
        check_ga_list("ga", ga)?;
    }
    Ok(())
}

/// Checks a waitlist request's shape: a quantity of 1 to [`ITEMS_PER_RESERVATION_MAX`], a
/// section that is text, and no seat filters on a GA entry. Whether the event can ever
/// satisfy it is the store's check.
pub fn check_waitlist_request(request: &WaitlistRequest) -> Result<()> {
    if request.quantity == 0 || request.quantity > ITEMS_PER_RESERVATION_MAX {
        return Err(Error::invalid(
            "quantity",
            format!(
                "must be 1 to {ITEMS_PER_RESERVATION_MAX}, got {}",
                request.quantity
            ),
        ));
    }
    if let Some(section) = &request.section {
        check_text("section", section, true)?;
    }
    if request.pool.is_some() {
        if request.section.is_some() {
            return Err(Error::invalid(
                "section",
                "a GA entry (with a pool) takes no section",
            ));
        }
        if request.adjacent {
            return Err(Error::invalid(
                "adjacent",
                "a GA entry (with a pool) takes no adjacency",
            ));
        }
    }
    Ok(())
}

/// Checks a listing page.
pub fn check_page(page: &Page) -> Result<()> {
    if page.limit == 0 || page.limit > PAGE_LIMIT_MAX {
        return Err(Error::invalid(
            "limit",
            format!("must be 1 to {PAGE_LIMIT_MAX}"),
        ));
    }
    Ok(())
}

/// Checks how many changes a read asks for.
pub fn check_changes_limit(limit: usize) -> Result<()> {
    if limit == 0 || limit > CHANGES_LIMIT_MAX {
        return Err(Error::invalid(
            "limit",
            format!("must be 1 to {CHANGES_LIMIT_MAX}"),
        ));
    }
    Ok(())
}

/// Checks the size of a batch of reservations.
pub fn check_batch_size(size: usize) -> Result<()> {
    if size > BATCH_SIZE_MAX {
        return Err(Error::invalid(
            "batch",
            format!("at most {BATCH_SIZE_MAX} reservations"),
        ));
    }
    Ok(())
}
