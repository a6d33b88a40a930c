import type { ViewerEvent } from '../services/live/viewer-stream.ts';
import { builder } from './builder.ts';
import { Channel } from './channel.ts';
import { ClientRequestStatus } from './client-request.ts';
import { Export, exportFromSnapshot } from './export.ts';
import { Message, messageFromSnapshot } from './message.ts';
import { Notification, notificationFromSnapshot } from './notification.ts';
import { TicketStatus } from './support-ticket.ts';

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
      resolve: (e) => (e.message ? messageFromSnapshot(e.message) : null),
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

const NotificationEvent = builder.objectRef<Of<'NOTIFICATION'>>('NotificationEvent').implement({
  description: 'A new notification for the viewer (from the published payload, no query).',
  fields: (t) => ({
    notification: t.field({ type: Notification, resolve: (e) => notificationFromSnapshot(e.notification) }),
  }),
});

const ClientRequestUpdatedEvent = builder.objectRef<Of<'CLIENT_REQUEST_UPDATED'>>('ClientRequestUpdatedEvent').implement({
  description: 'A request whose conversation the viewer is in changed.',
  fields: (t) => ({
    clientRequestId: t.globalID({ resolve: (e) => ({ type: 'ClientRequest', id: e.requestId }) }),
    status: t.field({ type: ClientRequestStatus, resolve: (e) => e.status }),
    clientRequest: t.prismaField({
      type: 'ClientRequest',
      nullable: true,
      resolve: (query, e, _args, ctx) =>
        ctx.viewer ? ctx.services.clientRequests.get(ctx.viewer, e.requestId, query).catch(() => null) : null,
    }),
  }),
});

const SupportTicketUpdatedEvent = builder.objectRef<Of<'SUPPORT_TICKET_UPDATED'>>('SupportTicketUpdatedEvent').implement({
  description: 'A ticket whose conversation the viewer is in changed.',
  fields: (t) => ({
    supportTicketId: t.globalID({ resolve: (e) => ({ type: 'SupportTicket', id: e.ticketId }) }),
    status: t.field({ type: TicketStatus, resolve: (e) => e.status }),
    supportTicket: t.prismaField({
      type: 'SupportTicket',
      nullable: true,
      resolve: (query, e, _args, ctx) =>
        ctx.viewer ? ctx.services.supportTickets.get(ctx.viewer, e.ticketId, query).catch(() => null) : null,
    }),
  }),
});

const ExportUpdatedEvent = builder.objectRef<Of<'EXPORT_UPDATED'>>('ExportUpdatedEvent').implement({
  description:
    'One of the viewer\u2019s exports changed status or made progress (progress at most every 500 ms; from the published payload, no query).',
  fields: (t) => ({
    export: t.field({ type: Export, resolve: (e) => exportFromSnapshot(e.export) }),
  }),
});

const EVENT_TYPES = {
  CHANNEL_ACTIVITY: ChannelActivityEvent,
  CHANNEL_ADDED: ChannelAddedEvent,
  CHANNEL_REMOVED: ChannelRemovedEvent,
  NOTIFICATION: NotificationEvent,
  CLIENT_REQUEST_UPDATED: ClientRequestUpdatedEvent,
  SUPPORT_TICKET_UPDATED: SupportTicketUpdatedEvent,
  EXPORT_UPDATED: ExportUpdatedEvent,
} as const;

const ViewerEventUnion = builder.unionType('ViewerEvent', {
  types: Object.values(EVENT_TYPES),
  resolveType: (e) => EVENT_TYPES[e.type],
});

builder.subscriptionField('viewerEvents', (t) =>
  t.withAuth({ authenticated: true }).field({
    type: ViewerEventUnion,
    description:
      'The viewer\u2019s own stream: activity and unread counts in any of their channels, channels joined and left, ' +
      'notifications, changes to the requests and tickets whose conversations they are in, and their exports\u2019 progress. ' +
      'A live summary (not a log): on reconnect, reload the channel list.',
    subscribe: (_root, _args, ctx) => ctx.services.viewerEvents.stream(ctx.viewer),
    resolve: (event: ViewerEvent) => event,
  }),
);
