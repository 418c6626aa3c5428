//! Reservations: reserve and read. Each is one statement calling a function installed by the
//! migrations (see `migrations/0002_reservations.sql`).

use sqlx::Row;
use ticketing_core::{
    Clock, CommitRequest, Entity, Error, Order, OrderId, Reservation, ReservationId,
    ReservationToken, ReserveRequest, Result, SystemClock, Ticket, TicketId, Timestamp, validate,
};

use crate::error::backend;
use crate::wire::decode;
use crate::{PgStore, to_db};

/// Attempts of one call that keeps failing with a serialization failure or deadlock.
const RETRIES_MAX: u32 = 5;

/// SQLSTATE 40001 (serialization failure) and 40P01 (deadlock detected): the transaction
/// was rolled back whole and may be run again.
fn is_retryable(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(database)
        if matches!(database.code().as_deref(), Some("40001" | "40P01")))
}

/// Runs `attempt` until it succeeds, fails otherwise than with a serialization failure or
/// deadlock (which rolled its transaction back whole), or has failed `RETRIES_MAX` times.
pub(crate) async fn retrying<T, F, Fut>(operation: &'static str, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, sqlx::Error>>,
{
    let mut attempts = 1;
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) if attempts < RETRIES_MAX && is_retryable(&error) => attempts += 1,
            Err(error) => return Err(backend(operation)(error)),
        }
    }
}

impl PgStore {
    /// Reserves every item asked for, or nothing, with the semantics of
    /// [`InventoryStore::reserve`](ticketing_core::InventoryStore::reserve).
    ///
    /// Errors: as the trait documents, and `backend`.
    pub async fn reserve(&self, request: ReserveRequest) -> Result<Reservation> {
        validate::check_reserve(&request)?;
        let token = ReservationToken::generate();
        // The id's time part only orders ids; the hold's times come from the store's clock.
        let id = ReservationId::generate(self.id_time());
        let request =
            serde_json::to_value(&request).map_err(|error| Error::backend("postgres", error))?;
        let digest = token.digest();
        let answer = self
            .call("reserve", || {
                sqlx::query("SELECT ticketing_reserve($1, $2, $3, $4, $5) AS answer")
                    .bind(self.now_param())
                    .bind(&request)
                    .bind(id.as_str())
                    .bind(&digest[..])
                    .bind(to_db(Timestamp::from_millis(self.idempotency_retention_ms)))
            })
            .await?;
        let mut reservation: Reservation = decode("reserve", answer)?;
        // A fresh reservation carries its token; a replayed one (same client id) does not.
        if reservation.id == id {
            reservation.token = Some(token);
        }
        Ok(reservation)
    }

