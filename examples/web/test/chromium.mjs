// Debian's Chromium, headless, in a fresh profile: what browser.mjs and screenshot.mjs share.
// (`npx playwright install` downloads browsers, which this project does not do.)

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Runs `use(context)` in a browser context of its own, then closes it and its profile. */
export async function withChromium(executablePath, options, use) {
  const userDataDir = await mkdtemp(path.join(tmpdir(), 'ticketing-chromium-'));
  let context;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: 30_000,
      ...options,
    });
    return await use(context);
  } finally {
    await context?.close().catch(() => {});
    await rm(userDataDir, { recursive: true, force: true });
  }
}
