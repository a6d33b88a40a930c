import type { Message as MessageRow } from '../generated/prisma/client.ts';
import { MentionKind as MentionKindValues, NotificationLevel as NotificationLevelValues } from '../generated/prisma/enums.ts';
import { MentionService, type MentionView } from '../services/mentions.ts';
import { builder } from './builder.ts';
import { Channel, ChannelMember } from './channel.ts';
import { Message } from './message.ts';
import { pageCap } from './pagination.ts';
import { loadVisibleUsers, User } from './user.ts';

// @mentions (issue 11 §1): Message.mentions, the viewer's mentions, unread
// mention counts and each member's notification level.

const NotificationLevel = builder.enumType('NotificationLevel', {
  description: 'Which messages of a channel notify a member (beside mute, which silences all of them for a while).',
  values: {
    ALL: { description: 'Every new message from others, and mentions.' },
    MENTIONS: { description: 'Mentions of the member by name, @channel and @here (the default).' },
    NONE: { description: 'Nothing.' },
  } satisfies Record<NotificationLevelValues, { description: string }>,
});

const MentionKind = builder.enumType('MentionKind', {
  values: {
    USER: { description: '@username: one user of the organization who may read the channel.' },
    CHANNEL: { description: '@channel (also @all, @everyone): every member.' },
    HERE: { description: '@here: the members online when the message was sent.' },
  } satisfies Record<MentionKindValues, { description: string }>,
});

const MessageMention = builder.objectRef<MentionView>('MessageMention').implement({
  description: 'One mention in a message body: where it is, and whom it names.',
  fields: (t) => ({
    kind: t.field({ type: MentionKind, resolve: (m) => m.kind }),
    user: t.loadable({
      type: User,
      nullable: true,
      description: 'The user a USER mention names; null for @channel and @here.',
      load: loadVisibleUsers,
      resolve: (m) => m.userId,
    }),
    start: t.exposeInt('start', { description: 'Offset of the @ in the body, in UTF-16 code units (as JavaScript indexes strings).' }),
    end: t.exposeInt('end', { description: 'Offset just past the mention (exclusive).' }),
  }),
});

builder.objectFields(Message, (t) => ({
  mentions: t.loadableList({
    type: MessageMention,
    description:
      'Who the body mentions, one entry per occurrence, ordered by position. Unknown names and users who may not read ' +
      'the channel are plain text and not listed. Empty while the body is hidden (deleted).',
    // Keys are the messages themselves: a log snapshot's ranges follow its own body.
    load: async (messages: MessageRow[], ctx) => {
      const bodies = messages.map((m) => (ctx.viewer ? ctx.services.messages.visibleBody(ctx.viewer, m) : null));
      const withRefs = messages.filter((_, i) => bodies[i]?.includes('@'));
      const named = withRefs.length ? await ctx.services.mentions.named(withRefs.map((m) => m.id)) : [];
      const byId = new Map(withRefs.map((m, i) => [m.id, named[i]!]));
      return messages.map((m, i) => MentionService.view(bodies[i] ?? null, byId.get(m.id) ?? []));
    },
    loaderOptions: { cache: false },
    resolve: (message) => message,
  }),
}));

builder.objectField(ChannelMember, 'notificationLevel', (t) =>
  t.expose('notificationLevel', { type: NotificationLevel, description: 'Which messages of this channel notify the member.' }),
);

builder.objectField(Channel, 'unreadMentionCount', (t) =>
  t.loadable({
    type: 'Int',
    description: 'Messages from others after the viewer\u2019s read marker that mention the viewer (by name, @channel or @here).',
    load: async (channelIds: string[], ctx) =>
      ctx.viewer ? ctx.services.mentions.unreadCounts(ctx.viewer, channelIds) : channelIds.map(() => 0),
    resolve: (channel) => channel.id,
  }),
);

builder.queryFields((t) => ({
  mentions: t.withAuth({ authenticated: true }).prismaConnection({
    type: 'Message',
    cursor: 'id',
    maxSize: pageCap,
    description:
      'Messages of others that mention the viewer (by name, @channel or @here), newest first, in channels the viewer ' +
      'may still read; deleted ones left out. unreadOnly: only those past the viewer\u2019s read marker in their channel.',
    args: { unreadOnly: t.arg.boolean({ required: false }) },
    resolve: async (query, _root, args, ctx) => {
      const { take, cursor, skip: _skip, ...selection } = query as typeof query & { take: number; skip?: number; cursor?: { id: string } };
      const ids = await ctx.services.mentions.mentionedMessageIds(ctx.viewer, {
        take,
        after: cursor?.id ?? null,
        unreadOnly: args.unreadOnly ?? false,
      });
      if (!ids.length) return [];
      const rows = await ctx.prisma.message.findMany({ ...selection, where: { id: { in: ids } } });
      const byId = new Map(rows.map((r) => [r.id, r]));
      return ids.flatMap((id) => byId.get(id) ?? []);
    },
  }),
}));

builder.mutationFields((t) => ({
  setChannelNotificationLevel: t.withAuth({ authenticated: true }).prismaField({
    type: 'ChannelMember',
    description: 'Sets which messages of a channel notify the viewer (ALL, MENTIONS or NONE); muting silences all of them.',
    args: { channelId: t.arg.globalID({ for: Channel }), level: t.arg({ type: NotificationLevel }) },
    resolve: (_query, _root, args, ctx) => ctx.services.mentions.setLevel(ctx.viewer, args.channelId.id, args.level),
  }),
}));
