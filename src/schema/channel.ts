import { z } from 'zod';
import type { Context } from './context.ts';
import type { Channel as ChannelRow } from '../generated/prisma/client.ts';
import {
  ChannelKind as ChannelKindValues,
  ChannelMemberRole as ChannelMemberRoleValues,
  ChannelVisibility as ChannelVisibilityValues,
} from '../generated/prisma/enums.ts';
import type { ChannelUpdate } from '../services/channel-settings.ts';
import { CUSTOM_FIELDS_MAX } from '../services/message-content.ts';
import { builder } from './builder.ts';
import { pageCap } from './pagination.ts';
import { withSelection } from './selection.ts';
import { Project } from './project.ts';
import { User } from './user.ts';
import { nameText } from './text.ts';

const ChannelKind = builder.enumType(ChannelKindValues, { name: 'ChannelKind' });
const ChannelMemberRole = builder.enumType(ChannelMemberRoleValues, { name: 'ChannelMemberRole' });
export const ChannelVisibility = builder.enumType(ChannelVisibilityValues, {
  name: 'ChannelVisibility',
  description: 'PUBLIC: a GROUP channel anyone allowed may find with browseChannels and join.',
});

const ids = (max: number) => z.array(z.unknown()).min(1).max(max);

// Members also come from raw rows (Message.readBy), which Pothos would answer
// relations and selected columns of by reloading the member by its id: that
// fails once the member has left in between. The rows carry every column, so
// the relations follow their keys (channels and users are never deleted) and
// the flags read the row as it is.
export const ChannelMember = builder.prismaNode('ChannelMember', {
  id: { field: 'id' },
  fields: (t) => ({
    channel: t.relation('channel', {
      resolve: (query, m, _args, ctx) => ctx.prisma.channel.findUniqueOrThrow({ ...query, where: { id: m.channelId } }),
    }),
    user: t.relation('user', {
      resolve: (query, m, _args, ctx) => ctx.prisma.user.findUniqueOrThrow({ ...query, where: { id: m.userId } }),
    }),
    role: t.expose('role', { type: ChannelMemberRole }),
    lastReadSeq: t.exposeInt('lastReadSeq', { description: 'Everything up to this seq has been read.' }),
    mutedUntil: t.expose('mutedUntil', { type: 'DateTime', nullable: true }),
    muted: t.boolean({ resolve: (m) => m.mutedUntil !== null && m.mutedUntil.getTime() > Date.now() }),
    hidden: t.boolean({ resolve: (m) => m.hiddenAt !== null }),
    joinedAt: t.expose('joinedAt', { type: 'DateTime' }),
  }),
});

