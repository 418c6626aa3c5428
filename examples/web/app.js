// The live seat map page: lists events, opens one, draws its seat map, keeps it live from
// the change stream, and lets this tab hold a seat, buy it or let it go.
//
// Tests read the page through `window.seatMap` (see the end of this file) and the data
// attributes on the event view (data-event-id, data-stream, data-seq; data-pool and its
// counts on each gauge; data-reservation-id and data-state on each reservation card).

import { call, explain, uuid } from './api.js';
import { AVAILABLE, EventModel, HELD, SOLD, STATUSES } from './model.js';
import { COLORS, SeatCanvas } from './seatmap.js';
import { followChanges } from './live.js';

const view = document.getElementById('view');
const noticeBox = document.getElementById('notice');

/** Builds an element: `h('a', {href: '#/'}, 'text', child)`. Text is never parsed as HTML. */
function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name.startsWith('on')) {
      element.addEventListener(name.slice(2), value);
    } else if (value !== undefined && value !== null && value !== false) {
      element.setAttribute(name, value === true ? '' : value);
    }
  }
  element.append(...children.flat().filter((child) => child !== null && child !== undefined));
  return element;
}

const number = (n) => Number(n).toLocaleString('en-US');

function seatLabel(seat) {
  const parts = [];
  if (seat.section) parts.push(`Section ${seat.section}`);
  if (seat.row) parts.push(`Row ${seat.row}`);
  parts.push(`Seat ${seat.number}`);
  return parts.join(' · ');
}

let noticeTimer = 0;
/** Shows a message for people above the page; `code` is the problem's, for tests. */
function notify(text, { code = '', tone = 'error' } = {}) {
  noticeBox.textContent = text;
  noticeBox.dataset.code = code;
  noticeBox.dataset.tone = tone;
  noticeBox.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => (noticeBox.hidden = true), 8000);
}

function notifyError(error) {
  notify(explain(error), { code: error.code || '' });
}

// The buyer: one generated holder per browser tab (sessionStorage is per tab). The server
// in development mode takes the holder from the reserve body's user_id; `headers` go on
// every call (where a signed-in page would put its Authorization header).
const identity = { userId: holderOfThisTab(), headers: {} };

function holderOfThisTab() {
  const key = 'ticketing.user_id';
  let id = sessionStorage.getItem(key);
  if (!id) {
    id = `web-${uuid().slice(0, 8)}`;
    sessionStorage.setItem(key, id);
  }
  return id;
}

// ---------------------------------------------------------------------------------------
// The event list

/** Event names by id, from the listing (an event opened by its address looks it up). */
const summaries = new Map();

async function listEvents(after) {
  const query = new URLSearchParams({ limit: '100' });
  if (after) query.set('after', after);
  const { body } = await call('GET', `/v1/events?${query}`);
  for (const event of body.events) summaries.set(event.event_id, event);
  return body;
}

function eventItem(event) {
  const pools = event.pools === 1 ? '1 standing area' : `${event.pools} standing areas`;
  return h(
    'li',
    {},
    h(
      'a',
      { href: `#/events/${encodeURIComponent(event.event_id)}`, 'data-event-id': event.event_id },
      h('strong', {}, event.name || event.event_id),
      h('span', { class: 'muted' }, `${event.event_id} · ${number(event.seats)} seats · ${pools}`),
    ),
  );
}

async function showEvents() {
  const list = h('ul', { class: 'events' });
  const more = h('button', { type: 'button', hidden: true }, 'More events');
  view.replaceChildren(h('section', { class: 'event-list' }, h('h1', {}, 'Events'), list, more));
  let cursor = null;
  const page = async () => {
    more.hidden = true;
    try {
      const body = await listEvents(cursor);
      list.append(...body.events.map(eventItem));
      cursor = body.next_cursor;
      more.hidden = !cursor;
      if (!list.children.length) {
        list.append(
          h('li', { class: 'muted' }, 'No events yet: start ticketing-server with --demo, or create one (POST /v1/events).'),
        );
      }
    } catch (error) {
      notifyError(error);
    }
  };
  more.addEventListener('click', page);
  await page();
}

