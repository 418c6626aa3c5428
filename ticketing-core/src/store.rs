//! The store trait: domain-level operations, each atomic in the backend's own way.

use async_trait::async_trait;

use crate::domain::{
    Availability, Change, CommitRequest, Event, EventSpec, EventSummary, Order, Page, Refund,
    Reservation, ReserveRequest, Ticket,
};
use crate::error::Result;
use crate::id::{EventId, HolderId, OrderId, PoolId, ReservationId, SeatId, TicketCode, TicketId};
use crate::token::ReservationToken;

/// Seat and ticket inventory: the operations every backend provides, with the same
/// semantics and the same errors (the conformance kit in `testkit` checks this).
///
/// Every operation is atomic: it takes effect entirely or not at all, and concurrent
/// operations behave as if run one at a time. Errors follow the precedence of
/// [`crate::Error`]: a request is validated first (nothing is looked up for a malformed
/// request), then what it names is looked up, then the caller's right to act (token,
/// idempotency) is checked, then the state.
///
/// **Expiry is lazy and swept.** A reservation whose `expires_at` has passed reads as
/// [`ReservationStatus::Expired`](crate::ReservationStatus::Expired) and its items count as
/// free at once; [`InventoryStore::expire_due`] (or any operation that needs those items)
/// finalizes it and logs [`ChangeKind::Expired`](crate::ChangeKind::Expired). When exactly
/// that happens is not observable except through change sequence numbers.
///
/// The exact rules, operation by operation, are on the page below.
///
/// **Writing a backend.** Implement every method so that `ticketing_core::conformance_suite!`
/// passes against a real server; call the `check_*` functions of [`crate::validate`] first.
#[doc = include_str!("docs/semantics.md")]
#[async_trait]
pub trait InventoryStore: Send + Sync {
    /// Creates an event: every seat available, every pool at its capacity, change 1
    /// ([`ChangeKind::EventCreated`](crate::ChangeKind::EventCreated)) logged.
    ///
    /// Errors: `invalid_request` (see [`crate::validate::check_event_spec`]);
    /// `conflict` [`EventExists`](crate::ConflictReason::EventExists).
    async fn create_event(&self, spec: EventSpec) -> Result<Event>;

    /// The event as created (layout, policy).
    ///
    /// Errors: `not_found`.
    async fn event(&self, event: &EventId) -> Result<Event>;

    /// Events ordered by id, after the page's cursor.
    ///
    /// Errors: `invalid_request` for a limit out of range.
    async fn events(&self, page: Page) -> Result<Vec<EventSummary>>;

    /// Sets a pool's capacity; never below what it has held (live), sold and blocked.
    ///
    /// Errors: `invalid_request` (capacity over the maximum), `not_found` (event, pool),
    /// `conflict` [`CapacityBelowUsage`](crate::ConflictReason::CapacityBelowUsage).
    async fn resize_pool(&self, event: &EventId, pool: &PoolId, capacity: u32) -> Result<()>;

    /// Sets how many of a pool's units are blocked (off sale); never so many that held
    /// (live), sold and blocked exceed capacity.
    ///
    /// Errors: as [`InventoryStore::resize_pool`].
    async fn set_pool_blocked(&self, event: &EventId, pool: &PoolId, blocked: u32) -> Result<()>;

    /// Blocks (`blocked = true`) or unblocks seats, all or nothing. Blocking needs every seat
    /// free or already blocked; unblocking frees the blocked ones and leaves the rest.
    /// Logs the seats whose state changed, if any.
    ///
    /// Errors: `invalid_request` (empty or duplicate list, too many seats), `not_found`
    /// (event, then the first unknown seat), `seat_unavailable` (blocking a held or sold seat).
    async fn block(&self, event: &EventId, seats: &[SeatId], blocked: bool) -> Result<()>;

    /// Reserves every item asked for, or nothing.
    ///
    /// In order: the request's shape ([`crate::validate::check_reserve`]); the event
    /// (`not_found`); the client reservation id — a repeat with the same payload returns
    /// the first outcome, success or failure (a success comes back as the reservation now,
    /// without its token), another payload is `idempotency_mismatch`; the TTL against the
    /// event's maximum (`invalid_request`); unknown seats and pools (`not_found`, first in
    /// request order); the sale window (`not_on_sale`); holder limits (`limit_exceeded`:
    /// reservations, then seats); explicit seats (`seat_unavailable` listing every one not
    /// free); GA pools in request order (`sold_out` with what remains); best available
    /// (`sold_out` with `pool: None` and the count of matching free seats).
    ///
    /// Best available picks, among free seats not named explicitly and matching the
    /// section and category, the first `count` in layout order; with `adjacent`, the first
    /// seat in layout order that starts a run of `count` such seats in its row (same section
    /// and row) with consecutive numbers upward.
    ///
    /// Outcomes from the TTL check on are remembered under the client reservation id for
    /// the idempotency retention.
    async fn reserve(&self, request: ReserveRequest) -> Result<Reservation>;

    /// Runs independent reservations, each all or nothing on its own, in one round trip
    /// where the backend can. Results are in request order. The default runs them one by one.
    async fn reserve_batch(&self, requests: Vec<ReserveRequest>) -> Vec<Result<Reservation>> {
        let mut results = Vec::with_capacity(requests.len());
        for request in requests {
            results.push(self.reserve(request).await);
        }
        results
    }

