import type { Viewer } from '../context.ts';
import type { Channel, ChannelMember, PrismaClient, ProjectAccess } from '../generated/prisma/client.ts';
import type { Tx } from './channel-log.ts';
import { forbidden, notFound } from './errors.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Ids that cannot exist are reported exactly like missing ones. */
export function assertId(id: string, what: string): void {
  if (!UUID.test(id)) throw notFound(what);
}

/** Owners, admins and staff run the organization; members and clients take part. */
export const isStaff = (viewer: Viewer) => viewer.role === 'OWNER' || viewer.role === 'ADMIN' || viewer.role === 'STAFF';
export const isAdmin = (viewer: Viewer) => viewer.role === 'OWNER' || viewer.role === 'ADMIN';
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

/** Why a reader may not write, or null when they may. */
function writeBlock(viewer: Viewer, access: Omit<ChannelAccess, 'canWrite' | 'canManage'>): string | null {
  if (!access.canRead) return 'You are not a member of this channel';
  if (access.channel.archivedAt) return 'This channel is archived and read-only';
  if (access.member?.role === 'OBSERVER') return 'Observers cannot post in this channel';
  if (isExternal(viewer.role)) {
    if (access.projectAccess?.role === 'VIEWER') return 'Your project access is read-only';
    if (!access.projectAccess?.canComment) return 'Your project access does not allow comments';
  }
  return null;
}

/**
 * Loads a channel of the viewer's organization with the viewer's rights in it.
 * Another organization's channel is NOT_FOUND, exactly like a missing one.
 */
export async function channelAccess(db: PrismaClient | Tx, viewer: Viewer, channelId: string): Promise<ChannelAccess> {
  assertId(channelId, 'Channel');
  const channel = await db.channel.findFirst({
    where: { id: channelId, organizationId: viewer.organizationId },
    include: {
      members: { where: { userId: viewer.id } },
      project: isExternal(viewer.role) ? { include: { access: { where: { userId: viewer.id } } } } : false,
    },
  });
  if (!channel) throw notFound('Channel');
  const { members, project, ...row } = channel as typeof channel & { project?: { access: ProjectAccess[] } | null };
  const member = members[0] ?? null;
  const projectAccess = project?.access[0] ?? null;
  // External users keep reading a project's channels only while their grant lasts.
  const canRead = member !== null && (!isExternal(viewer.role) || projectAccess !== null);
  const base = { channel: row, member, projectAccess, canRead };
  // Staff manage every non-direct channel of the organization, also ones they
  // are not in; a DM's membership is fixed by its key.
  const canManage =
    row.kind !== 'DIRECT' &&
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
