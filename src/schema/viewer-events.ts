import type { Message as MessageRow } from '../generated/prisma/client.ts';
import { viewerEventStream, type ViewerEvent } from '../realtime/viewer-stream.ts';
import { builder } from './builder.ts';
import { Channel } from './channel.ts';
import { Message } from './message.ts';

type Of<T extends ViewerEvent['type']> = Extract<ViewerEvent, { type: T }>;

const ChannelActivityEvent = builder.objectRef<Of<'CHANNEL_ACTIVITY'>>('ChannelActivityEvent').implement({
  description: 'Something happened in one of the viewer\u2019s channels: its new last seq and the viewer\u2019s unread count.',
  fields: (t) => ({
    channelId: t.globalID({ resolve: (e) => ({ type: 'Channel', id: e.channelId }) }),
    lastSeq: t.exposeInt('lastSeq'),
    unreadCount: t.exposeInt('unreadCount'),
    message: t.field({
      type: Message,
      nullable: true,
      description: 'The new message, when the activity is one (from the published payload, no query).',
      resolve: (e) => e.message as MessageRow | null,
    }),
  }),
});

const ChannelAddedEvent = builder.objectRef<Of<'CHANNEL_ADDED'>>('ChannelAddedEvent').implement({
  description: 'The viewer joined a channel (created it, was added, or opened a direct conversation).',
  fields: (t) => ({
    channelId: t.globalID({ resolve: (e) => ({ type: 'Channel', id: e.channelId }) }),
    channel: t.field({
      type: Channel,
      nullable: true,
      resolve: (e, _args, ctx) => (ctx.viewer ? ctx.services.channels.get(ctx.viewer, e.channelId).catch(() => null) : null),
    }),
  }),
});

const ChannelRemovedEvent = builder.objectRef<Of<'CHANNEL_REMOVED'>>('ChannelRemovedEvent').implement({
  description: 'The viewer left a channel or was removed from it.',
  fields: (t) => ({
    channelId: t.globalID({ resolve: (e) => ({ type: 'Channel', id: e.channelId }) }),
    reason: t.string({ nullable: true, description: 'REMOVED, LEFT or PROJECT_ACCESS_REVOKED.', resolve: (e) => e.reason }),
  }),
});

const ViewerEventUnion = builder.unionType('ViewerEvent', {
  types: [ChannelActivityEvent, ChannelAddedEvent, ChannelRemovedEvent],
  resolveType: (e) =>
    e.type === 'CHANNEL_ACTIVITY' ? ChannelActivityEvent : e.type === 'CHANNEL_ADDED' ? ChannelAddedEvent : ChannelRemovedEvent,
});

builder.subscriptionField('viewerEvents', (t) =>
  t.withAuth({ authenticated: true }).field({
    type: ViewerEventUnion,
    description:
      'The viewer\u2019s own stream: activity and unread counts in any of their channels, channels joined and left. ' +
      'A live summary (not a log): on reconnect, reload the channel list.',
    subscribe: (_root, _args, ctx) => viewerEventStream(ctx.prisma, ctx.services.pubsub, ctx.services.hub, ctx.services.channels, ctx.viewer),
    resolve: (event: ViewerEvent) => event,
  }),
);
