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
import { graphql } from './generated/index.ts';
import type { AuditEventFilter } from './generated/graphql.ts';

let s: TestServer;
let org: TestOrg;
let member: TestUser;
let other: TestUser;
let admin: TestUser;
beforeAll(async () => {
  s = await startServer();
  org = await registerOrg(s);
  [member, other, admin] = await Promise.all([createUser(s, org), createUser(s, org), createUser(s, org, 'ADMIN')]);
});
afterAll(async () => {
  await s?.stop();
});

const TRAIL = graphql(`
  query AuditTrailEvents($filter: AuditEventFilter, $first: Int) {
    auditEvents(filter: $filter, first: $first) {
      edges {
        node {
          id
          action
          actorId
          targetType
          targetId
          data
          createdAt
        }
      }
    }
  }
`);
const UPDATE_CHANNEL = graphql(`
  mutation AuditTrailUpdateChannel($input: UpdateChannelInput!) {
    updateChannel(input: $input) {
      id
    }
  }
`);
const ADD_MEMBERS = graphql(`
  mutation AuditTrailAddMembers($c: ID!, $u: [ID!]!, $role: ChannelMemberRole) {
    addChannelMembers(channelId: $c, userIds: $u, role: $role) {
      id
    }
  }
`);
const REMOVE_MEMBER = graphql(`
  mutation AuditTrailRemoveMember($c: ID!, $u: ID!) {
    removeChannelMember(channelId: $c, userId: $u) {
      id
    }
  }
`);
const LEAVE = graphql(`
  mutation AuditTrailLeave($c: ID!) {
    leaveChannel(channelId: $c)
  }
`);
const ARCHIVE = graphql(`
  mutation AuditTrailArchive($c: ID!) {
    archiveChannel(channelId: $c) {
      id
    }
  }
`);
const UNARCHIVE = graphql(`
  mutation AuditTrailUnarchive($c: ID!) {
    unarchiveChannel(channelId: $c) {
      id
    }
  }
`);
const REVOKE_ACCESS = graphql(`
  mutation AuditTrailRevokeAccess($p: ID!, $u: ID!) {
    revokeProjectAccess(projectId: $p, userId: $u)
  }
`);
const CREATE_OPEN_CHANNEL = graphql(`
  mutation AuditTrailCreateOpenChannel($input: CreateChannelInput!) {
    createChannel(input: $input) {
      id
    }
  }
`);
const JOIN = graphql(`
  mutation AuditTrailJoin($c: ID!) {
    joinChannel(channelId: $c) {
      id
    }
  }
`);
const OPEN_DIRECT = graphql(`
  mutation AuditTrailOpenDirect($u: [ID!]!) {
    openDirectChannel(userIds: $u) {
      id
    }
  }
`);
const DELETE = graphql(`
  mutation AuditTrailDelete($input: DeleteMessageInput!) {
    deleteMessage(input: $input) {
      hard
      messageId
    }
  }
`);
const MESSAGE = graphql(`
  query AuditTrailMessage($id: ID!) {
    node(id: $id) {
      ... on Message {
        body
        deleted
        deletedAt
        deletedBy {
          id
        }
      }
    }
  }
`);
const PIN = graphql(`
  mutation AuditTrailPin($m: ID!) {
    pinMessage(messageId: $m) {
      id
    }
  }
`);
const UNPIN = graphql(`
  mutation AuditTrailUnpin($m: ID!) {
    unpinMessage(messageId: $m) {
      id
    }
  }
`);
const LOGIN = graphql(`
  mutation AuditTrailLogin($o: String!, $u: String!, $p: String!) {
    login(organization: $o, username: $u, password: $p) {
      token
    }
  }
`);

/** The raw id inside a global ID, as audit entries store the ids they mention in `data`. */
const rawId = (globalId: string) => Buffer.from(globalId, 'base64').toString().split(':')[1]!;

type Entry = {
  id: string;
  action: string;
  actorId?: string | null;
  targetType: string;
  targetId: string;
  data?: unknown;
  createdAt: unknown;
};

/** The entries an admin of `org` reads for `filter`, newest first. */
async function trail(filter: AuditEventFilter, token = org.owner.token): Promise<Entry[]> {
  return ok(await s.gql(TRAIL, { filter, first: 100 }, token)).auditEvents.edges.map((e) => e.node as Entry);
}

