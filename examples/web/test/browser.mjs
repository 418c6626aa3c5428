// Drives the live seat map page in Debian's Chromium, for examples/tests/browser.rs.
//
//   node browser.mjs BASE_URL EVENT_ID SEAT_ID SCREENSHOT_PATH CHROMIUM_PATH [GATED_EVENT_ID GATED_SEAT_ID]
//
// Opens the page, opens the event, clicks SEAT_ID and waits until the map shows it held by
// this tab; prints `@@ held SEAT_ID`. Then reads one JSON line from stdin, what the test's
// flash sale did ({sold: [seat...], held: [seat...], pools: {pool: {sold, held}}}), waits
// until the page shows all of it without a reload, saves the screenshot (`@@ screenshot`),
// buys its own seat, and prints `@@ done {counts}`. With GATED_EVENT_ID (an event behind a
// waiting room whose only place the test keeps taken), it then opens that event, waits
// until the page shows its place in line (`@@ queued PLACE`), reads one line (the test
// made room), waits until the page says it is admitted, clicks GATED_SEAT_ID and waits
// until it shows held (`@@ admitted GATED_SEAT_ID`). Any failure exits 1 with the reason.

import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import readline from 'node:readline';
import { withChromium } from './chromium.mjs';

const [baseUrl, eventId, seatId, screenshot, executablePath, gatedEventId, gatedSeatId] = process.argv.slice(2);
const WAIT_MS = 15_000;
const OVERALL_MS = 90_000;

const stdinLines = readline.createInterface({ input: process.stdin });
const pendingLines = [];
const lineWaiters = [];
stdinLines.on('line', (line) => (lineWaiters.length ? lineWaiters.shift()(line) : pendingLines.push(line)));
stdinLines.on('close', () => lineWaiters.splice(0).forEach((resolve) => resolve(null)));
const nextLine = () =>
  pendingLines.length ? Promise.resolve(pendingLines.shift()) : new Promise((resolve) => lineWaiters.push(resolve));

/** Waits until `predicate(arg)` holds in the page, or fails saying what did not happen. */
async function waitUntil(page, what, predicate, arg, explain) {
  try {
    await page.waitForFunction(predicate, arg, { timeout: WAIT_MS, polling: 50 });
  } catch (error) {
    const detail = explain ? await page.evaluate(explain, arg).catch((e) => e.message) : error.message;
    throw new Error(`timed out waiting for ${what}: ${JSON.stringify(detail)}`);
  }
}

async function run(context) {
  const page = context.pages()[0] ?? (await context.newPage());
  const pageErrors = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') {
      console.error(`page console ${message.type()}: ${message.text()}`);
    }
  });

  await page.goto(`${baseUrl}/`);
  await page.click(`a[data-event-id="${eventId}"]`, { timeout: WAIT_MS });
  await waitUntil(
    page,
    'the event to open live',
    (id) => window.seatMap.eventId === id && window.seatMap.stream === 'live',
    eventId,
    () => ({ stream: window.seatMap.stream, notice: document.getElementById('notice').textContent }),
  );

  // Click the seat where the canvas drew it: this goes through the page's hit-testing.
  const point = await page.evaluate((id) => window.seatMap.pointOf(id), seatId);
  if (!point) throw new Error(`the page does not know seat ${seatId}`);
  await page.mouse.click(point.x, point.y);
  await waitUntil(
    page,
    `${seatId} to show held by this tab`,
    (id) => window.seatMap.statusOf(id) === 'held' && window.seatMap.colorOf(id) === 'mine-held',
    seatId,
    (id) => ({ status: window.seatMap.statusOf(id), colour: window.seatMap.colorOf(id), notice: document.getElementById('notice').textContent }),
  );
  const countdown = await page.locator('.reservation[data-state="held"] .countdown').textContent();
  if (!/^\d+:\d\d left$/.test(countdown)) throw new Error(`no countdown on the reservation: ${countdown}`);
  await page.evaluate(() => (window.sameDocument = true));
  console.log(`@@ held ${seatId}`);

  const line = await nextLine();
  if (line === null) throw new Error('the test closed stdin before the flash sale ended');
  const expected = JSON.parse(line);
  await waitUntil(
    page,
    "the flash sale's seats and units to show",
    (want) =>
      want.sold.every((id) => window.seatMap.statusOf(id) === 'sold') &&
      want.held.every((id) => window.seatMap.statusOf(id) === 'held') &&
      Object.entries(want.pools).every(([pool, n]) => {
        const now = window.seatMap.pool(pool);
        return now && now.sold === n.sold && now.held === n.held;
      }),
    expected,
    (want) => ({
      notSold: want.sold.filter((id) => window.seatMap.statusOf(id) !== 'sold'),
      notHeld: want.held.filter((id) => window.seatMap.statusOf(id) !== 'held'),
      pools: Object.keys(want.pools).map((pool) => window.seatMap.pool(pool)),
      stream: window.seatMap.stream,
    }),
  );
  const seen = await page.evaluate(() => ({
    sameDocument: window.sameDocument === true,
    stats: window.seatMap.stats(),
    counts: window.seatMap.counts(),
    mine: window.seatMap.colorOf(window.seatMap.reservations()[0]?.seats[0]),
  }));
  if (!seen.sameDocument) throw new Error('the page was reloaded');
  if (seen.stats.seatmapLoads !== 1) {
    throw new Error(`the seat map was read ${seen.stats.seatmapLoads} times; changes should come from the stream`);
  }
  if (seen.mine !== 'mine-held') throw new Error(`this tab's seat shows ${seen.mine}`);
  await mkdir(path.dirname(screenshot), { recursive: true });
  await page.screenshot({ path: screenshot });
  console.log(`@@ screenshot ${screenshot} after ${seen.stats.changesApplied} changes`);

  // Buy: the card's button commits, the seat turns sold and shows as this tab's.
  await page.click('.reservation[data-state="held"] button.buy');
  await waitUntil(
    page,
    `${seatId} to show bought by this tab`,
    (id) => window.seatMap.statusOf(id) === 'sold' && window.seatMap.colorOf(id) === 'mine-sold',
    seatId,
    () => window.seatMap.reservations(),
  );
  // A seat the sale sold: the page says so in plain words, and sends nothing.
  const sold = expected.sold[0];
  const soldPoint = await page.evaluate((id) => window.seatMap.pointOf(id), sold);
  await page.mouse.click(soldPoint.x, soldPoint.y);
  await waitUntil(
    page,
    'the notice about a sold seat',
    () => /already sold/.test(document.getElementById('notice').textContent),
    null,
  );
  if (pageErrors.length) throw new Error(`errors in the page: ${pageErrors.join('; ')}`);
  const counts = await page.evaluate(() => window.seatMap.counts());
  console.log(`@@ done ${JSON.stringify(counts)}`);
  if (gatedEventId) await queueForGatedEvent(page, pageErrors);
}

