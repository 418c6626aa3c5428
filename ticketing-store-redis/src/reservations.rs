//! Reservations: reserve (one or a batch of one event per script call), commit, extend,
//! cancel.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use ticketing_core::{
    CommitRequest, Entity, Error, EventId, GaRequest, Order, Reservation, ReservationId,
    ReservationToken, ReserveRequest, Result, SeatId, validate,
};

use crate::connection::SCRIPTS;
use crate::events::json_text;
use crate::{RedisStore, Repeat, keys, wire};

/// Best available as the reserve script reads it (absent fields: no filter).
#[derive(Serialize)]
struct BestWire<'a> {
    count: u32,
    adjacent: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    section: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    category: Option<&'a str>,
}

/// The fields a replay compares, each as the JSON text serde writes (`null` for `None`).
#[derive(Serialize)]
struct ReserveFingerprint {
    holder: String,
    seat_ids: String,
    ga: String,
    best_available: String,
    ttl_seconds: String,
}

/// One request as the reserve script reads it.
#[derive(Serialize)]
struct ReserveWire<'a> {
    id: &'a str,
    tok: String,
    holder: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cr: Option<&'a str>,
    seats: &'a [SeatId],
    ga: &'a [GaRequest],
    #[serde(skip_serializing_if = "Option::is_none")]
    best: Option<BestWire<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<u32>,
    fp: ReserveFingerprint,
}

/// A well-formed request on its way: where its result goes, its new id and token.
struct Pending<'a> {
    position: usize,
    request: &'a ReserveRequest,
    id: ReservationId,
    token: ReservationToken,
}

#[derive(Serialize)]
struct CommitFingerprint {
    reservation_id: String,
    payment_id: String,
    seat_ids: String,
    ga: String,
}

#[derive(Serialize)]
struct CommitWire<'a> {
    key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    payment: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seats: Option<&'a [SeatId]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ga: Option<&'a [GaRequest]>,
    fp: CommitFingerprint,
}

fn reserve_wire<'a>(pending: &'a Pending<'a>) -> Result<ReserveWire<'a>> {
    let request = pending.request;
    Ok(ReserveWire {
        id: pending.id.as_str(),
        tok: keys::token_digest(&pending.token),
        holder: request.holder.as_str(),
        cr: request.client_reservation_id.as_ref().map(|id| id.as_str()),
        seats: &request.seats,
        ga: &request.ga,
        best: request.best_available.as_ref().map(|best| BestWire {
            count: best.count,
            adjacent: best.adjacent,
            section: best.section.as_deref(),
            category: best.category.as_deref(),
        }),
        ttl: request.ttl_seconds,
        fp: ReserveFingerprint {
            holder: json_text(&request.holder)?,
            seat_ids: json_text(&request.seats)?,
            ga: json_text(&request.ga)?,
            best_available: json_text(&request.best_available)?,
            ttl_seconds: json_text(&request.ttl_seconds)?,
        },
    })
}

fn not_found(reservation: &ReservationId) -> Error {
    Error::not_found(Entity::Reservation, reservation)
}

impl RedisStore {
    /// Reserves every item asked for, or nothing, with the semantics of
    /// [`InventoryStore::reserve`](ticketing_core::InventoryStore::reserve): one script.
    ///
    /// Errors: as the trait documents, and `backend`.
    pub async fn reserve(&self, request: ReserveRequest) -> Result<Reservation> {
        validate::check_reserve(&request)?;
        let mut results = self.reserve_batch(vec![request]).await;
        results
            .pop()
            .unwrap_or_else(|| Err(wire::malformed("reserve", "no answer")))
    }

    /// Runs independent reservations, each all or nothing on its own; results in request
    /// order. The requests of one event go in one script call (up to
    /// [`validate::BATCH_SIZE_MAX`] at a time); malformed ones are refused before anything
    /// is sent.
    pub async fn reserve_batch(&self, requests: Vec<ReserveRequest>) -> Vec<Result<Reservation>> {
        let mut results: Vec<Option<Result<Reservation>>> = Vec::with_capacity(requests.len());
        let mut by_event: BTreeMap<&EventId, Vec<Pending<'_>>> = BTreeMap::new();
        let at = self.id_time();
        for (position, request) in requests.iter().enumerate() {
            if let Err(error) = validate::check_reserve(request) {
                results.push(Some(Err(error)));
                continue;
            }
            let tag = keys::tag(&request.event);
            match keys::reservation_id(at, &tag) {
                Ok(id) => {
                    by_event.entry(&request.event).or_default().push(Pending {
                        position,
                        request,
                        id,
                        token: ReservationToken::generate(),
                    });
                    results.push(None);
                }
                Err(error) => results.push(Some(Err(error))),
            }
        }
        for (event, pending) in &by_event {
            for chunk in pending.chunks(validate::BATCH_SIZE_MAX) {
                let outcomes = self.reserve_chunk(event, chunk).await;
                for (pending, outcome) in chunk.iter().zip(outcomes) {
                    results[pending.position] = Some(outcome);
                }
            }
        }
        results
            .into_iter()
            .map(|result| result.unwrap_or_else(|| Err(wire::malformed("reserve", "not run"))))
            .collect()
    }