export const Channel = builder.prismaNode('Channel', {
  id: { field: 'id' },
  fields: (t) => ({
    kind: t.expose('kind', { type: ChannelKind }),
    name: t.exposeString('name', { nullable: true, description: 'Null for direct conversations.' }),
    topic: t.exposeString('topic', { nullable: true }),
    description: t.exposeString('description', { nullable: true }),
    customFields: t.expose('customFields', {
      type: 'JSON',
      nullable: true,
      description: 'The host product\u2019s own fields (a JSON object).',
    }),
    visibility: t.expose('visibility', { type: ChannelVisibility }),
    membersMayPin: t.exposeBoolean('membersMayPin', {
      description: 'Whether plain members may pin messages; owners, admins and organization staff always may.',
    }),
    slowModeSeconds: t.exposeInt('slowModeSeconds', {
      description:
        'Slow mode: plain members may post once per this many seconds (0: off); channel owners, admins and organization staff are exempt.',
    }),
    project: t.relation('project', { nullable: true }),
    archived: t.boolean({ select: { archivedAt: true }, resolve: (c) => c.archivedAt !== null }),
    lastSeq: t.exposeInt('lastSeq', { description: 'The newest seq in this channel\u2019s event log.' }),
    lastActivityAt: t.expose('lastActivityAt', { type: 'DateTime' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    members: t.relatedConnection('members', { cursor: 'id', maxSize: pageCap, query: { orderBy: { id: 'asc' } } }),
    membership: t.field({
      type: ChannelMember,
      nullable: true,
      description: 'The viewer\u2019s own membership: read marker, mute, hidden.',
      select: (_args, ctx, nestedSelection) => ({
        members: nestedSelection({ where: { userId: ctx.viewer?.id ?? '00000000-0000-0000-0000-000000000000' }, take: 1 }),
      }),
      resolve: (channel) => channel.members[0] ?? null,
    }),
    unreadCount: t.loadable({
      type: 'Int',
      description: 'Messages from others after the viewer\u2019s read marker.',
      load: async (channelIds: string[], ctx) =>
        ctx.viewer ? ctx.services.readState.unreadCounts(ctx.viewer, channelIds) : channelIds.map(() => 0),
      resolve: (channel) => channel.id,
    }),
  }),
});

/**
 * An open channel as someone who may join it sees it, member or not: what it
 * is about and who is in it, not its history. Its `id` is the channel's, for
 * joinChannel and, once joined, channel(id).
 */
export const OpenChannel = builder.prismaObject('Channel', {
  variant: 'OpenChannel',
  description: 'A PUBLIC GROUP channel the viewer may find and join (browseChannels).',
  fields: (t) => ({
    id: t.globalID({ description: 'The channel\u2019s id.', resolve: (c) => ({ type: 'Channel', id: c.id }) }),
    name: t.string({ resolve: (c) => c.name ?? '' }),
    topic: t.exposeString('topic', { nullable: true }),
    description: t.exposeString('description', { nullable: true }),
    project: t.relation('project', { nullable: true }),
    memberCount: t.relationCount('members'),
    membership: t.field({
      type: ChannelMember,
      nullable: true,
      description: 'The viewer\u2019s membership; null until they join.',
      select: (_args, ctx, nestedSelection) => ({
        members: nestedSelection({ where: { userId: ctx.viewer?.id ?? '00000000-0000-0000-0000-000000000000' }, take: 1 }),
      }),
      resolve: (channel) => channel.members[0] ?? null,
    }),
    lastActivityAt: t.expose('lastActivityAt', { type: 'DateTime' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

/** Channel.messages(filter): only the messages that meet every condition given. */
export const MessageFilter = builder.inputType('MessageFilter', {
  fields: (t) => ({
    senderId: t.globalID({
      for: User,
      required: false,
      description: 'Messages this user sent; a user who is not in the channel\u2019s organization matches none.',
    }),
    after: t.field({ type: 'DateTime', required: false, description: 'Sent at or after this instant.' }),
    before: t.field({ type: 'DateTime', required: false, description: 'Sent before this instant.' }),
    hasLinks: t.boolean({
      required: false,
      description:
        'true: messages whose body holds an @type#id reference (resolved for the viewer or not: Message.links says); false: the others.',
    }),
    customFields: t.field({
      type: 'JSON',
      required: false,
      description:
        'Messages whose customFields hold each top-level key of this JSON object with that value (a list value: a stored list holding all its items).',
    }),
  }),
});

const ChannelFilter = builder.inputType('ChannelFilter', {
  fields: (t) => ({
    kind: t.field({ type: ChannelKind, required: false }),
    projectId: t.globalID({ for: Project, required: false }),
    archived: t.boolean({ required: false, description: 'true: archived channels only; default: live ones.' }),
    hidden: t.boolean({ required: false, description: 'true: channels the viewer hid; default: the others.' }),
    customFields: t.field({
      type: 'JSON',
      required: false,
      description:
        'Channels whose customFields contain this JSON object (e.g. {"erpId": 45}; a list value matches lists holding all of its items).',
    }),
  }),
});

const CreateChannelInput = builder.inputType('CreateChannelInput', {
  fields: (t) => ({
    kind: t.field({ type: ChannelKind, description: 'GROUP, PROJECT or SUPPORT; direct channels come from openDirectChannel.' }),
    name: t.string({ validate: nameText(80) }),
    topic: t.string({ required: false, validate: z.string().max(250) }),
    description: t.string({ required: false, description: 'At most 2000 characters.' }),
    visibility: t.field({ type: ChannelVisibility, required: false, description: 'PRIVATE (default); PUBLIC for GROUP channels only.' }),
    projectId: t.globalID({ for: Project, required: false }),
    memberIds: t.globalIDList({ for: User, required: false, validate: z.array(z.unknown()).max(100) }),
    customFields: t.field({
      type: 'JSON',
      required: false,
      description: `A JSON object of your own fields, at most ${CUSTOM_FIELDS_MAX} characters serialized; checked against the CHANNEL custom field definitions.`,
    }),
  }),
});

const UpdateChannelInput = builder.inputType('UpdateChannelInput', {
  description: 'Only the fields given change; null clears topic, description and customFields.',
  fields: (t) => ({
    channelId: t.globalID({ for: Channel }),
    name: t.string({
      required: false,
      description: '1 to 80 characters, trimmed; unique among a project\u2019s channels. Not for DIRECT.',
    }),
    topic: t.string({ required: false, description: 'At most 250 characters.' }),
    description: t.string({ required: false, description: 'At most 2000 characters.' }),
    customFields: t.field({
      type: 'JSON',
      required: false,
      description: `A JSON object of your own fields, at most ${CUSTOM_FIELDS_MAX} characters serialized; replaces the old one.`,
    }),
    visibility: t.field({ type: ChannelVisibility, required: false, description: 'PUBLIC for GROUP channels only.' }),
    membersMayPin: t.boolean({ required: false }),
    slowModeSeconds: t.int({ required: false, description: 'Slow mode, 0 (off) to 86400 seconds; null turns it off.' }),
  }),
});

builder.queryFields((t) => ({
  channels: t.withAuth({ authenticated: true }).prismaConnection({
    type: 'Channel',
    cursor: 'id',
    maxSize: pageCap,
    description: 'The viewer\u2019s channels, most recent activity first.',
    args: { filter: t.arg({ type: ChannelFilter, required: false }) },
    resolve: (query, _root, args, ctx) =>
      ctx.services.channels.list(
        ctx.viewer,
        {
          kind: args.filter?.kind,
          projectId: args.filter?.projectId?.id,
          archived: args.filter?.archived,
          hidden: args.filter?.hidden,
          customFields: args.filter?.customFields,
        },
        query,
      ),
  }),
  browseChannels: t.withAuth({ authenticated: true }).prismaConnection({
    type: OpenChannel,
    cursor: 'id',
    maxSize: pageCap,
    description:
      'Open channels the viewer may join, by name: PUBLIC GROUP channels that are not archived, of the whole organization ' +
      '(not for clients) and of the projects the viewer sees. `query` matches name or topic, ignoring case (at most 100 characters).',
    args: { query: t.arg.string({ required: false }) },
    resolve: (query, _root, args, ctx) => ctx.services.openChannels.browse(ctx.viewer, args.query, query),
  }),
  channel: t.withAuth({ authenticated: true }).prismaField({
    type: 'Channel',
    args: { id: t.arg.globalID({ for: Channel }) },
    resolve: (query, _root, args, ctx) => ctx.services.channels.get(ctx.viewer, args.id.id, query),
  }),
}));

builder.mutationFields((t) => ({
  createChannel: t.withAuth({ authenticated: true }).prismaField({
    type: 'Channel',
    args: { input: t.arg({ type: CreateChannelInput }) },
    resolve: async (query, _root, { input }, ctx) => {
      const channel = await ctx.services.channels.create(ctx.viewer, {
        ...input,
        projectId: input.projectId?.id,
        memberIds: input.memberIds?.map((m) => m.id),
      });
      return withSelection(query, channel, (q) => ctx.prisma.channel.findUniqueOrThrow({ ...q, where: { id: channel.id } }));
    },
  }),
  openDirectChannel: t.withAuth({ authenticated: true }).prismaField({
    type: 'Channel',
    description: 'Starts, or returns, the one direct conversation between the viewer and these users.',
    args: { userIds: t.arg.globalIDList({ for: User, validate: ids(8) }) },
    resolve: (_query, _root, args, ctx) =>
      ctx.services.channels.openDirect(
        ctx.viewer,
        args.userIds.map((u) => u.id),
      ),
  }),
  addChannelMembers: t.withAuth({ authenticated: true }).prismaField({
    type: 'Channel',
    args: {
      channelId: t.arg.globalID({ for: Channel }),
      userIds: t.arg.globalIDList({ for: User, validate: ids(100) }),
      role: t.arg({ type: ChannelMemberRole, required: false, description: 'MEMBER (default), ADMIN or OBSERVER.' }),
    },
    resolve: (_query, _root, args, ctx) =>
      ctx.services.channels.addMembers(
        ctx.viewer,
        args.channelId.id,
        args.userIds.map((u) => u.id),
        args.role ?? 'MEMBER',
      ),
  }),
  removeChannelMember: t.withAuth({ authenticated: true }).prismaField({
    type: 'Channel',
    args: { channelId: t.arg.globalID({ for: Channel }), userId: t.arg.globalID({ for: User }) },
    resolve: (_query, _root, args, ctx) => ctx.services.channels.removeMember(ctx.viewer, args.channelId.id, args.userId.id),
  }),
  leaveChannel: t.withAuth({ authenticated: true }).boolean({
    args: { channelId: t.arg.globalID({ for: Channel }) },
    resolve: (_root, args, ctx) => ctx.services.channels.leave(ctx.viewer, args.channelId.id),
  }),
  archiveChannel: t.withAuth({ authenticated: true }).prismaField({
    type: 'Channel',
    description: 'Archives (read-only) or, with archived: false, reopens a channel.',
    args: { channelId: t.arg.globalID({ for: Channel }), archived: t.arg.boolean({ required: false }) },
    resolve: (_query, _root, args, ctx) => ctx.services.channels.archive(ctx.viewer, args.channelId.id, args.archived ?? true),
  }),
  updateChannel: t.withAuth({ authenticated: true }).prismaField({
    type: 'Channel',
    description:
      'Changes a channel\u2019s settings (organization staff, channel owners and admins; not while archived). Emits one ' +
      'ChannelUpdatedEvent with the fields that changed; a call that changes nothing emits none.',
    args: { input: t.arg({ type: UpdateChannelInput }) },
    resolve: async (query, _root, { input }, ctx) => {
      const { channelId, ...fields } = input;
      const channel = await ctx.services.channels.update(ctx.viewer, channelId.id, fields as ChannelUpdate);
      return withSelection(query, channel, (q) => ctx.prisma.channel.findUniqueOrThrow({ ...q, where: { id: channel.id } }));
    },
  }),
  unarchiveChannel: t.withAuth({ authenticated: true }).prismaField({
    type: 'Channel',
    description: 'Reopens an archived channel (organization staff); a live channel is returned as it is.',
    args: { channelId: t.arg.globalID({ for: Channel }) },
    resolve: async (query, _root, args, ctx) => {
      const channel = await ctx.services.channels.unarchive(ctx.viewer, args.channelId.id);
      return withSelection(query, channel, (q) => ctx.prisma.channel.findUniqueOrThrow({ ...q, where: { id: channel.id } }));
    },
  }),
  joinChannel: t.withAuth({ authenticated: true }).prismaField({
    type: 'Channel',
    description:
      'Joins an open channel (see browseChannels) as a MEMBER, with a MemberAddedEvent. A member gets the channel back and ' +
      'nothing is logged. A channel the viewer may not browse (private, archived, another organization\u2019s) is NOT_FOUND.',
    args: { channelId: t.arg.globalID({ for: Channel }) },
    resolve: async (query, _root, args, ctx) => {
      const channel = await ctx.services.openChannels.join(ctx.viewer, args.channelId.id);
      return withSelection(query, channel, (q) => ctx.prisma.channel.findUniqueOrThrow({ ...q, where: { id: channel.id } }));
    },
  }),
  muteChannel: t.withAuth({ authenticated: true }).prismaField({
    type: 'ChannelMember',
    description: 'Mutes the channel for the viewer until `until` (forever when absent); muted: false unmutes.',
    args: {
      channelId: t.arg.globalID({ for: Channel }),
      muted: t.arg.boolean({ required: false }),
      until: t.arg({ type: 'DateTime', required: false }),
    },
    resolve: (_query, _root, args, ctx) =>
      ctx.services.readState.mute(ctx.viewer, args.channelId.id, args.muted ?? true, args.until ?? null),
  }),
  hideChannel: t.withAuth({ authenticated: true }).prismaField({
    type: 'ChannelMember',
    description: 'Hides the channel from the viewer\u2019s list (hidden: false shows it again).',
    args: { channelId: t.arg.globalID({ for: Channel }), hidden: t.arg.boolean({ required: false }) },
    resolve: (_query, _root, args, ctx) => ctx.services.readState.setHidden(ctx.viewer, args.channelId.id, args.hidden ?? true),
  }),
  markChannelRead: t.withAuth({ authenticated: true }).prismaField({
    type: 'ChannelMember',
    description: 'Moves the viewer\u2019s read marker forward to seq; it never moves back.',
    args: { channelId: t.arg.globalID({ for: Channel }), seq: t.arg.int({ validate: z.number().int().min(0) }) },
    resolve: (_query, _root, args, ctx) => ctx.services.readState.markRead(ctx.viewer, args.channelId.id, args.seq),
  }),
}));

/** A discussion channel the viewer may read, or null (loaded for a whole page at once). */
export const readableChannelField = <T extends { channelId: string }>() => ({
  type: Channel,
  nullable: true as const,
  description: 'The conversation; null while the viewer is not in it.',
  load: (channelIds: string[], ctx: Context) =>
    ctx.viewer
      ? ctx.services.channels.readableByIds(ctx.viewer, channelIds)
      : Promise.resolve(channelIds.map((): ChannelRow | null => null)),
  resolve: (item: T) => item.channelId,
});
