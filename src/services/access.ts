import type { Viewer } from './viewer.ts';
import {
  Prisma,
  type AuditLog,
  type Channel,
  type ChannelMember,
  type ChannelMemberRole,
  type ClientRequest,
  type Message,
  type Notification,
  type NotificationLevel,
  type PrismaClient,
  type Project,
  type ProjectAccess,
  type ProjectRole,
  type Role,
  type SupportTicket,
  type User,
} from '../generated/prisma/client.ts';
import type { Tx } from '../db/tx.ts';
import { forbidden, notFound } from './errors.ts';
import { columns } from '../db/columns.ts';

/**
 * The access policy: the role sets, who may see each kind of row, and who may
 * post in and manage a channel live here and only here. (What each role may
 * do to a request or a ticket is the workflow of those services.) A rule that
 * queries filter by has two forms side by side: a JS predicate over rows
 * already loaded, and a Prisma `where` (or SQL condition) that selects the
 * same rows in the database. The two must agree: test/access-rules.test.ts
 * checks them against each other for every role, channel kind, membership,
 * project grant and archived state. node(id) (schema/node.ts) reads every
 * type through its `where` form.
 */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether a string can be a row id at all. */
export const isId = (id: string): boolean => UUID.test(id);

/** Ids that cannot exist are reported exactly like missing ones. */
export function assertId(id: string, what: string): void {
  if (!isId(id)) throw notFound(what);
}

// ---------------------------------------------------------------------------
// Roles

/** Owners, admins and staff run the organization; members and clients take part. */
export const STAFF_ROLES: readonly Role[] = ['OWNER', 'ADMIN', 'STAFF'];
/** Owners and admins manage users and the organization's settings. */
export const ADMIN_ROLES: readonly Role[] = ['OWNER', 'ADMIN'];
/** Users outside the organization's staff: they see only projects granted to them. */
export const EXTERNAL_ROLES: readonly Role[] = ['CLIENT'];
/** Channel members who manage the channel beside the organization's staff. */
export const CHANNEL_MANAGER_ROLES: readonly ChannelMemberRole[] = ['OWNER', 'ADMIN'];

export const isStaff = (viewer: Pick<Viewer, 'role'>) => STAFF_ROLES.includes(viewer.role);
export const isAdmin = (viewer: Pick<Viewer, 'role'>) => ADMIN_ROLES.includes(viewer.role);
export const isExternal = (role: Viewer['role']) => EXTERNAL_ROLES.includes(role);
/** Owners alone create, promote or touch other owners. */
export const mayGrantRole = (viewer: Pick<Viewer, 'role'>, role: Role) => role !== 'OWNER' || viewer.role === 'OWNER';

/** A `where` that matches no row: the SQL form of a rule that is false for this viewer whatever the row. */
const NOTHING = { id: { in: [] as string[] } };

// ---------------------------------------------------------------------------
// Channels

/** What the channel rules look at: the channel, the viewer's membership in it and their grant on its project. */
export interface ChannelStanding {
  channel: Pick<Channel, 'organizationId' | 'kind' | 'archivedAt'>;
  member: Pick<ChannelMember, 'role'> | null;
  /** The viewer's grant on the channel's project; null when it has none or belongs to no project. */
  projectAccess: Pick<ProjectAccess, 'role' | 'canComment'> | null;
}

/**
 * Read a channel (JS form): members of a channel of their organization.
 * External users keep reading a project's channels only while their grant
 * lasts; their own support tickets' conversations belong to no project.
 */
export function mayReadChannel(viewer: Viewer, s: ChannelStanding): boolean {
  return (
    s.channel.organizationId === viewer.organizationId &&
    s.member !== null &&
    (!isExternal(viewer.role) || s.channel.kind === 'SUPPORT' || s.projectAccess !== null)
  );
}

/** Read a channel (SQL form of `mayReadChannel`). */
export function readableChannelWhere(viewer: Pick<Viewer, 'id' | 'organizationId' | 'role'>): Prisma.ChannelWhereInput {
  return {
    organizationId: viewer.organizationId,
    members: { some: { userId: viewer.id } },
    ...(isExternal(viewer.role) ? { OR: [{ kind: 'SUPPORT' as const }, { project: { access: { some: { userId: viewer.id } } } }] } : {}),
  };
}

