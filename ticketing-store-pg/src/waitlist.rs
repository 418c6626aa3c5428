//! [`WaitlistStore`] for [`PgStore`]: each method is one statement calling a function
//! installed by the migrations (`migrations/0008_waitlist.sql`), answering one jsonb
//! document.
//!
//! The serve step is SQL too, and runs inside the transaction of every operation that frees
//! inventory, under the event's row lock: a change that frees inventory serves the waitlist
//! as it is logged, finalizing lapsed reservations serves once none is left lapsed, and every
//! operation on an event with a waitlist finalizes its lapsed reservations first. So no
//! racing buyer can take freed inventory while a waiting entry could have it.

use async_trait::async_trait;
use ticketing_core::waitlist::{WaitlistEntry, WaitlistJoined, WaitlistRequest, WaitlistStore};
use ticketing_core::{
    Error, EventId, HolderId, ReservationToken, Result, WaitlistEntryId, validate,
};

use crate::PgStore;
use crate::wire::decode;

/// [`validate::WAITLIST_ENTRIES_MAX`] as the database takes it.
const WAITLIST_ENTRIES_MAX: i32 = validate::WAITLIST_ENTRIES_MAX as i32;
const _: () = assert!(validate::WAITLIST_ENTRIES_MAX <= i32::MAX as usize);

impl PgStore {
    /// Puts the holder on the event's waitlist, or answers their open entry, with the
    /// semantics of [`WaitlistStore::waitlist_join`].
    ///
    /// Errors: as the trait documents, and `backend`.
    pub async fn waitlist_join(&self, request: WaitlistRequest) -> Result<WaitlistJoined> {
        validate::check_waitlist_request(&request)?;
        let token = ReservationToken::generate();
        // The id's time part only orders ids; the entry's times come from the store's clock.
        let id = WaitlistEntryId::generate(self.id_time());
        let document =
            serde_json::to_value(&request).map_err(|error| Error::backend("postgres", error))?;
        let digest = token.digest();
        let answer = self
            .call("waitlist_join", || {
                sqlx::query("SELECT ticketing_waitlist_join($1, $2, $3, $4, $5) AS answer")
                    .bind(self.now_param())
                    .bind(&document)
                    .bind(id.as_str())
                    .bind(&digest[..])
                    .bind(WAITLIST_ENTRIES_MAX)
            })
            .await?;
        let entry: WaitlistEntry = decode("waitlist_join", answer)?;
        // The join that made the entry carries its token; a repeated one does not.
        let token = (entry.id == id).then_some(token);
        Ok(WaitlistJoined { entry, token })
    }

    /// An entry as it is now, with the semantics of [`WaitlistStore::waitlist_entry`].
    ///
    /// Errors: as the trait documents, and `backend`.
    pub async fn waitlist_entry(
        &self,
        event: &EventId,
        entry: &WaitlistEntryId,
    ) -> Result<WaitlistEntry> {
        let answer = self
            .call("waitlist_entry", || {
                sqlx::query("SELECT ticketing_waitlist_entry($1, $2, $3) AS answer")
                    .bind(self.now_param())
                    .bind(event.as_str())
                    .bind(entry.as_str())
            })
            .await?;
        decode("waitlist_entry", answer)
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
        let answer = self
            .call("waitlist_leave", || {
                sqlx::query("SELECT ticketing_waitlist_leave($1, $2, $3, $4) AS answer")
                    .bind(self.now_param())
                    .bind(event.as_str())
                    .bind(entry.as_str())
                    .bind(holder.as_str())
            })
            .await?;
        decode::<Option<()>>("waitlist_leave", answer).map(|_| ())
    }
}

#[async_trait]
impl WaitlistStore for PgStore {
    async fn waitlist_join(&self, request: WaitlistRequest) -> Result<WaitlistJoined> {
        PgStore::waitlist_join(self, request).await
    }

    async fn waitlist_entry(
        &self,
        event: &EventId,
        entry: &WaitlistEntryId,
    ) -> Result<WaitlistEntry> {
        PgStore::waitlist_entry(self, event, entry).await
    }

    async fn waitlist_leave(
        &self,
        event: &EventId,
        entry: &WaitlistEntryId,
        holder: &HolderId,
    ) -> Result<()> {
        PgStore::waitlist_leave(self, event, entry, holder).await
    }
}
