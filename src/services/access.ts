import type { Viewer } from './viewer.ts';
import { Prisma, type Channel, type ChannelMember, type ChannelMemberRole, type PrismaClient, type ProjectAccess, type ProjectRole, type Role } from '../generated/prisma/client.ts';
import type { Tx } from '../db/tx.ts';
import { forbidden, notFound } from './errors.ts';
import { columns } from '../db/columns.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Ids that cannot exist are reported exactly like missing ones. */
export function assertId(id: string, what: string): void {
  if (!UUID.test(id)) throw notFound(what);
}

/** Owners, admins and staff run the organization; members and clients take part. */
export const STAFF_ROLES: readonly Role[] = ['OWNER', 'ADMIN', 'STAFF'];
/** Owners and admins manage users and the organization's settings. */
export const ADMIN_ROLES: readonly Role[] = ['OWNER', 'ADMIN'];
export const isStaff = (viewer: Pick<Viewer, 'role'>) => STAFF_ROLES.includes(viewer.role);
export const isAdmin = (viewer: Pick<Viewer, 'role'>) => ADMIN_ROLES.includes(viewer.role);
/** Users outside the organization's staff: they see only projects granted to them. */
export const isExternal = (role: Viewer['role']) => role === 'CLIENT';

/** A channel as the viewer sees it: the row, their membership and, for external users, their project grant. */
export interface ChannelAccess {
  channel: Channel;
  member: ChannelMember | null;
  projectAccess: ProjectAccess | null;
  canRead: boolean;
  canWrite: boolean;
  canManage: boolean;
}

/**
 * Why a reader may not write, or null when they may. `mayWriteSql` states the
 * same rule in SQL for sendMessage's single statement; change both together
 * (each rule has an end-to-end test that runs through both).
 */
function writeBlock(viewer: Viewer, access: Omit<ChannelAccess, 'canWrite' | 'canManage'>): string | null {
  if (!access.canRead) return 'You are not a member of this channel';
  if (access.channel.archivedAt) return 'This channel is archived and read-only';
  if (access.member?.role === 'OBSERVER') return 'Observers cannot post in this channel';
  if (isExternal(viewer.role) && access.channel.kind !== 'SUPPORT') {
    if (access.projectAccess?.role === 'VIEWER') return 'Your project access is read-only';
    if (!access.projectAccess?.canComment) return 'Your project access does not allow comments';
  }
  return null;
}

type AccessRow = Channel & {
  m_id: string | null;
  m_role: ChannelMemberRole | null;
  m_lastReadSeq: number | null;
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
 * `writeBlock` as a SQL condition on the channel row `c`: true exactly when
 * the viewer may post. Lets sendMessage check and write in one statement; when
 * it is false, `writableChannel` names the reason.
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
  // External users keep reading a project's channels only while their grant
  // lasts; their own support tickets' conversations belong to no project.
  const canRead = member !== null && (!isExternal(viewer.role) || channel.kind === 'SUPPORT' || projectAccess !== null);
  const base = { channel, member, projectAccess, canRead };
  // Staff manage every non-direct channel of the organization, also ones they
  // are not in; a DM's membership is fixed by its key.
  const canManage =
    channel.kind !== 'DIRECT' &&
    !isExternal(viewer.role) &&
    (isStaff(viewer) || (canRead && (member?.role === 'OWNER' || member?.role === 'ADMIN')));
  return { ...base, canWrite: writeBlock(viewer, base) === null, canManage };
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
