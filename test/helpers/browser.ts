import { existsSync } from 'node:fs';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';

/** Debian's Chromium: this machine reaches no browser download, only Debian's archive. */
export const CHROMIUM = '/usr/bin/chromium';

/**
 * Headless Chromium in a fresh temporary profile (Playwright's launch makes
 * one and deletes it on close). With no network beyond loopback, Chromium's
 * own background traffic (updates, sync, QUIC probes) would only pile up
 * refused connections, so it is switched off.
 */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    // CI installs it (.ci/run, ensure_chromium); a bare machine must too,
    // rather than have the browser tests pass by not running.
    throw new Error(
      `Chromium is missing at ${CHROMIUM}: the browser tests need Debian's Chromium. Install it with: apt-get install chromium`,
    );
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    // Playwright adds --headless itself for headless: true.
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

export interface Traffic {
  /** Every request the page made (documents, fetches, workers' blobs), as URLs. */
  requests: string[];
  /** Requests that never got a response, with Chromium's reason. */
  failed: string[];
  /** Responses with a 4xx or 5xx status. */
  errors: string[];
  /** WebSocket URLs the page opened (they are not requests to Playwright). */
  sockets: string[];
  /** Uncaught exceptions in the page. */
  pageErrors: string[];
}

/** Records everything the page asks the network for, from now on. */
export function recordTraffic(page: Page): Traffic {
  const traffic: Traffic = { requests: [], failed: [], errors: [], sockets: [], pageErrors: [] };
  page.on('request', (request) => traffic.requests.push(request.url()));
  page.on('requestfailed', (request) => traffic.failed.push(`${request.url()}: ${request.failure()?.errorText}`));
  page.on('response', (response) => {
    if (response.status() >= 400) traffic.errors.push(`${response.status()} ${response.url()}`);
  });
  page.on('websocket', (socket) => traffic.sockets.push(socket.url()));
  page.on('pageerror', (error) => traffic.pageErrors.push(error.message));
  return traffic;
}

/**
 * Replaces a Monaco editor's text the way a user does: click into it, select
 * all, delete, type. Typing goes through Monaco's own key handling, so
 * auto-closed brackets are typed over rather than doubled.
 */
export async function typeInto(page: Page, editor: Locator, text: string): Promise<void> {
  await editor.click();
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.press('Delete');
  await page.keyboard.type(text);
}

/**
 * Replaces a Monaco editor's text the way a user pastes: one input of the
 * whole text (a token is pasted, not typed; typing it key by key costs seconds).
 */
export async function pasteInto(page: Page, editor: Locator, text: string): Promise<void> {
  await editor.click();
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.press('Delete');
  await page.keyboard.insertText(text);
}

/**
 * The JSON a read-only Monaco editor shows, or undefined while it shows none
 * (or is half redrawn). Monaco renders spaces as no-break spaces and only
 * draws visible lines: fine for the few lines of a test's result.
 */
export async function shownJson<T = unknown>(editor: Locator): Promise<T | undefined> {
  const text = (await editor.innerText()).replace(/\u00a0/g, ' ');
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}
