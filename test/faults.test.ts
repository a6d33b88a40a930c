import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers/app.ts';
import { createChannel, ok, registerOrg, send, type TestOrg } from './helpers/fixtures.ts';
import { throwawayRedis, type ThrowawayRedis } from './helpers/redis-server.ts';
import { collect, expectExactly, untilLive } from './helpers/subscription.ts';
import { wsClient } from './helpers/ws.ts';
import { graphql } from './generated/index.ts';
import type { FaultsChannelEventsSubscription } from './generated/graphql.ts';

// Faults of the signal path. PostgreSQL holds every event, Redis only carries
// signals: whatever happens to Redis or a socket, each subscriber must end
// with exactly the log (checked by the oracle `expectExactly`).
let redis: ThrowawayRedis;
let s: TestServer;
let org: TestOrg;
beforeAll(async () => {
  redis = await throwawayRedis();
  s = await startServer({ redisUrl: redis.url });
  org = await registerOrg(s);
});
afterAll(async () => {
  await s?.stop();
  await redis?.stop();
});

const EVENTS = graphql(`
  subscription FaultsChannelEvents($c: ID!, $after: Int) {
    channelEvents(channelId: $c, after: $after) {
      seq
    }
  }
`);
const seqOf = (data: FaultsChannelEventsSubscription) => data.channelEvents.seq;
const lastSeq = async (channelId: string) =>
  ok(
    await s.gql(
      graphql(`
        query FaultsChannel($c: ID!) {
          channel(id: $c) {
            lastSeq
          }
        }
      `),
      { c: channelId },
      org.owner.token,
    ),
  ).channel.lastSeq;

describe('faults', () => {
  it('Redis restarted while 200 messages are sent: every subscriber ends with all 200, in order, once', async () => {
    const channelId = await createChannel(s, org.owner.token);
    const start = await lastSeq(channelId);
    const clients = Array.from({ length: 3 }, () => wsClient(s.url, org.owner.token, { keepOpen: true }));
    try {
      const streams = clients.map((c) => collect(c, EVENTS, { c: channelId, after: start }, seqOf));
      for (let i = 0; i < 200; i++) {
        if (i === 60) await redis.stop();
        if (i === 120) await redis.start();
        await send(s, org.owner.token, channelId, `m${i}`);
      }
      for (const stream of streams) {
        await stream.waitFor(200, 20_000);
        expectExactly(stream.items, start + 1, start + 200);
      }
    } finally {
      await Promise.all(clients.map((c) => c.dispose()));
    }
  }, 60_000);

  it('Redis down: sendMessage still succeeds, and subscribers get the messages once it is back', async () => {
    const channelId = await createChannel(s, org.owner.token);
    const start = await lastSeq(channelId);
    const client = wsClient(s.url, org.owner.token, { keepOpen: true });
    try {
      const stream = collect(client, EVENTS, { c: channelId, after: start }, seqOf);
      await redis.stop();
      for (let i = 0; i < 10; i++) await send(s, org.owner.token, channelId, `while down ${i}`);
      expect(await lastSeq(channelId)).toBe(start + 10);
      await redis.start();
      await stream.waitFor(10, 20_000);
      expectExactly(stream.items, start + 1, start + 10);
    } finally {
      await client.dispose();
    }
  }, 60_000);

  it('more than a log batch missed by pub/sub: a quiet channel\u2019s subscribers get all of it at the next reconnect', async () => {
    // A writer on the same database whose signals never reach Redis (its
    // pub/sub is in-process): this process hears of its commits only by
    // reading the log, which it does when its Redis connection comes back.
    const writer = await startServer({ redisUrl: null });
    const channelId = await createChannel(s, org.owner.token);
    const start = await lastSeq(channelId);
    const client = wsClient(s.url, org.owner.token, { keepOpen: true });
    try {
      const stream = collect(client, EVENTS, { c: channelId, after: start }, seqOf);
      await untilLive(stream, () => send(s, org.owner.token, channelId, 'probe'));
      const count = 1100; // more than the hub reads in one query (1,000)
      for (let i = 0; i < count; i += 50) {
        await Promise.all(Array.from({ length: 50 }, (_, j) => send(writer, org.owner.token, channelId, `m${i + j}`)));
      }
      const end = await lastSeq(channelId);
      expect(end - start).toBeGreaterThan(count); // the probes, then the batch
      await redis.stop();
      await redis.start();
      await stream.waitFor(end - start, 30_000);
      expectExactly(stream.items, start + 1, end);
    } finally {
      await client.dispose();
      await writer.stop();
    }
  }, 120_000);

  it('a subscriber whose socket died resumes with after and receives exactly what it missed', async () => {
    const channelId = await createChannel(s, org.owner.token);
    const start = await lastSeq(channelId);
    const first = wsClient(s.url, org.owner.token, { keepOpen: true });
    const stream = collect(first, EVENTS, { c: channelId, after: start }, seqOf);
    await send(s, org.owner.token, channelId, 'seen');
    await stream.waitFor(1);
    await first.dispose(); // the socket goes away mid-stream
    for (let i = 0; i < 100; i++) await send(s, org.owner.token, channelId, `missed ${i}`);
    const again = wsClient(s.url, org.owner.token, { keepOpen: true });
    try {
      const resumed = collect(again, EVENTS, { c: channelId, after: stream.items.at(-1)! }, seqOf);
      await resumed.waitFor(100);
      await new Promise((r) => setTimeout(r, 200)); // nothing beyond the log may follow
      expectExactly(resumed.items, start + 2, start + 101);
    } finally {
      await again.dispose();
    }
  });
});
