import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers/app.ts';
import { createChannel, createUser, errorCode, ok, registerOrg, send, type TestOrg, type TestUser } from './helpers/fixtures.ts';
import { collect, untilLive, type AnyOf, type Collected } from './helpers/subscription.ts';
import { wsClient, wsRequest } from './helpers/ws.ts';
import { graphql } from './generated/index.ts';
import type { DeliveryChannelEventsSubscription, DeliveryStatusesQuery, DeliveryViewerEventsSubscription } from './generated/graphql.ts';

/**
 * Delivery and read state (issue 11 §5): markChannelDelivered,
 * Message.deliveryStatus for the sender, the receipts in the channel log, and
 * markChannelUnread with the unread counts that follow it.
 */

let s: TestServer;
beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s?.stop();
});

const DELIVERED = graphql(`
  mutation DeliveryMarkDelivered($c: ID!, $seq: Int!) {
    markChannelDelivered(channelId: $c, seq: $seq) {
      lastDeliveredSeq
      lastReadSeq
    }
  }
`);
const READ = graphql(`
  mutation DeliveryMarkRead($c: ID!, $seq: Int!) {
    markChannelRead(channelId: $c, seq: $seq) {
      lastDeliveredSeq
      lastReadSeq
    }
  }
`);
const UNREAD = graphql(`
  mutation DeliveryMarkUnread($c: ID!, $seq: Int!) {
    markChannelUnread(channelId: $c, seq: $seq) {
      lastDeliveredSeq
      lastReadSeq
    }
  }
`);
const CHANNEL = graphql(`
  query DeliveryChannel($c: ID!) {
    channel(id: $c) {
      lastSeq
      unreadCount
      membership {
        lastReadSeq
        lastDeliveredSeq
      }
    }
  }
`);
const STATUSES = graphql(`
  query DeliveryStatuses($c: ID!, $first: Int = 50) {
    channel(id: $c) {
      messages(first: $first) {
        edges {
          node {
            id
            seq
            deliveryStatus {
              status
              recipientCount
              deliveredCount
              readCount
              recipients {
                status
                user {
                  id
                  username
                }
              }
            }
          }
        }
      }
    }
  }
`);
const CHANNEL_EVENTS = graphql(`
  subscription DeliveryChannelEvents($c: ID!, $after: Int) {
    channelEvents(channelId: $c, after: $after) {
      __typename
      seq
      ... on DeliveryReceiptEvent {
        userId
        lastDeliveredSeq
        previousDeliveredSeq
      }
      ... on ReadReceiptEvent {
        userId
        lastReadSeq
        previousReadSeq
        previousDeliveredSeq
      }
      ... on MessageAddedEvent {
        message {
          id
          deliveryStatus {
            status
            recipientCount
          }
        }
      }
    }
  }
`);
const VIEWER_EVENTS = graphql(`
  subscription DeliveryViewerEvents {
    viewerEvents {
      __typename
      ... on ChannelActivityEvent {
        channelId
        lastSeq
        unreadCount
      }
    }
  }
`);

type Event = AnyOf<DeliveryChannelEventsSubscription['channelEvents']>;
type Status = DeliveryStatusesQuery['channel']['messages']['edges'][number]['node'];

const delivered = async (u: TestUser, c: string, seq: number) => ok(await s.gql(DELIVERED, { c, seq }, u.token)).markChannelDelivered;
const read = async (u: TestUser, c: string, seq: number) => ok(await s.gql(READ, { c, seq }, u.token)).markChannelRead;
const unread = async (u: TestUser, c: string, seq: number) => ok(await s.gql(UNREAD, { c, seq }, u.token)).markChannelUnread;
const channel = async (u: TestUser, c: string) => ok(await s.gql(CHANNEL, { c }, u.token)).channel;
const lastSeq = async (u: TestUser, c: string) => (await channel(u, c)).lastSeq;
async function statuses(u: TestUser, c: string): Promise<Status[]> {
  return ok(await s.gql(STATUSES, { c }, u.token)).channel.messages.edges.map((e) => e.node);
}
const recipientsOf = (st: Status) =>
  st.deliveryStatus?.recipients?.map((r) => [r.user.id, r.status] as const).sort(([x], [y]) => x.localeCompare(y)) ?? null;