// ---------------------------------------------------------------------------------------
// An open event

/**
 * Opening an event runs these steps in order; each gets the page and may add a sidebar
 * panel (`page.panel(...)`). The waiting-room step comes last, so a queued buyer already
 * watches the live map: on a gated event it shows the place in line in its own panel
 * until the buyer is admitted, and puts the pass into `page.identity.headers` for the
 * reserve calls that follow (events without a room answer 404 and skip it).
 */
const OPEN_STEPS = [
  (page) => page.describe(),
  (page) => page.readSeatMap(),
  (page) => page.goLive(),
  (page) => page.waitInRoom(),
];

/** How often a queued buyer asks for its place, in milliseconds. */
const QUEUE_POLL_MS = 1000;

/** What a reservation card says when its reservation ended without a word of its own. */
const ENDED_WORDS = {
  bought: 'Bought.',
  cancelled: 'Cancelled; the seat is back on sale.',
  lapsed: 'Your hold ran out; the seat is back on sale.',
  ended: 'This reservation has ended.',
};

/** How long a reservation card stays after its reservation ended. */
const ENDED_CARD_MS = 60_000;
/** Longest pause between attempts to re-read the map after the stream was refused. */
const RETRY_MS_MAX = 30_000;

class EventPage {
  constructor(eventId) {
    this.eventId = eventId;
    // This page's own headers: an admission pass is for this event only.
    this.identity = { ...identity, headers: { ...identity.headers } };
    this.model = null;
    this.stream = null;
    this.streamState = 'connecting';
    this.etag = null;
    this.etagSeq = -1;
    this.retryMs = 1000;
    this.closed = false;
    this.stats = { seatmapLoads: 0, changesApplied: 0, resyncs: 0, streamOpens: 0 };
    /** Seat id -> reservation id, for seats this tab holds. */
    this.mine = new Map();
    /** Seats this tab bought. */
    this.bought = new Set();
    /** Reservation id -> what the card shows. */
    this.reservations = new Map();
    this.pending = new Set();
    this.renderQueued = false;
    this.build();
  }

  build() {
    this.title = h('h1', {}, summaries.get(this.eventId)?.name || this.eventId);
    this.subtitle = h('span', { class: 'muted' }, this.eventId);
    this.streamPill = h('span', { class: 'pill' }, 'connecting');
    this.canvasElement = h('canvas', {
      class: 'seats',
      role: 'img',
      'aria-label': 'Seat map: click a green seat to hold it',
    });
    this.overlayElement = h('canvas', { class: 'overlay', 'aria-hidden': 'true' });
    this.mapStage = h('div', { class: 'map-stage' }, this.canvasElement, this.overlayElement);
    this.mapWrap = h('div', { class: 'map-wrap' }, this.mapStage);
    this.hoverInfo = h('div', { class: 'hover-info muted' }, 'Point at a seat; click a green one to hold it.');
    this.legend = h(
      'div',
      { class: 'legend' },
      ...Object.entries(COLORS).map(([key, colour]) => {
        const swatch = h('i', {});
        swatch.style.background = colour;
        return h('span', { 'data-legend': key }, swatch, legendName(key), h('b', {}, ''));
      }),
    );
    this.side = h('aside', { class: 'side' });
    this.root = h(
      'section',
      { class: 'event', 'data-event-id': this.eventId, 'data-stream': 'connecting' },
      h(
        'div',
        { class: 'event-head' },
        h('a', { href: '#/', class: 'back' }, '← All events'),
        this.title,
        this.subtitle,
        this.streamPill,
      ),
      h(
        'div',
        { class: 'event-body' },
        h('div', { class: 'map-column' }, this.legend, this.mapWrap, this.hoverInfo),
        this.side,
      ),
    );
    this.cards = h('div', { class: 'cards' });
    this.panel('reservations', 'Your seats', this.cards, h('p', { class: 'muted hint' }, `You are ${identity.userId}. Holds last a few minutes; buy before the countdown ends.`));
    view.replaceChildren(this.root);

    this.canvas = new SeatCanvas(this.canvasElement, this.overlayElement, (index) => this.colourKey(index));
    this.overlayElement.addEventListener('click', (event) => this.onClick(event));
    this.overlayElement.addEventListener('mousemove', (event) => this.onHover(event));
    this.overlayElement.addEventListener('mouseleave', () => this.canvas.hover(-1));
    this.onResize = debounce(() => this.fit(), 150);
    window.addEventListener('resize', this.onResize);
    this.ticker = setInterval(() => this.tick(), 250);
  }