    /// Turns a reservation into an order: the chosen items (all by default) are sold, one
    /// ticket each, and the rest released, in one step.
    ///
    /// In order: the request's shape; the reservation (`not_found`); the token
    /// (`invalid_token`); the idempotency key, scoped to the event — a repeat with the same
    /// payload returns the first outcome (success: the order now), another payload is
    /// `idempotency_mismatch`; the status — cancelled or committed is
    /// `reservation_not_active`; the chosen items must belong to the reservation and be at
    /// least one (`invalid_request`); a lapsed hold is `reservation_expired` unless the
    /// policy is [`LateCommit::IfStillAvailable`](crate::LateCommit::IfStillAvailable) and
    /// every chosen item is still free (or still held by this reservation). Outcomes from
    /// the status check on are remembered under the key.
    ///
    /// Tickets follow the reservation's order: its chosen seats, then its chosen GA units.
    async fn commit(&self, reservation: &ReservationId, request: CommitRequest) -> Result<Order>;

    /// Runs independent commits, each all or nothing on its own and each with exactly the
    /// answer [`InventoryStore::commit`] would give, as if run one after the other in the
    /// given order (a repeat of an earlier commit of the same batch replays its outcome).
    /// One round trip, and on a durable backend one transaction and one log flush, where the
    /// backend can. Results are in request order. The default runs them one by one.
    async fn commit_batch(
        &self,
        commits: Vec<(ReservationId, CommitRequest)>,
    ) -> Vec<Result<Order>> {
        let mut results = Vec::with_capacity(commits.len());
        for (reservation, request) in commits {
            results.push(self.commit(&reservation, request).await);
        }
        results
    }

    /// Whether [`InventoryStore::commit_batch`] costs less than its commits one by one (one
    /// round trip, one transaction). [`Coalescing`](crate::Coalescing) gathers commits only
    /// for a store that says so: over the default one-by-one `commit_batch` it would only
    /// queue commits that could have run at once. The default: `false`.
    fn batches_commits(&self) -> bool {
        false
    }

    /// Sets an active reservation's hold to end `ttl_seconds` from now; the total hold,
    /// from creation, may not exceed the event's maximum TTL.
    ///
    /// Errors: `invalid_request` (TTL out of bounds, or past the maximum total hold),
    /// `not_found`, `invalid_token`, `reservation_not_active`, `reservation_expired`.
    async fn extend(
        &self,
        reservation: &ReservationId,
        token: &ReservationToken,
        ttl_seconds: u32,
    ) -> Result<Reservation>;

    /// Cancels an active reservation, freeing its items. Cancelling a cancelled reservation
    /// succeeds and changes nothing.
    ///
    /// Errors: `not_found`, `invalid_token`, `reservation_not_active` (committed),
    /// `reservation_expired`.
    async fn cancel(&self, reservation: &ReservationId, token: &ReservationToken) -> Result<()>;

    /// Refunds some (`Some`) or all still-valid (`None`) tickets of an order; their items go
    /// back on sale or to blocked, by the event's policy.
    ///
    /// Errors: `invalid_request` (empty or duplicate list), `not_found` (order, then a
    /// ticket not in it), `conflict` (a named ticket already refunded or checked in; with
    /// `None` and no valid ticket left, the reason that applies to the order's first ticket).
    async fn refund(&self, order: &OrderId, tickets: Option<&[TicketId]>) -> Result<Refund>;

    /// Gives a valid ticket to another holder, with a new gate code; the recipient's seat
    /// limit applies.
    ///
    /// Errors: `not_found`, `invalid_request` (to the current holder), `conflict`
    /// (refunded or checked in), `limit_exceeded`.
    async fn transfer(&self, ticket: &TicketId, to: &HolderId) -> Result<Ticket>;

    /// Admits the ticket with this code, once.
    ///
    /// Errors: `not_found`, `conflict` (checked in already, or refunded).
    async fn check_in(&self, code: &TicketCode) -> Result<Ticket>;

    /// Finalizes up to `limit` reservations whose hold has lapsed, oldest first, logging
    /// each; also forgets idempotency records past their retention. Returns how many
    /// reservations it expired. Safe to run from many places at once.
    async fn expire_due(&self, limit: usize) -> Result<usize>;

    /// The event's inventory and the sequence number it reflects, consistent with the
    /// change log: applying changes after `seq` to it gives later states. Lapsed
    /// reservations of the event are finalized (and logged) first, so that replaying the
    /// log up to `seq` yields exactly this snapshot.
    ///
    /// Errors: `not_found`.
    async fn availability(&self, event: &EventId) -> Result<Availability>;

    /// Up to `limit` changes with sequence numbers after `after`, in order.
    ///
    /// Errors: `invalid_request` (limit), `not_found`, `changes_pruned` when changes after
    /// `after` are no longer retained.
    async fn changes(&self, event: &EventId, after: u64, limit: usize) -> Result<Vec<Change>>;

    /// A reservation, without its token.
    ///
    /// Errors: `not_found`.
    async fn reservation(&self, reservation: &ReservationId) -> Result<Reservation>;

    /// An order with its tickets as they are now.
    ///
    /// Errors: `not_found`.
    async fn order(&self, order: &OrderId) -> Result<Order>;

    /// A ticket as it is now.
    ///
    /// Errors: `not_found`.
    async fn ticket(&self, ticket: &TicketId) -> Result<Ticket>;
}
