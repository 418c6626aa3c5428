// The event as this page knows it: the seat map document, then every change applied in
// sequence order. It follows the core's replay rules (a seat moves only from the state the
// change says it leaves), so a page that missed something notices and re-reads the map.

export const STATUSES = ['available', 'held', 'sold', 'blocked'];
export const AVAILABLE = 0;
export const HELD = 1;
export const SOLD = 2;
export const BLOCKED = 3;

const CODE_OF = new Map(STATUSES.map((status, code) => [status, code]));

export class EventModel {
  /** `doc` is the seat map route's JSON. */
  constructor(doc) {
    this.eventId = doc.event_id;
    this.seq = doc.seq;
    this.seats = doc.seats;
    this.status = new Uint8Array(doc.seats.length);
    this.indexOf = new Map();
    doc.seats.forEach((seat, index) => {
      this.indexOf.set(seat.seat_id, index);
      this.status[index] = CODE_OF.get(seat.status) ?? BLOCKED;
    });
    this.pools = new Map(doc.pools.map((pool) => [pool.pool, { ...pool }]));
    this.tally = { available: 0, held: 0, sold: 0, blocked: 0 };
    for (const code of this.status) {
      this.tally[STATUSES[code]] += 1;
    }
  }

  statusOf(seatId) {
    const index = this.indexOf.get(seatId);
    return index === undefined ? undefined : STATUSES[this.status[index]];
  }

  /** Seats per status, kept as changes apply (a change costs its own seats, not the map). */
  counts() {
    return { ...this.tally };
  }

  /**
   * Applies one change (the core's change JSON: `seq`, `at`, `kind` with a `type`).
   * Returns what it touched, `{seats: [index...], pools: bool}`, or null when the change
   * does not follow from this state or is of a type this page does not know: then the
   * caller re-reads the seat map.
   */
  apply(change) {
    const kind = change.kind || {};
    const touched = { seats: [], pools: false };
    const ok = this.#applyKind(kind, touched);
    if (!ok) {
      return null;
    }
    this.seq = change.seq;
    return touched;
  }

  #applyKind(kind, touched) {
    const seats = (ids, from, to) => this.#move(ids || [], from, to, touched);
    const pools = (items, step) => this.#pools(items || [], step, touched);
    switch (kind.type) {
      case 'event_created':
      case 'extended':
      case 'transferred':
      case 'checked_in':
        return true;
      case 'reserved':
        return seats(kind.seats, AVAILABLE, HELD) && pools(kind.ga, (p, n) => (p.held += n));
      case 'committed':
        if (kind.after_expiry) {
          // A late commit: the hold had lapsed, the items come from free inventory.
          return seats(kind.seats, AVAILABLE, SOLD) && pools(kind.ga, (p, n) => (p.sold += n));
        }
        return (
          seats(kind.seats, HELD, SOLD) &&
          seats(kind.released_seats, HELD, AVAILABLE) &&
          pools(kind.ga, (p, n) => ((p.held -= n), (p.sold += n))) &&
          pools(kind.released_ga, (p, n) => (p.held -= n))
        );
      case 'cancelled':
      case 'expired':
        return seats(kind.seats, HELD, AVAILABLE) && pools(kind.ga, (p, n) => (p.held -= n));
      case 'refunded': {
        const toBlocked = kind.to === 'blocked';
        return (
          seats(kind.seats, SOLD, toBlocked ? BLOCKED : AVAILABLE) &&
          pools(kind.ga, (p, n) => ((p.sold -= n), toBlocked && (p.blocked += n)))
        );
      }
      case 'seats_blocked':
        return seats(kind.seats, AVAILABLE, BLOCKED);
      case 'seats_unblocked':
        return seats(kind.seats, BLOCKED, AVAILABLE);
      case 'pool_resized':
        return pools([{ pool: kind.pool, quantity: 0 }], (p) => (p.capacity = kind.capacity));
      case 'pool_blocked':
        return pools([{ pool: kind.pool, quantity: 0 }], (p) => (p.blocked = kind.blocked));
      default:
        return false;
    }
  }

  #move(ids, from, to, touched) {
    for (const id of ids) {
      const index = this.indexOf.get(id);
      if (index === undefined || this.status[index] !== from) {
        return false;
      }
      this.status[index] = to;
      this.tally[STATUSES[from]] -= 1;
      this.tally[STATUSES[to]] += 1;
      touched.seats.push(index);
    }
    return true;
  }

  #pools(items, step, touched) {
    for (const item of items) {
      const pool = this.pools.get(item.pool);
      if (!pool) {
        return false;
      }
      step(pool, item.quantity);
      pool.available = pool.capacity - pool.held - pool.sold - pool.blocked;
      if (pool.available < 0 || pool.held < 0 || pool.sold < 0) {
        return false;
      }
      touched.pools = true;
    }
    return true;
  }
}