  /** Adds a sidebar panel named `name` (kept in the order added) and returns it. */
  panel(name, title, ...children) {
    const panel = h('div', { class: 'panel', 'data-panel': name }, h('h2', {}, title), ...children);
    this.side.append(panel);
    return panel;
  }

  async open() {
    try {
      for (const step of OPEN_STEPS) {
        if (this.closed) return;
        await step(this);
      }
    } catch (error) {
      if (this.closed) return;
      this.mapWrap.replaceChildren(
        h('p', { class: 'failure' }, `This event could not be opened. ${explain(error)}`),
        h('button', { type: 'button', onclick: () => route() }, 'Try again'),
      );
    }
  }

  close() {
    this.closed = true;
    this.stream?.close();
    clearInterval(this.ticker);
    clearTimeout(this.retryTimer);
    window.removeEventListener('resize', this.onResize);
  }

  /** Step: the event's name and sale window, from the listing. */
  async describe() {
    let summary = summaries.get(this.eventId);
    for (let cursor = null, pages = 0; !summary && pages < 10; pages += 1) {
      const body = await listEvents(cursor);
      summary = summaries.get(this.eventId);
      cursor = body.next_cursor;
      if (!cursor) break;
    }
    if (!summary) return;
    this.title.textContent = summary.name || this.eventId;
    const opens = summary.sale_window?.opens_at;
    const closes = summary.sale_window?.closes_at;
    const parts = [this.eventId];
    if (opens && Date.parse(opens) > Date.now()) parts.push(`on sale from ${new Date(opens).toLocaleString()}`);
    if (closes) parts.push(`sale ends ${new Date(closes).toLocaleString()}`);
    this.subtitle.textContent = parts.join(' · ');
  }

  /**
   * Step: on a gated event, join its waiting room and show the place in line until
   * admitted; the pass then goes on this page's reserve and commit calls. The map stays
   * live meanwhile, but clicks wait for the pass. Events without a room skip this (404).
   */
  async waitInRoom() {
    const path = `/v1/events/${encodeURIComponent(this.eventId)}/queue`;
    try {
      await call('GET', path, { identity: this.identity });
    } catch (error) {
      if (error.status === 404) return;
      throw error;
    }
    this.queued = true;
    const place = h('b', {}, '…');
    const wait = h('span', { class: 'muted' }, '');
    const panel = this.panel('queue', 'Waiting room', h('p', { 'data-queue': 'waiting' }, 'Your place in line: ', place, ' ', wait));
    const say = (state, ...words) => panel.replaceChildren(h('h2', {}, 'Waiting room'), h('p', { 'data-queue': state }, ...words));
    let view = (await call('POST', path, { body: { user_id: this.identity.userId }, identity: this.identity })).body;
    while (!this.closed) {
      if (view.pass) {
        this.identity.headers['admission-pass'] = view.pass;
        this.queued = false;
        const until = view.pass_expires_at ? ` until ${new Date(view.pass_expires_at).toLocaleTimeString()}` : '';
        say('admitted', `You are in: pick your seats${until}.`);
        return;
      }
      if (view.status === 'sold_out') {
        say('sold_out', 'Sold out while you waited. Seats may come back: keep this page open.');
      } else {
        place.textContent = view.position != null ? number(view.position) : '…';
        wait.textContent = view.estimated_wait_seconds != null ? `(about ${view.estimated_wait_seconds} s)` : '';
      }
      await new Promise((resolve) => setTimeout(resolve, QUEUE_POLL_MS));
      if (this.closed) return;
      view = (await call('GET', `/v1/queue/${encodeURIComponent(view.ticket_id)}`, { identity: this.identity })).body;
    }
  }

