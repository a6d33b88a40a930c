import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers/app.ts';
import { createChannel, createUser, errorCode, ok, registerOrg, send, type TestUser } from './helpers/fixtures.ts';
import { collect } from './helpers/subscription.ts';
import { wsClient } from './helpers/ws.ts';
import { graphql } from './generated/index.ts';
import type { ReadReceiptsChannelQuery } from './generated/graphql.ts';

let s: TestServer;
beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s?.stop();
});

const MARK = graphql(`
  mutation ReadReceiptsMarkChannelRead($c: ID!, $seq: Int!) {
    markChannelRead(channelId: $c, seq: $seq) {
      lastReadSeq
    }
  }
`);
const RECEIPTS = graphql(`
  query ReadReceiptsChannel($c: ID!, $first: Int, $after: String, $messages: Int = 50) {
    channel(id: $c) {
      messages(first: $messages) {
        edges {
          node {
            id
            seq
            body
            readCount
            readBy(first: $first, after: $after) {
              edges {
                cursor
                node {
                  id
                  lastReadSeq
                  user {
                    id
                    displayName
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
      }
    }
  }
`);

type Receipts = ReadReceiptsChannelQuery['channel']['messages']['edges'][number]['node'];

async function receipts(token: string, channelId: string, page: { first?: number; after?: string } = {}): Promise<Receipts[]> {
  const data = ok(await s.gql(RECEIPTS, { c: channelId, ...page }, token));
  return data.channel.messages.edges.map((e) => e.node);
}

const markRead = async (user: TestUser, channelId: string, seq: number) => ok(await s.gql(MARK, { c: channelId, seq }, user.token));
const readers = (m: Receipts) => m.readBy.edges.map((e) => e.node.user.id).sort();