/** The gated event: the place in line while the room is full, then admission and a hold. */
async function queueForGatedEvent(page, pageErrors) {
  await page.goto(`${baseUrl}/`);
  await page.click(`a[data-event-id="${gatedEventId}"]`, { timeout: WAIT_MS });
  await waitUntil(
    page,
    'the place in line to show',
    () => /^\d+$/.test(document.querySelector('[data-queue="waiting"] b')?.textContent || ''),
    null,
    () => document.querySelector('[data-panel="queue"]')?.textContent,
  );
  const place = await page.locator('[data-queue="waiting"] b').textContent();
  // Waiting: a click on a seat is refused by the page itself, saying why.
  const early = await page.evaluate((id) => window.seatMap.pointOf(id), gatedSeatId);
  if (!early) throw new Error(`the page does not know seat ${gatedSeatId}`);
  await page.mouse.click(early.x, early.y);
  await waitUntil(page, 'the notice about the waiting room', () => /waiting room/.test(document.getElementById('notice').textContent), null);
  console.log(`@@ queued ${place}`);

  if ((await nextLine()) === null) throw new Error('the test closed stdin before making room');
  await waitUntil(
    page,
    'admission',
    () => document.querySelector('[data-queue="admitted"]') !== null,
    null,
    () => document.querySelector('[data-panel="queue"]')?.textContent,
  );
  const point = await page.evaluate((id) => window.seatMap.pointOf(id), gatedSeatId);
  await page.mouse.click(point.x, point.y);
  await waitUntil(
    page,
    `${gatedSeatId} to show held by this tab`,
    (id) => window.seatMap.statusOf(id) === 'held' && window.seatMap.colorOf(id) === 'mine-held',
    gatedSeatId,
    (id) => ({ status: window.seatMap.statusOf(id), notice: document.getElementById('notice').textContent }),
  );
  if (pageErrors.length) throw new Error(`errors in the page: ${pageErrors.join('; ')}`);
  console.log(`@@ admitted ${gatedSeatId}`);
}

async function main() {
  if (!executablePath) {
    throw new Error('usage: node browser.mjs BASE_URL EVENT_ID SEAT_ID SCREENSHOT_PATH CHROMIUM_PATH');
  }
  await withChromium(executablePath, { viewport: { width: 1280, height: 820 } }, run);
}

const overall = setTimeout(() => {
  console.error(`browser.mjs: gave up after ${OVERALL_MS / 1000} s`);
  process.exit(1);
}, OVERALL_MS);

main().then(
  () => {
    clearTimeout(overall);
    stdinLines.close();
  },
  (error) => {
    console.error(`browser.mjs: ${error.stack || error}`);
    process.exit(1);
  },
);
