//! Reads of an event's inventory: the availability snapshot and the change log.

use sqlx::Row;
use ticketing_core::{
    Availability, Change, ChangeKind, Entity, Error, EventId, PoolAvailability, PoolId, Result,
    SeatStatus, validate,
};

use crate::error::backend;
use crate::reservations::retrying;
use crate::{PgStore, from_db};

impl PgStore {
    /// The event's seats (layout order), pools and the sequence number of its last change,
    /// read in one statement (one snapshot), in one round trip.
    ///
    /// Errors: `not_found`, `backend`.
    pub async fn availability(&self, event: &EventId) -> Result<Availability> {
        // One round trip: the function finalizes lapsed holds first (lapsed holds are free,
        // and the snapshot and the log must agree), then reads everything in one statement.
        let row = retrying("availability", || {
            sqlx::query(
                "SELECT seq, seats, pool_ids, capacities, helds, solds, blockeds
                 FROM ticketing_availability($1, $2)",
            )
            .bind(self.now_param())
            .bind(event.as_str())
            .fetch_optional(self.pool())
        })
        .await?
        .ok_or_else(|| Error::not_found(Entity::Event, event))?;
        let seq: i64 = row.try_get("seq").map_err(backend("availability"))?;
        let statuses: Vec<i16> = row.try_get("seats").map_err(backend("availability"))?;
        let pool_ids: Vec<String> = row.try_get("pool_ids").map_err(backend("availability"))?;
        let column =
            |name: &str| -> Result<Vec<i32>> { row.try_get(name).map_err(backend("availability")) };
        let (capacities, helds, solds, blockeds) = (
            column("capacities")?,
            column("helds")?,
            column("solds")?,
            column("blockeds")?,
        );
        let seats = statuses
            .into_iter()
            .map(|status| match status {
                0 => Ok(SeatStatus::Available),
                1 => Ok(SeatStatus::Held),
                2 => Ok(SeatStatus::Sold),
                3 => Ok(SeatStatus::Blocked),
                other => Err(corrupt(&format!("seat status {other}"))),
            })
            .collect::<Result<Vec<_>>>()?;
        let pools = pool_ids
            .into_iter()
            .enumerate()
            .map(|(index, pool)| {
                let count = |values: &[i32]| {
                    values
                        .get(index)
                        .and_then(|value| u32::try_from(*value).ok())
                        .ok_or_else(|| corrupt(&format!("pool {pool} counts")))
                };
                let (capacity, held, sold, blocked) = (
                    count(&capacities)?,
                    count(&helds)?,
                    count(&solds)?,
                    count(&blockeds)?,
                );
                Ok(PoolAvailability {
                    pool: PoolId::new(&pool)?,
                    capacity,
                    held,
                    sold,
                    blocked,
                    available: capacity.saturating_sub(held + sold + blocked),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Availability {
            event: event.clone(),
            seq: u64::try_from(seq).unwrap_or(0),
            seats,
            pools,
        })
    }

    /// Up to `limit` changes with sequence numbers after `after`, in order.
    ///
    /// Errors: `invalid_request` (limit), `not_found`, `changes_pruned` when the change after
    /// `after` is no longer kept (see [`PgStoreConfig::change_retention`](crate::PgStoreConfig::change_retention)),
    /// `backend`.
    pub async fn changes(&self, event: &EventId, after: u64, limit: usize) -> Result<Vec<Change>> {
        validate::check_changes_limit(limit)?;
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // The event's existence, the oldest change kept and the page in one round trip, after
        // the changes of reserves made beside each other are numbered (migration 0014): a
        // missing event yields no row at all, an event without later changes one row of NULLs.
        let rows = retrying("changes", || {
            sqlx::query("SELECT first_retained, seq, at, kind FROM ticketing_changes($1, $2, $3)")
                .bind(event.as_str())
                .bind(after)
                .bind(limit)
                .fetch_all(self.pool())
        })
        .await?;
        let Some(first) = rows.first() else {
            return Err(Error::not_found(Entity::Event, event));
        };
        let first_retained: i64 = first
            .try_get("first_retained")
            .map_err(backend("changes"))?;
        if after.saturating_add(1) < first_retained {
            return Err(Error::ChangesPruned {
                first_retained: u64::try_from(first_retained).unwrap_or(0),
            });
        }
        let mut changes = Vec::with_capacity(rows.len());
        for row in rows {
            let Some(seq): Option<i64> = row.try_get("seq").map_err(backend("changes"))? else {
                continue;
            };
            let at: i64 = row.try_get("at").map_err(backend("changes"))?;
            let kind: serde_json::Value = row.try_get("kind").map_err(backend("changes"))?;
            let kind: ChangeKind = serde_json::from_value(kind)
                .map_err(|error| corrupt(&format!("change {seq}: {error}")))?;
            changes.push(Change {
                event: event.clone(),
                seq: u64::try_from(seq).unwrap_or(0),
                at: from_db(at),
                kind,
            });
        }
        Ok(changes)
    }
}

/// Data in the store's tables that this version cannot read: a `backend` error.
fn corrupt(what: &str) -> Error {
    Error::backend(
        "postgres",
        crate::PgFailure {
            operation: "decode",
            sqlstate: None,
            message: format!("unreadable stored data: {what}"),
        },
    )
}
