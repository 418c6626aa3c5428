//! # ticketing-core
//!
//! The heart of a ticketing platform: seat and ticket inventory that holds seats for a few
//! minutes, commits them after payment, cancels, expires, refunds and transfers them — and
//! never sells a seat twice.
//!
//! - [`InventoryStore`]: the operations, each atomic, with the same semantics on every
//!   backend (in-memory here; PostgreSQL and Redis in their own crates).
//! - [`MemoryStore`]: the embedded default, with fine-grained locking so buyers of
//!   different seats of one event do not wait for each other.
//! - [`WaitingRoom`]: fair admission to a hot on-sale ([`MemoryWaitingRoom`] here), with
//!   signed admission passes ([`PassKey`]).
//! - [`WaitlistStore`]: holders wait for a sold-out event; freed inventory is offered to
//!   them in the step that frees it ([`MemoryStore`] implements it).
//! - [`Error`]: one error type with a stable [`Error::code`] per variant.
//! - [`validate`]: every bound, checked once before any backend runs.
//!
//! ```
//! use ticketing_core::{
//!     CommitRequest, EventId, EventSpec, HolderId, IdempotencyKey, InventoryStore,
//!     MemoryStore, PoolId, PoolSpec, Policy, ReserveRequest, Seat, SeatId, SeatStatus,
//! };
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> ticketing_core::Result<()> {
//! let store = MemoryStore::new();
//! let event = EventId::new("concert-2026")?;
//! let seat = |n: u32| Seat {
//!     id: SeatId::new(format!("A-{n}")).unwrap(),
//!     section: "Floor".into(),
//!     row: "A".into(),
//!     number: n,
//!     category: "standard".into(),
//!     accessible: false,
//!     position: Default::default(),
//! };
//! store
//!     .create_event(EventSpec {
//!         id: event.clone(),
//!         name: "Concert".into(),
//!         seats: (1..=10).map(seat).collect(),
//!         pools: vec![PoolSpec { id: PoolId::new("standing")?, name: "Standing".into(), capacity: 500 }],
//!         sale_window: None,
//!         policy: Policy::default(),
//!     })
//!     .await?;
//!
//! // Hold two seats and two standing places for five minutes (the default).
//! let request = ReserveRequest::new(event.clone(), HolderId::new("alice")?)
//!     .seats([SeatId::new("A-1")?, SeatId::new("A-2")?])
//!     .ga(PoolId::new("standing")?, 2);
//! let reservation = store.reserve(request).await?;
//! let token = reservation.token.clone().expect("returned once, at creation");
//!
//! // After payment: commit, with an idempotency key so a retry cannot buy twice.
//! let order = store.commit(&reservation.id, CommitRequest::new(token, IdempotencyKey::new("pay-1")?)).await?;
//! assert_eq!(order.tickets.len(), 4);
//!
//! let availability = store.availability(&event).await?;
//! assert_eq!(availability.seats[0], SeatStatus::Sold);
//! assert_eq!(availability.pools[0].sold, 2);
//! # Ok(())
//! # }
//! ```
//!
//! ## Features
//!
//! | feature | what it adds |
//! |---|---|
//! | `tokio` | [`sweeper::spawn_sweeper`]: runs [`InventoryStore::expire_due`] periodically; [`Coalescing`]: group commit of concurrent reservations |
//! | `testkit` | the reference model and the conformance kit every backend runs (not stable API) |
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod domain;
mod error;
mod error_document;
mod id;
mod memory;
pub mod room;
mod store;
mod sync;
mod time;
mod token;
pub mod validate;
pub mod waitlist;

#[cfg(feature = "tokio")]
pub mod coalescing;
#[cfg(feature = "tokio")]
pub mod sweeper;

#[cfg(feature = "testkit")]
pub mod testkit;

#[cfg(feature = "tokio")]
pub use coalescing::{Coalescing, CoalescingConfig};
pub use domain::*;
pub use error::{ConflictReason, Entity, Error, HolderLimit, Result};
pub use id::*;
pub use memory::{MemoryStore, MemoryStoreConfig};
pub use room::{
    AdmitStep, MemoryWaitingRoom, Pass, PassError, PassKey, QueueState, QueueStatus, QueueTicket,
    RoomSettings, RoomStats, WaitingRoom,
};
pub use store::InventoryStore;
pub use time::{Clock, ManualClock, SystemClock, Timestamp};
pub use token::ReservationToken;
pub use waitlist::{WaitlistEntry, WaitlistJoined, WaitlistRequest, WaitlistState, WaitlistStore};
