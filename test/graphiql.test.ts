import { runInNewContext } from 'node:vm';
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startServer, type TestServer } from './helpers/app.ts';
import { createChannel, registerOrg, send } from './helpers/fixtures.ts';
import { collect, messageOf, untilLive } from './helpers/subscription.ts';
import { graphql } from './generated/index.ts';

let s: TestServer;
beforeAll(async () => {
  s = await startServer({ graphiql: true });
});
afterAll(async () => {
  await s?.stop();
});

interface PageOptions {
  subscriptionsProtocol?: string;
  connectionParams: () => Record<string, unknown>;
  onEditHeaders: (value: string) => void;
}

/**
 * Runs the header bridge the page serves the way the browser does, against a
 * stand-in for the GraphiQL bundle and GraphiQL's persisted headers, and
 * captures the options GraphiQL would start with: the cases a browser test
 * (graphiql.browser.test.ts, the typed token end to end) would be slow to
 * walk through.
 */
function startPage(html: string, persistedHeaders: string | null): PageOptions {
  const bridge = /<script id=parley-graphiql-headers>([\s\S]*?)<\/script>/.exec(html)?.[1];
  expect(bridge, 'the page carries the header bridge').toBeDefined();
  const start = /YogaGraphiQL\.renderYogaGraphiQL\(\s*window\.document\.querySelector\('#root'\),\s*(\{.*?\}),\s*\);/.exec(html);
  expect(start, 'the page starts GraphiQL after the bridge').not.toBeNull();
  expect(start!.index).toBeGreaterThan(html.indexOf('<script id=parley-graphiql-headers>'));
  const options = JSON.parse(start![1]!) as Record<string, unknown>;
  let started: PageOptions | undefined;
  const window = {
    localStorage: { getItem: (key: string) => (key === 'graphiql:headers' ? persistedHeaders : null) },
    YogaGraphiQL: { renderYogaGraphiQL: (_root: unknown, opts: PageOptions) => (started = opts) },
  };
  runInNewContext(bridge!, window);
  window.YogaGraphiQL.renderYogaGraphiQL('root', options as never);
  return started!;
}

/** A graphql-ws client as GraphiQL builds one: lazy, with the page's connectionParams. */
function graphiqlClient(page: PageOptions) {
  return createClient({
    url: s.url.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    lazy: true,
    retryAttempts: 0,
    connectionParams: page.connectionParams,
  });
}

describe('GraphiQL', () => {
  it('is served whole on GET /graphql and runs subscriptions with the token GraphiQL persisted from its Headers tab', async () => {
    const org = await registerOrg(s);
    const channelId = await createChannel(s, org.owner.token);
    const response = await fetch(s.url, { headers: { accept: 'text/html' } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html');
    const html = await response.text();
    // Bundle, styles, icon and workers are inlined: the page names nothing to fetch.
    expect(html).not.toMatch(/<script[^>]+\bsrc=|<link[^>]+\bhref=(?!"data:)/);
    const page = startPage(html, JSON.stringify({ Authorization: `Bearer ${org.owner.token}` }));
    expect(page.subscriptionsProtocol).toBe('WS');
    expect(page.connectionParams()).toEqual({ Authorization: `Bearer ${org.owner.token}` });

    const client = graphiqlClient(page);
    try {
      const stream = collect(
        client,
        graphql(`
          subscription GraphiqlChannelEvents($c: ID!) {
            channelEvents(channelId: $c) {
              seq
              ... on MessageAddedEvent {
                message {
                  body
                }
              }
            }
          }
        `),
        { c: channelId },
        (d) => d.channelEvents,
      );
      await untilLive(stream, () => send(s, org.owner.token, channelId, 'probe'));
      // Counted before sending: the event may arrive before sendMessage's answer does.
      const seen = stream.items.length;
      await send(s, org.owner.token, channelId, 'from GraphiQL');
      expect(messageOf((await stream.waitFor(seen + 1)).at(-1)!)!.body).toBe('from GraphiQL');
      expect(stream.errors).toEqual([]);
    } finally {
      await client.dispose();
    }
  });

  it('uses what was last typed into the Headers tab, and sends no token when the tab has none', async () => {
    const response = await fetch(s.url, { headers: { accept: 'text/html' } });
    const page = startPage(await response.text(), null);
    expect(page.connectionParams()).toEqual({});
    page.onEditHeaders('{ "Authorization": "Bearer not-a-token" }');
    expect(page.connectionParams()).toEqual({ Authorization: 'Bearer not-a-token' });
    page.onEditHeaders('{ unfinished');
    expect(page.connectionParams()).toEqual({});

    // Without a token the socket is refused with 4401, as for any client.
    const client = graphiqlClient(page);
    const closed = new Promise<number>((resolve) => client.on('closed', (event) => resolve((event as { code: number }).code)));
    client.subscribe({ query: '{ viewer { id } }' }, { next: () => {}, error: () => {}, complete: () => {} });
    expect(await closed).toBe(4401);
    await client.dispose();
  });
});
