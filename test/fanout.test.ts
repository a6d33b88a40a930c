import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { websocketDefaults } from '../src/config.ts';
import { startServer, type TestServer } from './helpers/app.ts';
import { createChannel, createUser, ok, registerOrg, send } from './helpers/fixtures.ts';
import { collect, expectExactly, messageOf, untilLive, type Collected } from './helpers/subscription.ts';
import { wsClient } from './helpers/ws.ts';
import { graphql } from './generated/index.ts';
import { queryText } from './helpers/operation.ts';

// How one event reaches many subscribers: executed once per selection and
// viewer class (shared-execution.ts), written to each socket directly
// (socket-delivery.ts), and never buffered without bound for a slow reader.

let s: TestServer;
beforeAll(async () => {
  s = await startServer({
    // Big bodies let a test fill a paused reader's buffers with few sends.
    limits: { messageBodyMax: 200_000, pageSizeMax: 100 },
    websocket: { ...websocketDefaults, maxBufferedBytes: 1024 * 1024 },
    // Query counts must not include a viewer reloaded halfway through a test.
    viewerCacheMs: 600_000,
  });
});
afterAll(async () => {
  await s?.stop();
});

const lastSeq = async (token: string, channelId: string) =>
  ok(
    await s.gql(
      graphql(`
        query FanoutChannel($c: ID!) {
          channel(id: $c) {
            lastSeq
          }
        }
      `),
      { c: channelId },
      token,
    ),
  ).channel.lastSeq;

/** Sends `count` messages one after another and returns the statements run until every stream has them all. */
async function cost(token: string, channelId: string, streams: Collected<unknown>[], count: number): Promise<number> {
  const seen = streams.map((st) => st.items.length);
  const before = s.app.queryCount();
  for (let i = 0; i < count; i++) await send(s, token, channelId, `m${i}`);
  await Promise.all(streams.map((st, i) => st.waitFor(seen[i]! + count)));
  return s.app.queryCount() - before;
}

