import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, uid, type TestServer } from './helpers/app.ts';
import {
  createChannel,
  createProject,
  createUser,
  errorCode,
  ok,
  registerOrg,
  send,
  type TestOrg,
  type TestUser,
} from './helpers/fixtures.ts';
import { collect, untilLive } from './helpers/subscription.ts';
import { wsClient, wsRequest } from './helpers/ws.ts';
import { graphql } from './generated/index.ts';
import { BROADCAST_MEMBER_LIMIT } from '../src/services/mentions.ts';

// @mentions (issue 11 §1): who is notified and who is not, live delivery,
// edits, @channel / @here, Message.mentions, the viewer's mentions and
// unread mention counts.

let s: TestServer;
beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s?.stop();
});

const rawId = (globalId: string) => Buffer.from(globalId, 'base64').toString('utf8').split(':')[1]!;

const SEND = graphql(`
  mutation MentionsSend($input: SendMessageInput!) {
    sendMessage(input: $input) {
      id
      seq
      body
      mentions {
        kind
        start
        end
        user {
          id
          username
        }
      }
    }
  }
`);
const EDIT = graphql(`
  mutation MentionsEdit($id: ID!, $body: String!) {
    editMessage(input: { id: $id, body: $body }) {
      id
      body
      mentions {
        kind
        start
        end
        user {
          id
        }
      }
    }
  }
`);
const DELETE = graphql(`
  mutation MentionsDelete($id: ID!, $hard: Boolean) {
    deleteMessage(input: { id: $id, hard: $hard }) {
      hard
    }
  }
`);
const NOTIFICATIONS = graphql(`
  query MentionsNotifications {
    notifications(first: 100) {
      edges {
        node {
          type
          messageId
          channelId
          actorId
          data
        }
      }
    }
  }
`);
const SET_LEVEL = graphql(`
  mutation MentionsSetLevel($c: ID!, $level: NotificationLevel!) {
    setChannelNotificationLevel(channelId: $c, level: $level) {
      id
      notificationLevel
    }
  }
`);
const MUTE = graphql(`
  mutation MentionsMute($c: ID!) {
    muteChannel(channelId: $c) {
      muted
    }
  }
`);
const MINE = graphql(`
  query MentionsMine($first: Int, $after: String, $last: Int, $before: String, $unreadOnly: Boolean) {
    mentions(first: $first, after: $after, last: $last, before: $before, unreadOnly: $unreadOnly) {
      edges {
        cursor
        node {
          id
          body
          channel {
            id
          }
          sender {
            id
          }
          mentions {
            kind
            user {
              id
            }
          }
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);
const COUNTS = graphql(`
  query MentionsCounts {
    channels(first: 50) {
      edges {
        node {
          id
          unreadCount
          unreadMentionCount
          membership {
            notificationLevel
          }
        }
      }
    }
  }
`);
const MARK_READ = graphql(`
  mutation MentionsMarkRead($c: ID!, $seq: Int!) {
    markChannelRead(channelId: $c, seq: $seq) {
      lastReadSeq
    }
  }
`);
const LEAVE = graphql(`
  mutation MentionsLeave($c: ID!) {
    leaveChannel(channelId: $c)
  }
`);
const PAGE = graphql(`
  query MentionsPage($c: ID!, $first: Int!) {
    channel(id: $c) {
      messages(first: $first) {
        edges {
          node {
            id
            mentions {
              kind
              start
              end
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
`);
const CREATE_USER = graphql(`
  mutation MentionsCreateUser($input: CreateUserInput!) {
    createUser(input: $input) {
      id
    }
  }
`);
const REGISTER = graphql(`
  mutation MentionsRegister($input: RegisterOrganizationInput!) {
    registerOrganization(input: $input) {
      token
    }
  }
`);
const VIEWER_EVENTS = graphql(`
  subscription MentionsViewerEvents {
    viewerEvents {
      __typename
      ... on NotificationEvent {
        notification {
          type
          messageId
          channelId
          actorId
          data
        }
      }
    }
  }
`);
const CHANNEL_EVENTS = graphql(`
  subscription MentionsChannelEvents($c: ID!, $after: Int) {
    channelEvents(channelId: $c, after: $after) {
      __typename
      seq
      ... on MessageAddedEvent {
        message {
          body
          mentions {
            kind
            start
            end
            user {
              id
            }
          }
        }
      }
      ... on MessageEditedEvent {
        message {
          body
          mentions {
            kind
            start
            end
            user {
              id
            }
          }
        }
      }
    }
  }
`);
const PING = graphql(`
  query MentionsPing {
    viewer {
      id
    }
  }
`);

async function sendAs(user: TestUser, channelId: string, body: string, clientMessageId?: string) {
  return ok(await s.gql(SEND, { input: { channelId, body, clientMessageId } }, user.token)).sendMessage;
}

/** The notifications a user has about one message. */
async function notificationsAbout(user: TestUser, messageId: string) {
  const data = ok(await s.gql(NOTIFICATIONS, {}, user.token));
  return data.notifications.edges
    .map((e) => ({ ...e.node, data: e.node.data as Record<string, unknown> }))
    .filter((n) => n.messageId === messageId);
}

async function mine(user: TestUser, vars: { first?: number; after?: string; last?: number; before?: string; unreadOnly?: boolean } = {}) {
  return ok(await s.gql(MINE, vars.last === undefined ? { first: 50, ...vars } : vars, user.token)).mentions;
}

async function countsOf(user: TestUser) {
  const data = ok(await s.gql(COUNTS, {}, user.token));
  return new Map(data.channels.edges.map((e) => [e.node.id, e.node]));
}

describe('who a mention notifies', () => {
  let org: TestOrg;
  let author: TestUser;
  let alice: TestUser;
  let muted: TestUser;
  let silent: TestUser;
  let everything: TestUser;
  let outsider: TestUser;
  let client: TestUser;
  let channelId: string;

  beforeAll(async () => {
    org = await registerOrg(s);
    [author, alice, muted, silent, everything, outsider, client] = await Promise.all([
      createUser(s, org, 'MEMBER', `author-${uid()}`),
      createUser(s, org, 'MEMBER', `alice-${uid()}`),
      createUser(s, org, 'MEMBER', `muted-${uid()}`),
      createUser(s, org, 'MEMBER', `silent-${uid()}`),
      createUser(s, org, 'MEMBER', `all-${uid()}`),
      createUser(s, org, 'MEMBER', `outsider-${uid()}`),
      createUser(s, org, 'CLIENT', `client-${uid()}`),
    ]);
    const projectId = await createProject(s, org.owner.token);
    channelId = await createChannel(s, org.owner.token, {
      kind: 'PROJECT',
      projectId,
      memberIds: [author.id, alice.id, muted.id, silent.id, everything.id],
    });
    // A client's membership without a grant on the project, as a revocation in flight leaves it: they may not read.
    await s.app.services.prisma.channelMember.create({ data: { channelId: rawId(channelId), userId: rawId(client.id) } });
    ok(await s.gql(MUTE, { c: channelId }, muted.token));
    ok(await s.gql(SET_LEVEL, { c: channelId, level: 'NONE' }, silent.token));
    const all = ok(await s.gql(SET_LEVEL, { c: channelId, level: 'ALL' }, everything.token));
    expect(all.setChannelNotificationLevel.notificationLevel).toBe('ALL');
  });

  it('notifies the mentioned member, never the author, nor the muted, level NONE, non-members, clients without a grant or unknown names', async () => {
    const body =
      `Hey @${alice.username} and @${author.username}, @${muted.username} @${silent.username} ` +
      `@${outsider.username} @${client.username} @nobody-${uid()} mail ${alice.username}@example.com ` +
      `\`@${everything.username}\` please review @task#45`;
    const message = await sendAs(author, channelId, body);

    const aliceGot = await notificationsAbout(alice, message.id);
    expect(aliceGot).toEqual([
      {
        type: 'MENTION',
        messageId: message.id,
        channelId,
        actorId: author.id,
        data: expect.objectContaining({ channelName: expect.any(String), actorName: author.username, mention: 'USER' }),
      },
    ]);
    expect(aliceGot[0]!.data.excerpt).toContain(`Hey @${alice.username}`);
    for (const user of [author, muted, silent, outsider, client]) expect(await notificationsAbout(user, message.id)).toEqual([]);
    // Level ALL: told about every message, here a MESSAGE (its name sits in a code span, which mentions nobody).
    expect((await notificationsAbout(everything, message.id)).map((n) => n.type)).toEqual(['MESSAGE']);

    // Mentions listed: the readers by name (the author too, as written); not the others, not the code span nor the e-mail address.
    const listed = message.mentions.map((m) => [m.kind, m.user?.username, body.slice(m.start, m.end)]);
    expect(listed).toEqual([
      ['USER', alice.username, `@${alice.username}`],
      ['USER', author.username, `@${author.username}`],
      ['USER', muted.username, `@${muted.username}`],
      ['USER', silent.username, `@${silent.username}`],
    ]);
    // Links are stored as written, for the link resolver.
    const links = await s.app.services.prisma.messageLink.findMany({ where: { messageId: rawId(message.id) } });
    expect(links.map((l) => [l.typeKey, l.externalId, l.ranges])).toEqual([
      ['task', '45', [[body.indexOf('@task#45'), body.indexOf('@task#45') + 8]]],
    ]);
  });

  it('answers the same for an unknown name and a user who may not read the channel (nothing leaks)', async () => {
    const unknown = await sendAs(author, channelId, `ping @ghost-${uid()}`);
    const hidden = await sendAs(author, channelId, `ping @${outsider.username}`);
    expect(unknown.mentions).toEqual([]);
    expect(hidden.mentions).toEqual([]);
    expect(await notificationsAbout(outsider, hidden.id)).toEqual([]);
    // Neither an e-mail address nor a code span mentions anyone.
    const quoted = await sendAs(
      author,
      channelId,
      `mail ops@${alice.username} or run \`@${alice.username}\` and \`\`\`\n@${alice.username}\n\`\`\``,
    );
    expect(quoted.mentions).toEqual([]);
    expect(await notificationsAbout(alice, quoted.id)).toEqual([]);
  });

  it('level ALL hears every message from others, MENTIONS (the default) only mentions; muting and NONE silence both', async () => {
    const plain = await sendAs(author, channelId, 'no mentions here');
    expect((await notificationsAbout(everything, plain.id)).map((n) => n.type)).toEqual(['MESSAGE']);
    for (const user of [alice, muted, silent, author]) expect(await notificationsAbout(user, plain.id)).toEqual([]);
    const mention = await sendAs(author, channelId, `@${everything.username} look`);
    expect((await notificationsAbout(everything, mention.id)).map((n) => n.type)).toEqual(['MENTION']);
    // Their own messages tell them nothing.
    const own = await sendAs(everything, channelId, 'my own message');
    expect(await notificationsAbout(everything, own.id)).toEqual([]);
  });

  it('delivers the notification live on the mentioned user\u2019s viewerEvents', async () => {
    const client = wsClient(s.url, alice.token, { keepOpen: true });
    try {
      const events = collect(client, VIEWER_EVENTS, {}, (d) => d.viewerEvents);
      await untilLive(events, () => sendAs(author, channelId, 'probe'));
      const message = await sendAs(author, channelId, `@${alice.username} live`);
      const deadline = Date.now() + 5000;
      const live = () => events.items.filter((e) => e.__typename === 'NotificationEvent');
      while (!live().some((e) => e.__typename === 'NotificationEvent' && e.notification.messageId === message.id)) {
        if (Date.now() > deadline) throw new Error(`no NotificationEvent: ${JSON.stringify(events.items)}`);
        await new Promise((r) => setTimeout(r, 25));
      }
      const event = live().find((e) => e.__typename === 'NotificationEvent' && e.notification.messageId === message.id);
      expect(event).toEqual({
        __typename: 'NotificationEvent',
        notification: {
          type: 'MENTION',
          messageId: message.id,
          channelId,
          actorId: author.id,
          data: expect.objectContaining({ excerpt: `@${alice.username} live`, mention: 'USER' }),
        },
      });
    } finally {
      await client.dispose();
    }
  });

  it('an edit that adds a mention notifies once; removing it does not, and adding it back does not again', async () => {
    const message = await sendAs(author, channelId, 'draft');
    const added = ok(await s.gql(EDIT, { id: message.id, body: `draft for @${alice.username}` }, author.token)).editMessage;
    expect(added.mentions).toEqual([{ kind: 'USER', start: 10, end: 11 + alice.username.length, user: { id: alice.id } }]);
    expect(await notificationsAbout(alice, message.id)).toHaveLength(1);
    // Editing again while still mentioning her: no second notification.
    ok(await s.gql(EDIT, { id: message.id, body: `final draft for @${alice.username}` }, author.token));
    expect(await notificationsAbout(alice, message.id)).toHaveLength(1);

    const removed = ok(await s.gql(EDIT, { id: message.id, body: 'draft for nobody' }, author.token)).editMessage;
    expect(removed.mentions).toEqual([]);
    expect(await s.app.services.prisma.messageMention.count({ where: { messageId: rawId(message.id) } })).toBe(0);
    expect((await mine(alice)).edges.map((e) => e.node.id)).not.toContain(message.id);

    ok(await s.gql(EDIT, { id: message.id, body: `back to @${alice.username}` }, author.token));
    expect(await notificationsAbout(alice, message.id)).toHaveLength(1);
    expect((await mine(alice)).edges.map((e) => e.node.id)).toContain(message.id);
  });

  it('Message.mentions in replayed and live channelEvents follow each version\u2019s own body', async () => {
    const channelId = await createChannel(s, org.owner.token, { memberIds: [author.id, alice.id] });
    const message = await sendAs(author, channelId, `hi @${alice.username}`);
    ok(await s.gql(EDIT, { id: message.id, body: `well, hello there @${alice.username}` }, author.token));
    const socket = wsClient(s.url, alice.token, { keepOpen: true });
    try {
      const events = collect(socket, CHANNEL_EVENTS, { c: channelId, after: 0 }, (d) => d.channelEvents);
      const mentionsOf = (e: (typeof events.items)[number]) => ('message' in e ? e.message?.mentions : undefined);
      const messages = () => events.items.map(mentionsOf).filter((m) => m !== undefined);
      const until = async (n: number) => {
        for (const deadline = Date.now() + 5000; messages().length < n; await new Promise((r) => setTimeout(r, 20))) {
          if (Date.now() > deadline) throw new Error(`only ${JSON.stringify(events.items)} ${JSON.stringify(events.errors)}`);
        }
      };
      await until(2); // the replay: sent, then edited
      await sendAs(author, channelId, `live @${alice.username} @channel`);
      await until(3);
      const at = alice.username.length + 1;
      expect(messages()).toEqual([
        [{ kind: 'USER', start: 3, end: 3 + at, user: { id: alice.id } }],
        [{ kind: 'USER', start: 18, end: 18 + at, user: { id: alice.id } }],
        [
          { kind: 'USER', start: 5, end: 5 + at, user: { id: alice.id } },
          { kind: 'CHANNEL', start: 6 + at, end: 14 + at, user: null },
        ],
      ]);
    } finally {
      await socket.dispose();
    }
  });

  it('a retried send with the same clientMessageId notifies once', async () => {
    const key = `retry-${uid()}`;
    const first = await sendAs(author, channelId, `@${alice.username} once`, key);
    const again = await sendAs(author, channelId, `@${alice.username} once`, key);
    expect(again.id).toBe(first.id);
    expect(await notificationsAbout(alice, first.id)).toHaveLength(1);
  });

  it('a deleted message\u2019s mentions are gone for non-admins, and its notifications lose the excerpt', async () => {
    const message = await sendAs(author, channelId, `@${alice.username} secret plan`);
    ok(await s.gql(DELETE, { id: message.id }, author.token));
    const page = ok(await s.gql(PAGE, { c: channelId, first: 100 }, alice.token)).channel.messages.edges.map((e) => e.node);
    expect(page.find((m) => m.id === message.id)!.mentions).toEqual([]);
    const [notification] = await notificationsAbout(alice, message.id);
    expect(notification!.data.excerpt).toBeNull();
    expect((await mine(alice)).edges.map((e) => e.node.id)).not.toContain(message.id);
  });
});

describe('@channel and @here', () => {
  it('reach every member (respecting levels and mute), refused to plain members above the size limit, fine for channel admins', async () => {
    const org = await registerOrg(s);
    const [member, admin, a, b] = await Promise.all([
      createUser(s, org, 'MEMBER'),
      createUser(s, org, 'MEMBER'),
      createUser(s, org, 'MEMBER'),
      createUser(s, org, 'MEMBER'),
    ]);
    const small = await createChannel(s, org.owner.token, { memberIds: [member.id, a.id, b.id] });
    ok(await s.gql(SET_LEVEL, { c: small, level: 'NONE' }, b.token));
    const everyone = await sendAs(member, small, 'heads up @channel');
    expect(everyone.mentions).toEqual([{ kind: 'CHANNEL', start: 9, end: 17, user: null }]);
    expect((await notificationsAbout(a, everyone.id)).map((n) => [n.type, n.data.mention])).toEqual([['MENTION', 'CHANNEL']]);
    expect((await notificationsAbout(org.owner, everyone.id)).map((n) => n.type)).toEqual(['MENTION']);
    expect(await notificationsAbout(b, everyone.id)).toEqual([]);
    expect(await notificationsAbout(member, everyone.id)).toEqual([]);

    // A big channel: more members than the limit, added directly.
    const big = await createChannel(s, org.owner.token, { memberIds: [member.id, a.id] });
    const prisma = s.app.services.prisma;
    const orgId = (await prisma.user.findUniqueOrThrow({ where: { id: rawId(member.id) } })).organizationId;
    const extra = Array.from({ length: BROADCAST_MEMBER_LIMIT }, () => randomUUID());
    await prisma.user.createMany({
      data: extra.map((id) => ({
        id,
        organizationId: orgId,
        role: 'MEMBER' as const,
        username: `x-${id}`,
        displayName: 'x',
        passwordHash: 'x',
      })),
    });
    await prisma.channelMember.createMany({ data: extra.map((userId) => ({ channelId: rawId(big), userId })) });
    await prisma.channelMember.create({ data: { channelId: rawId(big), userId: rawId(admin.id), role: 'ADMIN' } });

    for (const body of ['@channel everyone', '@here anyone', '@everyone', '@all']) {
      const refused = await s.gql(SEND, { input: { channelId: big, body } }, member.token);
      expect(errorCode(refused), body).toBe('FORBIDDEN');
      expect(refused.errors![0]!.message).toMatch(/owners and admins/);
    }
    // Plain mentions stay fine for anyone; an edit may not add a broadcast either.
    const plain = await sendAs(member, big, `@${a.username} hi`);
    expect(errorCode(await s.gql(EDIT, { id: plain.id, body: `@${a.username} hi @channel` }, member.token))).toBe('FORBIDDEN');
    // The channel's admin and the organization's staff may.
    const byAdmin = await sendAs(admin, big, '@channel meeting at 3');
    expect(await prisma.messageMention.count({ where: { messageId: rawId(byAdmin.id) } })).toBe(BROADCAST_MEMBER_LIMIT + 3);
    expect((await notificationsAbout(a, byAdmin.id)).map((n) => n.type)).toEqual(['MENTION']);
    expect((await sendAs(org.owner, big, '@here anyone?')).mentions).toEqual([{ kind: 'HERE', start: 0, end: 5, user: null }]);
    // A channel of someone else is NOT_FOUND, not a word about broadcasts.
    const outsider = await createUser(s, org, 'MEMBER');
    expect(errorCode(await s.gql(SEND, { input: { channelId: big, body: '@channel' } }, outsider.token))).toBe('NOT_FOUND');
  });

  it('@here reaches only the members online now (an open graphql-ws socket)', async () => {
    const org = await registerOrg(s);
    const [author, online, offline] = await Promise.all([createUser(s, org), createUser(s, org), createUser(s, org)]);
    const channelId = await createChannel(s, org.owner.token, { memberIds: [author.id, online.id, offline.id] });
    const socket = wsClient(s.url, online.token, { keepOpen: true });
    try {
      ok(await wsRequest(socket, PING, {}));
      const message = await sendAs(author, channelId, 'anyone @here?');
      expect(message.mentions).toEqual([{ kind: 'HERE', start: 7, end: 12, user: null }]);
      expect((await notificationsAbout(online, message.id)).map((n) => [n.type, n.data.mention])).toEqual([['MENTION', 'HERE']]);
      expect(await notificationsAbout(offline, message.id)).toEqual([]);
      expect((await mine(online)).edges.map((e) => e.node.id)).toContain(message.id);
      expect((await mine(offline)).edges.map((e) => e.node.id)).not.toContain(message.id);
    } finally {
      await socket.dispose();
    }
  });

  it('reserves the broadcast words as usernames', async () => {
    const org = await registerOrg(s);
    for (const username of ['channel', 'Here', 'all', 'everyone']) {
      const created = await s.gql(
        CREATE_USER,
        { input: { username, displayName: 'x', role: 'MEMBER', password: 'password123' } },
        org.owner.token,
      );
      expect(errorCode(created), username).toBe('BAD_USER_INPUT');
      expect(created.errors![0]!.extensions!.field).toBe('username');
    }
    const registered = await s.gql(REGISTER, {
      input: { name: 'x', slug: `org-${uid()}`, username: 'everyone', displayName: 'x', password: 'password123' },
    });
    expect(errorCode(registered)).toBe('BAD_USER_INPUT');
  });
});

describe('my mentions and unread mention counts', () => {
  it('lists messages mentioning the viewer newest first, paged, unreadOnly past the read marker, gone after leaving', async () => {
    const org = await registerOrg(s);
    const [me, other] = await Promise.all([createUser(s, org), createUser(s, org)]);
    const first = await createChannel(s, org.owner.token, { memberIds: [me.id, other.id] });
    const second = await createChannel(s, org.owner.token, { memberIds: [me.id, other.id] });
    const m1 = await sendAs(other, first, `@${me.username} one`);
    await sendAs(other, first, 'not me');
    const m2 = await sendAs(other, second, `two @${me.username}`);
    const m3 = await sendAs(other, first, `three @channel`);
    await sendAs(me, first, `talking to myself @${me.username}`);
    const gone = await sendAs(other, second, `deleted @${me.username}`);
    ok(await s.gql(DELETE, { id: gone.id }, other.token));

    const all = await mine(me);
    expect(all.edges.map((e) => e.node.id)).toEqual([m3.id, m2.id, m1.id]);
    // Keyset pages.
    const page1 = await mine(me, { first: 2 });
    expect(page1.edges.map((e) => e.node.id)).toEqual([m3.id, m2.id]);
    expect(page1.pageInfo.hasNextPage).toBe(true);
    const page2 = await mine(me, { first: 2, after: page1.pageInfo.endCursor! });
    expect(page2.edges.map((e) => e.node.id)).toEqual([m1.id]);
    expect(page2.pageInfo.hasNextPage).toBe(false);
    // And backwards from the oldest.
    const back = await mine(me, { last: 1, before: page2.edges[0]!.cursor });
    expect(back.edges.map((e) => e.node.id)).toEqual([m2.id]);

    let counts = await countsOf(me);
    expect(counts.get(first)!.unreadMentionCount).toBe(2);
    expect(counts.get(second)!.unreadMentionCount).toBe(1);
    expect(counts.get(first)!.membership!.notificationLevel).toBe('MENTIONS');

    ok(await s.gql(MARK_READ, { c: first, seq: m1.seq }, me.token));
    expect((await mine(me, { unreadOnly: true })).edges.map((e) => e.node.id)).toEqual([m3.id, m2.id]);
    counts = await countsOf(me);
    expect(counts.get(first)!.unreadMentionCount).toBe(1);

    ok(await s.gql(LEAVE, { c: second }, me.token));
    expect((await mine(me)).edges.map((e) => e.node.id)).toEqual([m3.id, m1.id]);
    expect((await mine(me, { unreadOnly: true })).edges.map((e) => e.node.id)).toEqual([m3.id]);
  });

  it('setChannelNotificationLevel needs a channel the viewer reads', async () => {
    const org = await registerOrg(s);
    const [me, other] = await Promise.all([createUser(s, org), createUser(s, org)]);
    const theirs = await createChannel(s, other.token, { memberIds: [] });
    expect(errorCode(await s.gql(SET_LEVEL, { c: theirs, level: 'ALL' }, me.token))).toBe('NOT_FOUND');
    expect(errorCode(await s.gql(SET_LEVEL, { c: theirs, level: 'ALL' }, other.token))).toBeUndefined();
  });

  it('costs the same number of queries for Message.mentions on 5 messages as on 30', async () => {
    const org = await registerOrg(s);
    const [a, b] = await Promise.all([createUser(s, org), createUser(s, org)]);
    const channelId = await createChannel(s, org.owner.token, { memberIds: [a.id, b.id] });
    for (let i = 0; i < 30; i++) await send(s, org.owner.token, channelId, `#${i} @${a.username} and @${b.username} @here`);
    const cost = async (first: number) => {
      const before = s.app.queryCount();
      const page = ok(await s.gql(PAGE, { c: channelId, first }, a.token)).channel.messages.edges;
      expect(page).toHaveLength(first);
      for (const { node } of page) {
        expect(node.mentions.map((m) => [m.kind, m.user?.username ?? null])).toEqual([
          ['USER', a.username],
          ['USER', b.username],
          ['HERE', null],
        ]);
      }
      return s.app.queryCount() - before;
    };
    await cost(1); // the viewer lookup is cached from here on
    expect(await cost(5)).toBe(await cost(30));
    // The viewer's mentions, with their channel, sender and mentions: no query per row either.
    const mineCost = async (first: number) => {
      const before = s.app.queryCount();
      expect((await mine(a, { first })).edges).toHaveLength(first);
      return s.app.queryCount() - before;
    };
    expect(await mineCost(5)).toBe(await mineCost(25));
  });
});