/** Waits until an item satisfies `done`; returns every item so far. */
async function until<T>(stream: Collected<T>, done: (item: T) => boolean, ms = 10_000): Promise<T[]> {
  const deadline = Date.now() + ms;
  while (!stream.items.some(done)) {
    if (Date.now() > deadline) throw new Error(`timed out; items: ${JSON.stringify(stream.items)}`);
    await stream.waitFor(stream.items.length + 1, Math.max(1, deadline - Date.now())).catch(() => undefined);
  }
  return stream.items;
}

/** The channel's log from `after` to its last seq, replayed over graphql-ws. */
async function replay(u: TestUser, c: string, after: number): Promise<Event[]> {
  const to = await lastSeq(u, c);
  if (to === after) return [];
  const client = wsClient(s.url, u.token);
  try {
    const stream = collect(client, CHANNEL_EVENTS, { c, after }, (d): Event => d.channelEvents);
    return (await stream.waitFor(to - after)).slice();
  } finally {
    await client.dispose();
  }
}

/** An organization with the owner (the sender) and two members in one channel. */
async function trio(): Promise<{ org: TestOrg; sender: TestUser; a: TestUser; b: TestUser; c: string }> {
  const org = await registerOrg(s);
  const [a, b] = await Promise.all([createUser(s, org), createUser(s, org)]);
  const c = await createChannel(s, org.owner.token, { memberIds: [a.id, b.id] });
  return { org, sender: org.owner, a, b, c };
}

