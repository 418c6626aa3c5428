//! `GET /v1/events/{id}/changes`: the change log as Server-Sent Events, then live.
//!
//! Each change is an SSE event named `change` whose `id` is its sequence number and whose
//! data is the core's change JSON (`seq`, `at` in milliseconds since the epoch, `kind` with
//! a `type`). A reconnecting client sends `Last-Event-ID` and resumes after it. A client
//! that asks for changes the store no longer retains gets one `resync` event (re-read the
//! seat map, then follow `?after={seq}` from its `seq`) and the stream ends.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use ticketing_core::{Change, Error, EventId, InventoryStore};
use tokio::sync::{OwnedSemaphorePermit, watch};
use utoipa::IntoParams;

use crate::handlers::{Shared, path_id, respond};
use crate::problem::ApiError;

/// Changes read from the store at a time.
const CHANGES_BATCH: usize = 512;

/// Where a change stream starts.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangesQuery {
    /// Stream changes after this sequence number (default 0: the whole log).
    /// `Last-Event-ID` takes precedence.
    after: Option<u64>,
}

struct Stream {
    store: Arc<dyn InventoryStore>,
    event: EventId,
    after: u64,
    buffer: VecDeque<Change>,
    wake: watch::Receiver<()>,
    poll: Duration,
    done: bool,
    _permit: OwnedSemaphorePermit,
}

fn change_event(change: &Change) -> Event {
    let data = serde_json::to_string(change).unwrap_or_else(|_| "{}".to_owned());
    Event::default()
        .event("change")
        .id(change.seq.to_string())
        .data(data)
}

fn resync_event(event: &EventId, first_retained: u64) -> Event {
    let data = serde_json::json!({
        "code": "changes_pruned",
        "first_retained": first_retained,
        "seatmap": format!("/v1/events/{event}/seatmap"),
    });
    Event::default().event("resync").data(data.to_string())
}

fn error_event(error: &Error) -> Event {
    let data = serde_json::json!({"code": error.code(), "detail": "the store failed; reconnect"});
    Event::default().event("error").data(data.to_string())
}

impl Stream {
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        loop {
            if self.done {
                return None;
            }
            if let Some(change) = self.buffer.pop_front() {
                self.after = change.seq;
                let event = change_event(&change);
                return Some((Ok(event), self));
            }
            match self
                .store
                .changes(&self.event, self.after, CHANGES_BATCH)
                .await
            {
                Ok(changes) if changes.is_empty() => self.wait().await,
                Ok(changes) => self.buffer.extend(changes),
                Err(Error::ChangesPruned { first_retained }) => {
                    self.done = true;
                    return Some((Ok(resync_event(&self.event, first_retained)), self));
                }
                Err(error) => {
                    tracing::warn!(%error, event = %self.event, "change stream ended");
                    self.done = true;
                    return Some((Ok(error_event(&error)), self));
                }
            }
        }
    }

    /// Until this router writes to the event or the poll interval passes.
    async fn wait(&mut self) {
        let poll = tokio::time::sleep(self.poll);
        tokio::pin!(poll);
        tokio::select! {
            changed = self.wake.changed() => {
                if changed.is_err() {
                    (&mut poll).await;
                }
            }
            () = &mut poll => {}
        }
    }
}

/// Where the stream starts: `Last-Event-ID`, else `?after=`, else 0.
fn start(headers: &HeaderMap, query: &ChangesQuery) -> Result<u64, ApiError> {
    match headers.get("last-event-id") {
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
            .ok_or_else(|| ApiError::invalid("last_event_id", "must be a sequence number")),
        None => Ok(query.after.unwrap_or(0)),
    }
}

/// The event's change log from a sequence number, then live, as Server-Sent Events.
#[utoipa::path(
    get, path = "/v1/events/{id}/changes", tag = "events",
    params(
        ("id" = String, Path, description = "The event"),
        ChangesQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this sequence number"),
    ),
    responses(
        (status = 200, description = "`change` events (id = seq, data = the change JSON); `resync` when behind retention", content_type = "text/event-stream", body = String),
        (status = 400, description = "Bad sequence number", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown event", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Too many streams open", body = crate::wire::Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn changes(
    State(state): State<Shared>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ChangesQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            let event = path_id::<EventId>(path)?;
            let Query(query) =
                query.map_err(|rejection| ApiError::invalid("query", rejection.body_text()))?;
            let after = start(&headers, &query)?;
            // The first read answers 404 and 503 before the stream starts.
            let first = match state.store.changes(&event, after, CHANGES_BATCH).await {
                Ok(changes) => changes,
                Err(Error::ChangesPruned { .. }) => Vec::new(),
                Err(error) => return Err(state.store_error(error)),
            };
            let permit = Arc::clone(&state.sse_permits)
                .try_acquire_owned()
                .map_err(|_| {
                    ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "overloaded",
                        "Too many streams",
                        "too many change streams are open; retry later",
                    )
                    .retry_after(Duration::from_secs(5))
                })?;
            let stream = Stream {
                store: Arc::clone(&state.store),
                wake: state.notifier.subscribe(&event),
                event,
                after,
                buffer: first.into(),
                poll: state.sse_poll_interval,
                done: false,
                _permit: permit,
            };
            let events = futures_util::stream::unfold(stream, Stream::next);
            Ok(Sse::new(events)
                .keep_alive(KeepAlive::default())
                .into_response())
        }
        .await,
    )
}