describe('audit trail: channels and memberships', () => {
  it('records creation, the fields an update changed, additions, removals, leaving, archiving and unarchiving', async () => {
    const secretTopic = `topic-${uid()}`;
    const channel = await createChannel(s, member.token, { memberIds: [other.id] });
    ok(await s.gql(UPDATE_CHANNEL, { input: { channelId: channel, name: `renamed-${uid()}`, topic: secretTopic } }, member.token));
    ok(await s.gql(ADD_MEMBERS, { c: channel, u: [admin.id], role: 'ADMIN' }, member.token));
    // Adding a member twice changes nothing and records nothing.
    ok(await s.gql(ADD_MEMBERS, { c: channel, u: [admin.id] }, member.token));
    ok(await s.gql(REMOVE_MEMBER, { c: channel, u: admin.id }, member.token));
    ok(await s.gql(LEAVE, { c: channel }, other.token));
    ok(await s.gql(ARCHIVE, { c: channel }, member.token));
    ok(await s.gql(UNARCHIVE, { c: channel }, org.owner.token));

    const entries = await trail({ targetId: channel });
    expect(entries.map((e) => [e.action, e.actorId])).toEqual([
      ['channel.unarchive', org.owner.id],
      ['channel.archive', member.id],
      ['channel.leave', other.id],
      ['channel.removeMember', member.id],
      ['channel.addMembers', member.id],
      ['channel.update', member.id],
      ['channel.create', member.id],
    ]);
    for (const e of entries) expect([e.targetType, e.targetId]).toEqual(['Channel', channel]);
    const [, , left, removed, added, updated, created] = entries;
    expect(created!.data).toMatchObject({ kind: 'GROUP', memberIds: [rawId(member.id), rawId(other.id)] });
    expect(updated!.data).toEqual({ fields: ['name', 'topic'] });
    expect(added!.data).toEqual({ userIds: [rawId(admin.id)], role: 'ADMIN' });
    expect(removed!.data).toEqual({ userId: rawId(admin.id) });
    expect(left!.data).toEqual({ userId: rawId(other.id) });
    // The update says which settings changed, not what they now say.
    expect(JSON.stringify(entries)).not.toContain(secretTopic);
  });

  it('records a client leaving a project\u2019s channels when their access is revoked', async () => {
    const project = await createProject(s, org.owner.token);
    const client = await createUser(s, org, 'CLIENT');
    await grantAccess(s, org.owner.token, project, client.id);
    const channel = await createChannel(s, org.owner.token, { kind: 'PROJECT', projectId: project, memberIds: [client.id] });
    expect(ok(await s.gql(REVOKE_ACCESS, { p: project, u: client.id }, org.owner.token)).revokeProjectAccess).toBe(true);
    const [removed] = await trail({ targetId: channel });
    expect(removed).toMatchObject({
      action: 'channel.removeMember',
      actorId: org.owner.id,
      data: { userId: rawId(client.id), reason: 'PROJECT_ACCESS_REVOKED' },
    });
  });

  it('records joining an open channel and opening a direct conversation', async () => {
    const open = ok(await s.gql(CREATE_OPEN_CHANNEL, { input: { kind: 'GROUP', name: `o-${uid()}`, visibility: 'PUBLIC' } }, member.token))
      .createChannel.id;
    ok(await s.gql(JOIN, { c: open }, other.token));
    ok(await s.gql(JOIN, { c: open }, other.token));
    expect((await trail({ targetId: open })).map((e) => [e.action, e.actorId, e.data])).toEqual([
      ['channel.join', other.id, { userId: rawId(other.id) }],
      ['channel.create', member.id, expect.objectContaining({ visibility: 'PUBLIC' })],
    ]);

    const third = await createUser(s, org);
    const direct = ok(await s.gql(OPEN_DIRECT, { u: [third.id] }, member.token)).openDirectChannel.id;
    // Opening it again returns the same conversation: no second entry.
    ok(await s.gql(OPEN_DIRECT, { u: [member.id] }, third.token));
    expect((await trail({ targetId: direct })).map((e) => [e.action, e.actorId, e.data])).toEqual([
      ['channel.create', member.id, { kind: 'DIRECT', memberIds: [rawId(member.id), rawId(third.id)].sort() }],
    ]);
  });
});

