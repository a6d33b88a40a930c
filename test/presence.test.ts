import pino from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Presence } from '../src/services/live/presence.ts';
import { createPubSub } from '../src/bus/pubsub.ts';
import { eventually, onEmbedded, startServer, type TestServer } from './helpers/app.ts';
import { createUser, errorCode, ok, registerOrg } from './helpers/fixtures.ts';
import { rawId } from './helpers/messages.ts';
import { collect } from './helpers/subscription.ts';
import { wsClient } from './helpers/ws.ts';
import { graphql } from './generated/index.ts';

let s: TestServer;
beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s?.stop();
});

const PRESENCE = graphql(`
  query PresencePresence($u: [ID!]!) {
    presence(userIds: $u) {
      userId
      status
      lastSeenAt
    }
  }
`);
const WATCH = graphql(`
  subscription PresenceWatch($u: [ID!]!) {
    presence(userIds: $u) {
      userId
      status
      lastSeenAt
    }
  }
`);
async function statusOf(token: string, userId: string) {
  return ok(await s.gql(PRESENCE, { u: [userId] }, token)).presence[0]!;
}

const within = (check: () => Promise<boolean>) => eventually(check, 5000);

describe('presence', () => {
  it('is ONLINE while a socket is open, AWAY or BUSY by choice, OFFLINE with lastSeenAt after the last socket closes', async () => {
    const org = await registerOrg(s);
    const member = await createUser(s, org, 'MEMBER');
    expect(await statusOf(org.owner.token, member.id)).toMatchObject({ status: 'OFFLINE', lastSeenAt: null });
    const first = wsClient(s.url, member.token, { keepOpen: true });
    const second = wsClient(s.url, member.token, { keepOpen: true });
    // A socket counts once its connection is acknowledged; a query proves it.
    await Promise.all(
      [first, second].map(
        (c) => new Promise((resolve) => c.subscribe({ query: '{ viewer { id } }' }, { next: resolve, error: resolve, complete: () => {} })),
      ),
    );
    expect(await within(async () => (await statusOf(org.owner.token, member.id)).status === 'ONLINE')).toBe(true);
    ok(
      await s.gql(
        graphql(`
          mutation PresenceSetPresence {
            setPresence(status: AWAY) {
              status
            }
          }
        `),
        {},
        member.token,
      ),
    );
    expect((await statusOf(org.owner.token, member.id)).status).toBe('AWAY');
    await first.dispose();
    await new Promise((r) => setTimeout(r, 200));
    expect((await statusOf(org.owner.token, member.id)).status).toBe('AWAY'); // one socket still open
    await second.dispose();
    expect(await within(async () => (await statusOf(org.owner.token, member.id)).status === 'OFFLINE')).toBe(true);
    expect((await statusOf(org.owner.token, member.id)).lastSeenAt).not.toBeNull();
  });

  it('streams changes to watchers, and refuses users of other organizations', async () => {
    const org = await registerOrg(s);
    const other = await registerOrg(s);
    const member = await createUser(s, org, 'MEMBER');
    expect(errorCode(await s.gql(PRESENCE, { u: [member.id] }, other.owner.token))).toBe('NOT_FOUND');
    const watcher = wsClient(s.url, org.owner.token, { keepOpen: true });
    try {
      const stream = collect(watcher, WATCH, { u: [member.id] }, (d) => d.presence);
      expect((await stream.waitFor(1))[0]).toMatchObject({ userId: member.id, status: 'OFFLINE' });
      const socket = wsClient(s.url, member.token, { keepOpen: true });
      await new Promise((resolve) =>
        socket.subscribe({ query: '{ viewer { id } }' }, { next: resolve, error: resolve, complete: () => {} }),
      );
      expect((await stream.waitFor(2))[1]).toMatchObject({ status: 'ONLINE' });
      ok(
        await s.gql(
          graphql(`
            mutation PresenceSetBusy {
              setPresence(status: BUSY) {
                status
              }
            }
          `),
          {},
          member.token,
        ),
      );
      expect((await stream.waitFor(3))[2]).toMatchObject({ status: 'BUSY' });
      await socket.dispose();
      expect((await stream.waitFor(4))[3]).toMatchObject({ status: 'OFFLINE' });
    } finally {
      await watcher.dispose();
    }
  });

  // Another process needs Redis to share presence with.
  it.skipIf(onEmbedded)('a crashed process\u2019s users go offline when its heartbeat lapses', async () => {
    const org = await registerOrg(s);
    const member = await createUser(s, org, 'MEMBER');
    // Another "process": its own pub/sub on the same Redis prefix, a short claim, then it dies without a word.
    const pubsub = createPubSub(inject('redisUrl'), inject('redisPrefix'));
    const doomed = new Presence(s.app.services.prisma, pubsub, pino({ level: 'silent' }), 1500);
    const watcher = wsClient(s.url, org.owner.token, { keepOpen: true });
    try {
      await doomed.connected(rawId(member.id));
      expect((await statusOf(org.owner.token, member.id)).status).toBe('ONLINE');
      const stream = collect(watcher, WATCH, { u: [member.id] }, (d) => d.presence);
      expect((await stream.waitFor(1))[0]).toMatchObject({ status: 'ONLINE' });
      // Crash: the heartbeat stops, nothing is released or announced.
      (doomed as unknown as { heartbeat: NodeJS.Timeout }).heartbeat.close();
      expect((await stream.waitFor(2, 5000))[1]).toMatchObject({ status: 'OFFLINE' });
    } finally {
      await watcher.dispose();
      await pubsub.close();
    }
  });
});