    /// Runs independent reservations in one round trip, each all or nothing on its own;
    /// results in request order. Malformed requests are refused before anything is sent;
    /// more than [`validate::BATCH_SIZE_MAX`] requests go in several round trips.
    pub async fn reserve_batch(&self, requests: Vec<ReserveRequest>) -> Vec<Result<Reservation>> {
        let mut results: Vec<Option<Result<Reservation>>> = Vec::with_capacity(requests.len());
        // (position in `results`, request document, id, token) of the well-formed ones.
        let mut pending = Vec::new();
        for (position, request) in requests.iter().enumerate() {
            if let Err(error) = validate::check_reserve(request) {
                results.push(Some(Err(error)));
                continue;
            }
            match serde_json::to_value(request) {
                Ok(document) => {
                    let id = ReservationId::generate(self.id_time());
                    pending.push((position, document, id, ReservationToken::generate()));
                    results.push(None);
                }
                Err(error) => results.push(Some(Err(Error::backend("postgres", error)))),
            }
        }
        for chunk in pending.chunks(validate::BATCH_SIZE_MAX) {
            let documents = serde_json::Value::Array(chunk.iter().map(|p| p.1.clone()).collect());
            let ids: Vec<&str> = chunk.iter().map(|p| p.2.as_str()).collect();
            let tokens: Vec<Vec<u8>> = chunk.iter().map(|p| p.3.digest().to_vec()).collect();
            let answers = self
                .call_batch("reserve_batch", chunk.len(), || {
                    sqlx::query("SELECT ticketing_reserve_batch($1, $2, $3, $4, $5) AS answer")
                        .bind(self.now_param())
                        .bind(&documents)
                        .bind(&ids)
                        .bind(&tokens)
                        .bind(to_db(Timestamp::from_millis(self.idempotency_retention_ms)))
                })
                .await;
            let answers = match answers {
                Ok(answers) => answers,
                Err(error) => {
                    for (position, ..) in chunk {
                        results[*position] = Some(Err(error.clone()));
                    }
                    continue;
                }
            };
            for ((position, _, id, token), answer) in chunk.iter().zip(answers) {
                let outcome =
                    decode::<Reservation>("reserve_batch", answer).map(|mut reservation| {
                        if reservation.id == *id {
                            reservation.token = Some(token.clone());
                        }
                        reservation
                    });
                results[*position] = Some(outcome);
            }
        }
        results
            .into_iter()
            .map(|result| result.unwrap_or_else(|| Err(Error::invalid("batch", "not run"))))
            .collect()
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

impl PgStore {
    /// Turns a reservation into an order with the semantics of
    /// [`InventoryStore::commit`](ticketing_core::InventoryStore::commit).
    ///
    /// Errors: as the trait documents, and `backend`.
    pub async fn commit(
        &self,
        reservation: &ReservationId,
        request: CommitRequest,
    ) -> Result<Order> {
        validate::check_commit(&request)?;
        let order = OrderId::generate(self.id_time());
        let document = commit_document(&request);
        let digest = request.token.digest();
        let answer = self
            .call("commit", || {
                sqlx::query("SELECT ticketing_commit($1, $2, $3, $4, $5, $6) AS answer")
                    .bind(self.now_param())
                    .bind(reservation.as_str())
                    .bind(&digest[..])
                    .bind(&document)
                    .bind(order.as_str())
                    .bind(to_db(Timestamp::from_millis(self.idempotency_retention_ms)))
            })
            .await?;
        decode("commit", answer)
    }

    /// Runs independent commits in one round trip and one transaction, each with the answer
    /// [`PgStore::commit`] would give one after the other; results in request order.
    /// Malformed requests are refused before anything is sent; more than
    /// [`validate::BATCH_SIZE_MAX`] commits go in several round trips.
    pub async fn commit_batch(
        &self,
        commits: Vec<(ReservationId, CommitRequest)>,
    ) -> Vec<Result<Order>> {
        let mut results: Vec<Option<Result<Order>>> = Vec::with_capacity(commits.len());
        // (position in `results`, reservation, request document, token digest, order id).
        let mut pending = Vec::new();
        for (position, (reservation, request)) in commits.iter().enumerate() {
            if let Err(error) = validate::check_commit(request) {
                results.push(Some(Err(error)));
                continue;
            }
            let order = OrderId::generate(self.id_time());
            pending.push((
                position,
                reservation.as_str(),
                commit_document(request),
                request.token.digest().to_vec(),
                order,
            ));
            results.push(None);
        }
        for chunk in pending.chunks(validate::BATCH_SIZE_MAX) {
            let ids: Vec<&str> = chunk.iter().map(|p| p.1).collect();
            let documents = serde_json::Value::Array(chunk.iter().map(|p| p.2.clone()).collect());
            let tokens: Vec<&[u8]> = chunk.iter().map(|p| p.3.as_slice()).collect();
            let orders: Vec<&str> = chunk.iter().map(|p| p.4.as_str()).collect();
            let answers = self
                .call_batch("commit_batch", chunk.len(), || {
                    sqlx::query("SELECT ticketing_commit_batch($1, $2, $3, $4, $5, $6) AS answer")
                        .bind(self.now_param())
                        .bind(&ids)
                        .bind(&tokens)
                        .bind(&documents)
                        .bind(&orders)
                        .bind(to_db(Timestamp::from_millis(self.idempotency_retention_ms)))
                })
                .await;
            match answers {
                Ok(answers) => {
                    for ((position, ..), answer) in chunk.iter().zip(answers) {
                        results[*position] = Some(decode("commit_batch", answer));
                    }
                }
                Err(error) => {
                    for (position, ..) in chunk {
                        results[*position] = Some(Err(error.clone()));
                    }
                }
            }
        }
        results
            .into_iter()
            .map(|result| result.unwrap_or_else(|| Err(Error::invalid("batch", "not run"))))
            .collect()
    }

    /// Sets an active reservation's hold to end `ttl_seconds` from now, with the semantics of
    /// [`InventoryStore::extend`](ticketing_core::InventoryStore::extend).
    ///
    /// Errors: as the trait documents, and `backend`.
    pub async fn extend(
        &self,
        reservation: &ReservationId,
        token: &ReservationToken,
        ttl_seconds: u32,
    ) -> Result<Reservation> {
        validate::check_ttl_seconds(ttl_seconds)?;
        let digest = token.digest();
        let answer = self
            .call("extend", || {
                sqlx::query("SELECT ticketing_extend($1, $2, $3, $4) AS answer")
                    .bind(self.now_param())
                    .bind(reservation.as_str())
                    .bind(&digest[..])
                    .bind(i64::from(ttl_seconds))
            })
            .await?;
        decode("extend", answer)
    }

    /// Cancels an active reservation, with the semantics of
    /// [`InventoryStore::cancel`](ticketing_core::InventoryStore::cancel).
    ///
    /// Errors: as the trait documents, and `backend`.
    pub async fn cancel(
        &self,
        reservation: &ReservationId,
        token: &ReservationToken,
    ) -> Result<()> {
        let digest = token.digest();
        let answer = self
            .call("cancel", || {
                sqlx::query("SELECT ticketing_cancel($1, $2, $3) AS answer")
                    .bind(self.now_param())
                    .bind(reservation.as_str())
                    .bind(&digest[..])
            })
            .await?;
        decode::<Option<()>>("cancel", answer).map(|_| ())
    }

    /// An order with its tickets as they are now.
    ///
    /// Errors: `not_found`, `backend`.
    pub async fn order(&self, order: &OrderId) -> Result<Order> {
        let answer = self
            .call("order", || {
                sqlx::query("SELECT ticketing_order_json($1) AS answer").bind(order.as_str())
            })
            .await?;
        if answer.is_null() {
            return Err(Error::not_found(Entity::Order, order));
        }
        serde_json::from_value(answer).map_err(|error| Error::backend("postgres", error))
    }

    /// A ticket as it is now.
    ///
    /// Errors: `not_found`, `backend`.
    pub async fn ticket(&self, ticket: &TicketId) -> Result<Ticket> {
        let answer = self
            .call(
                "ticket",
                || sqlx::query("SELECT (SELECT ticketing_ticket_json(t) FROM tickets t WHERE id = $1) AS answer")
                    .bind(ticket.as_str()),
            )
            .await?;
        if answer.is_null() {
            return Err(Error::not_found(Entity::Ticket, ticket));
        }
        serde_json::from_value(answer).map_err(|error| Error::backend("postgres", error))
    }

    /// Runs a one-row query answering a jsonb column `answer`.
    ///
    /// A serialization failure or a deadlock rolled the whole call back, so it is retried, a
    /// bounded number of times; any other failure is returned as it is.
    pub(crate) async fn call<'q>(
        &self,
        operation: &'static str,
        query: impl Fn() -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> Result<serde_json::Value> {
        let row = retrying(operation, || query().fetch_one(self.pool())).await?;
        row.try_get::<Option<serde_json::Value>, _>("answer")
            .map(Option::unwrap_or_default)
            .map_err(backend(operation))
    }

    /// Runs a batch function answering a jsonb array with one answer per request, in order.
    /// An answer of another shape fails the whole batch with `backend`.
    async fn call_batch<'q>(
        &self,
        operation: &'static str,
        len: usize,
        query: impl Fn() -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> Result<Vec<serde_json::Value>> {
        match self.call(operation, query).await? {
            serde_json::Value::Array(answers) if answers.len() == len => Ok(answers),
            _ => Err(Error::backend(
                "postgres",
                crate::PgFailure {
                    operation,
                    sqlstate: None,
                    message: "unexpected answer from the database".to_owned(),
                },
            )),
        }
    }

    /// The time for the time part of generated ids (ordering only).
    pub(crate) fn id_time(&self) -> Timestamp {
        self.now_param().map_or_else(
            || SystemClock.now(),
            |millis| Timestamp::from_millis(u64::try_from(millis).unwrap_or(0)),
        )
    }
}

/// The commit request as the database functions read it (the token goes separately, as its
/// digest).
fn commit_document(request: &CommitRequest) -> serde_json::Value {
    serde_json::json!({
        "idempotency_key": request.idempotency_key,
        "payment_id": request.payment_id,
        "seats": request.seats,
        "ga": request.ga,
    })
}
