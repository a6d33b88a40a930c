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
  SEND,
  type TestOrg,
  type TestUser,
} from './helpers/fixtures.ts';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { graphql } from './generated/index.ts';
import type { ChannelFilter, ChannelsChannelQuery, ChannelsChannelsQueryVariables } from './generated/graphql.ts';

let s: TestServer;
beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s?.stop();
});

const LIST = graphql(`
  query ChannelsChannels($first: Int, $after: String, $last: Int, $filter: ChannelFilter) {
    channels(first: $first, after: $after, last: $last, filter: $filter) {
      edges {
        cursor
        node {
          id
          name
          kind
          archived
          unreadCount
          lastMessage {
            body
            sender {
              username
            }
          }
          membership {
            lastReadSeq
            hidden
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

const CHANNEL = graphql(`
  query ChannelsChannel($id: ID!) {
    channel(id: $id) {
      id
      name
      archived
      lastSeq
      unreadCount
      lastMessage {
        body
      }
      membership {
        role
        lastReadSeq
        muted
        mutedUntil
        hidden
      }
      members(first: 20) {
        edges {
          node {
            role
            user {
              id
            }
          }
        }
      }
      messages(first: 20) {
        edges {
          node {
            body
          }
        }
      }
    }
  }
`);
const MESSAGE = graphql(`
  query ChannelsMessage($id: ID!) {
    message(id: $id) {
      id
      body
    }
  }
`);
const ADD = graphql(`
  mutation ChannelsAddChannelMembers($c: ID!, $u: [ID!]!, $role: ChannelMemberRole) {
    addChannelMembers(channelId: $c, userIds: $u, role: $role) {
      id
    }
  }
`);
const REMOVE = graphql(`
  mutation ChannelsRemoveChannelMember($c: ID!, $u: ID!) {
    removeChannelMember(channelId: $c, userId: $u) {
      id
    }
  }
`);
const LEAVE = graphql(`
  mutation ChannelsLeaveChannel($c: ID!) {
    leaveChannel(channelId: $c)
  }
`);
const ARCHIVE = graphql(`
  mutation ChannelsArchiveChannel($c: ID!, $a: Boolean) {
    archiveChannel(channelId: $c, archived: $a) {
      id
      archived
    }
  }
`);
const MUTE = graphql(`
  mutation ChannelsMuteChannel($c: ID!, $m: Boolean, $until: DateTime) {
    muteChannel(channelId: $c, muted: $m, until: $until) {
      muted
      mutedUntil
    }
  }
`);
const HIDE = graphql(`
  mutation ChannelsHideChannel($c: ID!, $h: Boolean) {
    hideChannel(channelId: $c, hidden: $h) {
      hidden
    }
  }
`);
const MARK = graphql(`
  mutation ChannelsMarkChannelRead($c: ID!, $seq: Int!) {
    markChannelRead(channelId: $c, seq: $seq) {
      lastReadSeq
    }
  }
`);
const DM = graphql(`
  mutation ChannelsOpenDirectChannel($u: [ID!]!) {
    openDirectChannel(userIds: $u) {
      id
      kind
    }
  }
`);
const CREATE = graphql(`
  mutation ChannelsCreateChannel($input: CreateChannelInput!) {
    createChannel(input: $input) {
      id
    }
  }
`);
const DELETE = graphql(`
  mutation ChannelsDeleteMessage($id: ID!) {
    deleteMessage(input: { id: $id }) {
      hard
    }
  }
`);
const REVOKE = graphql(`
  mutation ChannelsRevokeProjectAccess($p: ID!, $u: ID!) {
    revokeProjectAccess(projectId: $p, userId: $u)
  }
`);

type ChannelView = ChannelsChannelQuery['channel'];

async function readChannel(token: string, id: string): Promise<ChannelView> {
  return ok(await s.gql(CHANNEL, { id }, token)).channel;
}

async function listChannels(token: string, variables: ChannelsChannelsQueryVariables = {}) {
  const data = ok(await s.gql(LIST, { first: 100, ...variables }, token));
  return data.channels;
}

const listIds = async (token: string, filter?: ChannelFilter) => (await listChannels(token, { filter })).edges.map((e) => e.node.id);

const memberIds = (channel: ChannelView) => channel.members.edges.map((e) => e.node.user.id);

async function code<R, V>(query: TypedDocumentNode<R, V>, variables: V, token: string) {
  const result = await s.gql(query, variables, token);
  expect(result.errors, `expected an error, got ${JSON.stringify(result.data)}`).toBeDefined();
  return errorCode(result);
}

/** An organization with an owner and two plain members who share one group channel. */
async function groupSetup() {
  const org = await registerOrg(s);
  const [alice, bob] = await Promise.all([createUser(s, org), createUser(s, org)]);
  const channelId = await createChannel(s, org.owner.token, { memberIds: [alice.id, bob.id] });
  return { org, alice, bob, channelId };
}

describe.concurrent('channels: listing', () => {
  it('orders channels by last activity: a channel with a newer message comes first', async () => {
    const { org, alice } = await groupSetup();
    const first = await createChannel(s, org.owner.token, { memberIds: [alice.id] });
    const second = await createChannel(s, org.owner.token, { memberIds: [alice.id] });
    await send(s, alice.token, second, 'older');
    await send(s, alice.token, first, 'newer');
    const ids = await listIds(alice.token);
    expect(ids.indexOf(first)).toBeLessThan(ids.indexOf(second));
    await send(s, org.owner.token, second, 'newest');
    const again = await listIds(alice.token);
    expect(again[0]).toBe(second);
    expect(again[1]).toBe(first);
  });

  it('paginates with first/after without repeating or skipping a channel', async () => {
    const org = await registerOrg(s);
    const created = new Set<string>();
    for (let i = 0; i < 5; i++) created.add(await createChannel(s, org.owner.token));
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    do {
      const page = await listChannels(org.owner.token, { first: 2, after });
      expect(page.edges.length).toBeLessThanOrEqual(2);
      seen.push(...page.edges.map((e) => e.node.id));
      after = page.pageInfo.hasNextPage ? page.pageInfo.endCursor : null;
      pages++;
    } while (after && pages < 10);
    expect(pages).toBe(3);
    expect(seen).toHaveLength(5);
    expect(new Set(seen)).toEqual(created);
  });

  it('pages of at most 100 channels: first: 101 is refused, 100 then the rest', async () => {
    const org = await registerOrg(s);
    for (let batch = 0; batch < 5; batch++) {
      await Promise.all(Array.from({ length: batch < 4 ? 25 : 1 }, () => createChannel(s, org.owner.token)));
    }
    expect(await code(LIST, { first: 101 }, org.owner.token)).toBe('BAD_USER_INPUT');
    const page = await listChannels(org.owner.token, { first: 100 });
    expect(page.edges).toHaveLength(100);
    expect(page.pageInfo.hasNextPage).toBe(true);
    const rest = await listChannels(org.owner.token, { first: 100, after: page.pageInfo.endCursor });
    expect(rest.edges).toHaveLength(1);
    expect(rest.pageInfo.hasNextPage).toBe(false);
    expect(await code(LIST, { first: -1 }, org.owner.token)).toBe('BAD_USER_INPUT');
    expect(await code(LIST, { after: 'not-a-cursor' }, org.owner.token)).toBe('BAD_USER_INPUT');
  });

  it('counts others\u2019 live messages after the read marker as unread, and shows the newest live message', async () => {
    const { org, alice, bob, channelId } = await groupSetup();
    await send(s, bob.token, channelId, 'one');
    await send(s, org.owner.token, channelId, 'two');
    await send(s, alice.token, channelId, 'mine');
    const doomed = await send(s, bob.token, channelId, 'deleted soon');
    let node = (await listChannels(alice.token)).edges.find((e) => e.node.id === channelId)!.node;
    expect(node.unreadCount).toBe(3);
    expect(node.lastMessage).toEqual({ body: 'deleted soon', sender: { username: bob.username } });

    ok(await s.gql(DELETE, { id: doomed.id }, bob.token));
    node = (await listChannels(alice.token)).edges.find((e) => e.node.id === channelId)!.node;
    expect(node.unreadCount).toBe(2);
    expect(node.lastMessage).toEqual({ body: 'mine', sender: { username: alice.username } });

    const view = await readChannel(alice.token, channelId);
    ok(await s.gql(MARK, { c: channelId, seq: view.lastSeq }, alice.token));
    await send(s, bob.token, channelId, 'after the marker');
    expect((await readChannel(alice.token, channelId)).unreadCount).toBe(1);
    // Bob's own messages never count: only 'two' and 'mine' are unread for him.
    expect((await readChannel(bob.token, channelId)).unreadCount).toBe(2);
  });

  it('filters by kind, project, archived and hidden', async () => {
    const org = await registerOrg(s);
    const member = await createUser(s, org);
    const projectId = await createProject(s, org.owner.token);
    const otherProject = await createProject(s, org.owner.token);
    const group = await createChannel(s, org.owner.token);
    const project = await createChannel(s, org.owner.token, { kind: 'PROJECT', projectId });
    const other = await createChannel(s, org.owner.token, { kind: 'PROJECT', projectId: otherProject });
    const archived = await createChannel(s, org.owner.token);
    const hidden = await createChannel(s, org.owner.token);
    const dm = ok(await s.gql(DM, { u: [member.id] }, org.owner.token)).openDirectChannel.id;
    ok(await s.gql(ARCHIVE, { c: archived }, org.owner.token));
    ok(await s.gql(HIDE, { c: hidden }, org.owner.token));
    const t = org.owner.token;

    expect(new Set(await listIds(t))).toEqual(new Set([group, project, other, dm]));
    expect(await listIds(t, { kind: 'DIRECT' })).toEqual([dm]);
    expect(new Set(await listIds(t, { kind: 'PROJECT' }))).toEqual(new Set([project, other]));
    expect(await listIds(t, { projectId })).toEqual([project]);
    expect(await listIds(t, { archived: true })).toEqual([archived]);
    expect(await listIds(t, { hidden: true })).toEqual([hidden]);
    expect(await listIds(t, { kind: 'GROUP', archived: false, hidden: false })).toEqual([group]);
  });

  it('rejects a project filter the viewer cannot see', async () => {
    const org = await registerOrg(s);
    const client = await createUser(s, org, 'CLIENT');
    const projectId = await createProject(s, org.owner.token);
    const missing = Buffer.from('Project:00000000-0000-4000-8000-000000000000').toString('base64');
    expect(await code(LIST, { filter: { projectId: missing } }, org.owner.token)).toBe('NOT_FOUND');
    expect(await code(LIST, { filter: { projectId } }, client.token)).toBe('NOT_FOUND');
  });
});

// Runs alone: the statement counter is shared by everything the app does.
describe('channels: query count', () => {
  it('lists 2 and 12 channels with unread counts, last messages and memberships in the same number of queries', async () => {
    const { org, alice } = await groupSetup();
    const DOC = graphql(`
      query ChannelsListWithLastMessage {
        channels(first: 50) {
          edges {
            node {
              name
              unreadCount
              lastMessage {
                body
                sender {
                  username
                }
              }
              membership {
                lastReadSeq
              }
            }
          }
        }
      }
    `);
    const countFor = async () => {
      ok(
        await s.gql(
          graphql(`
            query ChannelsViewer {
              viewer {
                id
              }
            }
          `),
          {},
          alice.token,
        ),
      ); // settle anything still in flight
      const before = s.app.queryCount();
      const data = ok(await s.gql(DOC, {}, alice.token));
      return { queries: s.app.queryCount() - before, rows: data.channels.edges.length as number };
    };
    const addChannels = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const id = await createChannel(s, org.owner.token, { memberIds: [alice.id] });
        // Different senders, so sender lookups cannot collapse into one row.
        await send(s, i % 2 ? alice.token : org.owner.token, id, `hello ${i}`);
      }
    };
    await addChannels(1); // groupSetup made the first one
    const small = await countFor();
    await addChannels(10);
    const large = await countFor();
    expect(small.rows).toBe(2);
    expect(large.rows).toBe(12);
    expect(large.queries).toBe(small.queries);
  });
});

describe.concurrent('openDirectChannel', () => {
  it('returns the one DM for a set of users, whatever the order and whoever asks', async () => {
    const org = await registerOrg(s);
    const [a, b, c] = await Promise.all([createUser(s, org), createUser(s, org), createUser(s, org)]);
    const ab = ok(await s.gql(DM, { u: [b.id] }, a.token)).openDirectChannel;
    expect(ab.kind).toBe('DIRECT');
    expect(ok(await s.gql(DM, { u: [a.id] }, b.token)).openDirectChannel.id).toBe(ab.id);
    expect(ok(await s.gql(DM, { u: [a.id, b.id] }, b.token)).openDirectChannel.id).toBe(ab.id);

    const abc = ok(await s.gql(DM, { u: [c.id, b.id] }, a.token)).openDirectChannel.id;
    expect(abc).not.toBe(ab.id);
    expect(ok(await s.gql(DM, { u: [a.id, b.id] }, c.token)).openDirectChannel.id).toBe(abc);
    expect(new Set(memberIds(await readChannel(c.token, abc)))).toEqual(new Set([a.id, b.id, c.id]));
    expect(await code(CHANNEL, { id: ab.id }, c.token)).toBe('NOT_FOUND');
  });

  it('creates a single channel when both users open the DM at once', async () => {
    const org = await registerOrg(s);
    const [a, b] = await Promise.all([createUser(s, org), createUser(s, org)]);
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => (i % 2 ? s.gql(DM, { u: [a.id] }, b.token) : s.gql(DM, { u: [b.id] }, a.token))),
    );
    const ids = new Set(results.map((r) => ok(r).openDirectChannel.id));
    expect(ids.size).toBe(1);
    expect((await listIds(a.token, { kind: 'DIRECT' })).length).toBe(1);
    expect((await listIds(b.token, { kind: 'DIRECT' })).length).toBe(1);
  });

  it('allows at most 9 people in a DM and no deactivated user', async () => {
    const org = await registerOrg(s);
    const users = await Promise.all(Array.from({ length: 9 }, () => createUser(s, org)));
    const nine = ok(await s.gql(DM, { u: users.slice(0, 8).map((u) => u.id) }, org.owner.token)).openDirectChannel;
    expect(memberIds(await readChannel(org.owner.token, nine.id))).toHaveLength(9);
    expect(await code(DM, { u: users.map((u) => u.id) }, org.owner.token)).toBe('BAD_USER_INPUT');
    expect(await code(DM, { u: [] }, org.owner.token)).toBe('BAD_USER_INPUT');
    ok(
      await s.gql(
        graphql(`
          mutation ChannelsDeactivateUser($u: ID!) {
            deactivateUser(userId: $u) {
              id
            }
          }
        `),
        { u: users[0]!.id },
        org.owner.token,
      ),
    );
    expect(await code(DM, { u: [users[0]!.id, users[1]!.id] }, org.owner.token)).toBe('BAD_USER_INPUT');
  });

  it('a DM cannot be left or managed: it is hidden instead, and opening it again shows it', async () => {
    const org = await registerOrg(s);
    const [a, b, c] = await Promise.all([createUser(s, org), createUser(s, org), createUser(s, org)]);
    const dm = ok(await s.gql(DM, { u: [b.id] }, a.token)).openDirectChannel.id;
    expect(await code(LEAVE, { c: dm }, a.token)).toBe('BAD_USER_INPUT');
    expect(await code(ADD, { c: dm, u: [c.id] }, a.token)).toBe('FORBIDDEN');
    expect(await code(ADD, { c: dm, u: [c.id] }, org.owner.token)).toBe('NOT_FOUND');
    ok(await s.gql(HIDE, { c: dm }, a.token));
    expect(await listIds(a.token)).not.toContain(dm);
    expect(ok(await s.gql(DM, { u: [b.id] }, a.token)).openDirectChannel.id).toBe(dm);
    expect(await listIds(a.token)).toContain(dm);
  });

  it('a hidden channel comes back when someone writes in it', async () => {
    const org = await registerOrg(s);
    const [a, b] = await Promise.all([createUser(s, org), createUser(s, org)]);
    const dm = ok(await s.gql(DM, { u: [b.id] }, a.token)).openDirectChannel.id;
    ok(await s.gql(HIDE, { c: dm }, a.token));
    expect(await listIds(a.token)).not.toContain(dm);
    await send(s, b.token, dm, 'are you there?');
    expect(await listIds(a.token)).toContain(dm);
    expect(await listIds(a.token, { hidden: true })).not.toContain(dm);
  });
});

describe.concurrent('channel membership: who manages members', () => {
  it('organization owners, admins and staff add and remove members, also in channels they are not in', async () => {
    const { org, alice, channelId } = await groupSetup();
    const [admin, staff, carol] = await Promise.all([createUser(s, org, 'ADMIN'), createUser(s, org, 'STAFF'), createUser(s, org)]);
    ok(await s.gql(ADD, { c: channelId, u: [carol.id] }, staff.token));
    expect(memberIds(await readChannel(alice.token, channelId))).toContain(carol.id);
    ok(await s.gql(REMOVE, { c: channelId, u: carol.id }, admin.token));
    expect(memberIds(await readChannel(alice.token, channelId))).not.toContain(carol.id);
    ok(await s.gql(ADD, { c: channelId, u: [carol.id] }, org.owner.token));
    expect(memberIds(await readChannel(alice.token, channelId))).toContain(carol.id);
  });

  it('channel owners and channel admins manage members; plain members get FORBIDDEN', async () => {
    const org = await registerOrg(s);
    const [creator, chanAdmin, plain, carol] = await Promise.all([
      createUser(s, org),
      createUser(s, org),
      createUser(s, org),
      createUser(s, org),
    ]);
    const channelId = await createChannel(s, creator.token, { memberIds: [plain.id] });
    ok(await s.gql(ADD, { c: channelId, u: [chanAdmin.id], role: 'ADMIN' }, creator.token));
    ok(await s.gql(ADD, { c: channelId, u: [carol.id] }, chanAdmin.token));
    ok(await s.gql(REMOVE, { c: channelId, u: carol.id }, chanAdmin.token));

    expect(await code(ADD, { c: channelId, u: [carol.id] }, plain.token)).toBe('FORBIDDEN');
    expect(await code(REMOVE, { c: channelId, u: chanAdmin.id }, plain.token)).toBe('FORBIDDEN');
    expect(await code(ARCHIVE, { c: channelId }, plain.token)).toBe('FORBIDDEN');
    expect(await code(ADD, { c: channelId, u: [plain.id], role: 'OWNER' }, creator.token)).toBe('BAD_USER_INPUT');
    const roles = Object.fromEntries((await readChannel(creator.token, channelId)).members.edges.map((e) => [e.node.user.id, e.node.role]));
    expect(roles).toEqual({ [creator.id]: 'OWNER', [chanAdmin.id]: 'ADMIN', [plain.id]: 'MEMBER' });
  });

  it('adding someone who is already a member keeps their role and logs nothing', async () => {
    const { org, alice, channelId } = await groupSetup();
    const carol = await createUser(s, org);
    ok(await s.gql(ADD, { c: channelId, u: [carol.id], role: 'ADMIN' }, org.owner.token));
    const before = await readChannel(carol.token, channelId);
    expect(before.membership!.role).toBe('ADMIN');
    ok(await s.gql(ADD, { c: channelId, u: [carol.id, alice.id] }, org.owner.token));
    ok(await s.gql(ADD, { c: channelId, u: [alice.id], role: 'OBSERVER' }, org.owner.token));
    const after = await readChannel(carol.token, channelId);
    expect(after.lastSeq).toBe(before.lastSeq);
    expect(after.membership!.role).toBe('ADMIN');
    expect((await readChannel(alice.token, channelId)).membership!.role).toBe('MEMBER');
  });

  it('non-members get NOT_FOUND for the channel, its messages and its management', async () => {
    const { org, alice, channelId } = await groupSetup();
    const outsider = await createUser(s, org);
    const message = await send(s, alice.token, channelId, 'members only');
    expect(await code(CHANNEL, { id: channelId }, outsider.token)).toBe('NOT_FOUND');
    expect(await code(MESSAGE, { id: message.id }, outsider.token)).toBe('NOT_FOUND');
    expect(await code(SEND, { input: { channelId, body: 'hi' } }, outsider.token)).toBe('NOT_FOUND');
    expect(await code(ADD, { c: channelId, u: [outsider.id] }, outsider.token)).toBe('NOT_FOUND');
    expect(await code(MARK, { c: channelId, seq: 1 }, outsider.token)).toBe('NOT_FOUND');
    expect(await code(MUTE, { c: channelId }, outsider.token)).toBe('NOT_FOUND');
    expect(await code(HIDE, { c: channelId }, outsider.token)).toBe('NOT_FOUND');
    expect(await code(LEAVE, { c: channelId }, outsider.token)).toBe('NOT_FOUND');
    expect(await listIds(outsider.token)).not.toContain(channelId);
  });

  it('leaveChannel removes the viewer, who then cannot read the channel', async () => {
    const { alice, bob, channelId } = await groupSetup();
    const message = await send(s, bob.token, channelId, 'before leaving');
    expect(ok(await s.gql(LEAVE, { c: channelId }, alice.token)).leaveChannel).toBe(true);
    expect(await code(CHANNEL, { id: channelId }, alice.token)).toBe('NOT_FOUND');
    expect(await code(MESSAGE, { id: message.id }, alice.token)).toBe('NOT_FOUND');
    expect(await listIds(alice.token)).not.toContain(channelId);
    expect(memberIds(await readChannel(bob.token, channelId))).not.toContain(alice.id);
    expect(await code(LEAVE, { c: channelId }, alice.token)).toBe('NOT_FOUND');
  });

  it('removeChannelMember removes the user, who then cannot read or write the channel', async () => {
    const { org, alice, bob, channelId } = await groupSetup();
    const message = await send(s, alice.token, channelId, 'before removal');
    ok(await s.gql(REMOVE, { c: channelId, u: alice.id }, org.owner.token));
    expect(await code(CHANNEL, { id: channelId }, alice.token)).toBe('NOT_FOUND');
    expect(await code(MESSAGE, { id: message.id }, alice.token)).toBe('NOT_FOUND');
    expect(await code(SEND, { input: { channelId, body: 'still here?' } }, alice.token)).toBe('NOT_FOUND');
    expect(memberIds(await readChannel(bob.token, channelId))).not.toContain(alice.id);
    expect(await code(REMOVE, { c: channelId, u: alice.id }, org.owner.token)).toBe('NOT_FOUND');
  });
});

describe.concurrent('channel membership: read-only members and channels', () => {
  it('observers read but cannot send', async () => {
    const { org, alice, channelId } = await groupSetup();
    const watcher = await createUser(s, org);
    ok(await s.gql(ADD, { c: channelId, u: [watcher.id], role: 'OBSERVER' }, org.owner.token));
    await send(s, alice.token, channelId, 'visible to observers');
    const view = await readChannel(watcher.token, channelId);
    expect(view.membership!.role).toBe('OBSERVER');
    expect(view.messages.edges.map((e) => e.node.body)).toEqual(['visible to observers']);
    expect(await code(SEND, { input: { channelId, body: 'may I?' } }, watcher.token)).toBe('FORBIDDEN');
  });

  it('archived channels are read-only until staff reopen them', async () => {
    const org = await registerOrg(s);
    const [creator, alice, carol] = await Promise.all([createUser(s, org), createUser(s, org), createUser(s, org)]);
    const channelId = await createChannel(s, creator.token, { memberIds: [alice.id, org.owner.id] });
    const before = await send(s, alice.token, channelId, 'before archiving');
    expect(ok(await s.gql(ARCHIVE, { c: channelId }, creator.token)).archiveChannel.archived).toBe(true);

    expect((await readChannel(alice.token, channelId)).messages.edges).toHaveLength(1);
    expect(await code(SEND, { input: { channelId, body: 'after' } }, alice.token)).toBe('FORBIDDEN');
    const EDIT = graphql(`
      mutation ChannelsEditMessage($id: ID!) {
        editMessage(input: { id: $id, body: "changed" }) {
          id
        }
      }
    `);
    const DELETE = graphql(`
      mutation ChannelsDeleteMessageHard($id: ID!, $hard: Boolean) {
        deleteMessage(input: { id: $id, hard: $hard }) {
          hard
        }
      }
    `);
    expect(await code(EDIT, { id: before.id }, alice.token)).toBe('FORBIDDEN');
    expect(await code(DELETE, { id: before.id }, alice.token)).toBe('FORBIDDEN');
    expect(await code(DELETE, { id: before.id }, org.owner.token)).toBe('FORBIDDEN');
    // Removing content for good stays possible for organization admins.
    expect(ok(await s.gql(DELETE, { id: before.id, hard: true }, org.owner.token)).deleteMessage.hard).toBe(true);
    expect(await code(ADD, { c: channelId, u: [carol.id] }, creator.token)).toBe('FORBIDDEN');
    // Archiving twice is a no-op; only staff reopen.
    expect(ok(await s.gql(ARCHIVE, { c: channelId }, creator.token)).archiveChannel.archived).toBe(true);
    expect(await code(ARCHIVE, { c: channelId, a: false }, creator.token)).toBe('FORBIDDEN');

    expect(ok(await s.gql(ARCHIVE, { c: channelId, a: false }, org.owner.token)).archiveChannel.archived).toBe(false);
    await send(s, alice.token, channelId, 'reopened');
    expect(await listIds(alice.token)).toContain(channelId);
    expect((await readChannel(alice.token, channelId)).messages.edges).toHaveLength(1);
  });
});

describe.concurrent('channel membership: per-member settings', () => {
  it('muteChannel sets muted and mutedUntil; muted: false unmutes', async () => {
    const { alice, channelId } = await groupSetup();
    const until = new Date(Date.now() + 3_600_000).toISOString();
    expect(ok(await s.gql(MUTE, { c: channelId, until }, alice.token)).muteChannel).toEqual({ muted: true, mutedUntil: until });
    expect((await readChannel(alice.token, channelId)).membership).toMatchObject({ muted: true, mutedUntil: until });
    const forever = ok(await s.gql(MUTE, { c: channelId }, alice.token)).muteChannel;
    expect(forever.muted).toBe(true);
    expect(new Date(forever.mutedUntil!).getTime()).toBeGreaterThan(Date.parse(until));
    expect(ok(await s.gql(MUTE, { c: channelId, m: false }, alice.token)).muteChannel).toEqual({ muted: false, mutedUntil: null });
    expect(await code(MUTE, { c: channelId, until: new Date(Date.now() - 60_000).toISOString() }, alice.token)).toBe('BAD_USER_INPUT');
  });

  it('hideChannel removes the channel from the default list only for the viewer', async () => {
    const { alice, bob, channelId } = await groupSetup();
    expect(ok(await s.gql(HIDE, { c: channelId }, alice.token)).hideChannel.hidden).toBe(true);
    expect(await listIds(alice.token)).not.toContain(channelId);
    expect(await listIds(alice.token, { hidden: true })).toEqual([channelId]);
    expect(await listIds(bob.token)).toContain(channelId);
    expect((await readChannel(alice.token, channelId)).membership!.hidden).toBe(true);
    ok(await s.gql(HIDE, { c: channelId, h: false }, alice.token));
    expect(await listIds(alice.token)).toContain(channelId);
  });

  it('markChannelRead moves the marker forward only, clamps it to lastSeq and resets unreadCount', async () => {
    const { bob, alice, channelId } = await groupSetup();
    for (const body of ['a', 'b', 'c']) await send(s, bob.token, channelId, body);
    const before = await readChannel(alice.token, channelId);
    expect(before.unreadCount).toBe(3);
    const third = before.lastSeq;

    expect(ok(await s.gql(MARK, { c: channelId, seq: third - 1 }, alice.token)).markChannelRead.lastReadSeq).toBe(third - 1);
    expect((await readChannel(alice.token, channelId)).unreadCount).toBe(1);
    expect(ok(await s.gql(MARK, { c: channelId, seq: 1 }, alice.token)).markChannelRead.lastReadSeq).toBe(third - 1);
    expect((await readChannel(alice.token, channelId)).membership!.lastReadSeq).toBe(third - 1);

    const lastSeq = (await readChannel(alice.token, channelId)).lastSeq;
    expect(ok(await s.gql(MARK, { c: channelId, seq: 1_000_000 }, alice.token)).markChannelRead.lastReadSeq).toBe(lastSeq);
    const after = await readChannel(alice.token, channelId);
    expect(after.unreadCount).toBe(0);
    expect(after.membership!.lastReadSeq).toBe(lastSeq);
    expect(await code(MARK, { c: channelId, seq: -1 }, alice.token)).toBe('BAD_USER_INPUT');
  });

  it('marking read logs a receipt only when the marker passes a message, so members marking read do not answer each other forever', async () => {
    const { alice, bob, channelId } = await groupSetup();
    await send(s, bob.token, channelId, 'ping');
    const lastSeqs: number[] = [];
    for (let round = 0; round < 3; round++) {
      for (const user of [alice, bob]) {
        const { lastSeq } = await readChannel(user.token, channelId);
        expect(ok(await s.gql(MARK, { c: channelId, seq: lastSeq }, user.token)).markChannelRead.lastReadSeq).toBe(lastSeq);
      }
      lastSeqs.push((await readChannel(alice.token, channelId)).lastSeq);
    }
    expect(lastSeqs[1]).toBe(lastSeqs[0]);
    expect(lastSeqs[2]).toBe(lastSeqs[0]);
  });
});

describe.concurrent('clients and external project members', () => {
  async function projectSetup(): Promise<{ org: TestOrg; client: TestUser; projectId: string; channelId: string }> {
    const org = await registerOrg(s);
    const client = await createUser(s, org, 'CLIENT');
    const projectId = await createProject(s, org.owner.token);
    const channelId = await createChannel(s, org.owner.token, { kind: 'PROJECT', projectId });
    return { org, client, projectId, channelId };
  }

  it('a client without project access cannot be added to the project\u2019s channel', async () => {
    const { org, client, channelId } = await projectSetup();
    expect(await code(ADD, { c: channelId, u: [client.id] }, org.owner.token)).toBe('FORBIDDEN');
    expect(await code(CHANNEL, { id: channelId }, client.token)).toBe('NOT_FOUND');
    expect(await code(SEND, { input: { channelId, body: 'hello?' } }, client.token)).toBe('NOT_FOUND');
    const group = await createChannel(s, org.owner.token);
    expect(await code(ADD, { c: group, u: [client.id] }, org.owner.token)).toBe('FORBIDDEN');
    expect(await code(CREATE, { input: { kind: 'GROUP', name: 'with client', memberIds: [client.id] } }, org.owner.token)).toBe(
      'FORBIDDEN',
    );
  });

  it('a client with access reads and posts; revoking access removes them and keeps them out', async () => {
    const { org, client, projectId, channelId } = await projectSetup();
    await grantAccess(s, org.owner.token, projectId, client.id, 'CLIENT');
    ok(await s.gql(ADD, { c: channelId, u: [client.id] }, org.owner.token));
    const message = await send(s, client.token, channelId, 'hello from the client');
    expect(await listIds(client.token)).toEqual([channelId]);

    ok(await s.gql(REVOKE, { p: projectId, u: client.id }, org.owner.token));
    expect(await code(CHANNEL, { id: channelId }, client.token)).toBe('NOT_FOUND');
    expect(await code(MESSAGE, { id: message.id }, client.token)).toBe('NOT_FOUND');
    expect(await code(SEND, { input: { channelId, body: 'still here?' } }, client.token)).toBe('NOT_FOUND');
    expect(await listIds(client.token)).toEqual([]);
    expect(memberIds(await readChannel(org.owner.token, channelId))).not.toContain(client.id);

    // A new grant does not bring the old membership back.
    await grantAccess(s, org.owner.token, projectId, client.id, 'CLIENT');
    expect(await code(CHANNEL, { id: channelId }, client.token)).toBe('NOT_FOUND');
  });

  it('canComment: false and the VIEWER role make a client read-only', async () => {
    const { org, client, projectId, channelId } = await projectSetup();
    await send(s, org.owner.token, channelId, 'for the client');
    await grantAccess(s, org.owner.token, projectId, client.id, 'CLIENT', false);
    ok(await s.gql(ADD, { c: channelId, u: [client.id] }, org.owner.token));
    expect((await readChannel(client.token, channelId)).messages.edges.map((e) => e.node.body)).toEqual(['for the client']);
    expect(await code(SEND, { input: { channelId, body: 'no' } }, client.token)).toBe('FORBIDDEN');

    await grantAccess(s, org.owner.token, projectId, client.id, 'VIEWER', true);
    expect((await readChannel(client.token, channelId)).messages.edges).toHaveLength(1);
    expect(await code(SEND, { input: { channelId, body: 'still no' } }, client.token)).toBe('FORBIDDEN');

    await grantAccess(s, org.owner.token, projectId, client.id, 'CLIENT', true);
    expect((await send(s, client.token, channelId, 'now yes')).body).toBe('now yes');
  });

  it('an external PM with canComment posts in the project channel', async () => {
    const { org, client: pm, projectId, channelId } = await projectSetup();
    await grantAccess(s, org.owner.token, projectId, pm.id, 'EXTERNAL_PM', true);
    ok(await s.gql(ADD, { c: channelId, u: [pm.id] }, org.owner.token));
    expect((await send(s, pm.token, channelId, 'status update')).body).toBe('status update');
  });

  it('clients cannot create channels or open DMs', async () => {
    const { org, client, projectId } = await projectSetup();
    await grantAccess(s, org.owner.token, projectId, client.id, 'CLIENT');
    expect(await code(CREATE, { input: { kind: 'GROUP', name: 'mine' } }, client.token)).toBe('FORBIDDEN');
    expect(await code(CREATE, { input: { kind: 'PROJECT', name: 'mine', projectId } }, client.token)).toBe('FORBIDDEN');
    expect(await code(DM, { u: [org.owner.id] }, client.token)).toBe('FORBIDDEN');
    expect(await code(DM, { u: [client.id] }, org.owner.token)).toBe('FORBIDDEN');
  });
});
