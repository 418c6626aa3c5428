// The REST API as the page uses it: JSON in and out, and errors turned from RFC 9457
// problem documents into plain words.

/** A failed call: the HTTP status, the problem document's stable code, and the document. */
export class ApiError extends Error {
  constructor(status, problem, retryAfterSeconds) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem.code || 'http_' + status;
    this.problem = problem;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/**
 * One call. `identity` carries the holder: its `headers` go on every call (empty in the
 * server's development mode, where the holder is the reserve body's `user_id`).
 * Resolves to `{status, body, headers}`; rejects with an ApiError for any status >= 400.
 */
export async function call(method, path, { body, headers = {}, identity } = {}) {
  const init = {
    method,
    cache: 'no-store',
    headers: { accept: 'application/json', ...(identity ? identity.headers : {}), ...headers },
  };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (cause) {
    throw new ApiError(0, {
      code: 'network',
      detail: `the server could not be reached (${cause.message})`,
    });
  }
  const type = response.headers.get('content-type') || '';
  const json = type.includes('json') ? await response.json().catch(() => null) : null;
  if (response.status >= 400) {
    const retryAfter = Number(response.headers.get('retry-after')) || undefined;
    throw new ApiError(response.status, json || { title: response.statusText }, retryAfter);
  }
  return { status: response.status, body: json, headers: response.headers };
}

/** A random UUID (v4), also where crypto.randomUUID is missing (plain-HTTP origins). */
export function uuid() {
  if (globalThis.crypto && crypto.randomUUID && globalThis.isSecureContext) {
    return crypto.randomUUID();
  }
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const seconds = (error) => (error.retryAfterSeconds ? ` in ${error.retryAfterSeconds} s` : '');

/** Plain words for the codes a buyer meets; anything else says the document's detail. */
const EXPLAIN = {
  network: () => 'The server could not be reached. Is ticketing-server still running?',
  seat_unavailable: () => 'Someone else got that seat first. Pick another one.',
  sold_out: (p) => `Sold out: only ${p.remaining ?? 0} left in ${p.pool || 'that pool'}.`,
  reservation_expired: () => 'Your hold ran out before the purchase; the seat is back on sale.',
  reservation_not_active: (p) =>
    `This reservation is no longer active (it is ${p.reservation_status || 'finished'}).`,
  limit_exceeded: (p) => `You have reached the limit for this event (${p.detail}).`,
  not_on_sale: () => 'This event is not on sale right now.',
  not_found: (p) => `Not found: ${p.detail}.`,
  rate_limited: (p, error) => `Too many requests; try again${seconds(error)}.`,
  overloaded: (p, error) => `The server is busy; try again${seconds(error)}.`,
  timeout: (p, error) => `The server took too long; try again${seconds(error)}.`,
  backend: (p, error) => `The ticket store is unavailable; try again${seconds(error)}.`,
  unauthorized: () => 'This server wants a signed-in buyer (JWT); the demo page runs without one.',
};

/** What went wrong, for people. */
export function explain(error) {
  if (!(error instanceof ApiError)) {
    return `Something went wrong: ${error && error.message ? error.message : error}`;
  }
  const words = EXPLAIN[error.code];
  if (words) {
    return words(error.problem, error);
  }
  const detail = error.problem.detail || error.problem.title || `HTTP ${error.status}`;
  return detail.charAt(0).toUpperCase() + detail.slice(1) + (detail.endsWith('.') ? '' : '.');
}