describe('audit trail: messages', () => {
  it('records soft and hard deletes (who, when, whose) without the body; admins see deletedBy', async () => {
    const channel = await createChannel(s, member.token, { memberIds: [other.id, admin.id] });
    const body = `confidential-${uid()}`;
    const message = (await send(s, member.token, channel, body)).id;
    ok(await s.gql(DELETE, { input: { id: message } }, member.token));

    const [soft] = await trail({ targetId: message });
    expect(soft).toMatchObject({
      action: 'message.delete',
      actorId: member.id,
      targetType: 'Message',
      targetId: message,
      data: { channelId: rawId(channel), senderId: rawId(member.id), wasDeleted: false },
    });

    // Who deleted it: admins see it; other readers see that and when, not who.
    const asAdmin = ok(await s.gql(MESSAGE, { id: message }, admin.token)).node;
    expect(asAdmin).toMatchObject({ deleted: true, deletedBy: { id: member.id } });
    expect(asAdmin && 'deletedAt' in asAdmin && asAdmin.deletedAt).toEqual(expect.any(String));
    expect(ok(await s.gql(MESSAGE, { id: message }, other.token)).node).toMatchObject({ deleted: true, deletedBy: null, body: null });

    ok(await s.gql(DELETE, { input: { id: message, hard: true } }, admin.token));
    // The message is gone for good; its trail stays, and its id still filters it.
    const entries = await trail({ targetId: message });
    expect(entries.map((e) => [e.action, e.actorId])).toEqual([
      ['message.hardDelete', admin.id],
      ['message.delete', member.id],
    ]);
    expect(entries[0]!.data).toEqual({ channelId: rawId(channel), senderId: rawId(member.id), wasDeleted: true });
    expect(JSON.stringify(await trail({ targetId: channel }))).not.toContain(body);
    expect(JSON.stringify(entries)).not.toContain(body);
  });

  it('records pins and unpins', async () => {
    const channel = await createChannel(s, member.token, { memberIds: [admin.id] });
    const message = (await send(s, member.token, channel, 'pin me')).id;
    ok(await s.gql(PIN, { m: message }, member.token));
    ok(await s.gql(PIN, { m: message }, member.token));
    ok(await s.gql(UNPIN, { m: message }, admin.token));
    expect((await trail({ targetId: message })).map((e) => [e.action, e.actorId, e.data])).toEqual([
      ['message.unpin', admin.id, { channelId: rawId(channel) }],
      ['message.pin', member.id, { channelId: rawId(channel) }],
    ]);
  });
});

describe('audit trail: sign-ins', () => {
  it('records successful and failed sign-ins with the address, never the password', async () => {
    const user = await createUser(s, org);
    const wrong = `wrong-${uid()}`;
    ok(await s.gql(LOGIN, { o: org.slug, u: user.username, p: 'password123' }));
    expect(errorCode(await s.gql(LOGIN, { o: org.slug, u: user.username, p: wrong }))).toBe('UNAUTHENTICATED');

    const entries = await trail({ targetId: user.id });
    const [failed, succeeded] = entries.filter((e) => e.action.startsWith('session.signIn'));
    expect(failed).toMatchObject({ action: 'session.signInFailed', actorId: null, targetType: 'User', data: { reason: 'WRONG_PASSWORD' } });
    expect(succeeded).toMatchObject({ action: 'session.signIn', actorId: user.id, targetType: 'User' });
    for (const e of [failed!, succeeded!]) expect((e.data as { ip: unknown }).ip).toEqual(expect.stringMatching(/\S/));
    expect(JSON.stringify(entries)).not.toContain(wrong);
  });

  it('records a failed sign-in of an unknown username against the organization, with the name tried', async () => {
    const username = `nobody-${uid()}`;
    expect(errorCode(await s.gql(LOGIN, { o: org.slug, u: username, p: 'password123' }))).toBe('UNAUTHENTICATED');
    const [entry, ...rest] = (await trail({ action: 'session.signInFailed' })).filter(
      (e) => (e.data as { username?: string }).username === username,
    );
    expect(rest).toEqual([]);
    expect(entry).toMatchObject({ actorId: null, targetType: 'Organization', data: { username, reason: 'UNKNOWN_USER' } });
    expect(JSON.stringify(entry)).not.toContain('password123');
  });
});