/**
 * Read a channel, for a user other than the viewer (SQL form of
 * `mayReadChannel` with that user as the viewer): a condition on the user row
 * aliased `user` and the channel row aliased `channel`. Mentions and the
 * notifications of a message reach only the users it holds.
 */
export function userMayReadChannelSql(user: string, channel: string): Prisma.Sql {
  const [u, c] = [Prisma.raw(user), Prisma.raw(channel)];
  return Prisma.sql`(${u}."organizationId" = ${c}."organizationId"
    AND EXISTS (SELECT 1 FROM "ChannelMember" rm WHERE rm."channelId" = ${c}.id AND rm."userId" = ${u}.id)
    AND (${u}.role <> ALL(${EXTERNAL_ROLES}::"Role"[]) OR ${c}.kind = 'SUPPORT' OR EXISTS (
      SELECT 1 FROM "ProjectAccess" rpa WHERE rpa."projectId" = ${c}."projectId" AND rpa."userId" = ${u}.id)))`;
}

/**
 * The ids of the channels the viewer may read (SQL form of `mayReadChannel`,
 * driven by the viewer's memberships): a subquery for `"channelId" IN (...)`.
 * Search scopes every match by it in the same statement.
 */
export function readableChannelIdsSql(viewer: Pick<Viewer, 'id' | 'organizationId' | 'role'>): Prisma.Sql {
  return Prisma.sql`SELECT rm."channelId" FROM "ChannelMember" rm JOIN "Channel" rc ON rc.id = rm."channelId"
    WHERE rm."userId" = ${viewer.id}::uuid AND rc."organizationId" = ${viewer.organizationId}::uuid
    ${
      isExternal(viewer.role)
        ? Prisma.sql`AND (rc.kind = 'SUPPORT' OR EXISTS (
            SELECT 1 FROM "ProjectAccess" rpa WHERE rpa."projectId" = rc."projectId" AND rpa."userId" = ${viewer.id}::uuid))`
        : Prisma.empty
    }`;
}

/** Why the viewer may not post in a channel, or null when they may: the JS form of `mayWriteSql`. */
function writeBlock(viewer: Viewer, s: ChannelStanding): string | null {
  if (!mayReadChannel(viewer, s)) return 'You are not a member of this channel';
  if (s.channel.archivedAt) return 'This channel is archived and read-only';
  if (s.member?.role === 'OBSERVER') return 'Observers cannot post in this channel';
  if (isExternal(viewer.role) && s.channel.kind !== 'SUPPORT') {
    if (s.projectAccess?.role === 'VIEWER') return 'Your project access is read-only';
    if (!s.projectAccess?.canComment) return 'Your project access does not allow comments';
  }
  return null;
}

/** Post in a channel (JS form): a reader who is not an observer, in a live channel, with a grant that allows comments. */
export const mayWriteChannel = (viewer: Viewer, s: ChannelStanding): boolean => writeBlock(viewer, s) === null;

/**
 * Post in a channel (SQL form of `mayWriteChannel`): a condition on the channel
 * row `c`. Lets sendMessage check and write in one statement; when it is
 * false, `writableChannel` names the reason.
 */
export function mayWriteSql(viewer: Viewer): Prisma.Sql {
  const external = isExternal(viewer.role)
    ? Prisma.sql`AND (c.kind = 'SUPPORT' OR EXISTS (
        SELECT 1 FROM "ProjectAccess" pa
        WHERE pa."projectId" = c."projectId" AND pa."userId" = ${viewer.id}::uuid AND pa.role <> 'VIEWER' AND pa."canComment"))`
    : Prisma.empty;
  return Prisma.sql`c."organizationId" = ${viewer.organizationId}::uuid AND c."archivedAt" IS NULL
    AND EXISTS (
      SELECT 1 FROM "ChannelMember" m
      WHERE m."channelId" = c.id AND m."userId" = ${viewer.id}::uuid AND m.role <> 'OBSERVER')
    ${external}`;
}

/**
 * Who slow mode holds back (SQL form, a condition on the channel row `c` that
 * is true when the viewer may post now as far as slow mode goes): everyone
 * but those who manage the channel (`slowedDown` is the JS form).
 */
