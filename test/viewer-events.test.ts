import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers/app.ts';
import { createChannel, createUser, ok, registerOrg, send } from './helpers/fixtures.ts';
import { collect, untilLive, type AnyOf } from './helpers/subscription.ts';
import { wsClient } from './helpers/ws.ts';
import { graphql } from './generated/index.ts';
import type { ViewerEventsViewerEventsSubscription } from './generated/graphql.ts';

let s: TestServer;
beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s?.stop();
});

const VIEWER_EVENTS = graphql(`
  subscription ViewerEventsViewerEvents {
    viewerEvents {
      __typename
      ... on ChannelActivityEvent {
        channelId
        lastSeq
        unreadCount
        message {
          body
        }
      }
      ... on ChannelAddedEvent {
        channelId
        channel {
          name
        }
      }
      ... on ChannelRemovedEvent {
        channelId
        reason
      }
    }
  }
`);
type Item = AnyOf<ViewerEventsViewerEventsSubscription['viewerEvents']>;
const pick = (data: ViewerEventsViewerEventsSubscription): Item => data.viewerEvents;

/** An organization, a member subscribed to viewerEvents, and a channel they share with the owner, stream live. */
async function setup() {
  const org = await registerOrg(s);
  const member = await createUser(s, org, 'MEMBER');
  const channelId = await createChannel(s, org.owner.token, { memberIds: [member.id] });
  const client = wsClient(s.url, member.token, { keepOpen: true });
  const stream = collect(client, VIEWER_EVENTS, {}, pick);
  await untilLive(stream, () => send(s, org.owner.token, channelId, 'probe'));
  // Start each test from a read channel.
  const seq = ok(
    await s.gql(
      graphql(`
        query ViewerEventsChannel($c: ID!) {
          channel(id: $c) {
            lastSeq
          }
        }
      `),
      { c: channelId },
      member.token,
    ),
  ).channel.lastSeq;
  // Counted before the mutation: its event may arrive before its answer does.
  const seen = stream.items.length;
  ok(
    await s.gql(
      graphql(`
        mutation ViewerEventsMarkChannelRead($c: ID!, $s: Int!) {
          markChannelRead(channelId: $c, seq: $s) {
            lastReadSeq
          }
        }
      `),
      { c: channelId, s: seq },
      member.token,
    ),
  );
  await stream.waitFor(seen + 1); // the read receipt's activity
  stream.items.splice(0);
  return { org, member, channelId, client, stream };
}

describe('viewerEvents', () => {
  it('reports activity with the viewer\u2019s unread count: others\u2019 messages count, own do not, reading clears', async () => {
    const { org, member, channelId, client, stream } = await setup();
    try {
      await send(s, org.owner.token, channelId, 'one');
      await send(s, org.owner.token, channelId, 'two');
      await send(s, member.token, channelId, 'mine');
      const items = await stream.waitFor(3);
      expect(items.map((i) => [i.__typename, i.channelId, i.unreadCount, i.message?.body])).toEqual([
        ['ChannelActivityEvent', channelId, 1, 'one'],
        ['ChannelActivityEvent', channelId, 2, 'two'],
        ['ChannelActivityEvent', channelId, 2, 'mine'],
      ]);
      ok(
        await s.gql(
          graphql(`
            mutation ViewerEventsMarkChannelRead($c: ID!, $s: Int!) {
              markChannelRead(channelId: $c, seq: $s) {
                lastReadSeq
              }
            }
          `),
          { c: channelId, s: items[2]!.lastSeq! },
          member.token,
        ),
      );
      const [cleared] = (await stream.waitFor(4)).slice(3);
      expect(cleared).toMatchObject({ __typename: 'ChannelActivityEvent', channelId, unreadCount: 0 });
    } finally {
      await client.dispose();
    }
  });

  it('an unread message deleted drops the count', async () => {
    const { org, channelId, client, stream } = await setup();
    try {
      const m = await send(s, org.owner.token, channelId, 'oops');
      await stream.waitFor(1);
      ok(
        await s.gql(
          graphql(`
            mutation ViewerEventsDeleteMessage($id: ID!) {
              deleteMessage(input: { id: $id }) {
                hard
              }
            }
          `),
          { id: m.id },
          org.owner.token,
        ),
      );
      const items = await stream.waitFor(2);
      expect(items.map((i) => i.unreadCount)).toEqual([1, 0]);
    } finally {
      await client.dispose();
    }
  });

  it('tells the viewer about channels joined and left, and follows the joined ones', async () => {
    const { org, member, client, stream } = await setup();
    try {
      const added = await createChannel(s, org.owner.token, { name: 'later', memberIds: [member.id] });
      const [joined] = await stream.waitFor(1);
      expect(joined).toMatchObject({ __typename: 'ChannelAddedEvent', channelId: added, channel: { name: 'later' } });
      await send(s, org.owner.token, added, 'in the new one');
      const activity = (await stream.waitFor(2))[1];
      expect(activity).toMatchObject({ __typename: 'ChannelActivityEvent', channelId: added, unreadCount: 1 });
      ok(
        await s.gql(
          graphql(`
            mutation ViewerEventsRemoveChannelMember($c: ID!, $u: ID!) {
              removeChannelMember(channelId: $c, userId: $u) {
                id
              }
            }
          `),
          { c: added, u: member.id },
          org.owner.token,
        ),
      );
      const removed = (await stream.waitFor(3))[2];
      expect(removed).toMatchObject({ __typename: 'ChannelRemovedEvent', channelId: added, reason: 'REMOVED' });
      await send(s, org.owner.token, added, 'no longer yours');
      await new Promise((r) => setTimeout(r, 300));
      expect(stream.items).toHaveLength(3);
    } finally {
      await client.dispose();
    }
  });

  it('costs no query per subscriber for a message', async () => {
    const org = await registerOrg(s);
    const members = await Promise.all(Array.from({ length: 5 }, () => createUser(s, org, 'MEMBER')));
    const channelId = await createChannel(s, org.owner.token, { memberIds: members.map((m) => m.id) });
    const clients = members.map((m) => wsClient(s.url, m.token, { keepOpen: true }));
    try {
      const streams = clients.map((c) => collect(c, VIEWER_EVENTS, {}, pick));
      for (const st of streams) await untilLive(st, () => send(s, org.owner.token, channelId, 'probe'));
      await new Promise((r) => setTimeout(r, 200));
      const counts = streams.map((st) => st.items.length);
      const before = s.app.queryCount();
      await send(s, org.owner.token, channelId, 'to all');
      await Promise.all(streams.map((st, i) => st.waitFor(counts[i]! + 1)));
      const withFive = s.app.queryCount() - before;
      streams.slice(1).forEach((st) => st.unsubscribe());
      await new Promise((r) => setTimeout(r, 100));
      const before1 = s.app.queryCount();
      await send(s, org.owner.token, channelId, 'to one');
      await streams[0]!.waitFor(counts[0]! + 2);
      expect(withFive).toBe(s.app.queryCount() - before1);
    } finally {
      await Promise.all(clients.map((c) => c.dispose()));
    }
  });
});