    /// One script call for requests of one event; one outcome per request.
    async fn reserve_chunk(
        &self,
        event: &EventId,
        chunk: &[Pending<'_>],
    ) -> Vec<Result<Reservation>> {
        let everyone = |error: Error| chunk.iter().map(|_| Err(error.clone())).collect();
        let wires: Result<Vec<ReserveWire<'_>>> = chunk.iter().map(reserve_wire).collect();
        let document = match wires.and_then(|wires| json_text(&wires)) {
            Ok(document) => document,
            Err(error) => return everyone(error),
        };
        // Running twice is harmless only when every request has a client reservation id.
        let repeat = if chunk
            .iter()
            .all(|pending| pending.request.client_reservation_id.is_some())
        {
            Repeat::Safe
        } else {
            Repeat::Unsafe
        };
        let (now, retention) = (self.now_arg(), self.retention_ms.to_string());
        let args: [&[u8]; 4] = [
            now.as_bytes(),
            event.as_str().as_bytes(),
            retention.as_bytes(),
            document.as_bytes(),
        ];
        let keys = self.keys.event(&keys::tag(event));
        let answer = match self
            .run("reserve", &SCRIPTS.reserve, &keys, &args, repeat)
            .await
        {
            Ok(answer) => answer,
            Err(error) => return everyone(error),
        };
        let answers = match wire::parse("reserve", &answer) {
            Ok(Value::Array(answers)) if answers.len() == chunk.len() => answers,
            Ok(_) => return everyone(wire::malformed("reserve", "not one answer per request")),
            Err(error) => return everyone(error),
        };
        chunk
            .iter()
            .zip(answers)
            .map(|(pending, answer)| {
                wire::decode::<Reservation>("reserve", answer).map(|mut reservation| {
                    // A fresh reservation carries its token; a replayed one does not.
                    if reservation.id == pending.id {
                        reservation.token = Some(pending.token.clone());
                    }
                    reservation
                })
            })
            .collect()
    }

    /// Turns a reservation into an order with the semantics of
    /// [`InventoryStore::commit`](ticketing_core::InventoryStore::commit): one script, then
    /// `WAIT` when configured.
    ///
    /// Errors: as the trait documents, and `backend`.
    pub async fn commit(
        &self,
        reservation: &ReservationId,
        request: CommitRequest,
    ) -> Result<Order> {
        validate::check_commit(&request)?;
        let tag = keys::tag_of(reservation.as_str()).ok_or_else(|| not_found(reservation))?;
        let at = self.id_time();
        let order = keys::order_id(at, tag)?;
        let document = json_text(&CommitWire {
            key: request.idempotency_key.as_str(),
            payment: request.payment_id.as_ref().map(|id| id.as_str()),
            seats: request.seats.as_deref(),
            ga: request.ga.as_deref(),
            fp: CommitFingerprint {
                reservation_id: json_text(reservation)?,
                payment_id: json_text(&request.payment_id)?,
                seat_ids: json_text(&request.seats)?,
                ga: json_text(&request.ga)?,
            },
        })?;
        let (now, digest, stem, seed, retention) = (
            self.now_arg(),
            keys::token_digest(&request.token),
            keys::ticket_stem(at),
            keys::code_seed(),
            self.retention_ms.to_string(),
        );
        let args: [&[u8]; 9] = [
            now.as_bytes(),
            reservation.as_str().as_bytes(),
            digest.as_bytes(),
            document.as_bytes(),
            order.as_str().as_bytes(),
            stem.as_bytes(),
            seed.as_bytes(),
            tag.as_bytes(),
            retention.as_bytes(),
        ];
        let keys = self.keys.event(tag);
        // The idempotency key makes a repeat return the first outcome.
        let answer = self
            .run("commit", &SCRIPTS.commit, &keys, &args, Repeat::Safe)
            .await?;
        let order: Order = wire::decode("commit", wire::parse("commit", &answer)?)?;
        self.wait_for_replicas(&keys[0]).await?;
        Ok(order)
    }

    /// Moves an active reservation's end to `ttl_seconds` from now, with the semantics of
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
        let tag = keys::tag_of(reservation.as_str()).ok_or_else(|| not_found(reservation))?;
        let (now, digest, ttl) = (
            self.now_arg(),
            keys::token_digest(token),
            ttl_seconds.to_string(),
        );
        let args: [&[u8]; 4] = [
            now.as_bytes(),
            reservation.as_str().as_bytes(),
            digest.as_bytes(),
            ttl.as_bytes(),
        ];
        let answer = self
            .run(
                "extend",
                &SCRIPTS.extend,
                &self.keys.event(tag),
                &args,
                Repeat::Unsafe,
            )
            .await?;
        wire::decode("extend", wire::parse("extend", &answer)?)
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
        let tag = keys::tag_of(reservation.as_str()).ok_or_else(|| not_found(reservation))?;
        let (now, digest) = (self.now_arg(), keys::token_digest(token));
        let args: [&[u8]; 3] = [
            now.as_bytes(),
            reservation.as_str().as_bytes(),
            digest.as_bytes(),
        ];
        // Cancelling a cancelled reservation succeeds and changes nothing.
        let answer = self
            .run(
                "cancel",
                &SCRIPTS.cancel,
                &self.keys.event(tag),
                &args,
                Repeat::Safe,
            )
            .await?;
        wire::decode("cancel", wire::parse("cancel", &answer)?)
    }
}
