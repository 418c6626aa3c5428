// The seat map on one <canvas>: 50,000 seats are 50,000 fillRect calls, not DOM nodes.
// Sections are drawn as blocks in a grid (in layout order), each seat at its own x/y within
// its section; a change repaints only the seats it touched, on the next animation frame.
// Geometry is kept in device pixels, so seats stay crisp, and hit-testing runs on it.

/** Colour of each thing a seat can show (`kind` as colourKey returns it). */
export const COLORS = {
  available: '#2fbf71',
  held: '#f5b83d',
  sold: '#e5484d',
  blocked: '#4b5262',
  'mine-held': '#4c8dff',
  'mine-sold': '#b07cff',
};

const PAD_CSS = 8;
const GAP_CSS = 10;
const LABEL_CSS = 14;
const SEAT_PITCH_MAX_CSS = 18;
const HEIGHT_MIN_CSS = 320;

export class SeatCanvas {
  /**
   * `canvas` draws the seats, `overlay` (stacked above it) the hover ring;
   * `colourKey(index)` says which of COLORS a seat shows.
   */
  constructor(canvas, overlay, colourKey) {
    this.canvas = canvas;
    this.overlay = overlay;
    this.colourKey = colourKey;
    this.model = null;
    this.dirty = new Set();
    this.frame = 0;
    this.hovered = -1;
  }

  /** Takes a new model (after a (re-)read of the seat map) and draws it whole. */
  setModel(model) {
    this.model = model;
    this.sections = sectionsOf(model.seats);
    this.dirty.clear();
    this.hovered = -1;
    this.layout();
  }

  /** Sizes the canvas to `width` CSS pixels and at most `height`, then draws everything. */
  layout(width = this.width, height = this.height) {
    if (!this.model || !width || !this.sections.length) {
      return;
    }
    this.width = width;
    this.height = Math.max(height || 0, HEIGHT_MIN_CSS);
    const dpr = window.devicePixelRatio || 1;
    const grid = bestGrid(this.sections, this.width, this.height);
    const pitch = Math.max(1, Math.floor(grid.pitch * dpr));
    const gap = Math.round(GAP_CSS * dpr);
    const label = Math.round(LABEL_CSS * dpr);
    const pad = Math.round(PAD_CSS * dpr);
    const cellW = grid.w * pitch;
    const cellH = grid.h * pitch;
    const n = this.model.seats.length;
    this.px = new Int32Array(n);
    this.py = new Int32Array(n);
    this.pitch = pitch;
    this.size = pitch >= 3 ? pitch - Math.max(1, Math.round(pitch / 6)) : pitch;
    this.dpr = dpr;
    this.sections.forEach((section, s) => {
      const column = s % grid.columns;
      const row = Math.floor(s / grid.columns);
      const left = pad + column * (cellW + gap) + Math.floor((cellW - section.w * pitch) / 2);
      const top = pad + row * (label + cellH + gap) + label;
      section.box = { left, top, right: left + section.w * pitch, bottom: top + section.h * pitch };
      section.labelAt = { x: left, y: top - Math.round(4 * dpr) };
      section.indices.forEach((index, k) => {
        this.px[index] = left + section.sx[k] * pitch;
        this.py[index] = top + section.sy[k] * pitch;
      });
    });
    const rows = Math.ceil(this.sections.length / grid.columns);
    const deviceW = Math.max(pad * 2 + grid.columns * cellW + (grid.columns - 1) * gap, 1);
    const deviceH = Math.max(pad * 2 + rows * (label + cellH) + (rows - 1) * gap, 1);
    for (const canvas of [this.canvas, this.overlay]) {
      canvas.width = deviceW;
      canvas.height = deviceH;
      canvas.style.width = `${deviceW / dpr}px`;
      canvas.style.height = `${deviceH / dpr}px`;
    }
    this.drawAll();
  }

  drawAll() {
    const ctx = this.canvas.getContext('2d');
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    ctx.fillStyle = '#9aa3b2';
    ctx.font = `600 ${Math.round(11 * this.dpr)}px system-ui, sans-serif`;
    ctx.textBaseline = 'bottom';
    for (const section of this.sections) {
      ctx.fillText(section.name, section.labelAt.x, section.labelAt.y);
    }
    // One pass per colour: few fillStyle changes, whatever the order of the statuses.
    const keys = Array.from(this.model.seats, (_, index) => this.colourKey(index));
    for (const [key, colour] of Object.entries(COLORS)) {
      ctx.fillStyle = colour;
      for (let index = 0; index < keys.length; index += 1) {
        if (keys[index] === key) {
          ctx.fillRect(this.px[index], this.py[index], this.size, this.size);
        }
      }
    }
    this.drawOverlay();
  }