describe('audit trail: filters and who may read it', () => {
  it('filters by date range (from inclusive, to exclusive), actor and action', async () => {
    const channel = await createChannel(s, member.token);
    ok(await s.gql(ARCHIVE, { c: channel }, member.token));
    const [archived, created] = await trail({ targetId: channel });
    const at = (e: Entry) => new Date(e.createdAt as string);
    const plus = (d: Date, ms: number) => new Date(d.getTime() + ms).toISOString();

    const first = await trail({ targetId: channel, from: at(created!).toISOString(), to: plus(at(created!), 1) });
    expect(first.map((e) => e.action)).toContain('channel.create');
    for (const e of first) expect(at(e).getTime()).toBe(at(created!).getTime());
    expect(await trail({ targetId: channel, to: at(created!).toISOString() })).toEqual([]);
    expect(await trail({ targetId: channel, from: plus(at(archived!), 1) })).toEqual([]);
    expect(await trail({ targetId: channel, from: plus(new Date(), 3_600_000) })).toEqual([]);
    expect(errorCode(await s.gql(TRAIL, { filter: { from: plus(new Date(), 1), to: new Date().toISOString() } }, org.owner.token))).toBe(
      'BAD_USER_INPUT',
    );

    const byActor = await trail({ actorId: member.id });
    expect(byActor.length).toBeGreaterThanOrEqual(2);
    expect(new Set(byActor.map((e) => e.actorId))).toEqual(new Set([member.id]));
    expect(byActor.map((e) => e.targetId)).toContain(channel);

    const byAction = await trail({ action: 'channel.archive', actorId: member.id });
    expect(byAction.map((e) => e.action)).toEqual(byAction.map(() => 'channel.archive'));
    expect(byAction.map((e) => e.targetId)).toContain(channel);
  });

  it('is FORBIDDEN to members; admins read it', async () => {
    expect(errorCode(await s.gql(TRAIL, {}, member.token))).toBe('FORBIDDEN');
    expect((await trail({ actorId: member.id }, admin.token)).length).toBeGreaterThan(0);
  });

  it('never shows another organization\u2019s entries: its ids are NOT_FOUND like missing ones', async () => {
    const channel = await createChannel(s, member.token);
    const message = (await send(s, member.token, channel, 'hello')).id;
    ok(await s.gql(DELETE, { input: { id: message } }, member.token));
    const otherOrg = await registerOrg(s);
    expect(errorCode(await s.gql(TRAIL, { filter: { targetId: channel } }, otherOrg.owner.token))).toBe('NOT_FOUND');
    expect(errorCode(await s.gql(TRAIL, { filter: { targetId: message } }, otherOrg.owner.token))).toBe('NOT_FOUND');
    expect(errorCode(await s.gql(TRAIL, { filter: { actorId: member.id } }, otherOrg.owner.token))).toBe('NOT_FOUND');
    const theirs = await trail({}, otherOrg.owner.token);
    expect(theirs.map((e) => e.action)).toEqual(['organization.register']);
    // Their unknown-username failures land in their organization only.
    const username = `nobody-${uid()}`;
    expect(errorCode(await s.gql(LOGIN, { o: otherOrg.slug, u: username, p: 'x' }))).toBe('UNAUTHENTICATED');
    expect(JSON.stringify(await trail({ action: 'session.signInFailed' }))).not.toContain(username);
  });
});

describe('audit trail: export', () => {
  const exportUrl = (params: Record<string, string>) => {
    const url = new URL('/audit/export', s.url);
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    return url;
  };
  const get = (params: Record<string, string>, token?: string) =>
    fetch(exportUrl(params), { headers: token ? { authorization: `Bearer ${token}` } : {} });

  it('streams the organization\u2019s entries as NDJSON, oldest first, as auditEvents shows them', async () => {
    const channel = await createChannel(s, member.token);
    ok(await s.gql(ARCHIVE, { c: channel }, member.token));
    const [archived, created] = await trail({ targetId: channel });
    const from = created!.createdAt as string;
    const to = new Date(new Date(archived!.createdAt as string).getTime() + 1).toISOString();

    const res = await get({ from, to }, admin.token);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    const lines = (await res.text()).split('\n');
    expect(lines.pop()).toBe('');
    const entries = lines.map((l) => JSON.parse(l) as Entry);
    // Everything in the range, and nothing outside it.
    const inRange = await trail({ from, to });
    expect(entries).toEqual([...inRange].reverse());
    expect(entries.map((e) => e.action)).toEqual(expect.arrayContaining(['channel.create', 'channel.archive']));

    const archives = (await (await get({ from, to, action: 'channel.archive' }, admin.token)).text()).trim().split('\n');
    expect(archives.map((l) => (JSON.parse(l) as Entry).action)).toEqual(archives.map(() => 'channel.archive'));
  });

  it('reads in batches without skipping or repeating an entry', async () => {
    const viewer = await s.app.services.auth.viewerFromToken(admin.token);
    const filter = { target: null, actorId: null, action: null, from: null, to: null };
    const read = async (batch: number) => {
      const ids: string[] = [];
      for await (const rows of s.app.services.audit.batches(viewer!, filter, batch)) ids.push(...rows.map((r) => r.id));
      return ids;
    };
    const whole = await read(10_000);
    expect(whole.length).toBeGreaterThan(3);
    expect(await read(2)).toEqual(whole);
    expect(await read(whole.length)).toEqual(whole);
  });

  it('is for owners and admins of the organization only, and refuses a bad range', async () => {
    expect((await get({})).status).toBe(401);
    expect((await get({}, 'not-a-token')).status).toBe(401);
    expect((await get({}, member.token)).status).toBe(403);
    expect((await get({ from: 'yesterday' }, admin.token)).status).toBe(400);
    expect((await get({ from: new Date(Date.now() + 1000).toISOString(), to: new Date().toISOString() }, admin.token)).status).toBe(400);

    const otherOrg = await registerOrg(s);
    const theirs = (await (await get({}, otherOrg.owner.token)).text()).trim().split('\n');
    expect(theirs.map((l) => (JSON.parse(l) as Entry).action)).toEqual(['organization.register']);
  });
});
