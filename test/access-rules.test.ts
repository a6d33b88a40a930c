import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Prisma, type PrismaClient } from '../src/generated/prisma/client.ts';
import { ChannelKind, ChannelMemberRole, Role, type ProjectRole } from '../src/generated/prisma/enums.ts';
import {
  browsableChannelWhere,
  channelAccess,
  listedUserWhere,
  mayBrowseChannel,
  mayListUser,
  mayManageChannel,
  mayReadAuditEntry,
  mayReadChannel,
  mayReadChannelMember,
  mayReadClientRequest,
  mayReadMessage,
  mayReadMessageEdit,
  mayReadNotification,
  mayReadProject,
  mayReadProjectAccess,
  mayReadSupportTicket,
  mayReadUser,
  mayWriteChannel,
  mayWriteSql,
  readableAuditWhere,
  readableChangeOrderWhere,
  readableChannelMemberWhere,
  readableChannelWhere,
  readableClientRequestWhere,
  readableMessageEditWhere,
  readableMessageWhere,
  readableNotificationWhere,
  readableProjectAccessWhere,
  readableProjectWhere,
  readableSupportTicketWhere,
  readableUserWhere,
  userMayReadChannelSql,
  type BrowseStanding,
  type ChannelStanding,
} from '../src/services/access.ts';
import type { Viewer } from '../src/services/viewer.ts';
import { startServer, uid, type TestServer } from './helpers/app.ts';

// Every rule in src/services/access.ts has a JS form (a predicate over loaded
// rows) and a SQL form (a Prisma where, or mayWriteSql). This table builds one
// channel per combination of viewer organization × viewer role × channel kind
// (with and without a project where a kind may have one) × the viewer's
// membership × the viewer's grant on the channel's project × archived, in a
// real database, and checks that both forms pick the same rows. A few
// outcomes are also asserted outright, so both forms being wrong the same way
// fails too.

const ROLES = Object.values(Role);
const KINDS = Object.values(ChannelKind);
const MEMBERSHIPS = [null, ...Object.values(ChannelMemberRole)] as const;
/** The viewer's grant on a project: none, a full one, one without comments, a read-only one that says it may comment. */
const GRANTS = [
  null,
  { role: 'CLIENT', canComment: true },
  { role: 'EXTERNAL_PM', canComment: false },
  { role: 'VIEWER', canComment: true },
] as const satisfies readonly ({ role: ProjectRole; canComment: boolean } | null)[];
type Grant = (typeof GRANTS)[number];
/** Kinds that may belong to a project: PROJECT and REQUEST always, GROUP and SUPPORT optionally, DIRECT never. */
const SHAPES = KINDS.flatMap((kind): { kind: ChannelKind; project: boolean }[] =>
  kind === 'DIRECT'
    ? [{ kind, project: false }]
    : kind === 'PROJECT' || kind === 'REQUEST'
      ? [{ kind, project: true }]
      : [
          { kind, project: false },
          { kind, project: true },
        ],
);

interface Combo {
  viewer: Viewer;
  home: boolean;
  kind: ChannelKind;
  project: boolean;
  membership: ChannelMemberRole | null;
  grant: Grant;
  archived: boolean;
  channelId: string;
  messageId: string;
  peerId: string;
  peerMemberId: string;
  standing: ChannelStanding;
}

let s: TestServer;
let db: PrismaClient;
let home: string;
let away: string;
const viewers: { viewer: Viewer; home: boolean }[] = [];
const combos: Combo[] = [];
/** Per viewer, one project per grant state (index into GRANTS). */
const projectsOf = new Map<string, string[]>();

const label = (c: Combo) =>
  `${c.home ? 'home' : 'foreign'} ${c.viewer.role} in ${c.kind}${c.project ? '+project' : ''} as ${c.membership ?? 'non-member'}, grant ${c.grant ? `${c.grant.role}${c.grant.canComment ? '+comment' : ''}` : 'none'}${c.archived ? ', archived' : ''}`;