describe('markChannelDelivered', () => {
  it('moves forward only, clamps to the last seq, and ends at the highest of concurrent calls', async () => {
    const { sender, a, c } = await trio();
    const m1 = await send(s, sender.token, c, 'one');
    const m2 = await send(s, sender.token, c, 'two');
    expect(await delivered(a, c, m2.seq)).toEqual({ lastDeliveredSeq: m2.seq, lastReadSeq: 0 });
    // A lower seq is a no-op, and costs one query (the access check that reads the marker).
    const before = s.app.queryCount();
    expect(await delivered(a, c, m1.seq)).toEqual({ lastDeliveredSeq: m2.seq, lastReadSeq: 0 });
    expect(s.app.queryCount() - before).toBe(1);
    expect(await delivered(a, c, 0)).toEqual({ lastDeliveredSeq: m2.seq, lastReadSeq: 0 });
    // Moving it (past a's own receipt): the access check and one statement, no interactive transaction.
    const moving = s.app.queryCount();
    expect((await delivered(a, c, m2.seq + 1)).lastDeliveredSeq).toBe(m2.seq + 1);
    expect(s.app.queryCount() - moving).toBe(2);
    // Beyond the log: clamped to the channel's last seq.
    const top = await lastSeq(a, c);
    expect((await delivered(a, c, top + 1000)).lastDeliveredSeq).toBe(top);

    let last = 0;
    for (let i = 0; i < 6; i++) last = (await send(s, sender.token, c, `m${i}`)).seq;
    const seqs = Array.from({ length: 6 }, (_, i) => top + 1 + i).sort(() => Math.random() - 0.5);
    await Promise.all(seqs.map((seq) => s.gql(DELIVERED, { c, seq }, a.token)));
    expect((await channel(a, c)).membership!.lastDeliveredSeq).toBe(last);
  });

  it('logs a DeliveryReceiptEvent only when the marker passes a message someone else sent', async () => {
    const { sender, a, b, c } = await trio();
    const own = await send(s, a.token, c, 'a writes');
    let before = await lastSeq(a, c);
    // Passing only a's own message: nothing logged.
    expect((await delivered(a, c, own.seq)).lastDeliveredSeq).toBe(own.seq);
    expect(await lastSeq(a, c)).toBe(before);

    const other = await send(s, sender.token, c, 'the owner writes');
    before = other.seq;
    expect((await delivered(a, c, other.seq)).lastDeliveredSeq).toBe(other.seq);
    // Again: the same seq, and one past the receipt itself (no message passed).
    await delivered(a, c, other.seq);
    const receiptSeq = await lastSeq(a, c);
    expect(receiptSeq).toBe(before + 1);
    // b acknowledges everything, a's receipt included, and a answers b's: no ping-pong.
    await delivered(b, c, receiptSeq);
    const afterB = await lastSeq(b, c);
    expect(afterB).toBe(receiptSeq + 1);
    await delivered(a, c, afterB);
    await delivered(b, c, afterB);
    expect(await lastSeq(a, c)).toBe(afterB);

    const events = await replay(sender, c, before);
    expect(events).toEqual([
      { __typename: 'DeliveryReceiptEvent', seq: before + 1, userId: a.id, lastDeliveredSeq: other.seq, previousDeliveredSeq: own.seq },
      { __typename: 'DeliveryReceiptEvent', seq: before + 2, userId: b.id, lastDeliveredSeq: receiptSeq, previousDeliveredSeq: 0 },
    ]);
  });

  it('reading implies delivery: markChannelRead moves the delivery marker up, with no receipt of its own', async () => {
    const { sender, a, c } = await trio();
    const m = await send(s, sender.token, c, 'read me');
    const before = await lastSeq(a, c);
    expect(await read(a, c, m.seq)).toEqual({ lastReadSeq: m.seq, lastDeliveredSeq: m.seq });
    // Delivering what was read already changes nothing and logs nothing.
    expect(await delivered(a, c, m.seq)).toEqual({ lastReadSeq: m.seq, lastDeliveredSeq: m.seq });
    const events = await replay(sender, c, before);
    expect(events).toEqual([
      { __typename: 'ReadReceiptEvent', seq: before + 1, userId: a.id, lastReadSeq: m.seq, previousReadSeq: 0, previousDeliveredSeq: 0 },
    ]);
  });

  it('streams receipts live to the sender, who can follow the ticks without a query', async () => {
    const { sender, a, b, c } = await trio();
    const client = wsClient(s.url, sender.token, { keepOpen: true });
    try {
      const stream = collect(client, CHANNEL_EVENTS, { c }, (d): Event => d.channelEvents);
      await untilLive(stream, () => send(s, sender.token, c, 'probe'));
      const m = await send(s, sender.token, c, 'hello');
      // a's client acknowledges over its socket, b's over HTTP.
      const aClient = wsClient(s.url, a.token);
      try {
        expect(ok(await wsRequest(aClient, DELIVERED, { c, seq: m.seq })).markChannelDelivered.lastDeliveredSeq).toBe(m.seq);
      } finally {
        await aClient.dispose();
      }
      await delivered(b, c, m.seq);
      await read(b, c, m.seq);
      const events = (await until(stream, (e) => e.seq === m.seq + 3)).filter((e) => e.seq >= m.seq);
      expect(events[0]).toMatchObject({
        __typename: 'MessageAddedEvent',
        message: { id: m.id, deliveryStatus: { status: 'SENT', recipientCount: 2 } },
      });
      expect(events.slice(1)).toEqual([
        {
          __typename: 'DeliveryReceiptEvent',
          seq: m.seq + 1,
          userId: a.id,
          lastDeliveredSeq: m.seq,
          previousDeliveredSeq: expect.any(Number),
        },
        {
          __typename: 'DeliveryReceiptEvent',
          seq: m.seq + 2,
          userId: b.id,
          lastDeliveredSeq: m.seq,
          previousDeliveredSeq: expect.any(Number),
        },
        {
          __typename: 'ReadReceiptEvent',
          seq: m.seq + 3,
          userId: b.id,
          lastReadSeq: m.seq,
          previousReadSeq: 0,
          previousDeliveredSeq: m.seq,
        },
      ]);
      expect(events[1]!.previousDeliveredSeq).toBeLessThan(m.seq);
    } finally {
      await client.dispose();
    }
  });

  it('refuses a negative seq and another channel, or organization, as not found', async () => {
    const { sender, c } = await trio();
    const outsider = await createUser(s, await registerOrg(s));
    expect(errorCode(await s.gql(DELIVERED, { c, seq: -1 }, sender.token))).toBe('BAD_USER_INPUT');
    expect(errorCode(await s.gql(DELIVERED, { c, seq: 1 }, outsider.token))).toBe('NOT_FOUND');
  });
});