export function slowModeSql(viewer: Viewer): Prisma.Sql {
  if (isExternal(viewer.role)) return Prisma.sql`c."slowModeSeconds" = 0`;
  if (isStaff(viewer)) return Prisma.sql`true`;
  return Prisma.sql`(c."slowModeSeconds" = 0 OR EXISTS (
      SELECT 1 FROM "ChannelMember" m
      WHERE m."channelId" = c.id AND m."userId" = ${viewer.id}::uuid AND m.role IN ('OWNER', 'ADMIN')))`;
}

/** Whether slow mode holds the viewer back in this channel (JS form of slowModeSql): on, and the viewer does not manage the channel. */
export const slowedDown = (access: Pick<ChannelAccess, 'channel' | 'canManage'>): boolean =>
  access.channel.slowModeSeconds > 0 && !access.canManage;

/**
 * Manage a channel (JS form only: nothing filters by it). Staff manage every
 * non-direct channel of the organization, also ones they are not in; channel
 * owners and admins manage theirs. A DM's membership is fixed by its key.
 */
export function mayManageChannel(viewer: Viewer, s: ChannelStanding): boolean {
  return (
    s.channel.organizationId === viewer.organizationId &&
    s.channel.kind !== 'DIRECT' &&
    !isExternal(viewer.role) &&
    (isStaff(viewer) || (mayReadChannel(viewer, s) && CHANNEL_MANAGER_ROLES.includes(s.member!.role)))
  );
}

/** React to messages of a channel (JS form only): whoever may post in it (not observers, not while archived). */
export const mayReactInChannel = (viewer: Viewer, s: ChannelStanding): boolean => mayWriteChannel(viewer, s);

/**
 * Pin and unpin messages of a channel (JS form only): readers of a live
 * channel who manage it (staff, channel owners and admins), and those who may
 * post in it when the channel lets members pin (`membersMayPin`) or is a
 * direct conversation, which has no admins.
 */
export function mayPinInChannel(viewer: Viewer, s: ChannelStanding & { channel: Pick<Channel, 'membersMayPin'> }): boolean {
  if (!mayReadChannel(viewer, s) || s.channel.archivedAt) return false;
  if (mayManageChannel(viewer, s)) return true;
  return (s.channel.membersMayPin || s.channel.kind === 'DIRECT') && mayWriteChannel(viewer, s);
}

/** Read a channel's memberships (both forms): whoever reads the channel; `channel` is the viewer's standing in the member's channel. */
export const mayReadChannelMember = (viewer: Viewer, channel: ChannelStanding): boolean => mayReadChannel(viewer, channel);
export const readableChannelMemberWhere = (viewer: Viewer): Prisma.ChannelMemberWhereInput => ({ channel: readableChannelWhere(viewer) });

/** What browsing looks at: the channel and the viewer's grant on its project (membership plays no part). */
export interface BrowseStanding {
  channel: Pick<Channel, 'organizationId' | 'kind' | 'visibility' | 'archivedAt' | 'projectId'>;
  projectAccess: Pick<ProjectAccess, 'role'> | null;
}

/**
 * Find and join an open channel (JS form): a live PUBLIC GROUP channel of the
 * viewer's organization. One without a project is open to everyone but
 * external users; one of a project to whoever sees the project
 * (`mayReadProject`). Private channels are never browsable, not even by staff.
 */
export const mayBrowseChannel = (viewer: Viewer, s: BrowseStanding): boolean =>
  s.channel.organizationId === viewer.organizationId &&
  s.channel.kind === 'GROUP' &&
  s.channel.visibility === 'PUBLIC' &&
  s.channel.archivedAt === null &&
  (s.channel.projectId === null
    ? !isExternal(viewer.role)
    : mayReadProject(viewer, { organizationId: viewer.organizationId }, s.projectAccess));

/** Find and join an open channel (SQL form of `mayBrowseChannel`). */
export const browsableChannelWhere = (viewer: Viewer): Prisma.ChannelWhereInput => ({
  organizationId: viewer.organizationId,
  kind: 'GROUP',
  visibility: 'PUBLIC',
  archivedAt: null,
  ...(isExternal(viewer.role)
    ? { project: readableProjectWhere(viewer) }
    : { OR: [{ projectId: null }, { project: readableProjectWhere(viewer) }] }),
});

// ---------------------------------------------------------------------------
// Messages