beforeAll(async () => {
  s = await startServer();
  db = s.app.services.prisma;
  const tag = uid();
  const organization = async (name: string) =>
    (await db.organization.create({ data: { name: `${name} ${tag}`, slug: `${name}-${tag}` } })).id;
  [home, away] = await Promise.all([organization('home'), organization('away')]);
  const users: Prisma.UserCreateManyInput[] = [];
  const user = (organizationId: string, role: Role) => {
    const id = randomUUID();
    users.push({ id, organizationId, role, username: `u-${id}`, displayName: 'u', passwordHash: 'x' });
    return id;
  };
  for (const [org, isHome] of [
    [home, true],
    [away, false],
  ] as const) {
    for (const role of ROLES) {
      const id = user(org, role);
      viewers.push({ viewer: { id, organizationId: org, role, username: `u-${id}`, displayName: 'u' }, home: isHome });
    }
  }
  // Every row the table reads lives in the home organization; foreign viewers
  // get memberships and grants there anyway (the API never makes those), so
  // the organization check is what keeps them out.
  const projects: Prisma.ProjectCreateManyInput[] = [];
  const grants: Prisma.ProjectAccessCreateManyInput[] = [];
  for (const { viewer } of viewers) {
    const ids = GRANTS.map((grant) => {
      const id = randomUUID();
      projects.push({ id, organizationId: home, name: `p-${id}` });
      if (grant) grants.push({ organizationId: home, projectId: id, userId: viewer.id, ...grant });
      return id;
    });
    projectsOf.set(viewer.id, ids);
  }
  const channels: Prisma.ChannelCreateManyInput[] = [];
  const members: Prisma.ChannelMemberCreateManyInput[] = [];
  const messages: Prisma.MessageCreateManyInput[] = [];
  const archivedAt = new Date();
  for (const { viewer, home: isHome } of viewers) {
    for (const shape of SHAPES) {
      for (const [g, grant] of (shape.project ? GRANTS : [null]).entries()) {
        for (const membership of MEMBERSHIPS) {
          for (const archived of [false, true]) {
            const channelId = randomUUID();
            const messageId = randomUUID();
            const peerId = user(home, 'MEMBER');
            const peerMemberId = randomUUID();
            const projectId = shape.project ? projectsOf.get(viewer.id)![g]! : null;
            channels.push({
              id: channelId,
              organizationId: home,
              kind: shape.kind,
              projectId,
              name: `c-${channelId}`,
              archivedAt: archived ? archivedAt : null,
              lastSeq: 1,
            });
            members.push({ id: peerMemberId, channelId, userId: peerId, role: 'MEMBER' });
            if (membership) members.push({ channelId, userId: viewer.id, role: membership });
            messages.push({ id: messageId, organizationId: home, channelId, seq: 1, senderId: peerId, body: 'probe' });
            combos.push({
              viewer,
              home: isHome,
              kind: shape.kind,
              project: shape.project,
              membership,
              grant,
              archived,
              channelId,
              messageId,
              peerId,
              peerMemberId,
              standing: {
                channel: { organizationId: home, kind: shape.kind, archivedAt: archived ? archivedAt : null },
                member: membership ? { role: membership } : null,
                projectAccess: grant,
              },
            });
          }
        }
      }
    }
  }
  await db.user.createMany({ data: users });
  await db.project.createMany({ data: projects });
  await db.projectAccess.createMany({ data: grants });
  await db.channel.createMany({ data: channels });
  await db.channelMember.createMany({ data: members });
  await db.message.createMany({ data: messages });
});
afterAll(async () => {
  await s?.stop();
});

/** The ids among `ids` a where form selects, per viewer: one query per viewer. */
async function selected(
  per: (viewer: Viewer, ids: string[]) => Promise<{ id: string }[]>,
  idOf: (c: Combo) => string,
): Promise<Set<string>> {
  const byViewer = new Map<Viewer, Combo[]>();
  for (const c of combos) byViewer.set(c.viewer, [...(byViewer.get(c.viewer) ?? []), c]);
  const rows = await Promise.all([...byViewer].map(([viewer, mine]) => per(viewer, mine.map(idOf))));
  return new Set(rows.flat().map((r) => r.id));
}

/** Each combination where the JS and SQL forms disagree, named. */
function disagreements(js: (c: Combo) => boolean, sql: Set<string>, idOf: (c: Combo) => string): string[] {
  return combos.filter((c) => js(c) !== sql.has(idOf(c))).map((c) => `${label(c)}: JS ${js(c)}, SQL ${sql.has(idOf(c))}`);
}