  /** Step: the seat map (layout, statuses, pool counts and the seq they reflect). */
  async readSeatMap() {
    const headers = {};
    // Revalidate only a map nothing was applied to since: then 304 means "still true".
    if (this.etag && this.model && this.model.seq === this.etagSeq) headers['if-none-match'] = this.etag;
    const response = await call('GET', `/v1/events/${encodeURIComponent(this.eventId)}/seatmap`, { headers, identity });
    this.stats.seatmapLoads += 1;
    if (response.status === 304) return;
    this.model = new EventModel(response.body);
    this.etag = response.headers.get('etag');
    this.etagSeq = this.model.seq;
    if (!this.model.seats.length) {
      this.mapWrap.replaceChildren(h('p', { class: 'muted' }, 'This event has no assigned seats, only standing areas.'));
    }
    this.canvas.setModel(this.model);
    this.fit();
    this.renderPools();
    this.render();
  }

  /** Step: follow the change stream from the map's seq. */
  goLive() {
    this.stream?.close();
    this.stats.streamOpens += 1;
    this.stream = followChanges(this.eventId, this.model.seq, {
      change: (change) => this.onChange(change),
      resync: (reason) => this.resync(reason),
      state: (state) => this.setStreamState(state),
    });
  }

  /** Re-reads the map and follows on from it: after a resync event, a gap, or a refusal. */
  async resync(reason) {
    if (this.resyncing || this.closed) return;
    this.resyncing = true;
    this.stream?.close();
    this.stats.resyncs += 1;
    this.setStreamState('re-reading');
    console.info(`re-reading the seat map: ${reason}`);
    try {
      await this.readSeatMap();
      this.retryMs = 1000;
      this.goLive();
    } catch (error) {
      this.setStreamState('closed');
      notify(`Lost the live view: ${explain(error)} Retrying…`, { code: error.code });
      this.retryTimer = setTimeout(() => this.resync('retry'), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, RETRY_MS_MAX);
    } finally {
      this.resyncing = false;
    }
  }

  setStreamState(state) {
    this.streamState = state;
    this.root.dataset.stream = state;
    this.streamPill.textContent = state === 'live' ? '● live' : state;
    this.streamPill.dataset.state = state;
    if (state === 'closed' && !this.resyncing) {
      this.retryTimer = setTimeout(() => this.resync('the server refused the change stream'), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, RETRY_MS_MAX);
    }
  }

  onChange(change) {
    if (!this.model || this.resyncing) return;
    if (change.seq <= this.model.seq) return; // seen already (a reconnect can repeat one)
    if (change.seq !== this.model.seq + 1) {
      this.resync(`sequence gap: had ${this.model.seq}, got ${change.seq}`);
      return;
    }
    const touched = this.model.apply(change);
    if (!touched) {
      this.resync(`change ${change.seq} (${change.kind?.type}) does not follow from this map`);
      return;
    }
    this.stats.changesApplied += 1;
    this.trackMine(change.kind);
    this.canvas.repaint(touched.seats);
    if (touched.pools) this.poolsDirty = true;
    this.queueRender();
  }

  /** Follows this tab's reservations through changes (another tab may have acted). */
  trackMine(kind) {
    const record = kind.reservation && this.reservations.get(kind.reservation);
    if (!record) return;
    if (kind.type === 'committed') {
      this.finish(record, 'bought', kind.seats || []);
    } else if (kind.type === 'cancelled') {
      this.finish(record, 'cancelled');
    } else if (kind.type === 'expired') {
      this.finish(record, 'lapsed');
    }
  }

