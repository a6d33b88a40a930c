import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers/app.ts';
import {
  createChannel,
  createProject,
  createUser,
  errorCode,
  grantAccess,
  ok,
  registerOrg,
  send,
  type TestOrg,
  type TestUser,
} from './helpers/fixtures.ts';
import { collect, expectExactly, type AnyOf } from './helpers/subscription.ts';
import { wsClient, wsRequest } from './helpers/ws.ts';
import { graphql } from './generated/index.ts';
import type { PinsEventsSubscription } from './generated/graphql.ts';

let s: TestServer;
beforeAll(async () => {
  // The viewer cache outlives the file, so a query-count test never meets a token whose entry just expired.
  s = await startServer({ viewerCacheMs: 600_000 });
});
afterAll(async () => {
  await s?.stop();
});

const PIN = graphql(`
  mutation PinsPin($m: ID!) {
    pinMessage(messageId: $m) {
      id
      pinned
      pinnedAt
      pinnedBy {
        id
      }
    }
  }
`);
const UNPIN = graphql(`
  mutation PinsUnpin($m: ID!) {
    unpinMessage(messageId: $m) {
      id
      pinned
      pinnedAt
      pinnedBy {
        id
      }
    }
  }
`);
const PINNED = graphql(`
  query PinsPinned($c: ID!, $first: Int, $after: String) {
    channel(id: $c) {
      lastSeq
      pinnedMessages(first: $first, after: $after) {
        edges {
          cursor
          node {
            id
            body
            pinned
            pinnedBy {
              id
            }
          }
        }
        pageInfo {
          hasNextPage
          endCursor
        }
      }
    }
  }
`);
const HISTORY = graphql(`
  query PinsHistory($c: ID!) {
    channel(id: $c) {
      messages(first: 50) {
        edges {
          node {
            id
            pinned
            pinnedAt
            pinnedBy {
              id
              username
            }
          }
        }
      }
    }
  }
`);
const CHANNELS = graphql(`
  query PinsChannels {
    channels(first: 50) {
      edges {
        node {
          id
          pinnedMessages(first: 2) {
            edges {
              node {
                id
              }
            }
          }
        }
      }
    }
  }
`);
const EVENTS = graphql(`
  subscription PinsEvents($c: ID!, $after: Int) {
    channelEvents(channelId: $c, after: $after) {
      __typename
      seq
      actorId
      ... on MessagePinnedEvent {
        messageId
        messageSeq
        pinnedById
      }
      ... on MessageUnpinnedEvent {
        messageId
        messageSeq
      }
      ... on MessageAddedEvent {
        message {
          id
          pinned
        }
      }
    }
  }
`);
const UPDATE = graphql(`
  mutation PinsUpdateChannel($c: ID!, $may: Boolean) {
    updateChannel(input: { channelId: $c, membersMayPin: $may }) {
      membersMayPin
    }
  }
`);
const ADD_MEMBERS = graphql(`
  mutation PinsAddMembers($c: ID!, $u: [ID!]!, $role: ChannelMemberRole) {
    addChannelMembers(channelId: $c, userIds: $u, role: $role) {
      id
    }
  }
`);
const ARCHIVE = graphql(`
  mutation PinsArchive($c: ID!, $a: Boolean) {
    archiveChannel(channelId: $c, archived: $a) {
      archived
    }
  }
`);
const DELETE = graphql(`
  mutation PinsDelete($id: ID!, $hard: Boolean) {
    deleteMessage(input: { id: $id, hard: $hard }) {
      hard
    }
  }
`);
const OPEN_DM = graphql(`
  mutation PinsOpenDirect($u: [ID!]!) {
    openDirectChannel(userIds: $u) {
      id
    }
  }
`);

type Event = AnyOf<PinsEventsSubscription['channelEvents']>;

const pin = (user: TestUser, messageId: string) => s.gql(PIN, { m: messageId }, user.token);
const unpin = (user: TestUser, messageId: string) => s.gql(UNPIN, { m: messageId }, user.token);

async function pinned(user: TestUser, channelId: string, page: { first?: number; after?: string } = {}) {
  const data = ok(await s.gql(PINNED, { c: channelId, ...page }, user.token)).channel;
  return { lastSeq: data.lastSeq, ids: data.pinnedMessages.edges.map((e) => e.node.id), connection: data.pinnedMessages };
}

async function replay(user: TestUser, channelId: string, after: number, count: number): Promise<Event[]> {
  const client = wsClient(s.url, user.token, { keepOpen: true });
  try {
    const stream = collect(client, EVENTS, { c: channelId, after }, (d) => d.channelEvents as Event);
    const events = await stream.waitFor(count);
    stream.unsubscribe();
    return events.slice(0, count);
  } finally {
    await client.dispose();
  }
}