/** Read a message (JS form): its channel is readable. */
export const mayReadMessage = (viewer: Viewer, message: Pick<Message, 'organizationId'>, channel: ChannelStanding): boolean =>
  message.organizationId === viewer.organizationId && mayReadChannel(viewer, channel);
/** Read a message (SQL form of `mayReadMessage`). */
export const readableMessageWhere = (viewer: Viewer): Prisma.MessageWhereInput => ({
  organizationId: viewer.organizationId,
  channel: readableChannelWhere(viewer),
});

/** Whether the viewer sees a soft-deleted message's body and earlier versions. */
export const maySeeDeletedContent = (viewer: Pick<Viewer, 'role'>): boolean => isAdmin(viewer);

/**
 * Whether the viewer sees who deleted a message (`Message.deletedBy`): the
 * organization's owners and admins, who answer "who deleted this and when".
 * That a message is deleted, and when (`deleted`, `deletedAt`), every reader
 * of it sees: the conversation shows the gap anyway.
 */
export const maySeeWhoDeleted = (viewer: Pick<Viewer, 'role'>): boolean => isAdmin(viewer);

/** Read a message's earlier versions (JS form): the message is readable, and not deleted unless the viewer sees deleted content. */
export const mayReadMessageEdit = (
  viewer: Viewer,
  message: Pick<Message, 'organizationId' | 'deletedAt'>,
  channel: ChannelStanding,
): boolean => mayReadMessage(viewer, message, channel) && (message.deletedAt === null || maySeeDeletedContent(viewer));
/** Read a message's earlier versions (SQL form of `mayReadMessageEdit`). */
export const readableMessageEditWhere = (viewer: Viewer): Prisma.MessageEditWhereInput => ({
  message: { ...readableMessageWhere(viewer), ...(maySeeDeletedContent(viewer) ? {} : { deletedAt: null }) },
});

// ---------------------------------------------------------------------------
// Projects, client requests and change orders

/** See a project (JS form): the whole organization's for staff and members, granted ones for external users. */
export const mayReadProject = (
  viewer: Viewer,
  project: Pick<Project, 'organizationId'>,
  grant: Pick<ProjectAccess, 'role'> | null,
): boolean => project.organizationId === viewer.organizationId && (!isExternal(viewer.role) || grant !== null);
/** See a project (SQL form of `mayReadProject`). */
export const readableProjectWhere = (viewer: Viewer): Prisma.ProjectWhereInput =>
  isExternal(viewer.role)
    ? { organizationId: viewer.organizationId, access: { some: { userId: viewer.id } } }
    : { organizationId: viewer.organizationId };

/** See who outside the staff may enter projects (both forms): staff only, as `Project.access` says. */
export const mayReadProjectAccess = (viewer: Viewer, grant: Pick<ProjectAccess, 'organizationId'>): boolean =>
  grant.organizationId === viewer.organizationId && isStaff(viewer);
export const readableProjectAccessWhere = (viewer: Viewer): Prisma.ProjectAccessWhereInput =>
  isStaff(viewer) ? { organizationId: viewer.organizationId } : NOTHING;

/** Read a client request (JS form): `grant` is the viewer's on the request's project. */
export const mayReadClientRequest = (
  viewer: Viewer,
  request: Pick<ClientRequest, 'organizationId'>,
  grant: Pick<ProjectAccess, 'role'> | null,
): boolean => request.organizationId === viewer.organizationId && (!isExternal(viewer.role) || grant !== null);
/** Read a client request (SQL form of `mayReadClientRequest`). */
export const readableClientRequestWhere = (viewer: Pick<Viewer, 'id' | 'organizationId' | 'role'>): Prisma.ClientRequestWhereInput =>
  isExternal(viewer.role)
    ? { organizationId: viewer.organizationId, project: { access: { some: { userId: viewer.id } } } }
    : { organizationId: viewer.organizationId };

/** Read a client request (raw SQL form of `mayReadClientRequest`): a condition on the request row aliased `alias`. */
export function readableClientRequestSql(viewer: Pick<Viewer, 'id' | 'organizationId' | 'role'>, alias: string): Prisma.Sql {
  const r = Prisma.raw(alias);
  return isExternal(viewer.role)
    ? Prisma.sql`(${r}."organizationId" = ${viewer.organizationId}::uuid AND EXISTS (
        SELECT 1 FROM "ProjectAccess" rpa WHERE rpa."projectId" = ${r}."projectId" AND rpa."userId" = ${viewer.id}::uuid))`
    : Prisma.sql`${r}."organizationId" = ${viewer.organizationId}::uuid`;
}