describe('Message.deliveryStatus', () => {
  it('goes SENT → DELIVERED → READ for the sender, per recipient, and is null for everyone else', async () => {
    const { sender, a, b, c } = await trio();
    const m = await send(s, sender.token, c, 'tick tock');
    const reply = await send(s, a.token, c, 'a replies');
    const status = async () => (await statuses(sender, c)).find((x) => x.id === m.id)!;

    let st = await status();
    expect(st.deliveryStatus).toMatchObject({ status: 'SENT', recipientCount: 2, deliveredCount: 0, readCount: 0 });
    expect(recipientsOf(st)).toEqual(
      [
        [a.id, 'SENT'],
        [b.id, 'SENT'],
      ].sort(([x], [y]) => x!.localeCompare(y!)),
    );

    await delivered(a, c, m.seq);
    st = await status();
    expect(st.deliveryStatus).toMatchObject({ status: 'SENT', deliveredCount: 1, readCount: 0 });
    expect(recipientsOf(st)).toContainEqual([a.id, 'DELIVERED']);

    await delivered(b, c, m.seq);
    st = await status();
    expect(st.deliveryStatus).toMatchObject({ status: 'DELIVERED', deliveredCount: 2, readCount: 0 });

    await read(a, c, m.seq);
    st = await status();
    expect(st.deliveryStatus).toMatchObject({ status: 'DELIVERED', deliveredCount: 2, readCount: 1 });
    expect(recipientsOf(st)).toContainEqual([a.id, 'READ']);
    expect(recipientsOf(st)).toContainEqual([b.id, 'DELIVERED']);

    await read(b, c, reply.seq);
    st = await status();
    expect(st.deliveryStatus).toMatchObject({ status: 'READ', recipientCount: 2, deliveredCount: 2, readCount: 2 });
    expect(st.deliveryStatus!.recipients!.map((r) => r.status)).toEqual(['READ', 'READ']);

    // Only the sender sees it: null for a recipient, also on the sender's own message of theirs.
    const forA = await statuses(a, c);
    expect(forA.find((x) => x.id === m.id)!.deliveryStatus).toBeNull();
    expect(forA.find((x) => x.id === reply.id)!.deliveryStatus).toMatchObject({ recipientCount: 2, readCount: 1 });
    expect((await statuses(b, c)).every((x) => x.deliveryStatus === null)).toBe(true);

    // The same over graphql-ws.
    const client = wsClient(s.url, sender.token);
    try {
      const overWs = ok(await wsRequest(client, STATUSES, { c }));
      expect(overWs.channel.messages.edges.find((e) => e.node.id === m.id)!.node.deliveryStatus!.status).toBe('READ');
    } finally {
      await client.dispose();
    }
  });

  it('counts only current members: one who joins is a recipient with nothing delivered, one who leaves is not', async () => {
    const { org, sender, a, b, c } = await trio();
    const m = await send(s, sender.token, c, 'before the newcomer');
    await read(a, c, m.seq);
    await read(b, c, m.seq);
    expect((await statuses(sender, c))[0]!.deliveryStatus!.status).toBe('READ');
    const late = await createUser(s, org);
    ok(
      await s.gql(
        graphql(`
          mutation DeliveryAddMember($c: ID!, $u: [ID!]!) {
            addChannelMembers(channelId: $c, userIds: $u) {
              id
            }
          }
        `),
        { c, u: [late.id] },
        sender.token,
      ),
    );
    expect((await statuses(sender, c))[0]!.deliveryStatus).toMatchObject({ status: 'SENT', recipientCount: 3, deliveredCount: 2 });
    await delivered(late, c, m.seq);
    expect((await statuses(sender, c))[0]!.deliveryStatus).toMatchObject({ status: 'DELIVERED', deliveredCount: 3, readCount: 2 });
    ok(
      await s.gql(
        graphql(`
          mutation DeliveryRemoveMember($c: ID!, $u: ID!) {
            removeChannelMember(channelId: $c, userId: $u) {
              id
            }
          }
        `),
        { c, u: late.id },
        sender.token,
      ),
    );
    expect((await statuses(sender, c))[0]!.deliveryStatus).toMatchObject({ status: 'READ', recipientCount: 2, readCount: 2 });
  });

  it('is SENT with no recipients in a channel of one, and null once the message is deleted', async () => {
    const org = await registerOrg(s);
    const c = await createChannel(s, org.owner.token);
    const m = await send(s, org.owner.token, c, 'talking to myself');
    const gone = await send(s, org.owner.token, c, 'soon deleted');
    ok(
      await s.gql(
        graphql(`
          mutation DeliveryDelete($id: ID!) {
            deleteMessage(input: { id: $id }) {
              hard
            }
          }
        `),
        { id: gone.id },
        org.owner.token,
      ),
    );
    const list = await statuses(org.owner, c);
    expect(list.find((x) => x.id === m.id)!.deliveryStatus).toEqual({
      status: 'SENT',
      recipientCount: 0,
      deliveredCount: 0,
      readCount: 0,
      recipients: [],
    });
    expect(list.find((x) => x.id === gone.id)!.deliveryStatus).toBeNull();
  });

  it('gives each recipient up to 32 others, counts only above', async () => {
    const org = await registerOrg(s);
    const others = await Promise.all(Array.from({ length: 33 }, () => createUser(s, org)));
    const c = await createChannel(s, org.owner.token, { memberIds: others.map((u) => u.id) });
    const m = await send(s, org.owner.token, c, 'to 33 people');
    await Promise.all(others.slice(0, 10).map((u) => delivered(u, c, m.seq)));
    await Promise.all(others.slice(0, 4).map((u) => read(u, c, m.seq)));
    const [big] = await statuses(org.owner, c);
    expect(big!.deliveryStatus).toEqual({ status: 'SENT', recipientCount: 33, deliveredCount: 10, readCount: 4, recipients: null });

    ok(
      await s.gql(
        graphql(`
          mutation DeliveryRemoveOne($c: ID!, $u: ID!) {
            removeChannelMember(channelId: $c, userId: $u) {
              id
            }
          }
        `),
        { c, u: others[32]!.id },
        org.owner.token,
      ),
    );
    const [small] = await statuses(org.owner, c);
    expect(small!.deliveryStatus).toMatchObject({ status: 'SENT', recipientCount: 32, deliveredCount: 10, readCount: 4 });
    const detail = small!.deliveryStatus!.recipients!;
    expect(detail).toHaveLength(32);
    const byUser = new Map(detail.map((r) => [r.user.id, r.status]));
    expect(others.slice(0, 4).map((u) => byUser.get(u.id))).toEqual(['READ', 'READ', 'READ', 'READ']);
    expect(others.slice(4, 10).every((u) => byUser.get(u.id) === 'DELIVERED')).toBe(true);
    expect(others.slice(10, 32).every((u) => byUser.get(u.id) === 'SENT')).toBe(true);
  });

  it('costs the same number of queries for 5 messages as for 30', async () => {
    const { sender, a, b } = await trio();
    const countFor = async (messages: number) => {
      const c = await createChannel(s, sender.token, { memberIds: [a.id, b.id] });
      let last = 0;
      for (let i = 0; i < messages; i++) last = (await send(s, sender.token, c, `m${i}`)).seq;
      await delivered(a, c, last);
      await read(b, c, Math.floor(last / 2));
      const before = s.app.queryCount();
      const list = await statuses(sender, c);
      const used = s.app.queryCount() - before;
      expect(list).toHaveLength(messages);
      expect(list.every((m) => m.deliveryStatus!.recipients!.length === 2 && m.deliveryStatus!.deliveredCount >= 1)).toBe(true);
      return used;
    };
    expect(await countFor(30)).toBe(await countFor(5));
  });
});

