import { z } from 'zod';
import type { Notification as NotificationRow } from '../generated/prisma/client.ts';
import type { NotificationType as NotificationTypeValue } from '../generated/prisma/enums.ts';
import type { NotificationSnapshot } from '../bus/pubsub.ts';
import { builder } from './builder.ts';
import { pageCap } from './pagination.ts';

const NotificationType = builder.enumType('NotificationType', {
  values: {
    MENTION: { description: 'The viewer was mentioned in a message (directly, @channel or @here).' },
    MESSAGE: { description: 'A new message in a channel whose notification level the viewer set to ALL.' },
    CLIENT_REQUEST_STATUS: { description: 'A request of the viewer\u2019s changed status.' },
    SUPPORT_TICKET_STATUS: { description: 'A ticket of the viewer\u2019s changed status.' },
    SUPPORT_TICKET_ASSIGNED: { description: 'A ticket was assigned to the viewer.' },
    SUPPORT_TICKET_ESCALATED: { description: 'A ticket was escalated (admins).' },
  } satisfies Record<NotificationTypeValue, { description: string }>,
});

// Every field reads the row's own columns, so a live notification's snapshot
// (dates as ISO strings, which DateTime accepts) resolves without a query.
export const Notification = builder.prismaNode('Notification', {
  id: { field: 'id' },
  description: 'Something others did that concerns the viewer: a mention, a message, a change to their requests or tickets.',
  fields: (t) => ({
    type: t.expose('type', { type: NotificationType }),
    actorId: t.globalID({ nullable: true, resolve: (n) => (n.actorId ? { type: 'User', id: n.actorId } : null) }),
    clientRequestId: t.globalID({ nullable: true, resolve: (n) => (n.requestId ? { type: 'ClientRequest', id: n.requestId } : null) }),
    supportTicketId: t.globalID({ nullable: true, resolve: (n) => (n.ticketId ? { type: 'SupportTicket', id: n.ticketId } : null) }),
    messageId: t.globalID({ nullable: true, resolve: (n) => (n.messageId ? { type: 'Message', id: n.messageId } : null) }),
    channelId: t.globalID({ nullable: true, resolve: (n) => (n.channelId ? { type: 'Channel', id: n.channelId } : null) }),
    data: t.expose('data', { type: 'JSON', description: 'What changed: number, title or subject, from, to, reason, actorName.' }),
    read: t.boolean({ resolve: (n) => n.readAt !== null }),
    readAt: t.expose('readAt', { type: 'DateTime', nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

/** A live notification resolved as the row it was made from. */
export const notificationFromSnapshot = (n: NotificationSnapshot): NotificationRow => ({
  ...n,
  readAt: n.readAt === null ? null : new Date(n.readAt),
  createdAt: new Date(n.createdAt),
});

builder.queryFields((t) => ({
  notifications: t.withAuth({ authenticated: true }).prismaConnection({
    type: 'Notification',
    cursor: 'id',
    maxSize: pageCap,
    description: 'The viewer\u2019s notifications, newest first.',
    args: { unreadOnly: t.arg.boolean({ required: false }) },
    resolve: (query, _root, args, ctx) => ctx.services.notifications.list(ctx.viewer, args.unreadOnly ?? false, query),
  }),
  unreadNotificationCount: t.withAuth({ authenticated: true }).int({
    resolve: (_root, _args, ctx) => ctx.services.notifications.unreadCount(ctx.viewer),
  }),
}));

builder.mutationFields((t) => ({
  markNotificationsRead: t.withAuth({ authenticated: true }).int({
    description: 'Marks the given notifications read (all of the viewer\u2019s without ids); returns how many changed.',
    args: { ids: t.arg.globalIDList({ for: Notification, required: false, validate: z.array(z.unknown()).max(100) }) },
    resolve: (_root, args, ctx) =>
      ctx.services.notifications.markRead(ctx.viewer, args.ids ? args.ids.map((g) => g.id) : null, ctx.services.clock.now()),
  }),
}));
