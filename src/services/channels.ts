import type { Viewer } from './viewer.ts';
import {
  Prisma,
  type Channel,
  type ChannelKind,
  type ChannelVisibility,
  type ChannelMemberRole,
  type Message,
  type PrismaClient,
} from '../generated/prisma/client.ts';
import {
  assertId,
  channelAccess,
  isExternal,
  isStaff,
  manageableChannel,
  readableChannel,
  readableChannelWhere,
  readableProjectWhere,
} from './access.ts';
import { audit, auditedBy } from './audit.ts';
import type { ChannelLog } from './channel-log.ts';
import type { Tx } from '../db/tx.ts';
import { badInput, conflict, forbidden, notFound } from './errors.ts';
import { isUniqueViolation } from './prisma-errors.ts';
import { columns } from '../db/columns.ts';
import {
  changesOf,
  checkedUpdate,
  checkName,
  checkText,
  checkVisibility,
  CHANNEL_DESCRIPTION_MAX,
  CHANNEL_TOPIC_MAX,
  type ChannelUpdate,
} from './channel-settings.ts';
import { idsWithCustomFields, type CustomFieldCheck } from './custom-fields.ts';

export interface ChannelFilter {
  kind?: ChannelKind | null;
  projectId?: string | null;
  /** true: only archived channels; false or absent: only live ones. */
  archived?: boolean | null;
  /** true: only channels the viewer hid; false or absent: the others. */
  hidden?: boolean | null;
  /** Only channels whose customFields contain this object (GIN-indexed containment). */
  customFields?: unknown;
}

export interface CreateChannelInput {
  kind: ChannelKind;
  name: string;
  topic?: string | null;
  description?: string | null;
  /** PUBLIC: GROUP channels only. */
  visibility?: ChannelVisibility | null;
  projectId?: string | null;
  memberIds?: string[] | null;
  /** Checked against the organization's CHANNEL custom field definitions. */
  customFields?: unknown;
}

/** Most users in one direct conversation (the viewer included), as in common chat tools. */
export const DIRECT_MAX_USERS = 9;

type Query = { select?: Prisma.ChannelSelect; include?: Prisma.ChannelInclude };