describe('fan-out', () => {
  it('executes an event once for all subscribers with the same selection, even one that loads from the database', async () => {
    const org = await registerOrg(s);
    const members = await Promise.all(Array.from({ length: 5 }, () => createUser(s, org, 'MEMBER')));
    const channelId = await createChannel(s, org.owner.token, { memberIds: members.map((m) => m.id) });
    // `sender` is a relation: each execution of the event loads it.
    const LIVE = graphql(`
      subscription FanoutChannelEvents($c: ID!, $after: Int) {
        channelEvents(channelId: $c, after: $after) {
          seq
          ... on MessageAddedEvent {
            message {
              body
              sender {
                displayName
              }
            }
          }
        }
      }
    `);
    const clients = members.map((m) => wsClient(s.url, m.token, { keepOpen: true }));
    try {
      const first = (await send(s, org.owner.token, channelId, 'first')).seq;
      // Subscribers start at different points: `after` only positions a
      // stream, so their executions of live events are still shared.
      const streams = clients.map((c, i) => collect(c, LIVE, { c: channelId, after: first - (i % 2) }, (d) => d.channelEvents));
      // Once every stream has a probe sent after it subscribed, all are live.
      const probe = (await send(s, org.owner.token, channelId, 'probe')).seq;
      await Promise.all(streams.map((st, i) => st.waitFor(probe - first + (i % 2))));

      // The selection loads from the database for every execution, and five
      // subscribers cost what one does: the event is executed once.
      const withFive = await cost(org.owner.token, channelId, streams, 4);
      for (const st of streams) {
        expect(st.items.at(-1)).toEqual({ seq: probe + 4, message: { body: 'm3', sender: { displayName: 'Owner' } } });
      }
      streams.slice(1).forEach((st) => st.unsubscribe());
      await new Promise((r) => setTimeout(r, 100));
      const withOne = await cost(org.owner.token, channelId, streams.slice(0, 1), 4);
      expect(withOne).toBeGreaterThan(4);
      expect(withFive).toBe(withOne);
    } finally {
      await Promise.all(clients.map((c) => c.dispose()));
    }
  });

  it('executes per viewer a selection that reads the viewer, so nobody gets another member\u2019s view', async () => {
    const org = await registerOrg(s);
    const [reader, lagger] = await Promise.all([createUser(s, org, 'MEMBER'), createUser(s, org, 'MEMBER')]);
    const channelId = await createChannel(s, org.owner.token, { memberIds: [reader.id, lagger.id] });
    for (let i = 0; i < 3; i++) await send(s, org.owner.token, channelId, `old ${i}`);
    ok(
      await s.gql(
        graphql(`
          mutation FanoutMarkChannelRead($c: ID!, $seq: Int!) {
            markChannelRead(channelId: $c, seq: $seq) {
              id
            }
          }
        `),
        { c: channelId, seq: await lastSeq(org.owner.token, channelId) },
        reader.token,
      ),
    );
    const LIVE = graphql(`
      subscription FanoutUnreadCounts($c: ID!, $after: Int) {
        channelEvents(channelId: $c, after: $after) {
          seq
          ... on MessageAddedEvent {
            message {
              body
              channel {
                unreadCount
              }
            }
          }
        }
      }
    `);
    const after = await lastSeq(org.owner.token, channelId);
    const users = [reader, lagger, reader];
    const clients = users.map((u) => wsClient(s.url, u.token, { keepOpen: true }));
    try {
      const streams = clients.map((c) => collect(c, LIVE, { c: channelId, after }, (d) => d.channelEvents));
      await send(s, org.owner.token, channelId, 'new');
      const [mine, theirs, mineAgain] = await Promise.all(streams.map(async (st) => (await st.waitFor(1))[0]));
      expect(messageOf(mine!)).toEqual({ body: 'new', channel: { unreadCount: 1 } });
      expect(messageOf(theirs!)).toEqual({ body: 'new', channel: { unreadCount: 4 } });
      expect(mineAgain).toEqual(mine);
    } finally {
      await Promise.all(clients.map((c) => c.dispose()));
    }
  });

  it('closes a socket that stops reading (1013) instead of buffering without bound; it resumes from the log losslessly', async () => {
    const org = await registerOrg(s);
    const channelId = await createChannel(s, org.owner.token);
    const after = await lastSeq(org.owner.token, channelId);
    const LIVE = graphql(`
      subscription FanoutBodiesAfter($c: ID!, $after: Int) {
        channelEvents(channelId: $c, after: $after) {
          seq
          ... on MessageAddedEvent {
            message {
              body
            }
          }
        }
      }
    `);

    // A raw graphql-ws client whose TCP reads stop once it is subscribed.
    const slow = new WebSocket(s.url.replace(/^http/, 'ws'), 'graphql-transport-ws');
    const received: number[] = [];
    const closed = new Promise<number>((resolve) => slow.once('close', (code) => resolve(code)));
    slow.on('message', (data) => {
      const message = JSON.parse(String(data));
      if (message.type === 'connection_ack') {
        slow.send(
          JSON.stringify({ id: 'slow', type: 'subscribe', payload: { query: queryText(LIVE), variables: { c: channelId, after } } }),
        );
      } else if (message.type === 'next') {
        received.push(message.payload.data.channelEvents.seq);
      }
    });
    await new Promise((resolve) => slow.once('open', resolve));
    slow.send(JSON.stringify({ type: 'connection_init', payload: { authToken: org.owner.token } }));
    const healthy = wsClient(s.url, org.owner.token, { keepOpen: true });
    let healthyClosed: number | null = null;
    healthy.on('closed', (event) => (healthyClosed = (event as { code: number }).code));
    try {
      const stream = collect(healthy, LIVE, { c: channelId, after }, (d) => d.channelEvents);
      await send(s, org.owner.token, channelId, 'hello');
      await stream.waitFor(1);
      await new Promise((r) => setTimeout(r, 100));
      expect(received).toEqual([after + 1]);
      (slow as unknown as { _socket: import('node:net').Socket })._socket.pause();

      const big = 'x'.repeat(150_000);
      // More than the kernel's socket buffers on both ends can absorb.
      for (let i = 0; i < 120; i++) await send(s, org.owner.token, channelId, big);
      (slow as unknown as { _socket: import('node:net').Socket })._socket.resume();
      expect(await closed).toBe(1013);
      // The reader with a healthy socket got everything, in order.
      const end = await lastSeq(org.owner.token, channelId);
      expectExactly(
        (await stream.waitFor(end - after, 20_000)).map((e) => e.seq),
        after + 1,
        end,
      );

      // The slow one resumes after the last seq it received and misses nothing.
      // Its replay (megabytes more than the cap) goes at the socket's pace,
      // so catching up does not trip the cap.
      const last = received.at(-1)!;
      expect(last).toBeLessThan(end);
      const resumed = collect(healthy, LIVE, { c: channelId, after: last }, (d) => d.channelEvents);
      expectExactly(
        (await resumed.waitFor(end - last, 20_000)).map((e) => e.seq),
        last + 1,
        end,
      );
      expect(healthyClosed).toBeNull();
    } finally {
      slow.terminate();
      await healthy.dispose();
    }
  });

  it('streams channelEvents over HTTP (server-sent events) too, with the same shared execution', async () => {
    const org = await registerOrg(s);
    const channelId = await createChannel(s, org.owner.token);
    const after = await lastSeq(org.owner.token, channelId);
    const controller = new AbortController();
    const response = await fetch(s.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${org.owner.token}` },
      body: JSON.stringify({
        query: `subscription($c: ID!, $after: Int) { channelEvents(channelId: $c, after: $after) { seq ... on MessageAddedEvent { message { body } } } }`,
        variables: { c: channelId, after },
      }),
      signal: controller.signal,
    });
    expect(response.headers.get('content-type')).toMatch(/text\/event-stream/);
    const events: { seq: number; message?: { body: string } }[] = [];
    const reading = (async () => {
      const decoder = new TextDecoder();
      let buffer = '';
      for await (const chunk of response.body!) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true });
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const lines = buffer.slice(0, end).split('\n');
          buffer = buffer.slice(end + 2);
          const data = lines.find((line) => line.startsWith('data:'));
          if (lines.includes('event: next') && data) events.push(JSON.parse(data.slice(5)).data.channelEvents);
          if (events.length === 3) return;
        }
      }
    })();
    for (const body of ['one', 'two', 'three']) await send(s, org.owner.token, channelId, body);
    await reading;
    controller.abort();
    expect(events).toEqual([1, 2, 3].map((i, k) => ({ seq: after + i, message: { body: ['one', 'two', 'three'][k] } })));
  });

  it('frames every size of event intact, multi-byte characters included (all three WebSocket length forms)', async () => {
    const org = await registerOrg(s);
    const channelId = await createChannel(s, org.owner.token);
    const client = wsClient(s.url, org.owner.token, { keepOpen: true });
    try {
      const stream = collect(
        client,
        graphql(`
          subscription FanoutBodies($c: ID!) {
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
      const probe = (await untilLive(stream, () => send(s, org.owner.token, channelId, 'probe'))).at(-1)!.seq as number;
      // Payloads under 126 bytes are impossible here (the frame's prefix alone
      // is half that), so: under 64 KiB, and over it in bytes though not in characters.
      const bodies = ['é', 'x'.repeat(1000), 'ü€😀'.repeat(9000)];
      for (const body of bodies) await send(s, org.owner.token, channelId, body);
      const events = (await stream.waitFor(stream.items.findIndex((e) => e.seq === probe) + 1 + bodies.length)).filter(
        (e) => e.seq > probe,
      );
      expect(events.map((e) => messageOf(e)!.body)).toEqual(bodies);
      expect(Buffer.byteLength(bodies[2]!)).toBeGreaterThan(65_536);
    } finally {
      await client.dispose();
    }
  });
});
