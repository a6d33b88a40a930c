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
import type { ReactionsEventsSubscription } from './generated/graphql.ts';

let s: TestServer;
beforeAll(async () => {
  // The viewer cache outlives the file, so a query-count test never meets a token whose entry just expired.
  s = await startServer({ viewerCacheMs: 600_000 });
});
afterAll(async () => {
  await s?.stop();
});

const ADD = graphql(`
  mutation ReactionsAdd($m: ID!, $e: String!) {
    addReaction(messageId: $m, emoji: $e) {
      id
      reactions {
        emoji
        count
        reactedByViewer
      }
    }
  }
`);
const REMOVE = graphql(`
  mutation ReactionsRemove($m: ID!, $e: String!) {
    removeReaction(messageId: $m, emoji: $e) {
      id
      reactions {
        emoji
        count
        reactedByViewer
      }
    }
  }
`);
const PAGE = graphql(`
  query ReactionsPage($c: ID!, $users: Int) {
    channel(id: $c) {
      lastSeq
      messages(first: 50) {
        edges {
          node {
            id
            reactions {
              emoji
              count
              reactedByViewer
              users(first: $users) {
                id
                username
              }
            }
          }
        }
      }
    }
  }
`);
const EVENTS = graphql(`
  subscription ReactionsEvents($c: ID!, $after: Int) {
    channelEvents(channelId: $c, after: $after) {
      __typename
      seq
      actorId
      ... on ReactionChangedEvent {
        messageId
        messageSeq
        emoji
        userId
        added
        count
      }
      ... on MessageAddedEvent {
        message {
          id
          reactions {
            emoji
            count
          }
        }
      }
      ... on MessageDeletedEvent {
        messageId
        hard
      }
    }
  }
`);
const DELETE = graphql(`
  mutation ReactionsDelete($id: ID!, $hard: Boolean) {
    deleteMessage(input: { id: $id, hard: $hard }) {
      hard
    }
  }
`);
const ARCHIVE = graphql(`
  mutation ReactionsArchive($c: ID!) {
    archiveChannel(channelId: $c) {
      archived
    }
  }
`);
const ADD_MEMBERS = graphql(`
  mutation ReactionsAddMembers($c: ID!, $u: [ID!]!, $role: ChannelMemberRole) {
    addChannelMembers(channelId: $c, userIds: $u, role: $role) {
      id
    }
  }
`);

type Event = AnyOf<ReactionsEventsSubscription['channelEvents']>;

const add = (user: TestUser, messageId: string, emoji: string) => s.gql(ADD, { m: messageId, e: emoji }, user.token);
const remove = (user: TestUser, messageId: string, emoji: string) => s.gql(REMOVE, { m: messageId, e: emoji }, user.token);

async function page(user: TestUser, channelId: string, users?: number) {
  const data = ok(await s.gql(PAGE, { c: channelId, ...(users === undefined ? {} : { users }) }, user.token));
  return { lastSeq: data.channel.lastSeq, messages: data.channel.messages.edges.map((e) => e.node) };
}
const lastSeq = async (user: TestUser, channelId: string) => (await page(user, channelId)).lastSeq;

/** Every event logged after `after` up to `to`, read back with channelEvents(after:). */
async function replay(user: TestUser, channelId: string, after: number, to: number): Promise<Event[]> {
  const client = wsClient(s.url, user.token, { keepOpen: true });
  try {
    const stream = collect(client, EVENTS, { c: channelId, after }, (d) => d.channelEvents as Event);
    const events = await stream.waitFor(to - after);
    stream.unsubscribe();
    return events.slice(0, to - after);
  } finally {
    await client.dispose();
  }
}

interface World {
  org: TestOrg;
  a: TestUser;
  b: TestUser;
  c: TestUser;
  channelId: string;
  messageId: string;
}

async function world(): Promise<World> {
  const org = await registerOrg(s);
  const [a, b, c] = await Promise.all([createUser(s, org), createUser(s, org), createUser(s, org)]);
  const channelId = await createChannel(s, org.owner.token, { memberIds: [a.id, b.id, c.id] });
  const messageId = (await send(s, a.token, channelId, 'react to me')).id;
  return { org, a, b, c, channelId, messageId };
}

