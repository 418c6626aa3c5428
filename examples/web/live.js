// Follows an event's change log: `GET /v1/events/{id}/changes?after={seq}` as Server-Sent
// Events. Each `change` event carries one change (id = its sequence number); when the
// connection drops, EventSource reconnects by itself and sends Last-Event-ID, so the
// stream resumes after the last change seen. A `resync` event (the server no longer keeps
// the changes asked for) ends the stream: the caller re-reads the seat map.

/**
 * Opens the stream after `seq`. Handlers: `change(change)`, `resync(reason)`,
 * `state(name)` with name `connecting`, `live`, `reconnecting` or `closed` (the server
 * refused the stream: 404, 503...; EventSource does not retry that by itself).
 * Returns `{close()}`.
 */
export function followChanges(eventId, seq, handlers) {
  const url = `/v1/events/${encodeURIComponent(eventId)}/changes?after=${seq}`;
  const source = new EventSource(url);
  let closed = false;
  const close = () => {
    closed = true;
    source.close();
  };
  handlers.state('connecting');
  source.addEventListener('open', () => handlers.state('live'));
  source.addEventListener('change', (message) => {
    if (closed) {
      return;
    }
    let change;
    try {
      change = JSON.parse(message.data);
    } catch {
      close();
      handlers.resync('unreadable change');
      return;
    }
    handlers.change(change);
  });
  source.addEventListener('resync', () => {
    close();
    handlers.resync('the server no longer keeps the changes since this map');
  });
  // Both the server's `error` event (its store failed; the stream ends and EventSource
  // reconnects) and a connection failure arrive here.
  source.addEventListener('error', () => {
    if (closed) {
      return;
    }
    if (source.readyState === EventSource.CLOSED) {
      closed = true;
      handlers.state('closed');
    } else {
      handlers.state('reconnecting');
    }
  });
  return { close };
}
