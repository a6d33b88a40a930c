import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers/app.ts';
import { createChannel, createUser, ok, registerOrg, send } from './helpers/fixtures.ts';
import { rawId } from './helpers/messages.ts';
import { collect, expectExactly, messageOf, untilLive, type AnyOf, type Collected } from './helpers/subscription.ts';
import { liveSocket, wsClient } from './helpers/ws.ts';
import { graphql } from './generated/index.ts';
import type { ChannelEventsChannelEventsSubscription } from './generated/graphql.ts';

let s: TestServer;
let db: pg.Pool;
beforeAll(async () => {
  s = await startServer();
  db = new pg.Pool({ connectionString: s.app.databaseUrl, max: 2 });
});
afterAll(async () => {
  await db?.end();
  await s?.stop();
});

const EVENTS = graphql(`
  subscription ChannelEventsChannelEvents($c: ID!, $after: Int) {
    channelEvents(channelId: $c, after: $after) {
      __typename
      seq
      cursor
      channelId
      ... on MessageAddedEvent {
        message {
          id
          seq
          body
        }
      }
      ... on MessageEditedEvent {
        message {
          id
          body
          edited
        }
      }
      ... on MessageDeletedEvent {
        messageId
        hard
      }
      ... on MemberRemovedEvent {
        userId
        reason
      }
      ... on ReadReceiptEvent {
        userId
        lastReadSeq
      }
    }
  }
`);

type Event = AnyOf<ChannelEventsChannelEventsSubscription['channelEvents']>;
const pick = (data: ChannelEventsChannelEventsSubscription): Event => data.channelEvents;
const lastSeq = async (token: string, channelId: string) =>
  ok(
    await s.gql(
      graphql(`
        query ChannelEventsChannel($c: ID!) {
          channel(id: $c) {
            lastSeq
          }
        }
      `),
      { c: channelId },
      token,
    ),
  ).channel.lastSeq;