describe('reactions: what an emoji is', () => {
  it('takes one emoji grapheme or a known shortcode, stored as the fully-qualified emoji', async () => {
    const { a, b, c, org, channelId, messageId } = await world();
    // 👍, 👍 with a needless VS16, :thumbsup: and thumbsup are one reaction.
    ok(await add(a, messageId, '👍'));
    ok(await add(b, messageId, '👍\uFE0F'));
    ok(await add(c, messageId, ':thumbsup:'));
    ok(await add(org.owner, messageId, 'thumbsup'));
    // ❤ without the VS16 it needs is ❤️; ZWJ sequences, skin tones, keycaps and flags are one grapheme each.
    ok(await add(a, messageId, '\u2764'));
    ok(await add(b, messageId, '\u2764\uFE0F'));
    for (const emoji of ['👩🏽‍💻', '🫱🏻‍🫲🏿', '🇩🇪', '1️⃣', '🏳️‍🌈']) ok(await add(c, messageId, emoji));
    ok(await add(org.owner, messageId, ':flag-de:'));

    const [m] = (await page(a, channelId)).messages;
    expect(m!.reactions.map((r) => [r.emoji, r.count])).toEqual([
      ['👍', 4],
      ['\u2764\uFE0F', 2],
      ['👩🏽‍💻', 1],
      ['🫱🏻‍🫲🏿', 1],
      ['🇩🇪', 2],
      ['1️⃣', 1],
      ['🏳️‍🌈', 1],
    ]);
    // Removing by another spelling removes the same reaction.
    ok(await remove(b, messageId, '❤'));
    ok(await remove(a, messageId, '+1'));
    const [after] = (await page(a, channelId)).messages;
    expect(after!.reactions.slice(0, 2).map((r) => [r.emoji, r.count])).toEqual([
      ['👍', 3],
      ['\u2764\uFE0F', 1],
    ]);
  });

  it('refuses text, several emoji, lone components and unknown shortcodes with BAD_USER_INPUT, changing nothing', async () => {
    const { a, channelId, messageId } = await world();
    const before = await lastSeq(a, channelId);
    for (const emoji of ['hello there', '👍👍', '👍🏽👍', '', '   ', '🏽', ':not_an_emoji:', 'x'.repeat(100), '👍 ok']) {
      const result = await add(a, messageId, emoji);
      expect(errorCode(result), emoji).toBe('BAD_USER_INPUT');
      expect(result.errors![0]!.extensions!.field).toBe('emoji');
      expect(errorCode(await remove(a, messageId, emoji)), emoji).toBe('BAD_USER_INPUT');
    }
    expect((await add(a, messageId, '👍👍')).errors![0]!.message).toMatch(/single emoji/);
    expect(await lastSeq(a, channelId)).toBe(before);
    expect((await page(a, channelId)).messages[0]!.reactions).toEqual([]);
  });
});