const find = (
  want: Partial<Pick<Combo, 'home' | 'kind' | 'project' | 'membership' | 'archived'>> & { role: Role; grant?: ProjectRole | null },
) => {
  const match = combos.find(
    (c) =>
      c.viewer.role === want.role &&
      c.home === (want.home ?? true) &&
      (want.kind === undefined || c.kind === want.kind) &&
      (want.project === undefined || c.project === want.project) &&
      (want.membership === undefined || c.membership === want.membership) &&
      (want.grant === undefined || (c.grant?.role ?? null) === want.grant) &&
      c.archived === (want.archived ?? false),
  );
  if (!match) throw new Error(`no combination ${JSON.stringify(want)}`);
  return match;
};

describe('access rules: JS and SQL forms agree', () => {
  it('builds the whole table', () => {
    // 2 organizations × 5 roles × (3 project-less shapes × 1 + 4 project shapes × 4 grants) × 5 memberships × 2 archived states.
    expect(combos).toHaveLength(2 * ROLES.length * (3 + 4 * GRANTS.length) * MEMBERSHIPS.length * 2);
    expect(combos).toHaveLength(1900);
  });

  it('read a channel: mayReadChannel and readableChannelWhere', async () => {
    const sql = await selected(
      (viewer, ids) => db.channel.findMany({ where: { id: { in: ids }, ...readableChannelWhere(viewer) }, select: { id: true } }),
      (c) => c.channelId,
    );
    expect(
      disagreements(
        (c) => mayReadChannel(c.viewer, c.standing),
        sql,
        (c) => c.channelId,
      ),
    ).toEqual([]);
    expect(sql.size).toBeGreaterThan(0);
  });

  it('post in a channel: mayWriteChannel and mayWriteSql', async () => {
    const sql = await selected(
      (viewer, ids) =>
        db.$queryRaw<{ id: string }[]>`SELECT c.id FROM "Channel" c WHERE c.id = ANY(${ids}::uuid[]) AND ${mayWriteSql(viewer)}`,
      (c) => c.channelId,
    );
    expect(
      disagreements(
        (c) => mayWriteChannel(c.viewer, c.standing),
        sql,
        (c) => c.channelId,
      ),
    ).toEqual([]);
    expect(sql.size).toBeGreaterThan(0);
  });

  it('read a channel, for another user (mentions): mayReadChannel and userMayReadChannelSql', async () => {
    const sql = await selected(
      (viewer, ids) =>
        db.$queryRaw<{ id: string }[]>`
          SELECT c.id FROM "Channel" c JOIN "User" u ON u.id = ${viewer.id}::uuid
          WHERE c.id = ANY(${ids}::uuid[]) AND ${userMayReadChannelSql('u', 'c')}`,
      (c) => c.channelId,
    );
    expect(
      disagreements(
        (c) => mayReadChannel(c.viewer, c.standing),
        sql,
        (c) => c.channelId,
      ),
    ).toEqual([]);
    expect(sql.size).toBeGreaterThan(0);
  });

  it('read a message: mayReadMessage and readableMessageWhere', async () => {
    const sql = await selected(
      (viewer, ids) => db.message.findMany({ where: { id: { in: ids }, ...readableMessageWhere(viewer) }, select: { id: true } }),
      (c) => c.messageId,
    );
    expect(
      disagreements(
        (c) => mayReadMessage(c.viewer, { organizationId: home }, c.standing),
        sql,
        (c) => c.messageId,
      ),
    ).toEqual([]);
  });

  it('read a message’s earlier versions: mayReadMessageEdit and readableMessageEditWhere, deleted messages included', async () => {
    // In each viewer's channels where they are a MEMBER or none: one live and one deleted message, each with an edit.
    const picked = combos.filter((c) => c.membership === 'MEMBER' || c.membership === null);
    const messages: Prisma.MessageCreateManyInput[] = [];
    const edits: Prisma.MessageEditCreateManyInput[] = [];
    const cases: { combo: Combo; editId: string; deletedAt: Date | null }[] = [];
    for (const combo of picked) {
      for (const deletedAt of [null, new Date()]) {
        const messageId = randomUUID();
        const editId = randomUUID();
        messages.push({
          id: messageId,
          organizationId: home,
          channelId: combo.channelId,
          seq: deletedAt ? 3 : 2,
          senderId: combo.peerId,
          body: 'b',
          deletedAt,
        });
        edits.push({ id: editId, organizationId: home, messageId, editorId: combo.peerId, previousBody: 'a' });
        cases.push({ combo, editId, deletedAt });
      }
    }
    await db.message.createMany({ data: messages });
    await db.messageEdit.createMany({ data: edits });
    const byViewer = new Map<Viewer, string[]>();
    for (const c of cases) byViewer.set(c.combo.viewer, [...(byViewer.get(c.combo.viewer) ?? []), c.editId]);
    const rows = await Promise.all(
      [...byViewer].map(([viewer, ids]) =>
        db.messageEdit.findMany({ where: { id: { in: ids }, ...readableMessageEditWhere(viewer) }, select: { id: true } }),
      ),
    );
    const sql = new Set(rows.flat().map((r) => r.id));
    const js = (c: (typeof cases)[number]) =>
      mayReadMessageEdit(c.combo.viewer, { organizationId: home, deletedAt: c.deletedAt }, c.combo.standing);
    expect(cases.filter((c) => js(c) !== sql.has(c.editId)).map((c) => `${label(c.combo)}${c.deletedAt ? ', deleted' : ''}`)).toEqual([]);
    // Outright: a member reads a deleted message's history only as an admin.
    const group = (role: Role) =>
      cases.filter(
        (c) =>
          c.combo.home && c.combo.viewer.role === role && c.combo.kind === 'GROUP' && !c.combo.project && c.combo.membership === 'MEMBER',
      );
    expect(group('MEMBER').map((c) => sql.has(c.editId))).toEqual([true, false, true, false]);
    expect(group('ADMIN').map((c) => sql.has(c.editId))).toEqual([true, true, true, true]);
  });

  it('read a membership: mayReadChannelMember and readableChannelMemberWhere', async () => {
    const sql = await selected(
      (viewer, ids) =>
        db.channelMember.findMany({ where: { id: { in: ids }, ...readableChannelMemberWhere(viewer) }, select: { id: true } }),
      (c) => c.peerMemberId,
    );
    expect(
      disagreements(
        (c) => mayReadChannelMember(c.viewer, c.standing),
        sql,
        (c) => c.peerMemberId,
      ),
    ).toEqual([]);
  });

  it('look a user up: mayReadUser and readableUserWhere (each peer is in one channel of the table)', async () => {
    const sql = await selected(
      (viewer, ids) => db.user.findMany({ where: { id: { in: ids }, ...readableUserWhere(viewer) }, select: { id: true } }),
      (c) => c.peerId,
    );
    expect(
      disagreements(
        (c) => mayReadUser(c.viewer, { id: c.peerId, organizationId: home }, [c.standing]),
        sql,
        (c) => c.peerId,
      ),
    ).toEqual([]);
    // And oneself, with no channel at all.
    for (const { viewer } of viewers) {
      const found = await db.user.count({ where: { id: viewer.id, ...readableUserWhere(viewer) } });
      expect(found === 1, `${viewer.role} sees themself`).toBe(mayReadUser(viewer, viewer, []));
      expect(found).toBe(1);
    }
  });

  it('list users: mayListUser and listedUserWhere (the viewers and the peers)', async () => {
    const everyone = [
      ...viewers.map(({ viewer }) => ({ id: viewer.id, organizationId: viewer.organizationId })),
      ...combos.map((c) => ({ id: c.peerId, organizationId: home })),
    ];
    const wrong: string[] = [];
    for (const { viewer, home: isHome } of viewers) {
      const rows = await db.user.findMany({
        where: { id: { in: everyone.map((u) => u.id) }, ...listedUserWhere(viewer) },
        select: { id: true },
      });
      const js = everyone.filter((u) => mayListUser(viewer, u)).map((u) => u.id);
      if (JSON.stringify(js.sort()) !== JSON.stringify(rows.map((r) => r.id).sort()))
        wrong.push(`${isHome ? 'home' : 'foreign'} ${viewer.role}`);
      // Outright: clients list themselves only; the others their whole organization (5 viewers, and the 1900 peers at home).
      const expected = viewer.role === 'CLIENT' ? 1 : isHome ? 5 + combos.length : 5;
      if (rows.length !== expected) wrong.push(`${isHome ? 'home' : 'foreign'} ${viewer.role} lists ${rows.length}, not ${expected}`);
    }
    expect(wrong).toEqual([]);
  });

  it('channelAccess, the loader every channel operation starts with, reads the standing the JS forms are given', async () => {
    const wrong: string[] = [];
    // One query per combination: all of the home organization's, and one role's from another organization.
    const loaded = combos.filter((c) => c.home || c.viewer.role === 'OWNER');
    for (let i = 0; i < loaded.length; i += 50) {
      await Promise.all(
        loaded.slice(i, i + 50).map(async (c) => {
          const expected = {
            canRead: mayReadChannel(c.viewer, c.standing),
            canWrite: mayWriteChannel(c.viewer, c.standing),
            canManage: mayManageChannel(c.viewer, c.standing),
          };
          const loaded = await channelAccess(db, c.viewer, c.channelId).then(
            ({ canRead, canWrite, canManage }) => ({ canRead, canWrite, canManage }),
            // Another organization's channel is NOT_FOUND: no right at all.
            () => ({ canRead: false, canWrite: false, canManage: false }),
          );
          if (JSON.stringify(loaded) !== JSON.stringify(expected))
            wrong.push(`${label(c)}: ${JSON.stringify(loaded)} vs ${JSON.stringify(expected)}`);
        }),
      );
    }
    expect(wrong).toEqual([]);
  });
});

