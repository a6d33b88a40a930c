import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, pasteInto, recordTraffic, shownJson, typeInto } from './helpers/browser.ts';
import { startServer, type TestServer } from './helpers/app.ts';
import { createChannel, registerOrg, send } from './helpers/fixtures.ts';

let s: TestServer;
let browser: Browser;
beforeAll(async () => {
  // First, so a machine without Chromium fails here with how to install it, before a server is left running.
  browser = await launchChromium();
  s = await startServer({ graphiql: true });
});
afterAll(async () => {
  await browser?.close();
  await s?.stop();
});

describe('GraphiQL in Chromium', () => {
  it('loads from this server alone, runs a query and a live subscription with the token typed into its Headers tab', async () => {
    const org = await registerOrg(s);
    const channelId = await createChannel(s, org.owner.token);
    const page = await browser.newPage();
    // Failures surface as a locator timeout with what it waited for, well within the test's.
    page.setDefaultTimeout(10_000);
    const traffic = recordTraffic(page);

    await page.goto(s.url);
    const queryEditor = page.locator('.graphiql-query-editor .monaco-editor').first();
    const result = page.locator('.graphiql-response');
    await queryEditor.waitFor();

    await page.getByText('Headers', { exact: true }).click();
    await pasteInto(page, page.locator('.graphiql-editor-tool .monaco-editor').last(), `{ "Authorization": "Bearer ${org.owner.token}" }`);
    await typeInto(page, queryEditor, '{ viewer { username } }');
    await page.locator('.graphiql-execute-button').click();
    await expect.poll(() => shownJson(result), { timeout: 10_000 }).toEqual({ data: { viewer: { username: 'owner' } } });

    // Over the WebSocket: the server closes a socket without a token in connection_init (4401).
    // Pasted, as from the README: typing it key by key adds seconds and nothing the query did not show.
    await pasteInto(
      page,
      queryEditor,
      `subscription { channelEvents(channelId: "${channelId}") { seq ... on MessageAddedEvent { message { body } } } }`,
    );
    await page.locator('.graphiql-execute-button').click();
    const shownBody = async () =>
      (await shownJson<{ data?: { channelEvents?: { message?: { body?: string } } } }>(result))?.data?.channelEvents?.message?.body;
    // The subscription is live once a message sent after it shows up; until then, sent ones are missed.
    await expect
      .poll(
        async () => {
          if ((await shownBody()) === 'probe') return true;
          await send(s, org.owner.token, channelId, 'probe');
          return false;
        },
        { timeout: 10_000, interval: 250 },
      )
      .toBe(true);
    await send(s, org.owner.token, channelId, 'from the test');
    await expect.poll(shownBody, { timeout: 5_000 }).toBe('from the test');

    const origin = new URL(s.url).origin;
    const elsewhere = traffic.requests.filter((url) => new URL(url).origin !== origin && !url.startsWith(`blob:${origin}/`));
    expect(elsewhere, 'requests to anything but this server').toEqual([]);
    expect(traffic.failed, 'failed requests').toEqual([]);
    expect(traffic.errors, 'error responses').toEqual([]);
    expect(traffic.pageErrors, 'uncaught errors in the page').toEqual([]);
    expect(traffic.sockets).toEqual([s.url.replace(/^http/, 'ws')]);
    // The page itself, schema introspection and the query at least; Monaco's workers come from blobs.
    expect(traffic.requests.filter((url) => url.startsWith(origin)).length).toBeGreaterThanOrEqual(3);
    await page.close();
  });
});
