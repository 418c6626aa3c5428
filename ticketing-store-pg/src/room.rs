//! [`WaitingRoom`] on PostgreSQL: each method is one statement calling a function installed
//! by the migrations (`migrations/0007_waiting_room.sql`), answering one jsonb document.
//!
//! Rooms live in the store's schema, beside the inventory, and share its pool and clock:
//! [`PgStore::waiting_room`]. A room is a row; a queue ticket is a row holding an ordinal,
//! so a position is the ordinal less the head's, less the leavers between them — index
//! probes, never a count of the queue (see the migration's header).

use async_trait::async_trait;
use sqlx::Row;
use ticketing_core::room::{ADMIT_PER_STEP_MAX, check_room_settings};
use ticketing_core::{
    AdmitStep, Clock, EventId, HolderId, QueueState, QueueTicket, QueueTicketId, Result,
    RoomSettings, RoomStats, SystemClock, Timestamp, WaitingRoom,
};

use crate::error::backend;
use crate::wire::decode;
use crate::{PgStore, PgStoreConfig, from_db, to_db};

/// Waiting rooms in PostgreSQL, following every rule of [`ticketing_core::room`]: each call
/// atomic and one round trip, rooms shared by every application instance.
///
/// ```no_run
/// # async fn demo() -> ticketing_core::Result<()> {
/// use ticketing_core::{EventId, HolderId, RoomSettings, WaitingRoom};
/// use ticketing_store_pg::{PgStore, PgStoreConfig};
///
/// let config = PgStoreConfig::new("postgres://postgres@127.0.0.1:5432/test").schema("tickets")?;
/// let store = PgStore::connect(config).await?;
/// let rooms = store.waiting_room(); // same pool, schema and clock
/// let event = EventId::new("final")?;
/// rooms.configure(&event, RoomSettings::rate(50)).await?;
/// let ticket = rooms.join(&event, &HolderId::new("alice")?).await?;
/// println!("{:?}", rooms.status(&ticket.id).await?.status);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct PgWaitingRoom {
    store: PgStore,
}

impl PgStore {
    /// The waiting rooms kept in this store's schema, on its pool and its clock. The
    /// migrations that [`PgStore::connect`] applies install them.
    pub fn waiting_room(&self) -> PgWaitingRoom {
        PgWaitingRoom {
            store: self.clone(),
        }
    }
}

impl PgWaitingRoom {
    /// Connects, creates the schema if needed and applies the migrations, as
    /// [`PgStore::connect`] does: rooms without an inventory store beside them.
    ///
    /// Errors: `backend` when the server is unreachable or a migration fails.
    pub async fn connect(config: PgStoreConfig) -> Result<Self> {
        Ok(PgStore::connect(config).await?.waiting_room())
    }

    /// The store whose pool, schema and clock the rooms use.
    pub fn store(&self) -> &PgStore {
        &self.store
    }

    /// The time for the time part of ticket ids (ordering only; the ticket's times come
    /// from the store's clock).
    fn id_time(&self) -> Timestamp {
        self.store
            .now_param()
            .map_or_else(|| SystemClock.now(), from_db)
    }
}

/// A count the database keeps as `integer`.
fn to_integer(value: Option<u32>) -> Option<i32> {
    value.map(|value| i32::try_from(value).unwrap_or(i32::MAX))
}

/// The inverse of [`to_integer`] for values the settings' bounds keep in range.
fn from_integer(value: i32) -> u32 {
    u32::try_from(value).unwrap_or(0)
}

#[async_trait]
impl WaitingRoom for PgWaitingRoom {
    async fn configure(&self, event: &EventId, settings: RoomSettings) -> Result<()> {
        check_room_settings(&settings)?;
        let answer = self
            .store
            .call("room_configure", || {
                sqlx::query(
                    "SELECT ticketing_room_configure($1, $2, $3, $4, $5, $6, $7, $8) AS answer",
                )
                .bind(self.store.now_param())
                .bind(event.as_str())
                .bind(to_integer(settings.admit_per_second))
                .bind(to_integer(settings.active_max))
                .bind(to_integer(Some(settings.pass_ttl_seconds)))
                .bind(to_integer(Some(settings.seats_per_buyer)))
                .bind(settings.opens_at.map(to_db))
                // The seed's 64 bits as they are; the database hashes its bytes.
                .bind(settings.shuffle_seed.cast_signed())
            })
            .await?;
        decode("room_configure", answer)
    }