export class ChannelService {
  private customFields: CustomFieldCheck | null = null;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly channelLog: ChannelLog,
  ) {}

  /** Checks channels' customFields against the organization's definitions (wiring: once per app). */
  useCustomFields(check: CustomFieldCheck): void {
    this.customFields = check;
  }

  private get fieldCheck(): CustomFieldCheck {
    if (!this.customFields) throw new Error('ChannelService.useCustomFields was not called');
    return this.customFields;
  }

  /**
   * The viewer's channels, most recent activity first. A `projectId` the viewer
   * cannot see is NOT_FOUND, as `project(id)` says, rather than an empty page.
   */
  async list(
    viewer: Viewer,
    filter: ChannelFilter = {},
    query: Query & { take?: number; skip?: number; cursor?: Prisma.ChannelWhereUniqueInput } = {},
  ) {
    if (filter.projectId) await this.assertProjectVisible(viewer, filter.projectId);
    const matching =
      filter.customFields == null ? null : await idsWithCustomFields(this.prisma, viewer.organizationId, 'CHANNEL', filter.customFields);
    return this.prisma.channel.findMany({
      ...query,
      where: matching ? { AND: [this.listWhere(viewer, filter), { id: { in: matching } }] } : this.listWhere(viewer, filter),
      orderBy: [{ lastActivityAt: 'desc' }, { id: 'desc' }],
    });
  }

  private listWhere(viewer: Viewer, filter: ChannelFilter): Prisma.ChannelWhereInput {
    const readable = readableChannelWhere(viewer);
    return {
      ...readable,
      members: { some: { userId: viewer.id, hiddenAt: filter.hidden ? { not: null } : null } },
      ...(filter.kind ? { kind: filter.kind } : {}),
      ...(filter.projectId ? { projectId: filter.projectId } : {}),
      archivedAt: filter.archived ? { not: null } : null,
    };
  }

  private async assertProjectVisible(viewer: Viewer, projectId: string): Promise<void> {
    assertId(projectId, 'Project');
    const visible = await this.prisma.project.count({ where: { id: projectId, ...readableProjectWhere(viewer) } });
    if (!visible) throw notFound('Project');
  }

  /** The channels of `ids` the viewer may read, in order; null for the others (one query for a page of items). */
  async readableByIds(viewer: Viewer, ids: string[]): Promise<(Channel | null)[]> {
    const rows = await this.prisma.channel.findMany({ where: { id: { in: ids }, ...readableChannelWhere(viewer) } });
    return ids.map((id) => rows.find((c) => c.id === id) ?? null);
  }

  async get(viewer: Viewer, id: string, query: Query = {}): Promise<Channel> {
    assertId(id, 'Channel');
    const channel = await this.prisma.channel.findFirst({ ...query, where: { id, ...readableChannelWhere(viewer) } });
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
    if (input.kind === 'REQUEST') throw badInput('kind', 'A request\u2019s channel comes with createClientRequest');
    if (isExternal(viewer.role)) throw forbidden('Clients cannot create channels');
    if (input.kind !== 'GROUP' && !isStaff(viewer)) throw forbidden('Only organization staff create project and support channels');
    if (input.kind === 'PROJECT' && !input.projectId) throw badInput('projectId', 'A project channel needs a projectId');
    const name = checkName(input.name);
    const topic = checkText('topic', input.topic ?? null, CHANNEL_TOPIC_MAX);
    const description = checkText('description', input.description ?? null, CHANNEL_DESCRIPTION_MAX);
    const visibility = checkVisibility(input.kind, input.visibility ?? 'PRIVATE');
    const customFields = await this.fieldCheck.validate(viewer.organizationId, 'CHANNEL', input.customFields ?? null);
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
          data: {
            organizationId: viewer.organizationId,
            kind: input.kind,
            name,
            topic,
            description,
            visibility,
            projectId,
            ...(customFields ? { customFields: customFields as Prisma.InputJsonValue } : {}),
          },
        });
        await tx.channelMember.createMany({
          data: [
            { channelId: channel.id, userId: viewer.id, role: 'OWNER' as const },
            ...others.map((userId) => ({ channelId: channel.id, userId, role: 'MEMBER' as const })),
          ],
        });
        await log.append(channel.id, 'MEMBER_ADDED', { userIds: [viewer.id, ...others] });
        await audit(tx, {
          ...auditedBy(viewer),
          action: 'channel.create',
          targetType: 'Channel',
          targetId: channel.id,
          data: { kind: input.kind, name, visibility, projectId, memberIds: [viewer.id, ...others] },
        });
        return tx.channel.findUniqueOrThrow({ where: { id: channel.id } });
      });
    } catch (error) {
      if (isUniqueViolation(error)) throw conflict(`A channel named "${name}" exists in this project`, { field: 'name' });
      throw error;
    }
  }

  /**
   * Changes a channel's settings (managers; not while archived). Only the keys
   * given change, and only those that differ are written and logged in one
   * CHANNEL_UPDATED: a call that changes nothing writes nothing.
   */
  async update(viewer: Viewer, channelId: string, update: ChannelUpdate): Promise<Channel> {
    const access = await channelAccess(this.prisma, viewer, channelId);
    if (!access.canRead && !access.canManage) throw notFound('Channel');
    // A member of a DM learns why before being told nobody manages one.
    const wanted = checkedUpdate(access.channel.kind, update);
    if (!access.canManage) throw forbidden('Only organization staff and channel owners or admins manage this channel');
    if (access.channel.archivedAt) throw forbidden('This channel is archived and read-only');
    if (wanted.customFields !== undefined) {
      // Keys left as they are stay as stored, whatever the definitions say now (services/custom-fields.ts).
      wanted.customFields = await this.fieldCheck.validate(
        viewer.organizationId,
        'CHANNEL',
        wanted.customFields,
        access.channel.customFields,
      );
    }
    if (Object.keys(changesOf(access.channel, wanted)).length === 0) return access.channel;
    try {
      return await this.channelLog.transaction(viewer.organizationId, viewer.id, async (tx, log) => {
        // Under the row lock, against the channel as it is now: two racing updates log what each really changed.
        await tx.$queryRaw`SELECT 1 FROM "Channel" WHERE id = ${channelId}::uuid FOR UPDATE`;
        const current = await tx.channel.findUniqueOrThrow({ where: { id: channelId } });
        if (current.archivedAt) throw forbidden('This channel is archived and read-only');
        const change = changesOf(current, wanted);
        if (Object.keys(change).length === 0) return current;
        const { customFields, ...plain } = change;
        const json =
          customFields === undefined
            ? {}
            : { customFields: customFields === null ? Prisma.DbNull : (customFields as Prisma.InputJsonValue) };
        // The event first: the row returned then carries its seq as lastSeq.
        await log.append(channelId, 'CHANNEL_UPDATED', change);
        // Which settings changed, not their new text: the trail keeps no content that a later edit or erasure would have to reach.
        await audit(tx, {
          ...auditedBy(viewer),
          action: 'channel.update',
          targetType: 'Channel',
          targetId: channelId,
          data: { fields: Object.keys(change).sort() },
        });
        return tx.channel.update({ where: { id: channelId }, data: { ...plain, ...json } });
      });
    } catch (error) {
      if (isUniqueViolation(error)) throw conflict(`A channel named "${wanted.name}" exists in this project`, { field: 'name' });
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
        await audit(tx, {
          ...auditedBy(viewer),
          action: 'channel.create',
          targetType: 'Channel',
          targetId: channel.id,
          data: { kind: 'DIRECT', memberIds: ids },
        });
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
      // Users who are members already keep their role and get no event; the
      // insert itself says who was new, also when two additions race.
      const inserted = await tx.channelMember.createManyAndReturn({
        data: ids.map((userId) => ({ channelId: channel.id, userId, role })),
        skipDuplicates: true,
        select: { userId: true },
      });
      if (inserted.length > 0) {
        const userIds = inserted.map((m) => m.userId).sort();
        await log.append(channel.id, 'MEMBER_ADDED', { userIds, role });
        await audit(tx, {
          ...auditedBy(viewer),
          action: 'channel.addMembers',
          targetType: 'Channel',
          targetId: channel.id,
          data: { userIds, role },
        });
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
      await audit(tx, {
        ...auditedBy(viewer),
        action: reason === 'LEFT' ? 'channel.leave' : 'channel.removeMember',
        targetType: 'Channel',
        targetId: channel.id,
        data: { userId },
      });
      return tx.channel.findUniqueOrThrow({ where: { id: channel.id } });
    });
  }

  /**
   * Archives a channel, or reopens it with `archived: false`. Managers archive;
   * reopening a read-only channel is for organization staff only.
   */
  async archive(viewer: Viewer, channelId: string, archived: boolean): Promise<Channel> {
    const { channel, canRead, canManage } = await channelAccess(this.prisma, viewer, channelId);
    if (!canRead && !canManage) throw notFound('Channel');
    if (!canManage) throw forbidden('Only organization staff and channel owners or admins manage this channel');
    if (!archived && !isStaff(viewer)) throw forbidden('Only organization staff reopen archived channels');
    if (Boolean(channel.archivedAt) === archived) return channel;
    return this.channelLog.transaction(viewer.organizationId, viewer.id, async (tx, log) => {
      await log.append(channel.id, 'CHANNEL_UPDATED', { archived });
      await audit(tx, {
        ...auditedBy(viewer),
        action: archived ? 'channel.archive' : 'channel.unarchive',
        targetType: 'Channel',
        targetId: channel.id,
      });
      return tx.channel.update({ where: { id: channel.id }, data: { archivedAt: archived ? new Date() : null } });
    });
  }

  /** Reopens an archived channel (organization staff), as archive(…, false); reopening a live channel changes nothing. */
  unarchive(viewer: Viewer, channelId: string): Promise<Channel> {
    return this.archive(viewer, channelId, false);
  }

  /** The newest live message of each channel, in one query for any number of channels. */
  async lastMessages(channelIds: readonly string[]): Promise<(Message | null)[]> {
    const rows = await this.prisma.$queryRaw<Message[]>`
      SELECT ${columns('Message', 'm')}
      FROM unnest(${channelIds as string[]}::uuid[]) AS c(id)
      JOIN LATERAL (
        SELECT ${columns('Message')} FROM "Message" WHERE "channelId" = c.id AND "deletedAt" IS NULL ORDER BY seq DESC LIMIT 1
      ) m ON true`;
    const byId = new Map(rows.map((r) => [r.channelId, r]));
    return channelIds.map((id) => byId.get(id) ?? null);
  }
}