describe('read receipts', () => {
  it('lists per message who has read it, the sender excepted, with a count', async () => {
    const org = await registerOrg(s);
    const [a, b, c] = await Promise.all([createUser(s, org, 'MEMBER'), createUser(s, org, 'MEMBER'), createUser(s, org, 'MEMBER')]);
    const channelId = await createChannel(s, org.owner.token, { memberIds: [a.id, b.id, c.id] });
    const m1 = await send(s, org.owner.token, channelId, 'one');
    const m2 = await send(s, org.owner.token, channelId, 'two');
    const m3 = await send(s, a.token, channelId, 'three, from a');
    await markRead(a, channelId, m3.seq); // a read everything, but sent m3
    await markRead(b, channelId, m2.seq);
    await markRead(org.owner, channelId, m3.seq); // the owner sent m1 and m2
    // c read nothing.

    const [r1, r2, r3] = await receipts(c.token, channelId);
    expect([r1!.id, r2!.id, r3!.id]).toEqual([m1.id, m2.id, m3.id]);
    expect(readers(r1!)).toEqual([a.id, b.id].sort());
    expect(readers(r2!)).toEqual([a.id, b.id].sort());
    expect(readers(r3!)).toEqual([org.owner.id]);
    expect([r1!.readCount, r2!.readCount, r3!.readCount]).toEqual([2, 2, 1]);
    const bEdge = r1!.readBy.edges.find((e) => e.node.user.id === b.id)!;
    expect(bEdge.node.lastReadSeq).toBe(m2.seq);
    expect(bEdge.node.user.displayName).toBe(b.username);
  });

  it('pages readBy with first and after', async () => {
    const org = await registerOrg(s);
    const members = await Promise.all(Array.from({ length: 3 }, () => createUser(s, org, 'MEMBER')));
    const channelId = await createChannel(s, org.owner.token, { memberIds: members.map((m) => m.id) });
    const message = await send(s, org.owner.token, channelId, 'read by three');
    for (const member of members) await markRead(member, channelId, message.seq);

    const seen: string[] = [];
    let after: string | undefined;
    const pages: boolean[] = [];
    for (;;) {
      const [m] = await receipts(org.owner.token, channelId, { first: 2, ...(after ? { after } : {}) });
      seen.push(...m!.readBy.edges.map((e) => e.node.user.id));
      pages.push(m!.readBy.pageInfo.hasNextPage);
      if (!m!.readBy.pageInfo.hasNextPage) break;
      after = m!.readBy.pageInfo.endCursor!;
    }
    expect(pages).toEqual([true, false]);
    expect(seen.sort()).toEqual(members.map((m) => m.id).sort());

    expect(errorCode(await s.gql(RECEIPTS, { c: channelId, first: 2, after: 'not-a-cursor' }, org.owner.token))).toBe('BAD_USER_INPUT');
    // A message's id is not a cursor of this list.
    expect(errorCode(await s.gql(RECEIPTS, { c: channelId, first: 2, after: message.id }, org.owner.token))).toBe('BAD_USER_INPUT');
    expect(errorCode(await s.gql(RECEIPTS, { c: channelId, first: 101 }, org.owner.token))).toBe('BAD_USER_INPUT');
    expect(errorCode(await s.gql(RECEIPTS, { c: channelId, first: -1 }, org.owner.token))).toBe('BAD_USER_INPUT');
  });

  it('costs the same number of queries for 5 messages as for 30', async () => {
    const org = await registerOrg(s);
    const members = await Promise.all(Array.from({ length: 3 }, () => createUser(s, org, 'MEMBER')));
    const countFor = async (messages: number) => {
      const channelId = await createChannel(s, org.owner.token, { memberIds: members.map((m) => m.id) });
      let last = 0;
      for (let i = 0; i < messages; i++) last = (await send(s, org.owner.token, channelId, `m${i}`)).seq;
      await Promise.all(members.map((m) => markRead(m, channelId, last)));
      const before = s.app.queryCount();
      const list = await receipts(org.owner.token, channelId, { first: 10 });
      const used = s.app.queryCount() - before;
      expect(list).toHaveLength(messages);
      expect(list.every((m) => m.readCount === 3 && m.readBy.edges.length === 3)).toBe(true);
      return used;
    };
    expect(await countFor(30)).toBe(await countFor(5));
  });

  it('streams a read receipt to channelEvents subscribers, only when the marker passes a message', async () => {
    const org = await registerOrg(s);
    const member = await createUser(s, org, 'MEMBER');
    const channelId = await createChannel(s, org.owner.token, { memberIds: [member.id] });
    const message = await send(s, org.owner.token, channelId, 'please read');
    const after = ok(
      await s.gql(
        graphql(`
          query ReadReceiptsLastSeq($c: ID!) {
            channel(id: $c) {
              lastSeq
            }
          }
        `),
        { c: channelId },
        org.owner.token,
      ),
    ).channel.lastSeq;
    const client = wsClient(s.url, org.owner.token, { keepOpen: true });
    try {
      const stream = collect(
        client,
        graphql(`
          subscription ReadReceiptsChannelEvents($c: ID!, $after: Int) {
            channelEvents(channelId: $c, after: $after) {
              __typename
              seq
              ... on ReadReceiptEvent {
                userId
                lastReadSeq
              }
              ... on MessageAddedEvent {
                message {
                  body
                }
              }
            }
          }
        `),
        { c: channelId, after },
        (data) => data.channelEvents,
      );
      await markRead(member, channelId, message.seq);
      await markRead(member, channelId, message.seq); // no message passed: no receipt
      await send(s, org.owner.token, channelId, 'next');
      const events = await stream.waitFor(2);
      expect(events.map((e: { __typename: string }) => e.__typename)).toEqual(['ReadReceiptEvent', 'MessageAddedEvent']);
      expect(events[0]).toMatchObject({ userId: member.id, lastReadSeq: message.seq, seq: after + 1 });
    } finally {
      await client.dispose();
    }
  });
});