describe('access rules: outcomes stated outright', () => {
  const rights = (c: Combo) => ({
    read: mayReadChannel(c.viewer, c.standing),
    write: mayWriteChannel(c.viewer, c.standing),
    manage: mayManageChannel(c.viewer, c.standing),
  });

  it('members read and post; observers and archived channels only read', () => {
    expect(rights(find({ role: 'MEMBER', kind: 'GROUP', project: false, membership: 'MEMBER' }))).toEqual({
      read: true,
      write: true,
      manage: false,
    });
    expect(rights(find({ role: 'MEMBER', kind: 'GROUP', project: false, membership: 'OBSERVER' }))).toEqual({
      read: true,
      write: false,
      manage: false,
    });
    expect(rights(find({ role: 'MEMBER', kind: 'GROUP', project: false, membership: 'MEMBER', archived: true }))).toEqual({
      read: true,
      write: false,
      manage: false,
    });
    expect(rights(find({ role: 'MEMBER', kind: 'GROUP', project: false, membership: 'ADMIN' }))).toEqual({
      read: true,
      write: true,
      manage: true,
    });
  });

  it('nobody reads a channel they are not in; staff still manage it, except a DM', () => {
    for (const role of ROLES) {
      for (const kind of KINDS) expect(rights(find({ role, kind, membership: null })).read, `${role} ${kind}`).toBe(false);
    }
    expect(rights(find({ role: 'STAFF', kind: 'GROUP', membership: null }))).toEqual({ read: false, write: false, manage: true });
    expect(rights(find({ role: 'OWNER', kind: 'DIRECT', membership: 'OWNER' })).manage).toBe(false);
  });

  it('clients need a grant on the channel\u2019s project, one that allows comments to post; support channels need none', () => {
    expect(rights(find({ role: 'CLIENT', kind: 'PROJECT', membership: 'MEMBER', grant: null }))).toEqual({
      read: false,
      write: false,
      manage: false,
    });
    expect(rights(find({ role: 'CLIENT', kind: 'PROJECT', membership: 'MEMBER', grant: 'CLIENT' }))).toEqual({
      read: true,
      write: true,
      manage: false,
    });
    expect(rights(find({ role: 'CLIENT', kind: 'PROJECT', membership: 'MEMBER', grant: 'VIEWER' }))).toEqual({
      read: true,
      write: false,
      manage: false,
    });
    expect(rights(find({ role: 'CLIENT', kind: 'REQUEST', membership: 'MEMBER', grant: 'EXTERNAL_PM' }))).toEqual({
      read: true,
      write: false,
      manage: false,
    });
    expect(rights(find({ role: 'CLIENT', kind: 'SUPPORT', project: false, membership: 'MEMBER' }))).toEqual({
      read: true,
      write: true,
      manage: false,
    });
    expect(rights(find({ role: 'CLIENT', kind: 'GROUP', project: false, membership: 'OWNER' }))).toEqual({
      read: false,
      write: false,
      manage: false,
    });
    // Staff and members need no grant.
    expect(rights(find({ role: 'MEMBER', kind: 'PROJECT', membership: 'MEMBER', grant: null }))).toEqual({
      read: true,
      write: true,
      manage: false,
    });
  });

  it('a viewer of another organization has no right anywhere, membership and grant notwithstanding', () => {
    const foreign = combos.filter((c) => !c.home);
    expect(foreign.length).toBe(950);
    expect(foreign.filter((c) => Object.values(rights(c)).some(Boolean)).map(label)).toEqual([]);
    expect(
      foreign.filter(
        (c) =>
          mayReadMessage(c.viewer, { organizationId: home }, c.standing) ||
          mayReadUser(c.viewer, { id: c.peerId, organizationId: home }, [c.standing]),
      ),
    ).toEqual([]);
  });

  it('counts: who reads how many channels of the table', () => {
    const readable = (role: Role) => combos.filter((c) => c.home && c.viewer.role === role && mayReadChannel(c.viewer, c.standing)).length;
    // Staff and members: every channel they are in (4 memberships of 190 / 5 combinations each).
    for (const role of ['OWNER', 'ADMIN', 'STAFF', 'MEMBER'] as const) expect(readable(role)).toBe(152);
    // Clients: SUPPORT channels whatever the grant (4 memberships × 2 archived states × (1 + 4 grants)), and the
    // other project channels (PROJECT, REQUEST, GROUP with a project) with one of the 3 grants (3 × 3 × 4 × 2).
    expect(readable('CLIENT')).toBe(40 + 72);
  });
});