interface World {
  org: TestOrg;
  /** A plain member, who writes the messages. */
  member: TestUser;
  /** The channel's ADMIN member. */
  channelAdmin: TestUser;
  channelId: string;
  messageIds: string[];
}

async function world(messages = 3): Promise<World> {
  const org = await registerOrg(s);
  const [member, channelAdmin] = await Promise.all([createUser(s, org), createUser(s, org)]);
  const channelId = await createChannel(s, org.owner.token, { memberIds: [member.id] });
  ok(await s.gql(ADD_MEMBERS, { c: channelId, u: [channelAdmin.id], role: 'ADMIN' }, org.owner.token));
  const sent = await Promise.all(Array.from({ length: messages }, (_, i) => send(s, member.token, channelId, `message ${i}`)));
  const messageIds = sent.sort((x, y) => x.seq - y.seq).map((m) => m.id);
  return { org, member, channelAdmin, channelId, messageIds };
}

describe('pins: who may pin', () => {
  it('channel owners and admins and organization staff; members only when the channel lets them', async () => {
    const { org, member, channelAdmin, channelId, messageIds } = await world();
    const [m0, m1, m2] = messageIds as [string, string, string];
    const [staff, observer] = await Promise.all([createUser(s, org, 'STAFF'), createUser(s, org)]);
    ok(await s.gql(ADD_MEMBERS, { c: channelId, u: [staff.id], role: 'MEMBER' }, org.owner.token));
    ok(await s.gql(ADD_MEMBERS, { c: channelId, u: [observer.id], role: 'OBSERVER' }, org.owner.token));

    const denied = await pin(member, m0);
    expect(errorCode(denied)).toBe('FORBIDDEN');
    expect(denied.errors![0]!.message).toMatch(/staff and channel owners or admins/);
    expect(ok(await pin(channelAdmin, m0)).pinMessage).toMatchObject({ id: m0, pinned: true, pinnedBy: { id: channelAdmin.id } });
    expect(ok(await pin(staff, m1)).pinMessage.pinnedBy).toEqual({ id: staff.id }); // staff, as a plain member of the channel
    expect(errorCode(await unpin(member, m0))).toBe('FORBIDDEN');

    // The channel's managers let members pin: members may, observers still may not.
    expect(ok(await s.gql(UPDATE, { c: channelId, may: true }, channelAdmin.token)).updateChannel.membersMayPin).toBe(true);
    expect(ok(await pin(member, m2)).pinMessage.pinnedBy).toEqual({ id: member.id });
    ok(await unpin(member, m0)); // also pins made by others
    expect(errorCode(await pin(observer, m0))).toBe('FORBIDDEN');
    ok(await s.gql(UPDATE, { c: channelId, may: false }, org.owner.token));
    expect(errorCode(await pin(member, m0))).toBe('FORBIDDEN');
    expect((await pinned(member, channelId)).ids).toEqual([m2, m1]);
  });

  it('hides the message from non-members and refuses clients, archived channels and deleted messages', async () => {
    const { org, member, channelAdmin, channelId, messageIds } = await world(2);
    const [m0, m1] = messageIds as [string, string];
    const [outsider, outsideStaff, client] = await Promise.all([
      createUser(s, org),
      createUser(s, org, 'STAFF'),
      createUser(s, org, 'CLIENT'),
    ]);
    expect(errorCode(await pin(outsider, m0))).toBe('NOT_FOUND');
    // Staff manage channels they are not in, but cannot read their messages: NOT_FOUND too.
    expect(errorCode(await pin(outsideStaff, m0))).toBe('NOT_FOUND');
    expect(errorCode(await pin(member, Buffer.from('Message:01890000-0000-7000-8000-000000000000').toString('base64')))).toBe('NOT_FOUND');

    // A client who may comment in a project channel still does not manage it.
    const project = await createProject(s, org.owner.token);
    await grantAccess(s, org.owner.token, project, client.id, 'CLIENT', true);
    const projectChannel = await createChannel(s, org.owner.token, { kind: 'PROJECT', projectId: project, memberIds: [client.id] });
    const projectMessage = (await send(s, client.token, projectChannel, 'client here')).id;
    expect(errorCode(await pin(client, projectMessage))).toBe('FORBIDDEN');
    ok(await pin(org.owner, projectMessage));

    // Deleted: pinning is CONFLICT; a pinned message that is soft-deleted keeps its pin, hidden from non-admins.
    ok(await pin(channelAdmin, m1));
    ok(await s.gql(DELETE, { id: m0 }, member.token));
    expect(errorCode(await pin(channelAdmin, m0))).toBe('CONFLICT');
    ok(await s.gql(DELETE, { id: m1 }, member.token));
    expect((await pinned(member, channelId)).ids).toEqual([]);
    expect((await pinned(org.owner, channelId)).ids).toEqual([m1]);
    // It may still be unpinned.
    expect(ok(await unpin(channelAdmin, m1)).unpinMessage).toMatchObject({ pinned: false, pinnedAt: null, pinnedBy: null });
    expect((await pinned(org.owner, channelId)).ids).toEqual([]);

    // Archived: read-only for pins too.
    const m2 = (await send(s, member.token, channelId, 'late')).id;
    ok(await pin(channelAdmin, m2));
    ok(await s.gql(ARCHIVE, { c: channelId }, org.owner.token));
    expect(errorCode(await pin(org.owner, m2))).toBe('FORBIDDEN');
    expect(errorCode(await unpin(channelAdmin, m2))).toBe('FORBIDDEN');
    expect((await pinned(member, channelId)).ids).toEqual([m2]);
  });

  it('lets both sides of a direct conversation pin', async () => {
    const org = await registerOrg(s);
    const [a, b] = await Promise.all([createUser(s, org), createUser(s, org)]);
    const dm = ok(await s.gql(OPEN_DM, { u: [b.id] }, a.token)).openDirectChannel.id;
    const m = (await send(s, a.token, dm, 'remember this')).id;
    expect(ok(await pin(b, m)).pinMessage.pinnedBy).toEqual({ id: b.id });
    ok(await unpin(a, m));
  });

  it('a hard delete removes the pin', async () => {
    const { org, channelAdmin, channelId, messageIds } = await world(2);
    await Promise.all(messageIds.map(async (id) => ok(await pin(channelAdmin, id))));
    ok(await s.gql(DELETE, { id: messageIds[0]!, hard: true }, org.owner.token));
    expect((await pinned(org.owner, channelId)).ids).toEqual([messageIds[1]]);
    expect(errorCode(await unpin(org.owner, messageIds[0]!))).toBe('NOT_FOUND');
  });
});