/** Read a change order (SQL form): whoever reads the request it came from (`mayReadClientRequest` on that request). */
export const readableChangeOrderWhere = (viewer: Viewer): Prisma.ChangeOrderWhereInput => ({
  sourceRequest: readableClientRequestWhere(viewer),
});

// ---------------------------------------------------------------------------
// Attachments

/**
 * Read an attachment (SQL form; the download handler, `node`, the lists): a
 * file of a message the viewer may read (a soft-deleted one's only for those
 * who see deleted content), a file of a client request the viewer may read,
 * or the viewer's own upload not attached yet. Removed files are nobody's.
 */
export const readableAttachmentWhere = (viewer: Pick<Viewer, 'id' | 'organizationId' | 'role'>): Prisma.AttachmentWhereInput => ({
  organizationId: viewer.organizationId,
  OR: [
    { state: 'UPLOADED', uploaderId: viewer.id },
    {
      state: 'ATTACHED',
      message: {
        organizationId: viewer.organizationId,
        channel: readableChannelWhere(viewer),
        ...(maySeeDeletedContent(viewer) ? {} : { deletedAt: null }),
      },
    },
    { state: 'ATTACHED', clientRequest: readableClientRequestWhere(viewer) },
  ],
});

// ---------------------------------------------------------------------------
// Support tickets

/** Read a support ticket (JS form): agents (staff) see the organization's queue, everyone else their own tickets. */
export const mayReadSupportTicket = (viewer: Viewer, ticket: Pick<SupportTicket, 'organizationId' | 'requesterId'>): boolean =>
  ticket.organizationId === viewer.organizationId && (isStaff(viewer) || ticket.requesterId === viewer.id);
/** Read a support ticket (SQL form of `mayReadSupportTicket`). */
export const readableSupportTicketWhere = (viewer: Viewer): Prisma.SupportTicketWhereInput =>
  isStaff(viewer) ? { organizationId: viewer.organizationId } : { organizationId: viewer.organizationId, requesterId: viewer.id };

/** Read a support ticket (raw SQL form of `mayReadSupportTicket`): a condition on the ticket row aliased `alias`. */
export function readableSupportTicketSql(viewer: Viewer, alias: string): Prisma.Sql {
  const t = Prisma.raw(alias);
  return isStaff(viewer)
    ? Prisma.sql`${t}."organizationId" = ${viewer.organizationId}::uuid`
    : Prisma.sql`(${t}."organizationId" = ${viewer.organizationId}::uuid AND ${t}."requesterId" = ${viewer.id}::uuid)`;
}

// ---------------------------------------------------------------------------
// Entity links and integrations (issue 11 §2)

/** Manage entity types and API keys (JS form only: nothing filters by it): the organization's owners and admins. */
export const mayManageIntegrations = (viewer: Pick<Viewer, 'role'>): boolean => isAdmin(viewer);

/**
 * See a host product's linked entity (JS form only: links are resolved in
 * JS, services/entity-links.ts): one of the viewer's organization, tied to no
 * project or to one the viewer may see (`mayReadProject`; `grant` is the
 * viewer's on that project). Built-in types follow their own rules
 * (`mayReadSupportTicket`, `mayReadClientRequest`; a message, its channel's).
 */
export const mayReadLinkedEntity = (
  viewer: Viewer,
  entity: { organizationId: string; projectId: string | null },
  grant: Pick<ProjectAccess, 'role'> | null,
): boolean =>
  entity.organizationId === viewer.organizationId &&
  (entity.projectId === null || mayReadProject(viewer, { organizationId: entity.organizationId }, grant));

// ---------------------------------------------------------------------------
// Users, notifications, the audit trail

/**
 * Look a user up (JS form). Clients see themselves and the people of the
 * channels they read (whose messages they see anyway), not the whole staff
 * list. `channels` are the user's channels, as the viewer stands in each.
 */
export const mayReadUser = (viewer: Viewer, user: Pick<User, 'id' | 'organizationId'>, channels: ChannelStanding[]): boolean =>
  user.organizationId === viewer.organizationId &&
  (!isExternal(viewer.role) || user.id === viewer.id || channels.some((c) => mayReadChannel(viewer, c)));