describe('access rules: browsing and joining open channels', () => {
  it('mayBrowseChannel and browsableChannelWhere agree per viewer, kind, project grant, visibility, archived state and membership', async () => {
    const channels: Prisma.ChannelCreateManyInput[] = [];
    const members: Prisma.ChannelMemberCreateManyInput[] = [];
    const cases: {
      viewer: Viewer;
      home: boolean;
      kind: ChannelKind;
      grant: Grant;
      project: boolean;
      id: string;
      standing: BrowseStanding;
      label: string;
    }[] = [];
    const archivedAt = new Date();
    for (const { viewer, home: isHome } of viewers) {
      for (const shape of SHAPES) {
        for (const [g, grant] of (shape.project ? GRANTS : [null]).entries()) {
          for (const visibility of ['PRIVATE', 'PUBLIC'] as const) {
            for (const archived of [false, true]) {
              for (const member of [false, true]) {
                const id = randomUUID();
                const projectId = shape.project ? projectsOf.get(viewer.id)![g]! : null;
                const channel = { organizationId: home, kind: shape.kind, projectId, visibility, archivedAt: archived ? archivedAt : null };
                channels.push({ id, name: `b-${id}`, ...channel });
                if (member) members.push({ channelId: id, userId: viewer.id, role: 'MEMBER' });
                cases.push({
                  viewer,
                  home: isHome,
                  kind: shape.kind,
                  grant,
                  project: shape.project,
                  id,
                  standing: { channel, projectAccess: grant },
                  label: `${isHome ? 'home' : 'foreign'} ${viewer.role} in ${visibility} ${shape.kind}${shape.project ? '+project' : ''}${member ? ' as member' : ''}, grant ${grant?.role ?? 'none'}${archived ? ', archived' : ''}`,
                });
              }
            }
          }
        }
      }
    }
    await db.channel.createMany({ data: channels });
    await db.channelMember.createMany({ data: members });
    const byViewer = new Map<Viewer, string[]>();
    for (const c of cases) byViewer.set(c.viewer, [...(byViewer.get(c.viewer) ?? []), c.id]);
    const rows = await Promise.all(
      [...byViewer].map(([viewer, ids]) =>
        db.channel.findMany({ where: { id: { in: ids }, ...browsableChannelWhere(viewer) }, select: { id: true } }),
      ),
    );
    const sql = new Set(rows.flat().map((r) => r.id));
    expect(cases.filter((c) => mayBrowseChannel(c.viewer, c.standing) !== sql.has(c.id)).map((c) => c.label)).toEqual([]);
    // Outright: live PUBLIC GROUP channels only, member or not; clients only those of projects they have a grant on.
    const browsable = (role: Role, home = true) =>
      cases
        .filter((c) => c.home === home && c.viewer.role === role && sql.has(c.id))
        .map(
          (c) =>
            `${c.kind}${c.project ? '+project' : ''} ${c.grant?.role ?? 'none'} ${c.standing.channel.visibility} ${c.standing.channel.archivedAt ? 'archived' : 'live'}`,
        );
    const group = ['GROUP none', 'GROUP+project none', 'GROUP+project CLIENT', 'GROUP+project EXTERNAL_PM', 'GROUP+project VIEWER'].flatMap(
      (g) => [`${g} PUBLIC live`, `${g} PUBLIC live`],
    );
    for (const role of ['OWNER', 'ADMIN', 'STAFF', 'MEMBER'] as const) expect(browsable(role).sort()).toEqual(group.sort());
    expect(browsable('CLIENT').sort()).toEqual(group.filter((g) => g.startsWith('GROUP+project') && !g.includes(' none ')).sort());
    for (const role of ROLES) expect(browsable(role, false)).toEqual([]);
  });
});

