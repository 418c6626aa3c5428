//! Events: creation, lookup, listing.

use serde::Deserialize;
use ticketing_core::{
    ConflictReason, Entity, Error, Event, EventId, EventSpec, EventSummary, LateCommit, Page,
    RefundTo, Result, Timestamp, validate,
};

use crate::connection::SCRIPTS;
use crate::error::backend;
use crate::{RedisStore, Repeat, keys, wire};

#[derive(Deserialize)]
struct Created {
    created_at: u64,
}

/// A value as a script argument.
pub(crate) fn json_text<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|error| wire::malformed("encode", &error.to_string()))
}

fn optional(value: Option<impl ToString>) -> String {
    value.map(|value| value.to_string()).unwrap_or_default()
}

impl RedisStore {
    /// Creates an event: every seat available, every pool at its capacity, change 1 logged —
    /// in one script; then lists it (a second call, on the listing's slot).
    ///
    /// Errors: `invalid_request` (see [`validate::check_event_spec`]), `conflict`
    /// (`event_exists`), `backend` (also when the id's 80-bit key tag is another event's).
    pub async fn create_event(&self, spec: EventSpec) -> Result<Event> {
        validate::check_event_spec(&spec)?;
        let tag = keys::tag(&spec.id);
        let layout: Vec<(&str, &str, &str, u32, &str)> = spec
            .seats
            .iter()
            .map(|seat| {
                (
                    seat.id.as_str(),
                    seat.section.as_str(),
                    seat.row.as_str(),
                    seat.number,
                    seat.category.as_str(),
                )
            })
            .collect();
        let pools: Vec<(&str, u32)> = spec
            .pools
            .iter()
            .map(|pool| (pool.id.as_str(), pool.capacity))
            .collect();
        let policy = &spec.policy;
        let window = spec.sale_window.unwrap_or_default();
        let args = [
            self.now_arg(),
            spec.id.to_string(),
            json_text(&spec)?,
            json_text(&layout)?,
            json_text(&pools)?,
            policy.reservation_ttl_seconds.to_string(),
            policy.reservation_ttl_seconds_max.to_string(),
            optional(policy.holder_seats_max),
            optional(policy.holder_reservations_max),
            match policy.late_commit {
                LateCommit::Strict => "strict",
                LateCommit::IfStillAvailable => "if_still_available",
            }
            .to_owned(),
            match policy.refund_to {
                RefundTo::Sale => "sale",
                RefundTo::Blocked => "blocked",
            }
            .to_owned(),
            optional(window.opens_at.map(Timestamp::as_millis)),
            optional(window.closes_at.map(Timestamp::as_millis)),
            optional(policy.waitlist.then_some(policy.waitlist_offer_ttl_seconds)),
        ];
        let args: Vec<&[u8]> = args.iter().map(|arg| arg.as_bytes()).collect();
        let answer = self
            .run(
                "create_event",
                &SCRIPTS.create_event,
                &self.keys.event(&tag),
                &args,
                Repeat::Unsafe,
            )
            .await?;
        let created =
            wire::decode::<Created>("create_event", wire::parse("create_event", &answer)?);
        match created {
            Ok(created) => {
                let event = Event::from_spec(spec, Timestamp::from_millis(created.created_at));
                self.list_event(&event.summary()).await?;
                Ok(event)
            }
            Err(
                error @ Error::Conflict {
                    reason: ConflictReason::EventExists,
                },
            ) => {
                // The event exists: make sure it is listed (a crash between the two steps of
                // its creation would have left it out).
                let event = self.event(&spec.id).await?;
                self.list_event(&event.summary()).await?;
                Err(error)
            }
            Err(error) => Err(error),
        }
    }

    async fn list_event(&self, summary: &EventSummary) -> Result<()> {
        let summary_json = json_text(summary)?;
        let args: [&[u8]; 2] = [summary.id.as_str().as_bytes(), summary_json.as_bytes()];
        self.run(
            "create_event",
            &SCRIPTS.index,
            &self.keys.listing(),
            &args,
            Repeat::Safe,
        )
        .await?;
        Ok(())
    }

    /// The event as created.
    ///
    /// Errors: `not_found`, `backend`.
    pub async fn event(&self, event: &EventId) -> Result<Event> {
        let key = self.keys.event(&keys::tag(event)).swap_remove(0);
        let mut connection = self.connection.clone();
        let (id, spec, created): (Option<String>, Option<String>, Option<u64>) =
            redis::cmd("HMGET")
                .arg(&key)
                .arg("id")
                .arg("spec")
                .arg("created")
                .query_async(&mut connection)
                .await
                .map_err(|error| backend("event", &error))?;
        let (Some(spec), Some(created)) = (spec, created) else {
            return Err(Error::not_found(Entity::Event, event));
        };
        if id.as_deref() != Some(event.as_str()) {
            return Err(Error::not_found(Entity::Event, event));
        }
        let spec: EventSpec = serde_json::from_str(&spec)
            .map_err(|error| wire::malformed("event", &error.to_string()))?;
        Ok(Event::from_spec(spec, Timestamp::from_millis(created)))
    }

    /// Events ordered by id, after the page's cursor.
    ///
    /// Errors: `invalid_request` (limit), `backend`.
    pub async fn events(&self, page: Page) -> Result<Vec<EventSummary>> {
        validate::check_page(&page)?;
        let after = page.after.as_ref().map(EventId::as_str).unwrap_or_default();
        let limit = page.limit.to_string();
        let args: [&[u8]; 2] = [after.as_bytes(), limit.as_bytes()];
        let answer = self
            .run(
                "events",
                &SCRIPTS.list,
                &self.keys.listing(),
                &args,
                Repeat::Safe,
            )
            .await?;
        serde_json::from_str(&answer).map_err(|error| wire::malformed("events", &error.to_string()))
    }

    /// Every listed event id (for the sweeper).
    pub(crate) async fn event_ids(&self) -> Result<Vec<String>> {
        let [ids, _] = self.keys.listing();
        let mut connection = self.connection.clone();
        redis::cmd("ZRANGE")
            .arg(&ids)
            .arg(0)
            .arg(-1)
            .query_async(&mut connection)
            .await
            .map_err(|error| backend("expire_due", &error))
    }
}