/** Look a user up (SQL form of `mayReadUser`). */
export function readableUserWhere(viewer: Viewer): Prisma.UserWhereInput {
  if (!isExternal(viewer.role)) return { organizationId: viewer.organizationId };
  return {
    organizationId: viewer.organizationId,
    OR: [{ id: viewer.id }, { memberships: { some: { channel: readableChannelWhere(viewer) } } }],
  };
}

/** The `users` list (JS form): the whole organization, except that external users list only themselves. */
/** A user's email: their own, and staff see everyone's. */
export const mayReadEmail = (viewer: Pick<Viewer, 'id' | 'role'>, userId: string): boolean => viewer.id === userId || isStaff(viewer);

export const mayListUser = (viewer: Viewer, user: Pick<User, 'id' | 'organizationId'>): boolean =>
  user.organizationId === viewer.organizationId && (!isExternal(viewer.role) || user.id === viewer.id);
/** The `users` list (SQL form of `mayListUser`). */
export const listedUserWhere = (viewer: Viewer): Prisma.UserWhereInput =>
  isExternal(viewer.role) ? { organizationId: viewer.organizationId, id: viewer.id } : { organizationId: viewer.organizationId };

/** Read a notification (both forms): one's own. */
export const mayReadNotification = (viewer: Viewer, n: Pick<Notification, 'organizationId' | 'userId'>): boolean =>
  n.organizationId === viewer.organizationId && n.userId === viewer.id;
export const readableNotificationWhere = (viewer: Viewer): Prisma.NotificationWhereInput => ({
  userId: viewer.id,
  organizationId: viewer.organizationId,
});

/** Read the audit trail (both forms): the organization's admins. */
export const mayReadAuditEntry = (viewer: Viewer, entry: Pick<AuditLog, 'organizationId'>): boolean =>
  entry.organizationId === viewer.organizationId && isAdmin(viewer);
export const readableAuditWhere = (viewer: Viewer): Prisma.AuditLogWhereInput =>
  isAdmin(viewer) ? { organizationId: viewer.organizationId } : NOTHING;

// ---------------------------------------------------------------------------
// Loading a channel with the viewer's standing in it

/** A channel as the viewer sees it: the row, their membership and, for external users, their project grant. */
export interface ChannelAccess {
  channel: Channel;
  member: ChannelMember | null;
  projectAccess: ProjectAccess | null;
  canRead: boolean;
  canWrite: boolean;
  canManage: boolean;
}

type AccessRow = Channel & {
  m_id: string | null;
  m_role: ChannelMemberRole | null;
  m_lastReadSeq: number | null;
  m_lastDeliveredSeq: number | null;
  m_notificationLevel: NotificationLevel | null;
  m_mutedUntil: Date | null;
  m_hiddenAt: Date | null;
  m_archivedAt: Date | null;
  m_joinedAt: Date | null;
  pa_id: string | null;
  pa_role: ProjectRole | null;
  pa_canComment: boolean | null;
  pa_canCreateTasks: boolean | null;
  pa_createdAt: Date | null;
};

/**
 * Loads a channel of the viewer's organization with the viewer's rights in it,
 * in one statement: every channel operation starts here, so it is on the hot
 * path of sendMessage. Another organization's channel is NOT_FOUND, exactly
 * like a missing one.
 */
