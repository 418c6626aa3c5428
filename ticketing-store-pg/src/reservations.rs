//! Reservations: reserve and read. Each is one statement calling a function installed by the
//! migrations (see `migrations/0002_reservations.sql`).

use sqlx::Row;
use ticketing_core::{
    Clock, Entity, Error, Reservation, ReservationId, ReservationToken, ReserveRequest, Result,
    SystemClock, Timestamp, validate,
};

use crate::error::backend;
use crate::wire::decode;
use crate::{PgStore, to_db};

impl PgStore {
    /// Reserves every item asked for, or nothing, with the semantics of
    /// [`InventoryStore::reserve`](ticketing_core::InventoryStore::reserve).
    ///
    /// Errors: as the trait documents, and `backend`.
    pub async fn reserve(&self, request: ReserveRequest) -> Result<Reservation> {
        validate::check_reserve(&request)?;
        let token = ReservationToken::generate();
        // The id's time part only orders ids; the hold's times come from the store's clock.
        let id = ReservationId::generate(self.now_param().map_or_else(
            || SystemClock.now(),
            |millis| Timestamp::from_millis(u64::try_from(millis).unwrap_or(0)),
        ));
        let request =
            serde_json::to_value(&request).map_err(|error| Error::backend("postgres", error))?;
        let row = sqlx::query("SELECT ticketing_reserve($1, $2, $3, $4, $5) AS answer")
            .bind(self.now_param())
            .bind(&request)
            .bind(id.as_str())
            .bind(&token.as_bytes()[..])
            .bind(to_db(Timestamp::from_millis(self.idempotency_retention_ms)))
            .fetch_one(self.pool())
            .await
            .map_err(backend("reserve"))?;
        let answer: serde_json::Value = row.try_get("answer").map_err(backend("reserve"))?;
        let mut reservation: Reservation = decode("reserve", answer)?;
        // A fresh reservation carries its token; a replayed one (same client id) does not.
        if reservation.id == id {
            reservation.token = Some(token);
        }
        Ok(reservation)
    }

    /// A reservation as it reads now, without its token.
    ///
    /// Errors: `not_found`, `backend`.
    pub async fn reservation(&self, reservation: &ReservationId) -> Result<Reservation> {
        let row = sqlx::query(
            "SELECT ticketing_reservation_json(r, ticketing_now($2)) AS answer
             FROM reservations r WHERE id = $1",
        )
        .bind(reservation.as_str())
        .bind(self.now_param())
        .fetch_optional(self.pool())
        .await
        .map_err(backend("reservation"))?
        .ok_or_else(|| Error::not_found(Entity::Reservation, reservation))?;
        let answer: serde_json::Value = row.try_get("answer").map_err(backend("reservation"))?;
        serde_json::from_value(answer).map_err(|error| Error::backend("postgres", error))
    }
}
