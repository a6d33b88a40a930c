import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers/app.ts';
import { createChannel, createUser, ok, registerOrg, send } from './helpers/fixtures.ts';
import { collect, untilLive } from './helpers/subscription.ts';
import { wsClient } from './helpers/ws.ts';
import { graphql } from './generated/index.ts';

// Unread counts have two homes: the SQL count a query answers
// (Channel.unreadCount) and the count viewerEvents keeps from the events it
// sees, without a query per event. After every kind of change they must agree.

let s: TestServer;
beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s?.stop();
});

const VIEWER_EVENTS = graphql(`
  subscription UnreadAgreementViewerEvents {
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
type Activity = { __typename: string; channelId?: string; lastSeq?: number; unreadCount?: number };

describe('unread counts', () => {
  it('kept live from events equal the SQL count after every kind of change', async () => {
    const org = await registerOrg(s);
    const viewer = await createUser(s, org, 'MEMBER');
    const other = await createUser(s, org, 'MEMBER');
    const owner = org.owner.token;
    const channelId = await createChannel(s, owner, { memberIds: [viewer.id] });
    const client = wsClient(s.url, viewer.token, { keepOpen: true });
    const stream = collect(client, VIEWER_EVENTS, {}, (d) => d.viewerEvents as Activity);
    try {
      await untilLive(stream, () => send(s, owner, channelId, 'probe'));
      const state = async () =>
        ok(
          await s.gql(
            graphql(`
              query UnreadAgreementChannel($c: ID!) {
                channel(id: $c) {
                  lastSeq
                  unreadCount
                }
              }
            `),
            { c: channelId },
            viewer.token,
          ),
        ).channel as { lastSeq: number; unreadCount: number };
      /** The live count once the stream has seen the channel's last seq, beside the SQL count. */
      const agree = async (step: string) => {
        const sql = await state();
        const deadline = Date.now() + 5000;
        let live: Activity | undefined;
        while (Date.now() < deadline) {
          live = stream.items.findLast((i) => i.__typename === 'ChannelActivityEvent' && i.channelId === channelId);
          if (live && live.lastSeq! >= sql.lastSeq) break;
          await new Promise((r) => setTimeout(r, 20));
        }
        expect({ step, live: live?.unreadCount, lastSeq: live?.lastSeq }).toEqual({ step, live: sql.unreadCount, lastSeq: sql.lastSeq });
        return sql.unreadCount;
      };
      const edit = async (id: string, body: string) =>
        ok(
          await s.gql(
            graphql(`
              mutation UnreadAgreementEditMessage($i: EditMessageInput!) {
                editMessage(input: $i) {
                  id
                }
              }
            `),
            { i: { id, body } },
            owner,
          ),
        );
      const remove = async (id: string, hard: boolean, token = owner) =>
        ok(
          await s.gql(
            graphql(`
              mutation UnreadAgreementDeleteMessage($i: DeleteMessageInput!) {
                deleteMessage(input: $i) {
                  messageId
                }
              }
            `),
            { i: { id, hard } },
            token,
          ),
        );
      const read = async (seq: number) =>
        ok(
          await s.gql(
            graphql(`
              mutation UnreadAgreementMarkChannelRead($c: ID!, $s: Int!) {
                markChannelRead(channelId: $c, seq: $s) {
                  lastReadSeq
                }
              }
            `),
            { c: channelId, s: seq },
            viewer.token,
          ),
        );

      await read((await state()).lastSeq);
      expect(await agree('read to the end')).toBe(0);

      const a = await send(s, owner, channelId, 'a');
      const b = await send(s, owner, channelId, 'b');
      expect(await agree('two from others')).toBe(2);
      const mine = await send(s, viewer.token, channelId, 'mine');
      expect(await agree('one of the viewer\u2019s own')).toBe(2);
      await send(s, owner, channelId, 'reply to a', { parentId: a.id });
      expect(await agree('a reply')).toBe(3);

      await edit(b.id, 'b, edited');
      await remove(b.id, false);
      expect(await agree('an unread message edited, then soft-deleted')).toBe(2);
      await remove(b.id, true);
      expect(await agree('the soft-deleted message hard-deleted')).toBe(2);
      await remove(a.id, true);
      expect(await agree('an unread parent hard-deleted, its reply kept')).toBe(1);
      await remove(mine.id, false, viewer.token);
      expect(await agree('the viewer\u2019s own message deleted')).toBe(1);

      await read((await state()).lastSeq);
      expect(await agree('read to the end again')).toBe(0);
      const c = await send(s, owner, channelId, 'c');
      await read(c.seq);
      await remove(c.id, false);
      expect(await agree('a read message deleted')).toBe(0);

      ok(
        await s.gql(
          graphql(`
            mutation UnreadAgreementAddChannelMembers($c: ID!, $u: [ID!]!) {
              addChannelMembers(channelId: $c, userIds: $u) {
                id
              }
            }
          `),
          { c: channelId, u: [other.id] },
          owner,
        ),
      );
      await send(s, other.token, channelId, 'from a newcomer');
      expect(await agree('a member added, who writes')).toBe(1);
      ok(
        await s.gql(
          graphql(`
            mutation UnreadAgreementRemoveChannelMember($c: ID!, $u: ID!) {
              removeChannelMember(channelId: $c, userId: $u) {
                id
              }
            }
          `),
          { c: channelId, u: other.id },
          owner,
        ),
      );
      await send(s, owner, channelId, 'after the removal');
      expect(await agree('a member removed')).toBe(2);
      await read(c.seq);
      expect(await agree('the marker moved back is refused: it only moves forward')).toBe(2);
    } finally {
      await client.dispose();
    }
  });
});
