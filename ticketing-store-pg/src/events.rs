//! Events: creation, lookup, listing. Each is one statement.

use sqlx::Row;
use ticketing_core::{
    ChangeKind, ConflictReason, Entity, Error, Event, EventId, EventSpec, EventSummary, Page,
    Result, validate,
};

use crate::error::backend;
use crate::{PgStore, from_db, to_db};

/// The server's clock in milliseconds, unless the store passes its own time as `$n`.
const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

impl PgStore {
    /// Creates an event: every seat available, every pool at its capacity, change 1 logged —
    /// in one statement.
    ///
    /// Errors: `invalid_request` (see [`validate::check_event_spec`]), `conflict`
    /// (`event_exists`), `backend`.
    pub async fn create_event(&self, spec: EventSpec) -> Result<Event> {
        validate::check_event_spec(&spec)?;
        let spec_json =
            serde_json::to_value(&spec).map_err(|error| Error::backend("postgres", error))?;
        let created = serde_json::to_value(ChangeKind::EventCreated)
            .map_err(|error| Error::backend("postgres", error))?;
        let window = spec.sale_window.unwrap_or_default();
        let seat_ids: Vec<&str> = spec.seats.iter().map(|seat| seat.id.as_str()).collect();
        let sections: Vec<&str> = spec
            .seats
            .iter()
            .map(|seat| seat.section.as_str())
            .collect();
        let rows: Vec<&str> = spec.seats.iter().map(|seat| seat.row.as_str()).collect();
        let numbers: Vec<i64> = spec
            .seats
            .iter()
            .map(|seat| i64::from(seat.number))
            .collect();
        let categories: Vec<&str> = spec
            .seats
            .iter()
            .map(|seat| seat.category.as_str())
            .collect();
        let pool_ids: Vec<&str> = spec.pools.iter().map(|pool| pool.id.as_str()).collect();
        let capacities: Vec<i64> = spec
            .pools
            .iter()
            .map(|pool| i64::from(pool.capacity))
            .collect();
        let statement = format!(
            "WITH event AS (
                INSERT INTO events (id, name, policy, sale_window, seat_count, pool_count,
                                    sale_opens_at, sale_closes_at, created_at, next_seq)
                VALUES ($1, $2, $3->'policy', NULLIF($3->'sale_window', 'null'),
                        cardinality($7::text[]), cardinality($12::text[]),
                        $4, $5, COALESCE($6, {NOW_MS}), 2)
                ON CONFLICT (id) DO NOTHING
                RETURNING id, created_at
            ), layout AS (
                INSERT INTO event_layouts (event_id, spec) SELECT event.id, $3 FROM event
            ), seat_rows AS (
                INSERT INTO seats (event_id, idx, seat_id, section, row_name, number, category)
                SELECT event.id, layout.ordinality - 1, layout.seat_id, layout.section,
                       layout.row_name, layout.number, layout.category
                FROM event, unnest($7::text[], $8::text[], $9::text[], $10::bigint[], $11::text[])
                    WITH ORDINALITY AS layout (seat_id, section, row_name, number, category, ordinality)
            ), pool_rows AS (
                INSERT INTO pools (event_id, idx, pool_id, capacity, stripes)
                SELECT event.id, layout.ordinality - 1, layout.pool_id, layout.capacity, $15
                FROM event, unnest($12::text[], $13::bigint[])
                    WITH ORDINALITY AS layout (pool_id, capacity, ordinality)
            ), stripe_rows AS (
                INSERT INTO pool_stripes (event_id, pool_idx, stripe)
                SELECT event.id, pool.idx, stripe
                FROM event, generate_series(0, cardinality($12::text[]) - 1) AS pool (idx),
                     generate_series(0, $15 - 1) AS stripe
                WHERE $15 > 1
            ), first_change AS (
                INSERT INTO changes (event_id, seq, at, kind)
                SELECT event.id, 1, event.created_at, $14 FROM event
            )
            SELECT created_at FROM event"
        );
        let row = sqlx::query(&statement)
            .bind(spec.id.as_str())
            .bind(&spec.name)
            .bind(&spec_json)
            .bind(window.opens_at.map(to_db))
            .bind(window.closes_at.map(to_db))
            .bind(self.now_param())
            .bind(&seat_ids)
            .bind(&sections)
            .bind(&rows)
            .bind(&numbers)
            .bind(&categories)
            .bind(&pool_ids)
            .bind(&capacities)
            .bind(&created)
            .bind(i16::try_from(self.ga_stripes).unwrap_or(1))
            .fetch_optional(self.pool())
            .await
            .map_err(backend("create_event"))?;
        let Some(row) = row else {
            return Err(Error::Conflict {
                reason: ConflictReason::EventExists,
            });
        };
        let created_at: i64 = row.try_get("created_at").map_err(backend("create_event"))?;
        Ok(Event::from_spec(spec, from_db(created_at)))
    }

    /// The event as created.
    ///
    /// Errors: `not_found`, `backend`.
    pub async fn event(&self, event: &EventId) -> Result<Event> {
        let row = sqlx::query(
            "SELECT l.spec, e.created_at FROM events e JOIN event_layouts l ON l.event_id = e.id
             WHERE e.id = $1",
        )
        .bind(event.as_str())
        .fetch_optional(self.pool())
        .await
        .map_err(backend("event"))?
        .ok_or_else(|| Error::not_found(Entity::Event, event))?;
        event_from_row(&row, "event")
    }

    /// Events ordered by id, after the page's cursor.
    ///
    /// Errors: `invalid_request` (limit), `backend`.
    pub async fn events(&self, page: Page) -> Result<Vec<EventSummary>> {
        validate::check_page(&page)?;
        // From the events' own columns: a listing never reads the (large) layouts.
        let rows = sqlx::query(
            "SELECT id, name, sale_window, seat_count, pool_count, created_at FROM events
             WHERE $1::text IS NULL OR id > $1 ORDER BY id LIMIT $2",
        )
        .bind(page.after.as_ref().map(EventId::as_str))
        .bind(i64::from(page.limit))
        .fetch_all(self.pool())
        .await
        .map_err(backend("events"))?;
        rows.iter().map(summary_from_row).collect()
    }
}

fn summary_from_row(row: &sqlx::postgres::PgRow) -> Result<EventSummary> {
    let get = |column: &str| -> Result<i64> {
        row.try_get::<i32, _>(column)
            .map(i64::from)
            .or_else(|_| row.try_get::<i64, _>(column))
            .map_err(backend("events"))
    };
    let id: String = row.try_get("id").map_err(backend("events"))?;
    let window: Option<serde_json::Value> =
        row.try_get("sale_window").map_err(backend("events"))?;
    Ok(EventSummary {
        id: EventId::new(&id)?,
        name: row.try_get("name").map_err(backend("events"))?,
        seats: u32::try_from(get("seat_count")?).unwrap_or(u32::MAX),
        pools: u32::try_from(get("pool_count")?).unwrap_or(u32::MAX),
        sale_window: window
            .map(serde_json::from_value)
            .transpose()
            .map_err(|error| Error::backend("postgres", error))?,
        created_at: from_db(get("created_at")?),
    })
}

fn event_from_row(row: &sqlx::postgres::PgRow, operation: &'static str) -> Result<Event> {
    let spec: serde_json::Value = row.try_get("spec").map_err(backend(operation))?;
    let created_at: i64 = row.try_get("created_at").map_err(backend(operation))?;
    let spec: EventSpec =
        serde_json::from_value(spec).map_err(|error| Error::backend("postgres", error))?;
    Ok(Event::from_spec(spec, from_db(created_at)))
}