describe('access rules: projects, requests, tickets, grants, notifications, audit', () => {
  it('see a project and read its requests and change orders: JS and SQL agree per grant', async () => {
    const requests: Prisma.ClientRequestCreateManyInput[] = [];
    const orders: Prisma.ChangeOrderCreateManyInput[] = [];
    const channels: Prisma.ChannelCreateManyInput[] = [];
    const cases: { viewer: Viewer; grant: Grant; projectId: string; requestId: string; orderId: string }[] = [];
    const requester = viewers.find((v) => v.home && v.viewer.role === 'OWNER')!.viewer.id;
    for (const { viewer } of viewers) {
      for (const [g, projectId] of projectsOf.get(viewer.id)!.entries()) {
        const channelId = randomUUID();
        const requestId = randomUUID();
        const orderId = randomUUID();
        channels.push({ id: channelId, organizationId: home, kind: 'REQUEST', projectId, name: `r-${channelId}` });
        requests.push({
          id: requestId,
          organizationId: home,
          projectId,
          number: 1,
          title: 't',
          description: 'd',
          type: 'MATERIAL',
          requesterId: requester,
          channelId,
        });
        orders.push({ id: orderId, organizationId: home, projectId, number: 1, title: 't', description: 'd', sourceRequestId: requestId });
        cases.push({ viewer, grant: GRANTS[g]!, projectId, requestId, orderId });
      }
    }
    await db.channel.createMany({ data: channels });
    await db.clientRequest.createMany({ data: requests });
    await db.changeOrder.createMany({ data: orders });
    const wrong: string[] = [];
    for (const c of cases) {
      const [project, request, order] = await Promise.all([
        db.project.count({ where: { id: c.projectId, ...readableProjectWhere(c.viewer) } }),
        db.clientRequest.count({ where: { id: c.requestId, ...readableClientRequestWhere(c.viewer) } }),
        db.changeOrder.count({ where: { id: c.orderId, ...readableChangeOrderWhere(c.viewer) } }),
      ]);
      const js = mayReadProject(c.viewer, { organizationId: home }, c.grant);
      const jsRequest = mayReadClientRequest(c.viewer, { organizationId: home }, c.grant);
      const what = `${c.viewer.organizationId === home ? 'home' : 'foreign'} ${c.viewer.role}, grant ${c.grant?.role ?? 'none'}`;
      if (js !== (project === 1)) wrong.push(`project: ${what}`);
      if (jsRequest !== (request === 1)) wrong.push(`request: ${what}`);
      if (jsRequest !== (order === 1)) wrong.push(`change order: ${what}`);
      // Outright: staff and members see every project of theirs, clients granted ones, nobody another organization's.
      const expected = c.viewer.organizationId === home && (c.viewer.role !== 'CLIENT' || c.grant !== null);
      if (js !== expected) wrong.push(`expected ${expected}: ${what}`);
    }
    expect(wrong).toEqual([]);
    expect(cases).toHaveLength(viewers.length * GRANTS.length);
  });

  it('read a support ticket: the requester and the organization\u2019s staff', async () => {
    const channels: Prisma.ChannelCreateManyInput[] = [];
    const tickets: Prisma.SupportTicketCreateManyInput[] = [];
    const cases: { viewer: Viewer; ticketId: string; requesterId: string }[] = [];
    const other = viewers.find((v) => v.home && v.viewer.role === 'MEMBER')!.viewer.id;
    const due = new Date(Date.now() + 3_600_000);
    let number = 0;
    for (const { viewer } of viewers) {
      for (const requesterId of [viewer.id, other]) {
        const channelId = randomUUID();
        const ticketId = randomUUID();
        channels.push({ id: channelId, organizationId: home, kind: 'SUPPORT', name: `t-${channelId}` });
        tickets.push({
          id: ticketId,
          organizationId: home,
          number: ++number,
          subject: 's',
          category: 'OTHER',
          priority: 'LOW',
          requesterId,
          channelId,
          firstResponseDueAt: due,
          resolutionDueAt: due,
          createdAt: new Date(),
        });
        cases.push({ viewer, ticketId, requesterId });
      }
    }
    await db.channel.createMany({ data: channels });
    await db.supportTicket.createMany({ data: tickets });
    const wrong: string[] = [];
    for (const c of cases) {
      const sql = (await db.supportTicket.count({ where: { id: c.ticketId, ...readableSupportTicketWhere(c.viewer) } })) === 1;
      const js = mayReadSupportTicket(c.viewer, { organizationId: home, requesterId: c.requesterId });
      const expected =
        c.viewer.organizationId === home && (c.requesterId === c.viewer.id || ['OWNER', 'ADMIN', 'STAFF'].includes(c.viewer.role));
      if (sql !== js || js !== expected)
        wrong.push(
          `${c.viewer.organizationId === home ? 'home' : 'foreign'} ${c.viewer.role}, own ${c.requesterId === c.viewer.id}: SQL ${sql}, JS ${js}, expected ${expected}`,
        );
    }
    expect(wrong).toEqual([]);
  });

  it('project grants (staff), notifications (one\u2019s own) and the audit trail (admins)', async () => {
    const notifications = viewers.map(({ viewer }) => ({
      id: randomUUID(),
      organizationId: viewer.organizationId,
      userId: viewer.id,
      type: 'CLIENT_REQUEST_STATUS' as const,
      data: {},
    }));
    const entries = [home, away].map((organizationId) => ({
      id: randomUUID(),
      organizationId,
      action: 'probe',
      targetType: 'User',
      targetId: randomUUID(),
    }));
    await db.notification.createMany({ data: notifications });
    await db.auditLog.createMany({ data: entries });
    const grants = await db.projectAccess.findMany({ where: { organizationId: home } });
    expect(grants.length).toBeGreaterThan(0);
    const wrong: string[] = [];
    for (const { viewer, home: isHome } of viewers) {
      const what = `${isHome ? 'home' : 'foreign'} ${viewer.role}`;
      const [grantRows, notificationRows, entryRows] = await Promise.all([
        db.projectAccess.findMany({
          where: { id: { in: grants.map((g) => g.id) }, ...readableProjectAccessWhere(viewer) },
          select: { id: true },
        }),
        db.notification.findMany({
          where: { id: { in: notifications.map((n) => n.id) }, ...readableNotificationWhere(viewer) },
          select: { id: true },
        }),
        db.auditLog.findMany({ where: { id: { in: entries.map((e) => e.id) }, ...readableAuditWhere(viewer) }, select: { id: true } }),
      ]);
      const same = (kind: string, js: string[], sql: { id: string }[]) => {
        if (JSON.stringify(js.sort()) !== JSON.stringify(sql.map((r) => r.id).sort())) wrong.push(`${kind}: ${what}`);
      };
      same(
        'grants',
        grants.filter((g) => mayReadProjectAccess(viewer, g)).map((g) => g.id),
        grantRows,
      );
      same(
        'notifications',
        notifications.filter((n) => mayReadNotification(viewer, n)).map((n) => n.id),
        notificationRows,
      );
      same(
        'audit',
        entries.filter((e) => mayReadAuditEntry(viewer, e)).map((e) => e.id),
        entryRows,
      );
      // Outright.
      if (notificationRows.length !== 1) wrong.push(`own notification: ${what}`);
      if (entryRows.length !== (['OWNER', 'ADMIN'].includes(viewer.role) ? 1 : 0)) wrong.push(`audit: ${what}`);
      if (grantRows.length > 0 !== (isHome && ['OWNER', 'ADMIN', 'STAFF'].includes(viewer.role))) wrong.push(`grants: ${what}`);
    }
    expect(wrong).toEqual([]);
  });
});