  colourKey(index) {
    const status = this.model.status[index];
    const id = this.model.seats[index].seat_id;
    if (this.mine.has(id) && (status === HELD || status === AVAILABLE)) return 'mine-held';
    if (status === SOLD && this.bought.has(id)) return 'mine-sold';
    return STATUSES[status];
  }

  fit() {
    if (!this.model || !this.model.seats.length) return;
    const top = this.mapWrap.getBoundingClientRect().top + window.scrollY;
    const height = window.innerHeight - top - 36;
    this.canvas.layout(this.mapWrap.clientWidth, height);
  }

  queueRender() {
    if (this.renderQueued) return;
    this.renderQueued = true;
    requestAnimationFrame(() => {
      this.renderQueued = false;
      this.render();
    });
  }

  /** Counts, seq and gauges: at most once a frame, however fast changes come. */
  render() {
    if (!this.model) return;
    this.root.dataset.seq = this.model.seq;
    const counts = this.model.counts();
    for (const item of this.legend.children) {
      const key = item.dataset.legend;
      const count = key in counts ? counts[key] : this.countOfMine(key);
      item.querySelector('b').textContent = number(count);
    }
    if (this.poolsDirty) this.renderPools();
    this.describeHovered();
  }

  countOfMine(key) {
    if (key === 'mine-sold') return this.bought.size;
    return this.mine.size;
  }

  renderPools() {
    this.poolsDirty = false;
    const pools = [...this.model.pools.values()];
    let panel = this.side.querySelector('[data-panel="pools"]');
    if (!pools.length) {
      panel?.remove();
      return;
    }
    if (!panel) panel = this.panel('pools', 'Standing areas');
    const gauges = pools.map((pool) => {
      const share = (n) => `${pool.capacity ? (100 * n) / pool.capacity : 0}%`;
      const bar = (kind, n) => {
        const part = h('span', { class: `g-${kind}` });
        part.style.width = share(n);
        return part;
      };
      return h(
        'div',
        {
          class: 'pool',
          'data-pool': pool.pool,
          'data-capacity': pool.capacity,
          'data-available': pool.available,
          'data-held': pool.held,
          'data-sold': pool.sold,
          'data-blocked': pool.blocked,
        },
        h('div', { class: 'pool-head' }, h('strong', {}, pool.name || pool.pool), h('span', {}, `${number(pool.available)} of ${number(pool.capacity)} left`)),
        h('div', { class: 'gauge' }, bar('sold', pool.sold), bar('held', pool.held), bar('blocked', pool.blocked)),
        h('div', { class: 'muted' }, `sold ${number(pool.sold)} · held ${number(pool.held)} · blocked ${number(pool.blocked)}`),
      );
    });
    panel.replaceChildren(panel.querySelector('h2'), ...gauges);
  }

  onHover(event) {
    const index = this.canvas.seatAt(event.clientX, event.clientY);
    this.canvas.hover(index);
    this.overlayElement.style.cursor = index >= 0 && this.model.status[index] === AVAILABLE ? 'pointer' : '';
    this.describeHovered();
  }

  /** The line under the map: the seat under the pointer, as it is now. */
  describeHovered() {
    const index = this.canvas.hovered;
    if (index < 0 || !this.model) return;
    const seat = this.model.seats[index];
    const extra = [seat.category, seat.accessible ? 'accessible' : ''].filter(Boolean).join(', ');
    const status = legendName(this.colourKey(index)).toLowerCase();
    this.hoverInfo.textContent = `${seatLabel(seat)} (${seat.seat_id}) · ${status}${extra ? ` · ${extra}` : ''}`;
  }

  onClick(event) {
    const index = this.canvas.seatAt(event.clientX, event.clientY);
    if (index < 0 || this.pending.has(index)) return;
    const seat = this.model.seats[index];
    const mine = this.mine.get(seat.seat_id);
    if (mine) {
      this.reservations.get(mine)?.card.scrollIntoView({ block: 'nearest' });
      return;
    }
    const status = this.model.status[index];
    if (this.queued) {
      notify('You are in the waiting room: seats can be picked once you are admitted.', { code: 'queued', tone: 'info' });
      return;
    }
    if (status !== AVAILABLE) {
      const words = { held: 'held by someone else', sold: 'already sold', blocked: 'not on sale' };
      notify(`${seatLabel(seat)} is ${words[STATUSES[status]]}.`, { code: `seat_${STATUSES[status]}`, tone: 'info' });
      return;
    }
    this.reserve(index);
  }