    async fn settings(&self, event: &EventId) -> Result<Option<RoomSettings>> {
        let row = sqlx::query(
            "SELECT admit_per_second, active_max, pass_ttl_seconds, seats_per_buyer, opens_at,
                    shuffle_seed
             FROM rooms WHERE event_id = $1",
        )
        .bind(event.as_str())
        .fetch_optional(self.store.pool())
        .await
        .map_err(backend("room_settings"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let get = |column: &str| row.try_get::<Option<i32>, _>(column);
        let settings = (|| {
            Ok::<_, sqlx::Error>(RoomSettings {
                admit_per_second: get("admit_per_second")?.map(from_integer),
                active_max: get("active_max")?.map(from_integer),
                pass_ttl_seconds: get("pass_ttl_seconds")?.map_or(0, from_integer),
                seats_per_buyer: get("seats_per_buyer")?.map_or(0, from_integer),
                opens_at: row.try_get::<Option<i64>, _>("opens_at")?.map(from_db),
                shuffle_seed: row.try_get::<i64, _>("shuffle_seed")?.cast_unsigned(),
            })
        })()
        .map_err(backend("room_settings"))?;
        Ok(Some(settings))
    }

    async fn rooms(&self) -> Result<Vec<EventId>> {
        let ids: Vec<String> = sqlx::query_scalar("SELECT event_id FROM rooms ORDER BY event_id")
            .fetch_all(self.store.pool())
            .await
            .map_err(backend("rooms"))?;
        ids.iter().map(EventId::new).collect()
    }

    async fn join(&self, event: &EventId, visitor: &HolderId) -> Result<QueueTicket> {
        // Used only if the visitor has no place yet.
        let id = QueueTicketId::generate(self.id_time());
        let answer = self
            .store
            .call("room_join", || {
                sqlx::query("SELECT ticketing_room_join($1, $2, $3, $4) AS answer")
                    .bind(self.store.now_param())
                    .bind(event.as_str())
                    .bind(visitor.as_str())
                    .bind(id.as_str())
            })
            .await?;
        decode("room_join", answer)
    }

    async fn status(&self, ticket: &QueueTicketId) -> Result<QueueState> {
        let answer = self
            .store
            .call("room_status", || {
                sqlx::query("SELECT ticketing_room_status($1, $2) AS answer")
                    .bind(self.store.now_param())
                    .bind(ticket.as_str())
            })
            .await?;
        decode("room_status", answer)
    }

    async fn leave(&self, ticket: &QueueTicketId) -> Result<()> {
        let answer = self
            .store
            .call("room_leave", || {
                sqlx::query("SELECT ticketing_room_leave($1, $2) AS answer")
                    .bind(self.store.now_param())
                    .bind(ticket.as_str())
            })
            .await?;
        decode("room_leave", answer)
    }

    async fn admit(&self, event: &EventId, free_units: u64) -> Result<AdmitStep> {
        let answer = self
            .store
            .call("room_admit", || {
                sqlx::query("SELECT ticketing_room_admit($1, $2, $3, $4) AS answer")
                    .bind(self.store.now_param())
                    .bind(event.as_str())
                    // Beyond i64::MAX units the step's other bounds govern anyway.
                    .bind(i64::try_from(free_units).unwrap_or(i64::MAX))
                    .bind(i64::from(ADMIT_PER_STEP_MAX))
            })
            .await?;
        decode("room_admit", answer)
    }

    async fn stats(&self, event: &EventId) -> Result<RoomStats> {
        let answer = self
            .store
            .call("room_stats", || {
                sqlx::query("SELECT ticketing_room_stats($1, $2) AS answer")
                    .bind(self.store.now_param())
                    .bind(event.as_str())
            })
            .await?;
        decode("room_stats", answer)
    }
}
