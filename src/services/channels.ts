import type { Viewer } from '../context.ts';
import type { Channel, ChannelKind, ChannelMember, ChannelMemberRole, Message, Prisma, PrismaClient } from '../generated/prisma/client.ts';
import { assertId, isExternal, isStaff, manageableChannel, readableChannel } from './access.ts';
import type { ChannelLog, Tx } from './channel-log.ts';
import { badInput, conflict, forbidden, notFound } from './errors.ts';
import { isUniqueViolation } from './prisma-errors.ts';

export interface ChannelFilter {
  kind?: ChannelKind | null;
  projectId?: string | null;
  /** true: only archived channels; false or absent: only live ones. */
  archived?: boolean | null;
  /** true: only channels the viewer hid; false or absent: the others. */
  hidden?: boolean | null;
}

export interface CreateChannelInput {
  kind: ChannelKind;
  name: string;
  topic?: string | null;
  projectId?: string | null;
  memberIds?: string[] | null;
}

/** Most users in one direct conversation (the viewer included), as in common chat tools. */
export const DIRECT_MAX_USERS = 9;

type Query = { select?: Prisma.ChannelSelect; include?: Prisma.ChannelInclude };

export class ChannelService {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly channelLog: ChannelLog,
  ) {}

  /** The channels a viewer may read, as one `where`: membership, and for external users a live project grant. */
  readableWhere(viewer: Viewer): Prisma.ChannelWhereInput {
    return {
      organizationId: viewer.organizationId,
      members: { some: { userId: viewer.id } },
      ...(isExternal(viewer.role) ? { project: { access: { some: { userId: viewer.id } } } } : {}),
    };
  }

  listWhere(viewer: Viewer, filter: ChannelFilter = {}): Prisma.ChannelWhereInput {
    if (filter.projectId) assertId(filter.projectId, 'Project');
    const readable = this.readableWhere(viewer);
    return {
      ...readable,
      members: { some: { userId: viewer.id, hiddenAt: filter.hidden ? { not: null } : null } },
      ...(filter.kind ? { kind: filter.kind } : {}),
      ...(filter.projectId ? { projectId: filter.projectId } : {}),
      archivedAt: filter.archived ? { not: null } : null,
    };
  }

  async get(viewer: Viewer, id: string, query: Query = {}): Promise<Channel> {
    assertId(id, 'Channel');
    const channel = await this.prisma.channel.findFirst({ ...query, where: { id, ...this.readableWhere(viewer) } });
    if (!channel) throw notFound('Channel');
    return channel as Channel;
  }

  /**
   * Checks that every user may join a channel of this project: same organization,
   * active, and for external users a grant on the project. Returns their roles.
   */
  private async assertJoinable(tx: Tx | PrismaClient, viewer: Viewer, userIds: string[], projectId: string | null) {
    for (const id of userIds) assertId(id, 'User');
    const users = await tx.user.findMany({
      where: { id: { in: userIds }, organizationId: viewer.organizationId },
      select: { id: true, role: true, deactivatedAt: true, projectAccess: projectId ? { where: { projectId } } : false },
    });
    if (users.length !== userIds.length) throw notFound('User');
    for (const user of users) {
      if (user.deactivatedAt) throw badInput('userIds', `User ${user.id} is deactivated`);
      const granted = projectId !== null && (user.projectAccess?.length ?? 0) > 0;
      if (isExternal(user.role) && !granted) {
        throw forbidden('Clients and external project members only join channels of projects they have access to');
      }
    }
  }

  async create(viewer: Viewer, input: CreateChannelInput): Promise<Channel> {
    if (input.kind === 'DIRECT') throw badInput('kind', 'Direct channels are opened with openDirectChannel');
    if (isExternal(viewer.role)) throw forbidden('Clients cannot create channels');
    if (input.kind !== 'GROUP' && !isStaff(viewer)) throw forbidden('Only organization staff create project and support channels');
    if (input.kind === 'PROJECT' && !input.projectId) throw badInput('projectId', 'A project channel needs a projectId');
    let projectId: string | null = null;
    if (input.projectId) {
      assertId(input.projectId, 'Project');
      const project = await this.prisma.project.findFirst({ where: { id: input.projectId, organizationId: viewer.organizationId } });
      if (!project) throw notFound('Project');
      projectId = project.id;
    }
    const others = [...new Set(input.memberIds ?? [])].filter((id) => id !== viewer.id);
    await this.assertJoinable(this.prisma, viewer, others, projectId);
    try {
      return await this.channelLog.transaction(viewer.organizationId, viewer.id, async (tx, log) => {
        const channel = await tx.channel.create({
          data: { organizationId: viewer.organizationId, kind: input.kind, name: input.name, topic: input.topic ?? null, projectId },
        });
        await tx.channelMember.createMany({
          data: [
            { channelId: channel.id, userId: viewer.id, role: 'OWNER' as const },
            ...others.map((userId) => ({ channelId: channel.id, userId, role: 'MEMBER' as const })),
          ],
        });
        await log.append(channel.id, 'MEMBER_ADDED', { userIds: [viewer.id, ...others] });
        return tx.channel.findUniqueOrThrow({ where: { id: channel.id } });
      });
    } catch (error) {
      if (isUniqueViolation(error)) throw conflict(`A channel named "${input.name}" exists in this project`, { field: 'name' });
      throw error;
    }
  }

  /**
   * Starts or returns the one direct channel for this set of users. The sorted
   * ids are a unique key, so two racing requests end with the same channel:
   * the loser's insert fails and it reads the winner's row.
   */
  async openDirect(viewer: Viewer, userIds: string[]): Promise<Channel> {
    if (isExternal(viewer.role)) throw forbidden('Clients talk in their projects\u2019 channels');
    const ids = [...new Set([viewer.id, ...userIds])].sort();
    if (ids.length > DIRECT_MAX_USERS) throw badInput('userIds', `A direct conversation has at most ${DIRECT_MAX_USERS} people`);
    const others = ids.filter((id) => id !== viewer.id);
    await this.assertJoinable(this.prisma, viewer, others, null);
    const directKey = ids.join(',');
    const existing = () =>
      this.prisma.channel.findUniqueOrThrow({ where: { organizationId_directKey: { organizationId: viewer.organizationId, directKey } } });
    const found = await this.prisma.channel.findUnique({
      where: { organizationId_directKey: { organizationId: viewer.organizationId, directKey } },
    });
    if (found) return this.unhide(viewer, found);
    try {
      return await this.channelLog.transaction(viewer.organizationId, viewer.id, async (tx, log) => {
        const channel = await tx.channel.create({
          data: { organizationId: viewer.organizationId, kind: 'DIRECT', directKey },
        });
        await tx.channelMember.createMany({ data: ids.map((userId) => ({ channelId: channel.id, userId, role: 'MEMBER' as const })) });
        await log.append(channel.id, 'MEMBER_ADDED', { userIds: ids });
        return tx.channel.findUniqueOrThrow({ where: { id: channel.id } });
      });
    } catch (error) {
      if (isUniqueViolation(error)) return existing();
      throw error;
    }
  }

  private async unhide(viewer: Viewer, channel: Channel): Promise<Channel> {
    await this.prisma.channelMember.updateMany({
      where: { channelId: channel.id, userId: viewer.id, hiddenAt: { not: null } },
      data: { hiddenAt: null },
    });
    return channel;
  }

  async addMembers(viewer: Viewer, channelId: string, userIds: string[], role: ChannelMemberRole = 'MEMBER'): Promise<Channel> {
    const { channel } = await manageableChannel(this.prisma, viewer, channelId);
    if (role === 'OWNER') throw badInput('role', 'Channels have one owner, their creator');
    const ids = [...new Set(userIds)];
    await this.assertJoinable(this.prisma, viewer, ids, channel.projectId);
    return this.channelLog.transaction(viewer.organizationId, viewer.id, async (tx, log) => {
      const { count } = await tx.channelMember.createMany({
        data: ids.map((userId) => ({ channelId: channel.id, userId, role })),
        skipDuplicates: true,
      });
      if (count > 0) {
        // Only users who were not members yet get an event.
        const added = await tx.channelMember.findMany({
          where: { channelId: channel.id, userId: { in: ids }, role },
          select: { userId: true },
          orderBy: { userId: 'asc' },
        });
        await log.append(channel.id, 'MEMBER_ADDED', { userIds: added.map((m) => m.userId), role });
      }
      return tx.channel.findUniqueOrThrow({ where: { id: channel.id } });
    });
  }

  async removeMember(viewer: Viewer, channelId: string, userId: string): Promise<Channel> {
    assertId(userId, 'User');
    const { channel } = await manageableChannel(this.prisma, viewer, channelId);
    return this.removeMembership(viewer, channel, userId, 'REMOVED');
  }

  async leave(viewer: Viewer, channelId: string): Promise<boolean> {
    const { channel } = await readableChannel(this.prisma, viewer, channelId);
    if (channel.kind === 'DIRECT') throw badInput('channelId', 'Direct conversations cannot be left; hide them instead');
    await this.removeMembership(viewer, channel, viewer.id, 'LEFT');
    return true;
  }

  private async removeMembership(viewer: Viewer, channel: Channel, userId: string, reason: 'REMOVED' | 'LEFT'): Promise<Channel> {
    return this.channelLog.transaction(viewer.organizationId, viewer.id, async (tx, log) => {
      const { count } = await tx.channelMember.deleteMany({ where: { channelId: channel.id, userId } });
      if (count === 0) throw notFound('Channel member');
      await log.append(channel.id, 'MEMBER_REMOVED', { userId, reason });
      return tx.channel.findUniqueOrThrow({ where: { id: channel.id } });
    });
  }

  async archive(viewer: Viewer, channelId: string, archived: boolean): Promise<Channel> {
    const access = await manageableChannel(this.prisma, viewer, channelId).catch((error: unknown) => {
      // Unarchiving must be possible on an archived (read-only) channel.
      if (!archived && error instanceof Error && /archived/.test(error.message)) return null;
      throw error;
    });
    const channel = access?.channel ?? (await this.get(viewer, channelId));
    if (!access && !isStaff(viewer)) throw forbidden('Only organization staff unarchive channels');
    if (Boolean(channel.archivedAt) === archived) return channel;
    return this.channelLog.transaction(viewer.organizationId, viewer.id, async (tx, log) => {
      const updated = await tx.channel.update({ where: { id: channel.id }, data: { archivedAt: archived ? new Date() : null } });
      await log.append(channel.id, 'CHANNEL_UPDATED', { archived });
      return updated;
    });
  }

  /** Mutes the channel for the viewer until `until`, or forever when it is absent; `muted: false` unmutes. */
  async mute(viewer: Viewer, channelId: string, muted: boolean, until: Date | null): Promise<ChannelMember> {
    const { member } = await readableChannel(this.prisma, viewer, channelId);
    if (until && until.getTime() <= Date.now()) throw badInput('until', 'until must be in the future');
    const forever = new Date('9999-12-31T00:00:00Z');
    return this.prisma.channelMember.update({
      where: { id: member!.id },
      data: { mutedUntil: muted ? (until ?? forever) : null },
    });
  }

  /** Hides or archives the channel for the viewer only. */
  async setHidden(viewer: Viewer, channelId: string, hidden: boolean): Promise<ChannelMember> {
    const { member } = await readableChannel(this.prisma, viewer, channelId);
    return this.prisma.channelMember.update({ where: { id: member!.id }, data: { hiddenAt: hidden ? new Date() : null } });
  }

  /**
   * Moves the viewer's read marker forward to `seq` (clamped to the channel's
   * last seq); it never moves backwards, also when two calls race.
   */
  async markRead(viewer: Viewer, channelId: string, seq: number): Promise<ChannelMember> {
    if (seq < 0) throw badInput('seq', 'seq must not be negative');
    const { member } = await readableChannel(this.prisma, viewer, channelId);
    return this.channelLog.transaction(viewer.organizationId, viewer.id, async (tx, log) => {
      const rows = await tx.$queryRaw<{ lastReadSeq: number }[]>`
        UPDATE "ChannelMember" m SET "lastReadSeq" = LEAST(${seq}::int, c."lastSeq")
        FROM "Channel" c
        WHERE m.id = ${member!.id}::uuid AND c.id = m."channelId" AND m."lastReadSeq" < LEAST(${seq}::int, c."lastSeq")
        RETURNING m."lastReadSeq"`;
      if (rows[0]) await log.append(channelId, 'READ_RECEIPT', { userId: viewer.id, lastReadSeq: rows[0].lastReadSeq });
      return tx.channelMember.findUniqueOrThrow({ where: { id: member!.id } });
    });
  }

  /** Unread messages per channel for the viewer: others' live messages after the read marker. One query for any number of channels. */
  async unreadCounts(viewer: Viewer, channelIds: readonly string[]): Promise<number[]> {
    const rows = await this.prisma.$queryRaw<{ channelId: string; count: number }[]>`
      SELECT m."channelId", count(*)::int AS count
      FROM "ChannelMember" cm
      JOIN "Message" m ON m."channelId" = cm."channelId" AND m.seq > cm."lastReadSeq"
      WHERE cm."userId" = ${viewer.id}::uuid AND cm."channelId" = ANY(${channelIds as string[]}::uuid[])
        AND m."senderId" <> ${viewer.id}::uuid AND m."deletedAt" IS NULL
      GROUP BY m."channelId"`;
    const byId = new Map(rows.map((r) => [r.channelId, r.count]));
    return channelIds.map((id) => byId.get(id) ?? 0);
  }

  /** The newest live message of each channel, in one query for any number of channels. */
  async lastMessages(channelIds: readonly string[]): Promise<(Message | null)[]> {
    const rows = await this.prisma.$queryRaw<Message[]>`
      SELECT m.*
      FROM unnest(${channelIds as string[]}::uuid[]) AS c(id)
      JOIN LATERAL (
        SELECT * FROM "Message" WHERE "channelId" = c.id AND "deletedAt" IS NULL ORDER BY seq DESC LIMIT 1
      ) m ON true`;
    const byId = new Map(rows.map((r) => [r.channelId, r]));
    return channelIds.map((id) => byId.get(id) ?? null);
  }
}