  async reserve(index) {
    const seat = this.model.seats[index];
    this.pending.add(index);
    try {
      const { body } = await call('POST', `/v1/events/${encodeURIComponent(this.eventId)}/reservations`, {
        identity: this.identity,
        body: { user_id: this.identity.userId, seat_ids: [seat.seat_id] },
      });
      // Count down on this machine's clock from the server's own hold length, so a clock
      // that is off does not shorten or stretch the countdown.
      const holdMs = Date.parse(body.expires_at) - Date.parse(body.created_at);
      const record = {
        id: body.reservation_id,
        token: body.token,
        seats: body.seats,
        labels: body.seats.map((id) => seatLabel(this.model.seats[this.model.indexOf.get(id)] || { number: id })),
        deadline: Date.now() + holdMs,
        state: 'held',
        message: '',
      };
      this.reservations.set(record.id, record);
      for (const id of record.seats) this.mine.set(id, record.id);
      this.repaintSeats(record.seats);
      this.addCard(record);
      this.queueRender();
    } catch (error) {
      if (!this.closed) notifyError(error);
    } finally {
      this.pending.delete(index);
    }
  }

  async buy(record) {
    this.update(record, 'buying', 'Paying…');
    try {
      const { body } = await call('POST', `/v1/reservations/${encodeURIComponent(record.id)}/commit`, {
        identity: this.identity,
        // A fresh key per attempt; a repeat of this very request would reuse it.
        headers: { 'reservation-token': record.token, 'idempotency-key': uuid() },
        body: { payment_id: `web-${uuid()}` },
      });
      const seats = body.tickets.map((ticket) => ticket.seat_id).filter(Boolean);
      const codes = body.tickets.map((ticket) => ticket.code).join(', ');
      this.finish(record, 'bought', seats, `Bought: order ${body.order_id}, ticket ${codes}.`);
    } catch (error) {
      this.failed(record, error);
    }
  }

  async cancel(record) {
    this.update(record, 'cancelling', 'Letting it go…');
    try {
      await call('POST', `/v1/reservations/${encodeURIComponent(record.id)}/cancel`, {
        identity: this.identity,
        headers: { 'reservation-token': record.token },
      });
      this.finish(record, 'cancelled');
    } catch (error) {
      this.failed(record, error);
    }
  }

  failed(record, error) {
    const over = { reservation_expired: 'lapsed', reservation_not_active: 'ended', not_found: 'ended' };
    const state = over[error.code];
    if (state) {
      this.finish(record, state, [], explain(error));
    } else {
      this.update(record, 'held', explain(error), error.code);
    }
  }

  /** The reservation is over: bought, cancelled, lapsed or ended. Idempotent. */
  finish(record, state, boughtSeats = [], message) {
    const wasOver = !['held', 'buying', 'cancelling'].includes(record.state);
    for (const id of record.seats) this.mine.delete(id);
    for (const id of boughtSeats) this.bought.add(id);
    this.repaintSeats(record.seats);
    this.queueRender();
    if (wasOver && !message) return;
    this.update(record, state, message ?? ENDED_WORDS[state]);
    if (!wasOver) setTimeout(() => this.dismiss(record), ENDED_CARD_MS);
  }

  repaintSeats(ids) {
    if (!this.model) return;
    this.canvas.repaint(ids.map((id) => this.model.indexOf.get(id)).filter((index) => index !== undefined));
  }