export async function channelAccess(db: PrismaClient | Tx, viewer: Viewer, channelId: string): Promise<ChannelAccess> {
  assertId(channelId, 'Channel');
  const [row] = await db.$queryRaw<AccessRow[]>`
    SELECT ${columns('Channel', 'c')},
      m.id AS "m_id", m.role AS "m_role", m."lastReadSeq" AS "m_lastReadSeq", m."mutedUntil" AS "m_mutedUntil",
      m."lastDeliveredSeq" AS "m_lastDeliveredSeq", m."notificationLevel" AS "m_notificationLevel",
      m."hiddenAt" AS "m_hiddenAt", m."archivedAt" AS "m_archivedAt", m."joinedAt" AS "m_joinedAt",
      pa.id AS "pa_id", pa.role AS "pa_role", pa."canComment" AS "pa_canComment",
      pa."canCreateTasks" AS "pa_canCreateTasks", pa."createdAt" AS "pa_createdAt"
    FROM "Channel" c
    LEFT JOIN "ChannelMember" m ON m."channelId" = c.id AND m."userId" = ${viewer.id}::uuid
    LEFT JOIN "ProjectAccess" pa ON pa."projectId" = c."projectId" AND pa."userId" = ${viewer.id}::uuid
    WHERE c.id = ${channelId}::uuid AND c."organizationId" = ${viewer.organizationId}::uuid`;
  if (!row) throw notFound('Channel');
  const channel: Channel = {
    id: row.id,
    organizationId: row.organizationId,
    kind: row.kind,
    projectId: row.projectId,
    name: row.name,
    topic: row.topic,
    description: row.description,
    customFields: row.customFields,
    visibility: row.visibility,
    membersMayPin: row.membersMayPin,
    slowModeSeconds: row.slowModeSeconds,
    directKey: row.directKey,
    archivedAt: row.archivedAt,
    lastSeq: row.lastSeq,
    lastActivityAt: row.lastActivityAt,
    createdAt: row.createdAt,
  };
  const member: ChannelMember | null = row.m_id
    ? {
        id: row.m_id,
        channelId: row.id,
        userId: viewer.id,
        role: row.m_role!,
        lastReadSeq: row.m_lastReadSeq!,
        lastDeliveredSeq: row.m_lastDeliveredSeq!,
        notificationLevel: row.m_notificationLevel!,
        mutedUntil: row.m_mutedUntil,
        hiddenAt: row.m_hiddenAt,
        archivedAt: row.m_archivedAt,
        joinedAt: row.m_joinedAt!,
      }
    : null;
  const projectAccess: ProjectAccess | null =
    row.pa_id && row.projectId
      ? {
          id: row.pa_id,
          organizationId: row.organizationId,
          projectId: row.projectId,
          userId: viewer.id,
          role: row.pa_role!,
          canComment: row.pa_canComment!,
          canCreateTasks: row.pa_canCreateTasks!,
          createdAt: row.pa_createdAt!,
        }
      : null;
  const standing = { channel, member, projectAccess };
  return {
    ...standing,
    canRead: mayReadChannel(viewer, standing),
    canWrite: mayWriteChannel(viewer, standing),
    canManage: mayManageChannel(viewer, standing),
  };
}

/** Channel the viewer may read; non-members get NOT_FOUND so channel ids do not leak. */
export async function readableChannel(db: PrismaClient | Tx, viewer: Viewer, channelId: string): Promise<ChannelAccess> {
  const access = await channelAccess(db, viewer, channelId);
  if (!access.canRead) throw notFound('Channel');
  return access;
}

export async function writableChannel(db: PrismaClient | Tx, viewer: Viewer, channelId: string): Promise<ChannelAccess> {
  const access = await readableChannel(db, viewer, channelId);
  const block = writeBlock(viewer, access);
  if (block) throw forbidden(block);
  return access;
}

export async function manageableChannel(db: PrismaClient | Tx, viewer: Viewer, channelId: string): Promise<ChannelAccess> {
  const access = await channelAccess(db, viewer, channelId);
  if (!access.canRead && !access.canManage) throw notFound('Channel');
  if (!access.canManage) throw forbidden('Only organization staff and channel owners or admins manage this channel');
  if (access.channel.archivedAt) throw forbidden('This channel is archived and read-only');
  return access;
}

/** Read an export and download its file (both forms): one's own, the requester's alone (admins included). */
export const mayReadExport = (viewer: Pick<Viewer, 'id' | 'organizationId'>, e: { organizationId: string; requesterId: string }): boolean =>
  e.organizationId === viewer.organizationId && e.requesterId === viewer.id;
export const readableExportWhere = (viewer: Pick<Viewer, 'id' | 'organizationId'>): Prisma.ExportWhereInput => ({
  organizationId: viewer.organizationId,
  requesterId: viewer.id,
});

/**
 * The channels an organization export carries (SQL form only): those its
 * requester reads (`readableChannelWhere`: an admin reads only the channels
 * they are a member of, never others' direct conversations) that the
 * organization administers, so not direct conversations at all (a member's
 * own DMs are exported one by one with `exportChannel`).
 */
export const organizationExportChannelWhere = (viewer: Viewer): Prisma.ChannelWhereInput => ({
  ...readableChannelWhere(viewer),
  kind: { not: 'DIRECT' },
});
