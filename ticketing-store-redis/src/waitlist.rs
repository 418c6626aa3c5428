//! [`WaitlistStore`] for [`RedisStore`]: join, read and leave, each one script on the
//! event's slot; the serve step runs inside every script that frees items (see
//! `lua/waitlist.lua`).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use ticketing_core::{
    EventId, HolderId, ReservationId, ReservationToken, Result, Timestamp, WaitlistEntry,
    WaitlistEntryId, WaitlistJoined, WaitlistRequest, WaitlistState, WaitlistStore, validate,
};

use crate::connection::SCRIPTS;
use crate::events::json_text;
use crate::{RedisStore, Repeat, keys, wire};

/// A request as the join script reads it (absent fields: none).
#[derive(Serialize)]
struct JoinWire<'a> {
    holder: &'a str,
    quantity: u32,
    adjacent: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    section: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pool: Option<&'a str>,
}

/// An entry as the scripts answer it; `rq` is the request as the join sent it.
#[derive(Deserialize)]
struct EntryWire {
    id: String,
    rq: String,
    joined_at: u64,
    state: String,
    position: Option<u64>,
    reservation: Option<String>,
}

impl EntryWire {
    fn into_entry(self, operation: &'static str) -> Result<WaitlistEntry> {
        let request: WaitlistRequest = serde_json::from_str(&self.rq)
            .map_err(|error| wire::malformed(operation, &error.to_string()))?;
        let state = match (self.state.as_str(), self.position, self.reservation) {
            ("waiting", Some(position), _) => WaitlistState::Waiting { position },
            ("offered", _, Some(reservation)) => WaitlistState::Offered {
                reservation: ReservationId::new(reservation)?,
            },
            ("left", _, _) => WaitlistState::Left,
            (other, _, _) => {
                return Err(wire::malformed(
                    operation,
                    &format!("waitlist entry state {other:?}"),
                ));
            }
        };
        Ok(WaitlistEntry {
            id: WaitlistEntryId::new(self.id)?,
            request,
            joined_at: Timestamp::from_millis(self.joined_at),
            state,
        })
    }
}

impl RedisStore {
    /// Puts the holder on the event's waitlist or returns its open entry, with the
    /// semantics of [`WaitlistStore::waitlist_join`]: one script, which offers the new
    /// entry at once when free inventory satisfies it.
    ///
    /// Errors: as the trait documents, and `backend`.
    pub async fn waitlist_join(&self, request: WaitlistRequest) -> Result<WaitlistJoined> {
        validate::check_waitlist_request(&request)?;
        let tag = keys::tag(&request.event);
        let at = self.id_time();
        let entry = WaitlistEntryId::generate(at);
        // The offer's id and token are the entry's, fixed now: an entry is offered once.
        let offer = keys::reservation_id(at, &tag)?;
        let token = ReservationToken::generate();
        let document = json_text(&JoinWire {
            holder: request.holder.as_str(),
            quantity: request.quantity,
            adjacent: request.adjacent,
            section: request.section.as_deref(),
            pool: request.pool.as_ref().map(|pool| pool.as_str()),
        })?;
        let (now, canonical, digest, entries_max) = (
            self.now_arg(),
            json_text(&request)?,
            keys::token_digest(&token),
            validate::WAITLIST_ENTRIES_MAX.to_string(),
        );
        let args: [&[u8]; 8] = [
            now.as_bytes(),
            request.event.as_str().as_bytes(),
            document.as_bytes(),
            canonical.as_bytes(),
            entry.as_str().as_bytes(),
            digest.as_bytes(),
            offer.as_str().as_bytes(),
            entries_max.as_bytes(),
        ];
        // A lost answer must not be retried: the retry would find the entry and answer it
        // without its token.
        let answer = self
            .run(
                "waitlist_join",
                &SCRIPTS.waitlist_join,
                &self.keys.event(&tag),
                &args,
                Repeat::Unsafe,
            )
            .await?;
        let answered: EntryWire =
            wire::decode("waitlist_join", wire::parse("waitlist_join", &answer)?)?;
        let answered = answered.into_entry("waitlist_join")?;
        // A fresh entry carries its token; an open one found again does not.
        let token = (answered.id == entry).then_some(token);
        Ok(WaitlistJoined {
            entry: answered,
            token,
        })
    }

    /// An entry as it is now, with the semantics of [`WaitlistStore::waitlist_entry`].
    ///
    /// Errors: as the trait documents, and `backend`.
    pub async fn waitlist_entry(
        &self,
        event: &EventId,
        entry: &WaitlistEntryId,
    ) -> Result<WaitlistEntry> {
        let now = self.now_arg();
        let args: [&[u8]; 3] = [
            now.as_bytes(),
            event.as_str().as_bytes(),
            entry.as_str().as_bytes(),
        ];
        let answer = self
            .run(
                "waitlist_entry",
                &SCRIPTS.waitlist_entry,
                &self.keys.event(&keys::tag(event)),
                &args,
                Repeat::Safe,
            )
            .await?;
        let answered: EntryWire =
            wire::decode("waitlist_entry", wire::parse("waitlist_entry", &answer)?)?;
        answered.into_entry("waitlist_entry")
    }

    /// Takes a waiting entry off the waitlist, with the semantics of
    /// [`WaitlistStore::waitlist_leave`].
    ///
    /// Errors: as the trait documents, and `backend`.
    pub async fn waitlist_leave(
        &self,
        event: &EventId,
        entry: &WaitlistEntryId,
        holder: &HolderId,
    ) -> Result<()> {
        let now = self.now_arg();
        let args: [&[u8]; 4] = [
            now.as_bytes(),
            event.as_str().as_bytes(),
            entry.as_str().as_bytes(),
            holder.as_str().as_bytes(),
        ];
        // Leaving again changes nothing: safe to repeat.
        let answer = self
            .run(
                "waitlist_leave",
                &SCRIPTS.waitlist_leave,
                &self.keys.event(&keys::tag(event)),
                &args,
                Repeat::Safe,
            )
            .await?;
        wire::decode("waitlist_leave", wire::parse("waitlist_leave", &answer)?)
    }
}

#[async_trait]
impl WaitlistStore for RedisStore {
    async fn waitlist_join(&self, request: WaitlistRequest) -> Result<WaitlistJoined> {
        RedisStore::waitlist_join(self, request).await
    }

    async fn waitlist_entry(
        &self,
        event: &EventId,
        entry: &WaitlistEntryId,
    ) -> Result<WaitlistEntry> {
        RedisStore::waitlist_entry(self, event, entry).await
    }

    async fn waitlist_leave(
        &self,
        event: &EventId,
        entry: &WaitlistEntryId,
        holder: &HolderId,
    ) -> Result<()> {
        RedisStore::waitlist_leave(self, event, entry, holder).await
    }
}