  /** Repaints these seats on the next animation frame. */
  repaint(indices) {
    for (const index of indices) {
      this.dirty.add(index);
    }
    if (!this.frame && this.dirty.size) {
      this.frame = requestAnimationFrame(() => this.#flush());
    }
  }

  #flush() {
    this.frame = 0;
    const ctx = this.canvas.getContext('2d');
    for (const index of this.dirty) {
      ctx.clearRect(this.px[index], this.py[index], this.size, this.size);
      ctx.fillStyle = COLORS[this.colourKey(index)];
      ctx.fillRect(this.px[index], this.py[index], this.size, this.size);
    }
    this.dirty.clear();
  }

  /** The seat under a point of the viewport, or -1. */
  seatAt(clientX, clientY) {
    if (!this.model) {
      return -1;
    }
    const rect = this.canvas.getBoundingClientRect();
    const x = (clientX - rect.left) * (this.canvas.width / rect.width);
    const y = (clientY - rect.top) * (this.canvas.height / rect.height);
    const slack = this.pitch - this.size;
    for (const section of this.sections) {
      const box = section.box;
      if (x < box.left || x >= box.right + slack || y < box.top || y >= box.bottom + slack) {
        continue;
      }
      let best = -1;
      let bestDistance = Infinity;
      for (const index of section.indices) {
        const dx = x - (this.px[index] + this.size / 2);
        const dy = y - (this.py[index] + this.size / 2);
        const distance = dx * dx + dy * dy;
        if (distance < bestDistance) {
          best = index;
          bestDistance = distance;
        }
      }
      return bestDistance <= this.pitch * this.pitch ? best : -1;
    }
    return -1;
  }

  /** The centre of a seat in viewport coordinates (what a mouse click needs). */
  pointOf(index) {
    const rect = this.canvas.getBoundingClientRect();
    const scale = rect.width / this.canvas.width;
    return {
      x: rect.left + (this.px[index] + this.size / 2) * scale,
      y: rect.top + (this.py[index] + this.size / 2) * scale,
    };
  }

  /** Rings the seat under the pointer (-1: none). */
  hover(index) {
    if (index !== this.hovered) {
      this.hovered = index;
      this.drawOverlay();
    }
  }

  drawOverlay() {
    const ctx = this.overlay.getContext('2d');
    ctx.clearRect(0, 0, this.overlay.width, this.overlay.height);
    if (this.hovered < 0) {
      return;
    }
    const ring = Math.max(2, Math.round(this.dpr * 2));
    ctx.strokeStyle = '#ffffff';
    ctx.lineWidth = ring;
    ctx.strokeRect(
      this.px[this.hovered] - ring,
      this.py[this.hovered] - ring,
      this.size + ring * 2,
      this.size + ring * 2,
    );
  }
}

/**
 * Sections in layout order, each with its seats' cell coordinates (`sx`, `sy`) from their
 * x/y. A section whose seats share positions (a layout made without x/y) falls back to
 * row order and seat number.
 */
function sectionsOf(seats) {
  const byName = new Map();
  seats.forEach((seat, index) => {
    const name = seat.section || '';
    if (!byName.has(name)) {
      byName.set(name, { name, indices: [] });
    }
    byName.get(name).indices.push(index);
  });
  const sections = [...byName.values()];
  for (const section of sections) {
    const members = section.indices.map((index) => seats[index]);
    const distinct = new Set(members.map((seat) => `${seat.x},${seat.y}`)).size;
    let xs = members.map((seat) => seat.x);
    let ys = members.map((seat) => seat.y);
    if (distinct < members.length) {
      const rows = [...new Set(members.map((seat) => seat.row))];
      xs = members.map((seat) => seat.number);
      ys = members.map((seat) => rows.indexOf(seat.row));
    }
    const minX = extreme(xs, Math.min);
    const minY = extreme(ys, Math.min);
    section.sx = xs.map((x) => Math.round(x - minX));
    section.sy = ys.map((y) => Math.round(y - minY));
    section.w = extreme(section.sx, Math.max) + 1;
    section.h = extreme(section.sy, Math.max) + 1;
  }
  return sections;
}

/** The number of section columns that gives the largest seats within width x height. */
function bestGrid(sections, width, height) {
  const w = extreme(sections.map((section) => section.w), Math.max);
  const h = extreme(sections.map((section) => section.h), Math.max);
  let best = { columns: 1, pitch: 0, w, h };
  for (let columns = 1; columns <= sections.length; columns += 1) {
    const rows = Math.ceil(sections.length / columns);
    const byWidth = (width - 2 * PAD_CSS - (columns - 1) * GAP_CSS) / (columns * w);
    const byHeight = (height - 2 * PAD_CSS - rows * LABEL_CSS - (rows - 1) * GAP_CSS) / (rows * h);
    const pitch = Math.min(byWidth, byHeight, SEAT_PITCH_MAX_CSS);
    if (pitch > best.pitch) {
      best = { columns, pitch, w, h };
    }
  }
  // A map too big for the space still gets seats of a device pixel or more (it scrolls).
  best.pitch = Math.max(best.pitch, 1);
  return best;
}

/** The least or greatest of many numbers (spreading 50,000 arguments is not safe). */
function extreme(values, pick) {
  return values.reduce((found, value) => pick(found, value));
}