  addCard(record) {
    record.countdown = h('span', { class: 'countdown' });
    record.note = h('p', { class: 'message' });
    record.buyButton = h('button', { type: 'button', class: 'buy', onclick: () => this.buy(record) }, 'Buy');
    record.cancelButton = h('button', { type: 'button', class: 'cancel', onclick: () => this.cancel(record) }, 'Cancel');
    record.card = h(
      'div',
      { class: 'reservation', 'data-reservation-id': record.id },
      h('div', { class: 'what' }, h('strong', {}, record.labels.join(', ')), record.countdown),
      h('div', { class: 'actions' }, record.buyButton, record.cancelButton),
      record.note,
    );
    this.cards.prepend(record.card);
    this.update(record, record.state, record.message);
  }

  update(record, state, message = '', code = '') {
    record.state = state;
    record.message = message;
    if (!record.card) return;
    record.card.dataset.state = state;
    record.card.dataset.code = code;
    record.note.textContent = message;
    const live = state === 'held';
    record.buyButton.disabled = !live;
    record.cancelButton.disabled = !live;
    record.buyButton.hidden = record.cancelButton.hidden = !['held', 'buying', 'cancelling'].includes(state);
    this.tickCard(record);
  }

  dismiss(record) {
    record.card?.remove();
    this.reservations.delete(record.id);
  }

  tick() {
    for (const record of this.reservations.values()) this.tickCard(record);
  }

  tickCard(record) {
    if (!record.countdown) return;
    const labels = { bought: 'bought', cancelled: 'cancelled', lapsed: 'lapsed', ended: 'ended' };
    if (labels[record.state]) {
      record.countdown.textContent = labels[record.state];
      return;
    }
    const left = Math.max(0, record.deadline - Date.now());
    const seconds = Math.ceil(left / 1000);
    record.countdown.textContent = `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')} left`;
    if (left === 0 && record.state === 'held') {
      this.update(record, 'lapsed', ENDED_WORDS.lapsed);
      setTimeout(() => this.dismiss(record), ENDED_CARD_MS);
    }
  }
}

function legendName(key) {
  const names = {
    available: 'Available',
    held: 'Held',
    sold: 'Sold',
    blocked: 'Blocked',
    'mine-held': 'Held by you',
    'mine-sold': 'Bought by you',
  };
  return names[key] || key;
}

function debounce(run, ms) {
  let timer = 0;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(run, ms);
  };
}

// ---------------------------------------------------------------------------------------
// Routing: #/ lists events, #/events/{id} opens one.

let page = null;

function route() {
  page?.close();
  page = null;
  noticeBox.hidden = true;
  const match = location.hash.match(/^#\/events\/(.+)$/);
  if (match) {
    page = new EventPage(decodeURIComponent(match[1]));
    page.open();
  } else {
    showEvents();
  }
}

// What tests read instead of pixels. Seat ids are the layout's; statuses are the server's
// (`available`, `held`, `sold`, `blocked`); colours are what the map shows (those, plus
// `mine-held` and `mine-sold` for this tab's seats).
window.seatMap = {
  get eventId() {
    return page?.model ? page.eventId : null;
  },
  /** `connecting`, `live`, `reconnecting`, `re-reading` or `closed`. */
  get stream() {
    return page ? page.streamState : null;
  },
  seq: () => page?.model?.seq ?? null,
  statusOf: (seatId) => page?.model?.statusOf(seatId),
  colorOf(seatId) {
    const index = page?.model?.indexOf.get(seatId);
    return index === undefined ? undefined : page.colourKey(index);
  },
  /** Where to click a seat, in viewport pixels. */
  pointOf(seatId) {
    const index = page?.model?.indexOf.get(seatId);
    return index === undefined ? undefined : page.canvas.pointOf(index);
  },
  counts: () => page?.model?.counts(),
  pool: (poolId) => {
    const pool = page?.model?.pools.get(poolId);
    return pool ? { ...pool } : undefined;
  },
  stats: () => (page ? { ...page.stats } : undefined),
  reservations: () =>
    page ? [...page.reservations.values()].map(({ id, seats, state, message }) => ({ id, seats, state, message })) : [],
};

document.getElementById('user-id').textContent = identity.userId;
window.addEventListener('hashchange', route);
route();