describe('reactions: changes', () => {
  it('is idempotent: a second add or remove changes nothing and logs nothing, and the log holds exactly the changes', async () => {
    const { a, b, channelId, messageId } = await world();
    const start = await lastSeq(a, channelId);
    const first = ok(await add(a, messageId, '🎉')).addReaction;
    const again = ok(await add(a, messageId, ':tada:')).addReaction;
    expect(first.reactions).toEqual([{ emoji: '🎉', count: 1, reactedByViewer: true }]);
    expect(again).toEqual(first);
    ok(await add(b, messageId, '🎉'));
    const removed = ok(await remove(a, messageId, '🎉')).removeReaction;
    expect(removed.reactions).toEqual([{ emoji: '🎉', count: 1, reactedByViewer: false }]);
    expect(ok(await remove(a, messageId, '🎉')).removeReaction).toEqual(removed);
    expect(ok(await remove(a, messageId, '👀')).removeReaction).toEqual(removed); // never added

    const end = await lastSeq(a, channelId);
    expect(end - start).toBe(3);
    const events = await replay(b, channelId, start, end);
    expectExactly(
      events.map((e) => e.seq),
      start + 1,
      end,
    );
    expect(events.map((e) => [e.__typename, e.userId, e.emoji, e.added, e.count])).toEqual([
      ['ReactionChangedEvent', a.id, '🎉', true, 1],
      ['ReactionChangedEvent', b.id, '🎉', true, 2],
      ['ReactionChangedEvent', a.id, '🎉', false, 1],
    ]);
    expect(events.every((e) => e.messageId === messageId && e.messageSeq === start && e.actorId === e.userId)).toBe(true);
  });

  it('bounds reactions per user and distinct emoji per message with CONFLICT', async () => {
    const { a, b, c, channelId, messageId } = await world();
    const emoji = ['😀', '😃', '😄', '😁', '😆', '😅', '🤣', '😂', '🙂', '🙃', '😉', '😊', '😇', '🥰', '😍', '🤩', '😘', '😗', '😚', '😙'];
    await Promise.all(emoji.slice(0, 10).map(async (e) => ok(await add(a, messageId, e))));
    const tooMany = await add(a, messageId, '🚀');
    expect(errorCode(tooMany)).toBe('CONFLICT');
    expect(tooMany.errors![0]!.message).toMatch(/at most 10 reactions/);
    await Promise.all(emoji.slice(10).map(async (e) => ok(await add(b, messageId, e))));
    // 20 different emoji: a new one is refused, an existing one still counts.
    const distinct = await add(c, messageId, '🚀');
    expect(errorCode(distinct)).toBe('CONFLICT');
    expect(distinct.errors![0]!.message).toMatch(/at most 20 different emoji/);
    // (The adds above ran concurrently, so the groups' order is the log's, not the list's.)
    const grinning = ok(await add(c, messageId, '😀')).addReaction.reactions.find((r) => r.emoji === '😀');
    expect(grinning).toEqual({ emoji: '😀', count: 2, reactedByViewer: true });
    // After a removal there is room again.
    ok(await remove(a, messageId, '😃'));
    ok(await add(c, messageId, '🚀'));
    const [m] = (await page(a, channelId)).messages;
    expect(m!.reactions).toHaveLength(20);
  });

  it('keeps counts right and seqs gap-free when many users add the same emoji at once', async () => {
    const org = await registerOrg(s);
    const users = await Promise.all(Array.from({ length: 8 }, () => createUser(s, org)));
    const channelId = await createChannel(s, org.owner.token, { memberIds: users.map((u) => u.id) });
    const messageId = (await send(s, org.owner.token, channelId, 'race')).id;
    const start = await lastSeq(org.owner, channelId);
    // Each user adds twice at once (the retry races the original).
    await Promise.all(users.flatMap((u) => [add(u, messageId, '🔥'), add(u, messageId, '🔥')]).map(async (r) => ok(await r)));
    const end = await lastSeq(org.owner, channelId);
    expect(end - start).toBe(users.length);
    const events = await replay(org.owner, channelId, start, end);
    expectExactly(
      events.map((e) => e.seq),
      start + 1,
      end,
    );
    // The count each event carries is the count at its place in the log.
    expect(events.map((e) => e.count)).toEqual(users.map((_, i) => i + 1));
    expect(new Set(events.map((e) => e.userId))).toEqual(new Set(users.map((u) => u.id)));
    const [m] = (await page(org.owner, channelId)).messages;
    expect(m!.reactions).toEqual([expect.objectContaining({ emoji: '🔥', count: users.length, reactedByViewer: false })]);

    // And all of them removing at once ends at zero, with no group left.
    await Promise.all(users.map(async (u) => ok(await remove(u, messageId, '🔥'))));
    const after = await replay(org.owner, channelId, end, end + users.length);
    expect(after.map((e) => e.count)).toEqual(users.map((_, i) => users.length - i - 1));
    expect((await page(org.owner, channelId)).messages[0]!.reactions).toEqual([]);
  });
});