describe('channelEvents', () => {
  it('streams every change from now on, each with its seq and cursor', async () => {
    const org = await registerOrg(s);
    const channelId = await createChannel(s, org.owner.token);
    const client = wsClient(s.url, org.owner.token, { keepOpen: true });
    try {
      const stream = collect(client, EVENTS, { c: channelId }, pick);
      const [probe] = await untilLive(stream, () => send(s, org.owner.token, channelId, 'probe'));
      const start = probe!.seq;
      const first = await send(s, org.owner.token, channelId, 'one');
      await send(s, org.owner.token, channelId, 'two');
      ok(
        await s.gql(
          graphql(`
            mutation ChannelEventsEditMessage($id: ID!) {
              editMessage(input: { id: $id, body: "one, edited" }) {
                id
              }
            }
          `),
          { id: first.id },
          org.owner.token,
        ),
      );
      ok(
        await s.gql(
          graphql(`
            mutation ChannelEventsDeleteMessage($id: ID!) {
              deleteMessage(input: { id: $id }) {
                hard
              }
            }
          `),
          { id: first.id },
          org.owner.token,
        ),
      );
      const events = await stream.waitFor(5);
      const end = await lastSeq(org.owner.token, channelId);
      expectExactly(
        events.map((e) => e.seq),
        start,
        end,
      ); // probes included: nothing lost once live
      const tail = events.slice(-4);
      expect(tail.map((e) => e.__typename)).toEqual([
        'MessageAddedEvent',
        'MessageAddedEvent',
        'MessageEditedEvent',
        'MessageDeletedEvent',
      ]);
      expect(tail.map((e) => e.message?.body ?? null)).toEqual(['one', 'two', 'one, edited', null]);
      expect(tail.map((e) => e.cursor)).toEqual(tail.map((e) => String(e.seq)));
      expect(tail[0]!.message).toMatchObject({ seq: first.seq });
      expect(tail[3]!.messageId).toBe(first.id);
    } finally {
      await client.dispose();
    }
  });

  it('replays from a cursor, then goes live without gap or duplicate while sends race the replay', async () => {
    const org = await registerOrg(s);
    const channelId = await createChannel(s, org.owner.token);
    for (let i = 0; i < 10; i++) await send(s, org.owner.token, channelId, `before ${i}`);
    const client = wsClient(s.url, org.owner.token, { keepOpen: true });
    try {
      // 40 sends in flight while the subscriber replays from seq 3.
      const racing = Promise.all(Array.from({ length: 40 }, (_, i) => send(s, org.owner.token, channelId, `during ${i}`)));
      const stream = collect(client, EVENTS, { c: channelId, after: 3 }, pick);
      await racing;
      const end = await lastSeq(org.owner.token, channelId);
      expect(end).toBe(51);
      await stream.waitFor(end - 3);
      await new Promise((r) => setTimeout(r, 200)); // nothing extra may follow
      expectExactly(
        stream.items.map((e) => e.seq),
        4,
        end,
      );
    } finally {
      await client.dispose();
    }
  });

  it('fills a gap on the live path from the log (an event committed without a publish)', async () => {
    const org = await registerOrg(s);
    const channelId = await createChannel(s, org.owner.token);
    const client = wsClient(s.url, org.owner.token, { keepOpen: true });
    try {
      const stream = collect(client, EVENTS, { c: channelId }, pick);
      await untilLive(stream, () => send(s, org.owner.token, channelId, 'probe'));
      const seen = stream.items.length;
      const lost = (await lastSeq(org.owner.token, channelId)) + 1;
      // A change whose publish was lost: it is in the log, nobody heard of it.
      const id = rawId(channelId);
      await db.query(`UPDATE "Channel" SET "lastSeq" = $2 WHERE id = $1`, [id, lost]);
      await db.query(
        `INSERT INTO "ChannelEvent" ("channelId", seq, "organizationId", type, payload, "createdAt")
         SELECT id, $2, "organizationId", 'CHANNEL_UPDATED', '{"archived": false}', now() FROM "Channel" WHERE id = $1`,
        [id, lost],
      );
      await send(s, org.owner.token, channelId, 'after the lost one');
      const events = (await stream.waitFor(seen + 2)).slice(seen);
      expect(events.map((e) => [e.seq, e.__typename])).toEqual([
        [lost, 'ChannelUpdatedEvent'],
        [lost + 1, 'MessageAddedEvent'],
      ]);
    } finally {
      await client.dispose();
    }
  });

  it('ends with RESYNC_REQUIRED for a cursor older than the retained log', async () => {
    const org = await registerOrg(s);
    const channelId = await createChannel(s, org.owner.token);
    for (let i = 0; i < 5; i++) await send(s, org.owner.token, channelId, `m${i}`);
    await db.query(`DELETE FROM "ChannelEvent" WHERE "channelId" = $1 AND seq <= 3`, [rawId(channelId)]); // pruned
    const client = wsClient(s.url, org.owner.token, { keepOpen: true });
    try {
      const stale = collect(client, EVENTS, { c: channelId, after: 1 }, pick);
      await stale.done;
      expect(stale.items).toEqual([]);
      expect(stale.errors[0]?.extensions?.code).toBe('RESYNC_REQUIRED');
      // From the oldest retained entry on, it replays.
      const fresh = collect(client, EVENTS, { c: channelId, after: 3 }, pick);
      expectExactly(
        (await fresh.waitFor(3)).map((e) => e.seq),
        4,
        6,
      );
      fresh.unsubscribe();
    } finally {
      await client.dispose();
    }
  });

  it('stops a member the moment they are removed: the removal, then FORBIDDEN', async () => {
    const org = await registerOrg(s);
    const member = await createUser(s, org, 'MEMBER');
    const channelId = await createChannel(s, org.owner.token, { memberIds: [member.id] });
    const client = wsClient(s.url, member.token, { keepOpen: true });
    try {
      const stream = collect(client, EVENTS, { c: channelId, after: await lastSeq(org.owner.token, channelId) }, pick);
      await send(s, org.owner.token, channelId, 'still here');
      // The subscription is open once it has this message; removed before that, it would be refused at the start.
      await stream.waitFor(1);
      ok(
        await s.gql(
          graphql(`
            mutation ChannelEventsRemoveChannelMember($c: ID!, $u: ID!) {
              removeChannelMember(channelId: $c, userId: $u) {
                id
              }
            }
          `),
          { c: channelId, u: member.id },
          org.owner.token,
        ),
      );
      await send(s, org.owner.token, channelId, 'not for you');
      await stream.done;
      expect(stream.items.map((e) => e.__typename)).toEqual(['MessageAddedEvent', 'MemberRemovedEvent']);
      expect(stream.items[1]!.userId).toBe(member.id);
      expect(stream.errors[0]?.extensions?.code).toBe('FORBIDDEN');
    } finally {
      await client.dispose();
    }
  });

  it('refuses non-members, other organizations and anonymous sockets', async () => {
    const org = await registerOrg(s);
    const other = await registerOrg(s);
    const outsider = await createUser(s, org, 'MEMBER');
    const channelId = await createChannel(s, org.owner.token);
    // No token: the socket itself is refused (4401) before any subscription.
    expect((await liveSocket(s.url, {}).closed).code).toBe(4401);
    for (const [token, code] of [
      [outsider.token, 'NOT_FOUND'],
      [other.owner.token, 'NOT_FOUND'],
    ] as const) {
      const client = wsClient(s.url, token, { keepOpen: true });
      try {
        const stream = collect(client, EVENTS, { c: channelId }, pick);
        await stream.done;
        expect(stream.errors[0]?.extensions?.code).toBe(code);
      } finally {
        await client.dispose();
      }
    }
  });

  it('delivers events to many subscribers without any query for delivery', async () => {
    const org = await registerOrg(s);
    const members = await Promise.all(Array.from({ length: 6 }, () => createUser(s, org, 'MEMBER')));
    const channelId = await createChannel(s, org.owner.token, { memberIds: members.map((m) => m.id) });
    const LIVE = graphql(`
      subscription ChannelEventsMessages($c: ID!) {
        channelEvents(channelId: $c) {
          seq
          ... on MessageAddedEvent {
            message {
              id
              seq
              body
              edited
              deleted
              createdAt
            }
          }
        }
      }
    `);
    const clients = members.map((m) => wsClient(s.url, m.token, { keepOpen: true }));
    /** Statements run while `count` sends, one after another, reach every open stream. */
    const cost = async (streams: Collected<unknown>[], count: number) => {
      const seen = streams.map((st) => st.items.length);
      const before = s.app.queryCount();
      for (let i = 0; i < count; i++) await send(s, org.owner.token, channelId, `burst ${i}`);
      await Promise.all(streams.map((st, i) => st.waitFor(seen[i]! + count)));
      return s.app.queryCount() - before;
    };
    try {
      const streams = clients.map((c) => collect(c, LIVE, { c: channelId }, (d) => d.channelEvents));
      // Every stream live: each has received a probe sent after it subscribed.
      for (const st of streams) await untilLive(st, () => send(s, org.owner.token, channelId, 'probe'));
      const end = await lastSeq(org.owner.token, channelId);
      await Promise.all(streams.map((st) => st.waitFor(st.items.length + end - st.items.at(-1)!.seq)));
      const withSix = await cost(streams, 5);
      streams.slice(1).forEach((st) => st.unsubscribe());
      await new Promise((r) => setTimeout(r, 100));
      const withOne = await cost(streams.slice(0, 1), 5);
      // One statement per send, whatever the number of streams: delivery reads nothing.
      expect(withOne).toBe(5);
      expect(withSix).toBe(withOne);
      expect(messageOf(streams[0]!.items.at(-1)!)!.body).toMatch(/^burst/);
    } finally {
      await Promise.all(clients.map((c) => c.dispose()));
    }
  });
});