describe('pins: changes and the log', () => {
  it('is idempotent and logs MESSAGE_PINNED / MESSAGE_UNPINNED, live and replayed from after', async () => {
    const { member, channelAdmin, channelId, messageIds } = await world(2);
    const [m0, m1] = messageIds as [string, string];
    const start = (await pinned(member, channelId)).lastSeq;
    const watcher = wsClient(s.url, member.token, { keepOpen: true });
    const actor = wsClient(s.url, channelAdmin.token, { keepOpen: true });
    try {
      const live = collect(watcher, EVENTS, { c: channelId, after: start }, (d) => d.channelEvents as Event);
      const first = ok(await pin(channelAdmin, m0)).pinMessage;
      const again = ok(await pin(channelAdmin, m0)).pinMessage; // no change: same answer, no event
      expect(again).toEqual(first);
      ok(await wsRequest(actor, PIN, { m: m1 }));
      ok(await wsRequest(actor, UNPIN, { m: m0 }));
      expect(ok(await wsRequest(actor, UNPIN, { m: m0 })).unpinMessage.pinned).toBe(false); // no change
      await send(s, member.token, channelId, 'after the pins');
      const events = await live.waitFor(4);
      const expected = [
        { __typename: 'MessagePinnedEvent', seq: start + 1, messageId: m0, messageSeq: start - 1, pinnedById: channelAdmin.id },
        { __typename: 'MessagePinnedEvent', seq: start + 2, messageId: m1, messageSeq: start, pinnedById: channelAdmin.id },
        { __typename: 'MessageUnpinnedEvent', seq: start + 3, messageId: m0, messageSeq: start - 1, actorId: channelAdmin.id },
        { __typename: 'MessageAddedEvent', seq: start + 4 },
      ];
      events.forEach((e, i) => expect(e).toMatchObject(expected[i]!));
      expect(live.items).toHaveLength(4);

      // A subscriber resuming from `after` gets exactly the logged events, in order.
      const replayed = await replay(member, channelId, start, 4);
      expectExactly(
        replayed.map((e) => e.seq),
        start + 1,
        start + 4,
      );
      expect(replayed).toEqual(events);
      const fromMiddle = await replay(member, channelId, start + 2, 2);
      expect(fromMiddle.map((e) => e.__typename)).toEqual(['MessageUnpinnedEvent', 'MessageAddedEvent']);
    } finally {
      await Promise.all([watcher.dispose(), actor.dispose()]);
    }
  });

  it('keeps one pin and one event when the same message is pinned many times at once', async () => {
    const { org, channelAdmin, channelId, messageIds } = await world(1);
    const start = (await pinned(org.owner, channelId)).lastSeq;
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => pin(i % 2 ? org.owner : channelAdmin, messageIds[0]!)));
    results.forEach((r) => expect(ok(r).pinMessage.pinned).toBe(true));
    const { lastSeq, ids } = await pinned(org.owner, channelId);
    expect(lastSeq).toBe(start + 1);
    expect(ids).toEqual(messageIds);
  });
});