describe('reactions: who may react', () => {
  it('members who may post; observers, archived channels and clients without a comment grant are FORBIDDEN; others NOT_FOUND', async () => {
    const { org, a, channelId, messageId } = await world();
    const [observer, outsider, client, staff] = await Promise.all([
      createUser(s, org),
      createUser(s, org),
      createUser(s, org, 'CLIENT'),
      createUser(s, org, 'STAFF'),
    ]);
    ok(await s.gql(ADD_MEMBERS, { c: channelId, u: [observer.id], role: 'OBSERVER' }, org.owner.token));
    expect(errorCode(await add(observer, messageId, '👍'))).toBe('FORBIDDEN');
    expect(errorCode(await remove(observer, messageId, '👍'))).toBe('FORBIDDEN');
    // Not a member: the message does not exist for them, whatever their role.
    expect(errorCode(await add(outsider, messageId, '👍'))).toBe('NOT_FOUND');
    expect(errorCode(await add(staff, messageId, '👍'))).toBe('NOT_FOUND');
    // A missing id is NOT_FOUND like a hidden one; a malformed one is refused as input.
    expect(errorCode(await add(a, Buffer.from('Message:01890000-0000-7000-8000-000000000000').toString('base64'), '👍'))).toBe('NOT_FOUND');
    expect(errorCode(await s.gql(ADD, { m: 'not-an-id', e: '👍' }, a.token))).toBe('BAD_USER_INPUT');

    // A client in a project channel: with a read-only grant they may read but not react.
    const project = await createProject(s, org.owner.token);
    await grantAccess(s, org.owner.token, project, client.id, 'CLIENT', false);
    const projectChannel = await createChannel(s, org.owner.token, { kind: 'PROJECT', projectId: project, memberIds: [client.id] });
    const projectMessage = (await send(s, org.owner.token, projectChannel, 'for the client')).id;
    expect(errorCode(await add(client, projectMessage, '👍'))).toBe('FORBIDDEN');
    await grantAccess(s, org.owner.token, project, client.id, 'CLIENT', true);
    ok(await add(client, projectMessage, '👍'));

    // Archived: read-only, for adds and removes.
    ok(await add(a, messageId, '👍'));
    ok(await s.gql(ARCHIVE, { c: channelId }, org.owner.token));
    expect(errorCode(await add(a, messageId, '👀'))).toBe('FORBIDDEN');
    expect(errorCode(await remove(a, messageId, '👍'))).toBe('FORBIDDEN');
  });

  it('a soft-deleted message takes no reaction changes but keeps its reactions; a hard delete removes them', async () => {
    const { org, a, b, channelId, messageId } = await world();
    ok(await add(b, messageId, '👍'));
    ok(await s.gql(DELETE, { id: messageId }, a.token));
    expect(errorCode(await add(b, messageId, '👀'))).toBe('CONFLICT');
    expect(errorCode(await remove(b, messageId, '👍'))).toBe('CONFLICT');
    expect((await page(org.owner, channelId)).messages[0]!.reactions).toEqual([
      expect.objectContaining({ emoji: '👍', count: 1, reactedByViewer: false }),
    ]);

    const other = (await send(s, a.token, channelId, 'gone soon')).id;
    ok(await add(b, other, '👍'));
    const before = await lastSeq(a, channelId);
    ok(await s.gql(DELETE, { id: other, hard: true }, org.owner.token));
    expect(errorCode(await add(b, other, '👍'))).toBe('NOT_FOUND');
    // The log still has the message's snapshot; its reactions are gone with the row.
    const events = await replay(b, channelId, before - 2, before + 1);
    const added = events.find((e) => e.__typename === 'MessageAddedEvent');
    expect(added?.message).toEqual({ id: other, reactions: [] });
    expect(events.at(-1)).toMatchObject({ __typename: 'MessageDeletedEvent', messageId: other, hard: true });
  });
});