describe('markChannelUnread', () => {
  it('moves the read marker back, keeps delivery, logs a ReadReceiptEvent and updates the unread counts live', async () => {
    const { sender, a, c } = await trio();
    const m1 = await send(s, sender.token, c, 'one');
    const m2 = await send(s, sender.token, c, 'two');
    const m3 = await send(s, sender.token, c, 'three');
    await read(a, c, m3.seq);
    expect((await channel(a, c)).unreadCount).toBe(0);

    const client = wsClient(s.url, a.token, { keepOpen: true });
    try {
      const stream = collect(client, VIEWER_EVENTS, {}, (d: DeliveryViewerEventsSubscription) => d.viewerEvents);
      await untilLive(stream, () => send(s, a.token, c, 'probe from a'));
      const top = await lastSeq(a, c);
      const after = () => stream.items.filter((i) => 'lastSeq' in i && i.lastSeq > top);

      expect(await unread(a, c, m2.seq)).toEqual({ lastReadSeq: m2.seq - 1, lastDeliveredSeq: m3.seq });
      const ch = await channel(a, c);
      expect(ch.unreadCount).toBe(2);
      expect(ch.membership).toEqual({ lastReadSeq: m2.seq - 1, lastDeliveredSeq: m3.seq });
      await until(stream, () => after().length >= 1);
      expect(after()[0]).toMatchObject({ __typename: 'ChannelActivityEvent', channelId: c, unreadCount: 2, lastSeq: top + 1 });

      // Back further, then read again: the counts follow both ways.
      await unread(a, c, m1.seq);
      expect((await channel(a, c)).unreadCount).toBe(3);
      await read(a, c, top + 2);
      expect((await channel(a, c)).unreadCount).toBe(0);
      await until(stream, () => after().length >= 3);
      expect(after().map((i) => ('unreadCount' in i ? i.unreadCount : null))).toEqual([2, 3, 0]);
    } finally {
      await client.dispose();
    }

    // The log says whose marker moved, from where to where.
    const events = await replay(sender, c, m3.seq + 1);
    expect(events.filter((e) => e.__typename === 'ReadReceiptEvent')).toEqual([
      expect.objectContaining({ userId: a.id, lastReadSeq: m2.seq - 1, previousReadSeq: m3.seq }),
      expect.objectContaining({ userId: a.id, lastReadSeq: m1.seq - 1, previousReadSeq: m2.seq - 1 }),
      expect.objectContaining({ userId: a.id, previousReadSeq: m1.seq - 1 }),
    ]);
  });

  it('turns the sender\u2019s READ back into DELIVERED', async () => {
    const { sender, a, b, c } = await trio();
    const m = await send(s, sender.token, c, 'read, then unread');
    await read(a, c, m.seq);
    await read(b, c, m.seq);
    expect((await statuses(sender, c))[0]!.deliveryStatus!.status).toBe('READ');
    await unread(b, c, m.seq);
    const [st] = await statuses(sender, c);
    expect(st!.deliveryStatus).toMatchObject({ status: 'DELIVERED', deliveredCount: 2, readCount: 1 });
    expect(recipientsOf(st!)).toContainEqual([b.id, 'DELIVERED']);
    // Unread again at the same place: nothing moves, nothing is logged.
    const before = await lastSeq(b, c);
    await unread(b, c, m.seq);
    expect(await lastSeq(b, c)).toBe(before);
  });

  it('refuses a seq outside 1..lastSeq and a channel the viewer is not in', async () => {
    const { org, sender, c } = await trio();
    await send(s, sender.token, c, 'only message');
    const top = await lastSeq(sender, c);
    expect(errorCode(await s.gql(UNREAD, { c, seq: 0 }, sender.token))).toBe('BAD_USER_INPUT');
    expect(errorCode(await s.gql(UNREAD, { c, seq: -3 }, sender.token))).toBe('BAD_USER_INPUT');
    expect(errorCode(await s.gql(UNREAD, { c, seq: top + 1 }, sender.token))).toBe('BAD_USER_INPUT');
    const notMember = await createUser(s, org);
    expect(errorCode(await s.gql(UNREAD, { c, seq: 1 }, notMember.token))).toBe('NOT_FOUND');
    expect(errorCode(await s.gql(DELIVERED, { c, seq: 1 }, notMember.token))).toBe('NOT_FOUND');
  });
});