describe('pins: reading them', () => {
  it('lists pinned messages newest pin first, in pages, and at most 50 per channel', async () => {
    const { member, channelAdmin, channelId, messageIds } = await world(51);
    for (const id of messageIds.slice(0, 50)) ok(await pin(channelAdmin, id));
    const full = await pin(channelAdmin, messageIds[50]!);
    expect(errorCode(full)).toBe('CONFLICT');
    expect(full.errors![0]!.message).toMatch(/at most 50 pinned/);

    const newestFirst = messageIds.slice(0, 50).reverse();
    const seen: string[] = [];
    let after: string | undefined;
    for (;;) {
      const { ids, connection } = await pinned(member, channelId, { first: 20, ...(after ? { after } : {}) });
      seen.push(...ids);
      if (!connection.pageInfo.hasNextPage) break;
      after = connection.pageInfo.endCursor!;
    }
    expect(seen).toEqual(newestFirst);
    const all = await s.gql(PINNED, { c: channelId, first: 50 }, member.token);
    expect(ok(all).channel.pinnedMessages.edges.every((e) => e.node.pinned && e.node.pinnedBy?.id === channelAdmin.id)).toBe(true);

    // Unpinning makes room; the newest pin is first.
    ok(await unpin(channelAdmin, messageIds[0]!));
    ok(await pin(channelAdmin, messageIds[50]!));
    expect((await pinned(member, channelId, { first: 1 })).ids).toEqual([messageIds[50]]);

    expect(errorCode(await s.gql(PINNED, { c: channelId, after: 'nonsense' }, member.token))).toBe('BAD_USER_INPUT');
    expect(errorCode(await s.gql(PINNED, { c: channelId, after: messageIds[1]! }, member.token))).toBe('BAD_USER_INPUT');
    expect(errorCode(await s.gql(PINNED, { c: channelId, first: 101 }, member.token))).toBe('BAD_USER_INPUT');
  });

  it('answers Message.pinned, pinnedAt and pinnedBy for a page', async () => {
    const { org, member, channelAdmin, channelId, messageIds } = await world(3);
    ok(await pin(channelAdmin, messageIds[1]!));
    const messages = ok(await s.gql(HISTORY, { c: channelId }, member.token)).channel.messages.edges.map((e) => e.node);
    expect(messages.map((m) => m.pinned)).toEqual([false, true, false]);
    expect(messages[1]!.pinnedBy).toEqual({ id: channelAdmin.id, username: channelAdmin.username });
    expect(Date.parse(messages[1]!.pinnedAt!)).toBeGreaterThan(Date.now() - 60_000);
    expect(messages[0]).toMatchObject({ pinnedAt: null, pinnedBy: null });
    void org;
  });

  it('costs the same number of queries for 5 messages (or channels) as for 30', async () => {
    const org = await registerOrg(s);
    const member = await createUser(s, org);
    const countFor = async (messages: number) => {
      const channelId = await createChannel(s, org.owner.token, { memberIds: [member.id] });
      const ids: string[] = [];
      for (let i = 0; i < messages; i++) ids.push((await send(s, org.owner.token, channelId, `m${i}`)).id);
      await Promise.all(ids.filter((_, i) => i % 2 === 0).map(async (id) => ok(await pin(org.owner, id))));
      await s.gql(HISTORY, { c: channelId }, member.token); // settles caches
      const before = s.app.queryCount();
      const list = ok(await s.gql(HISTORY, { c: channelId }, member.token)).channel.messages.edges.map((e) => e.node);
      const used = s.app.queryCount() - before;
      expect(list.map((m) => m.pinned)).toEqual(ids.map((_, i) => i % 2 === 0));
      expect(list.every((m) => (m.pinnedBy?.id ?? org.owner.id) === org.owner.id)).toBe(true);
      return used;
    };
    expect(await countFor(30)).toBe(await countFor(5));

    // Channel lists: pinnedMessages is one query for all the channels of the page.
    const channelsQueries = async () => {
      await s.gql(CHANNELS, {}, member.token);
      const before = s.app.queryCount();
      const data = ok(await s.gql(CHANNELS, {}, member.token));
      expect(data.channels.edges.every((e) => e.node.pinnedMessages.edges.length === 2)).toBe(true);
      return { used: s.app.queryCount() - before, channels: data.channels.edges.length };
    };
    const two = await channelsQueries();
    for (let i = 0; i < 4; i++) {
      const channelId = await createChannel(s, org.owner.token, { memberIds: [member.id] });
      for (let j = 0; j < 2; j++) ok(await pin(org.owner, (await send(s, org.owner.token, channelId, `c${i}m${j}`)).id));
    }
    const six = await channelsQueries();
    expect([two.channels, six.channels]).toEqual([2, 6]);
    expect(six.used).toBe(two.used);
  });
});