describe('reactions: reading them', () => {
  it('groups by emoji in order of first reaction, with a few users and whether the viewer reacted', async () => {
    const { a, b, c, org, channelId, messageId } = await world();
    ok(await add(b, messageId, '👀'));
    ok(await add(a, messageId, '✅'));
    ok(await add(c, messageId, '👀'));
    ok(await add(org.owner, messageId, '👀'));
    ok(await add(a, messageId, '👀'));
    ok(await remove(b, messageId, '👀'));
    ok(await add(b, messageId, '👀')); // b is now the latest 👀

    const [asA] = (await page(a, channelId)).messages;
    // b's first 👀 was removed: the group now dates from c's, which came after a's ✅.
    expect(asA!.reactions.map((r) => [r.emoji, r.count, r.reactedByViewer])).toEqual([
      ['✅', 1, true],
      ['👀', 4, true],
    ]);
    // Three users by default, earliest first; `first` asks for more.
    expect(asA!.reactions[1]!.users.map((u) => u.id)).toEqual([c.id, org.owner.id, a.id]);
    const [more] = (await page(a, channelId, 10)).messages;
    expect(more!.reactions[1]!.users.map((u) => u.id)).toEqual([c.id, org.owner.id, a.id, b.id]);
    expect(more!.reactions[1]!.users[0]!.username).toBe(c.username);
    const [asC] = (await page(c, channelId)).messages;
    expect(asC!.reactions.map((r) => r.reactedByViewer)).toEqual([false, true]);
    expect(errorCode(await s.gql(PAGE, { c: channelId, users: 11 }, a.token))).toBe('BAD_USER_INPUT');
  });

  it('costs the same number of queries for 5 messages as for 30', async () => {
    const org = await registerOrg(s);
    const members = await Promise.all(Array.from({ length: 2 }, () => createUser(s, org)));
    const countFor = async (messages: number) => {
      const channelId = await createChannel(s, org.owner.token, { memberIds: members.map((m) => m.id) });
      const ids = (await Promise.all(Array.from({ length: messages }, (_, i) => send(s, org.owner.token, channelId, `m${i}`)))).map(
        (m) => m.id,
      );
      await Promise.all(ids.flatMap((id) => members.map(async (m, j) => ok(await add(m, id, j === 0 ? '👍' : '🎉')))));
      await page(members[0]!, channelId, 5); // settles what the concurrent adds left behind (hub catch-up, caches)
      const before = s.app.queryCount();
      const list = (await page(members[0]!, channelId, 5)).messages;
      const used = s.app.queryCount() - before;
      expect(list).toHaveLength(messages);
      const shapes = list.map((m) => m.reactions.map((r) => [r.emoji, r.count, r.reactedByViewer]).sort());
      expect(shapes).toEqual(
        list.map(() => [
          ['🎉', 1, false],
          ['👍', 1, true],
        ]),
      );
      return used;
    };
    expect(await countFor(30)).toBe(await countFor(5));
  });
});

describe('reactions: live', () => {
  it('streams ReactionChangedEvent to channelEvents subscribers, for changes made over HTTP and over graphql-ws', async () => {
    const { a, b, channelId, messageId } = await world();
    const start = await lastSeq(a, channelId);
    const watcher = wsClient(s.url, b.token, { keepOpen: true });
    const actor = wsClient(s.url, a.token, { keepOpen: true });
    try {
      const stream = collect(watcher, EVENTS, { c: channelId, after: start }, (d) => d.channelEvents as Event);
      ok(await add(a, messageId, '🙌'));
      const overWs = ok(await wsRequest(actor, ADD, { m: messageId, e: '🚀' })).addReaction;
      expect(overWs.reactions.map((r) => r.emoji)).toEqual(['🙌', '🚀']);
      ok(await wsRequest(actor, ADD, { m: messageId, e: 'rocket' })); // no change: no event
      ok(await wsRequest(actor, REMOVE, { m: messageId, e: '🙌' }));
      const events = await stream.waitFor(3);
      expect(events.map((e) => [e.__typename, e.seq, e.emoji, e.added, e.count, e.userId])).toEqual([
        ['ReactionChangedEvent', start + 1, '🙌', true, 1, a.id],
        ['ReactionChangedEvent', start + 2, '🚀', true, 1, a.id],
        ['ReactionChangedEvent', start + 3, '🙌', false, 0, a.id],
      ]);
      await send(s, a.token, channelId, 'after the reactions');
      const [, , , next] = await stream.waitFor(4);
      expect(next).toMatchObject({ __typename: 'MessageAddedEvent', seq: start + 4, message: { reactions: [] } });
      expect(stream.items).toHaveLength(4);
    } finally {
      await Promise.all([watcher.dispose(), actor.dispose()]);
    }
  });
});
