// Takes the README's picture of the seat map page (docs/seatmap.png):
//
//   node examples/web/test/screenshot.mjs http://127.0.0.1:8080 demo-stadium docs/seatmap.png [SEAT_ID]
//
// against a running `ticketing-server --demo` (start a flash sale against it first for a
// lively map). With SEAT_ID, the page holds that seat first, so the picture shows a
// reservation and its countdown. CHROMIUM_PATH overrides /usr/bin/chromium.

import path from 'node:path';
import { withChromium } from './chromium.mjs';

const [baseUrl, eventId, out, seatId] = process.argv.slice(2);
if (!out) {
  console.error('usage: node screenshot.mjs BASE_URL EVENT_ID OUT.png [SEAT_ID]');
  process.exit(2);
}
const executablePath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const options = { viewport: { width: 1440, height: 900 } };

await withChromium(executablePath, options, async (context) => {
  const page = context.pages()[0] ?? (await context.newPage());
  await page.goto(`${baseUrl}/#/events/${encodeURIComponent(eventId)}`);
  await page.waitForFunction((id) => window.seatMap.eventId === id && window.seatMap.stream === 'live', eventId, {
    timeout: 30_000,
  });
  if (seatId) {
    const point = await page.evaluate((id) => window.seatMap.pointOf(id), seatId);
    await page.mouse.click(point.x, point.y);
    await page.waitForFunction((id) => window.seatMap.colorOf(id) === 'mine-held', seatId, { timeout: 10_000 });
    await page.mouse.move(point.x + 40, point.y + 25);
  }
  await page.waitForTimeout(300);
  await page.screenshot({ path: path.resolve(out) });
  console.log(path.resolve(out));
});
