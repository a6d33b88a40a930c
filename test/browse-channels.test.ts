import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, uid, type TestServer } from './helpers/app.ts';
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
import { rawId } from './helpers/messages.ts';
import { collect, untilLive, type AnyOf } from './helpers/subscription.ts';
import { wsClient } from './helpers/ws.ts';
import { graphql } from './generated/index.ts';
import type { BrowseChannelsEventsSubscription, CreateChannelInput, MessageFilter } from './generated/graphql.ts';

let s: TestServer;
beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s?.stop();
});

const BROWSE = graphql(`
  query BrowseChannelsBrowse($query: String, $first: Int, $after: String) {
    browseChannels(query: $query, first: $first, after: $after) {
      edges {
        cursor
        node {
          id
          name
          topic
          description
          memberCount
          project {
            id
          }
          membership {
            role
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

const CREATE = graphql(`
  mutation BrowseChannelsCreate($input: CreateChannelInput!) {
    createChannel(input: $input) {
      id
    }
  }
`);

const JOIN = graphql(`
  mutation BrowseChannelsJoin($c: ID!) {
    joinChannel(channelId: $c) {
      id
      lastSeq
      membership {
        role
      }
    }
  }
`);

const READ = graphql(`
  query BrowseChannelsRead($c: ID!) {
    channel(id: $c) {
      id
      lastSeq
    }
  }
`);

const ARCHIVE = graphql(`
  mutation BrowseChannelsArchive($c: ID!) {
    archiveChannel(channelId: $c) {
      archived
    }
  }
`);

const MAKE_PUBLIC = graphql(`
  mutation BrowseChannelsVisibility($c: ID!, $visibility: ChannelVisibility!) {
    updateChannel(input: { channelId: $c, visibility: $visibility }) {
      visibility
    }
  }
`);

const EVENTS = graphql(`
  subscription BrowseChannelsEvents($c: ID!) {
    channelEvents(channelId: $c) {
      __typename
      seq
      ... on MemberAddedEvent {
        userIds
      }
    }
  }
`);
type Event = AnyOf<BrowseChannelsEventsSubscription['channelEvents']>;

const VIEWER_EVENTS = graphql(`
  subscription BrowseChannelsViewerEvents {
    viewerEvents {
      __typename
      ... on ChannelAddedEvent {
        channelId
        channel {
          name
        }
      }
    }
  }
`);

const HISTORY = graphql(`
  query BrowseChannelsHistory($c: ID!, $filter: MessageFilter, $first: Int, $after: String, $last: Int, $before: String) {
    channel(id: $c) {
      messages(filter: $filter, first: $first, after: $after, last: $last, before: $before) {
        edges {
          node {
            body
            sender {
              id
            }
          }
        }
        pageInfo {
          hasNextPage
          hasPreviousPage
          startCursor
          endCursor
        }
      }
    }
  }
`);

const EDIT = graphql(`
  mutation BrowseChannelsEdit($id: ID!, $body: String!) {
    editMessage(input: { id: $id, body: $body }) {
      body
    }
  }
`);

const open = async (token: string, input: Partial<CreateChannelInput> & { name: string }) =>
  ok(await s.gql(CREATE, { input: { kind: 'GROUP', visibility: 'PUBLIC', ...input } }, token)).createChannel.id;
const browse = async (token: string, vars: { query?: string; first?: number; after?: string } = {}) =>
  ok(await s.gql(BROWSE, vars, token)).browseChannels;
const names = async (token: string, query?: string) => (await browse(token, { query, first: 100 })).edges.map((e) => e.node.name);
const lastSeq = async (token: string, c: string) => ok(await s.gql(READ, { c }, token)).channel.lastSeq;

describe('browseChannels: who sees which open channels', () => {
  let org: TestOrg;
  let other: TestOrg;
  let users: Record<'staff' | 'member' | 'client' | 'stranger', TestUser>;
  let ids: Record<'alpha' | 'bravo' | 'charlie' | 'delta' | 'echo' | 'foxtrot', string>;
  let granted: string;

  beforeAll(async () => {
    [org, other] = await Promise.all([registerOrg(s), registerOrg(s)]);
    const [staff, member, client, stranger] = await Promise.all([
      createUser(s, org, 'STAFF'),
      createUser(s, org),
      createUser(s, org, 'CLIENT'),
      createUser(s, org, 'CLIENT'),
    ]);
    users = { staff, member, client, stranger };
    granted = await createProject(s, org.owner.token);
    const ungranted = await createProject(s, org.owner.token);
    await grantAccess(s, org.owner.token, granted, client.id, 'CLIENT');
    ids = {
      alpha: await open(org.owner.token, { name: 'alpha', topic: 'for everyone', description: 'The whole company' }),
      bravo: await open(org.owner.token, { name: 'bravo', projectId: granted }),
      charlie: await open(org.owner.token, { name: 'charlie', projectId: ungranted }),
      delta: await open(org.owner.token, { name: 'delta', visibility: 'PRIVATE', memberIds: [member.id, staff.id] }),
      echo: await open(org.owner.token, { name: 'echo' }),
      foxtrot: await open(other.owner.token, { name: 'foxtrot' }),
    };
    ok(await s.gql(ARCHIVE, { c: ids.echo }, org.owner.token));
  });

  it('lists live PUBLIC GROUP channels: the organization\u2019s and its visible projects\u2019, never private or archived ones', async () => {
    for (const token of [org.owner.token, users.staff.token, users.member.token]) {
      expect(await names(token)).toEqual(['alpha', 'bravo', 'charlie']);
    }
    // Clients: only the open channels of projects they have a grant on; none of the organization at large.
    expect(await names(users.client.token)).toEqual(['bravo']);
    expect(await names(users.stranger.token)).toEqual([]);
    // Another organization's open channels are its own.
    expect(await names(other.owner.token)).toEqual(['foxtrot']);
  });

  it('shows what the channel is about, how many are in it and whether the viewer is one, not its history', async () => {
    const page = await browse(org.owner.token);
    expect(page.edges[0]!.node).toEqual({
      id: ids.alpha,
      name: 'alpha',
      topic: 'for everyone',
      description: 'The whole company',
      memberCount: 1,
      project: null,
      membership: { role: 'OWNER' },
    });
    expect(page.edges[1]!.node).toMatchObject({ name: 'bravo', project: { id: granted }, membership: { role: 'OWNER' } });
    expect((await browse(users.member.token)).edges[0]!.node.membership).toBeNull();
    // No Channel field of a channel one is not in is reachable from here.
    const history = await s.gql(`{ browseChannels { edges { node { messages { edges { node { body } } } } } } }`, {}, users.member.token);
    expect(errorCode(history)).toBe('GRAPHQL_VALIDATION_FAILED');
  });

  it('joins an open channel: MEMBER, one MemberAddedEvent, and then reads and posts; a second join changes nothing', async () => {
    const client = wsClient(s.url, org.owner.token, { keepOpen: true });
    const joiner = wsClient(s.url, users.member.token, { keepOpen: true });
    try {
      const stream = collect(client, EVENTS, { c: ids.alpha }, (d) => d.channelEvents as Event);
      const seen = (await untilLive(stream, () => send(s, org.owner.token, ids.alpha, 'probe'))).length;
      // The joiner's own stream, live through the private channel they are in.
      const mine = collect(joiner, VIEWER_EVENTS, {}, (d) => d.viewerEvents);
      const mineSeen = (await untilLive(mine, () => send(s, org.owner.token, ids.delta, 'probe'))).length;
      const before = await lastSeq(org.owner.token, ids.alpha);
      const joined = ok(await s.gql(JOIN, { c: ids.alpha }, users.member.token)).joinChannel;
      expect(joined).toEqual({ id: ids.alpha, lastSeq: before + 1, membership: { role: 'MEMBER' } });
      const [event] = (await stream.waitFor(seen + 1)).slice(seen);
      expect(event).toEqual({ __typename: 'MemberAddedEvent', seq: before + 1, userIds: [users.member.id] });
      const added = (await mine.waitFor(mineSeen + 1)).slice(mineSeen).find((e) => e.__typename === 'ChannelAddedEvent');
      expect(added).toMatchObject({ channelId: ids.alpha, channel: { name: 'alpha' } });
      // Again, and racing itself: the same channel, no event.
      const again = await Promise.all([1, 2, 3].map(() => s.gql(JOIN, { c: ids.alpha }, users.member.token)));
      expect(again.map((r) => ok(r).joinChannel)).toEqual([joined, joined, joined]);
      expect(await lastSeq(org.owner.token, ids.alpha)).toBe(before + 1);
      // The joiner now reads and posts, and browsing shows the membership.
      expect(ok(await s.gql(READ, { c: ids.alpha }, users.member.token)).channel.id).toBe(ids.alpha);
      expect((await send(s, users.member.token, ids.alpha, 'hello all')).body).toBe('hello all');
      expect((await browse(users.member.token)).edges[0]!.node).toMatchObject({
        name: 'alpha',
        memberCount: 2,
        membership: { role: 'MEMBER' },
      });
      await stream.waitFor(seen + 2);
      expect(stream.items.slice(seen).map((e) => e.__typename)).toEqual(['MemberAddedEvent', 'MessageAddedEvent']);
    } finally {
      await Promise.all([client.dispose(), joiner.dispose()]);
    }
  });

  it('several users joining at once each get exactly one MemberAddedEvent', async () => {
    const joiners = await Promise.all([1, 2, 3, 4].map(() => createUser(s, org)));
    const channel = await open(org.owner.token, { name: `busy-${uid()}` });
    const before = await lastSeq(org.owner.token, channel);
    await Promise.all(
      joiners.flatMap((u) => [s.gql(JOIN, { c: channel }, u.token), s.gql(JOIN, { c: channel }, u.token)]).map(async (r) => ok(await r)),
    );
    expect(await lastSeq(org.owner.token, channel)).toBe(before + 4);
  });

  it('refuses what the viewer may not browse with NOT_FOUND, exactly as for a missing channel', async () => {
    const missing = await s.gql(JOIN, { c: Buffer.from(`Channel:${crypto.randomUUID()}`).toString('base64') }, users.member.token);
    expect(errorCode(missing)).toBe('NOT_FOUND');
    const refused: [string, string, string][] = [
      ['private', ids.delta, users.client.token],
      ['private, for staff not in it', ids.delta, (await createUser(s, org, 'ADMIN')).token],
      ['archived', ids.echo, users.member.token],
      ['another organization\u2019s', ids.foxtrot, users.member.token],
      ['a project without a grant', ids.charlie, users.client.token],
      ['the organization\u2019s, for a client', ids.alpha, users.client.token],
      ['anything, for a client without grants', ids.bravo, users.stranger.token],
    ];
    for (const [label, channel, token] of refused) {
      const result = await s.gql(JOIN, { c: channel }, token);
      expect([label, errorCode(result), result.errors?.[0]?.message]).toEqual([label, 'NOT_FOUND', missing.errors?.[0]?.message]);
    }
    // Members of the private channel join nothing new but get it back.
    expect(ok(await s.gql(JOIN, { c: ids.delta }, users.member.token)).joinChannel.membership).toEqual({ role: 'MEMBER' });
    // A client with a grant joins their project's open channel and reads it.
    ok(await s.gql(JOIN, { c: ids.bravo }, users.client.token));
    expect(ok(await s.gql(READ, { c: ids.bravo }, users.client.token)).channel.id).toBe(ids.bravo);
  });

  it('a channel made private leaves the list and can no longer be joined; made public again, it is back', async () => {
    const channel = await open(org.owner.token, { name: `flip-${uid()}` });
    const name = async () => (await names(users.member.token)).filter((n) => n.startsWith('flip-'));
    expect(await name()).toHaveLength(1);
    ok(await s.gql(MAKE_PUBLIC, { c: channel, visibility: 'PRIVATE' }, org.owner.token));
    expect(await name()).toEqual([]);
    expect(errorCode(await s.gql(JOIN, { c: channel }, users.member.token))).toBe('NOT_FOUND');
    ok(await s.gql(MAKE_PUBLIC, { c: channel, visibility: 'PUBLIC' }, org.owner.token));
    expect(await name()).toHaveLength(1);
  });
});

describe('browseChannels: query and pages', () => {
  it('matches name or topic ignoring case, with % _ and \\ taken literally', async () => {
    const org = await registerOrg(s);
    for (const [name, topic] of [
      ['50% off', null],
      ['50x off', null],
      ['a_b', null],
      ['axb', null],
      ['back\\slash', null],
      ['Walls', 'Painting the WALLS'],
    ] as const) {
      await open(org.owner.token, { name, topic });
    }
    expect(await names(org.owner.token, '50%')).toEqual(['50% off']);
    expect(await names(org.owner.token, '50')).toEqual(['50% off', '50x off']);
    expect(await names(org.owner.token, 'A_B')).toEqual(['a_b']);
    expect(await names(org.owner.token, '%')).toEqual(['50% off']);
    expect(await names(org.owner.token, '_')).toEqual(['a_b']);
    expect(await names(org.owner.token, 'k\\s')).toEqual(['back\\slash']);
    expect(await names(org.owner.token, 'paint')).toEqual(['Walls']);
    expect(await names(org.owner.token, '  walls ')).toEqual(['Walls']);
    expect(await names(org.owner.token, 'nothing like it')).toEqual([]);
    expect(await names(org.owner.token, '')).toHaveLength(6);
    const long = await s.gql(BROWSE, { query: 'x'.repeat(101) }, org.owner.token);
    expect([errorCode(long), long.errors?.[0]?.extensions?.field]).toEqual(['BAD_USER_INPUT', 'query']);
  });

  it('pages by name, then id, with cursors (equal names included)', async () => {
    const org = await registerOrg(s);
    for (const name of ['c', 'same', 'a', 'same', 'b', 'same']) await open(org.owner.token, { name });
    const seen: { id: string; name: string }[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await browse(org.owner.token, { first: 2, after });
      seen.push(...page.edges.map((e) => ({ id: rawId(e.node.id), name: e.node.name })));
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor!;
    }
    expect(seen.map((c) => c.name)).toEqual(['a', 'b', 'c', 'same', 'same', 'same']);
    const same = seen.filter((c) => c.name === 'same').map((c) => c.id);
    expect(same).toEqual([...new Set(same)].sort());
  });

  it('costs the same number of queries for 5 channels as for 30', async () => {
    const org = await registerOrg(s);
    const project = await createProject(s, org.owner.token);
    const member = await createUser(s, org);
    await browse(member.token); // the member's first request loads them; later ones find them cached
    const countFor = async (channels: number) => {
      const tag = uid();
      await Promise.all(
        Array.from({ length: channels }, (_, i) => open(org.owner.token, { name: `${tag}-${i}`, projectId: i % 2 ? project : undefined })),
      );
      const before = s.app.queryCount();
      const page = await browse(member.token, { query: tag, first: 50 });
      const used = s.app.queryCount() - before;
      expect(page.edges).toHaveLength(channels);
      expect(page.edges.every((e) => e.node.memberCount === 1 && e.node.membership === null)).toBe(true);
      return used;
    };
    expect(await countFor(30)).toBe(await countFor(5));
  });
});

describe('Channel.messages(filter)', () => {
  let org: TestOrg;
  let member: TestUser;
  let channel: string;
  /** Sent alternately by the owner (even i) and the member (odd i), an hour apart from 2026-01-01T00:00Z. */
  const bodies = Array.from({ length: 10 }, (_, i) => `m${i}`);
  const at = (i: number) => new Date(Date.UTC(2026, 0, 1, i));

  beforeAll(async () => {
    org = await registerOrg(s);
    member = await createUser(s, org);
    channel = await createChannel(s, org.owner.token, { memberIds: [member.id] });
    const db = s.app.services.prisma;
    for (const [i, body] of bodies.entries()) {
      const sent = await send(s, i % 2 ? member.token : org.owner.token, channel, body);
      await db.message.update({ where: { id: rawId(sent.id) }, data: { createdAt: at(i) } });
      // Links as a send that writes them leaves them: m2, m5 and m6 link an entity.
      if ([2, 5, 6].includes(i)) {
        const message = await db.message.findUniqueOrThrow({ where: { id: rawId(sent.id) } });
        await db.messageLink.create({
          data: {
            messageId: message.id,
            organizationId: message.organizationId,
            channelId: message.channelId,
            seq: message.seq,
            typeKey: 'task',
            externalId: String(i),
            ranges: [[0, 2]],
          },
        });
      }
    }
  });

  const history = async (filter: MessageFilter | null, page: { first?: number; after?: string; last?: number; before?: string } = {}) =>
    ok(await s.gql(HISTORY, { c: channel, filter, ...page }, member.token)).channel.messages;
  const bodiesOf = (h: Awaited<ReturnType<typeof history>>) => h.edges.map((e) => e.node.body);

  it('filters by sender, and pages forwards and backwards through the filtered history', async () => {
    expect(bodiesOf(await history({ senderId: member.id }))).toEqual(['m1', 'm3', 'm5', 'm7', 'm9']);
    const first = await history({ senderId: member.id }, { first: 2 });
    expect([bodiesOf(first), first.pageInfo.hasNextPage]).toEqual([['m1', 'm3'], true]);
    const second = await history({ senderId: member.id }, { first: 2, after: first.pageInfo.endCursor! });
    expect(bodiesOf(second)).toEqual(['m5', 'm7']);
    const third = await history({ senderId: member.id }, { first: 2, after: second.pageInfo.endCursor! });
    expect([bodiesOf(third), third.pageInfo.hasNextPage]).toEqual([['m9'], false]);
    const last = await history({ senderId: member.id }, { last: 2 });
    expect([bodiesOf(last), last.pageInfo.hasPreviousPage]).toEqual([['m7', 'm9'], true]);
    const earlier = await history({ senderId: member.id }, { last: 2, before: last.pageInfo.startCursor! });
    expect(bodiesOf(earlier)).toEqual(['m3', 'm5']);
    expect(bodiesOf(await history({ senderId: org.owner.id }))).toEqual(['m0', 'm2', 'm4', 'm6', 'm8']);
  });

  it('filters by time: from `after` (inclusive) to `before` (exclusive)', async () => {
    expect(bodiesOf(await history({ after: at(3).toISOString(), before: at(6).toISOString() }))).toEqual(['m3', 'm4', 'm5']);
    expect(bodiesOf(await history({ before: at(2).toISOString() }))).toEqual(['m0', 'm1']);
    expect(bodiesOf(await history({ after: at(8).toISOString(), senderId: org.owner.id }))).toEqual(['m8']);
    expect(bodiesOf(await history({ after: at(6).toISOString(), before: at(6).toISOString() }))).toEqual([]);
  });

  it('filters by links, alone and with the other conditions', async () => {
    expect(bodiesOf(await history({ hasLinks: true }))).toEqual(['m2', 'm5', 'm6']);
    expect(bodiesOf(await history({ hasLinks: false }))).toEqual(['m0', 'm1', 'm3', 'm4', 'm7', 'm8', 'm9']);
    expect(bodiesOf(await history({ hasLinks: true, senderId: org.owner.id }))).toEqual(['m2', 'm6']);
    const page = await history(
      { hasLinks: true },
      { first: 1, after: (await history({ hasLinks: true }, { first: 1 })).pageInfo.endCursor! },
    );
    expect(bodiesOf(page)).toEqual(['m5']);
  });

  it('hasLinks follows the @type#id references sends and edits write', async () => {
    const c = await createChannel(s, org.owner.token, { memberIds: [member.id] });
    const linked = await send(s, member.token, c, 'please review @task#45');
    await send(s, member.token, c, 'no reference here, just mail@task.example');
    const edited = await send(s, org.owner.token, c, 'plain at first');
    const links = async () =>
      ok(await s.gql(HISTORY, { c, filter: { hasLinks: true } }, member.token)).channel.messages.edges.map((e) => e.node.body);
    expect(await links()).toEqual([linked.body]);
    ok(await s.gql(EDIT, { id: edited.id, body: 'now about @ticket#7' }, org.owner.token));
    ok(await s.gql(EDIT, { id: linked.id, body: 'never mind' }, member.token));
    expect(await links()).toEqual(['now about @ticket#7']);
  });

  it('a sender from another organization, or no user at all, matches nothing; an id of another type is BAD_USER_INPUT', async () => {
    const other = await registerOrg(s);
    expect(bodiesOf(await history({ senderId: other.owner.id }))).toEqual([]);
    expect(bodiesOf(await history({ senderId: Buffer.from(`User:${crypto.randomUUID()}`).toString('base64') }))).toEqual([]);
    expect(bodiesOf(await history({ senderId: Buffer.from('User:not-a-uuid').toString('base64') }))).toEqual([]);
    const mistyped = await s.gql(HISTORY, { c: channel, filter: { senderId: channel } }, member.token);
    expect(errorCode(mistyped)).toBe('BAD_USER_INPUT');
  });

  it('costs the same number of queries for a filtered page of 5 messages as of 30', async () => {
    const countFor = async (messages: number) => {
      const c = await createChannel(s, org.owner.token, { memberIds: [member.id] });
      await Promise.all(Array.from({ length: messages * 2 }, (_, i) => send(s, i % 2 ? member.token : org.owner.token, c, `q${i}`)));
      const before = s.app.queryCount();
      const page = ok(await s.gql(HISTORY, { c, filter: { senderId: member.id, hasLinks: false }, first: 50 }, member.token)).channel
        .messages;
      const used = s.app.queryCount() - before;
      expect(page.edges).toHaveLength(messages);
      expect(page.edges.every((e) => e.node.sender.id === member.id)).toBe(true);
      return used;
    };
    expect(await countFor(30)).toBe(await countFor(5));
  });
});
