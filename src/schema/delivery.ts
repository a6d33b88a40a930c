import { z } from 'zod';
import { DELIVERY_DETAIL_MAX, type DeliveryState, type DeliveryStatus } from '../services/read-state.ts';
import { builder } from './builder.ts';
import { Channel, ChannelMember } from './channel.ts';
import { Message } from './message.ts';

// Delivery and read state (issue 11 §5): delivery markers, the sender's
// sent / delivered / read status of a message, and marking a channel unread.

builder.prismaObjectField(ChannelMember, 'lastDeliveredSeq', (t) =>
  t.exposeInt('lastDeliveredSeq', {
    description:
      'Everything up to this seq reached one of the member\u2019s clients (markChannelDelivered). Reading implies delivery: ' +
      'markChannelRead moves it up to lastReadSeq; markChannelUnread leaves it where it is.',
  }),
);

const DeliveryStateEnum = builder.enumType('DeliveryState', {
  description: 'SENT: not yet delivered to every recipient; DELIVERED: delivered to every one; READ: read by every one.',
  values: ['SENT', 'DELIVERED', 'READ'] as const satisfies readonly DeliveryState[],
});

type Recipient = NonNullable<DeliveryStatus['recipients']>[number];

const DeliveryRecipient = builder.objectRef<Recipient>('DeliveryRecipient').implement({
  description: 'One recipient of a message and how far it got to them.',
  fields: (t) => ({
    // Batched: Prisma answers the findUnique calls of one tick with one query.
    user: t.prismaField({
      type: 'User',
      resolve: (query, r, _args, ctx) => ctx.prisma.user.findUniqueOrThrow({ ...query, where: { id: r.userId } }),
    }),
    status: t.field({
      type: DeliveryStateEnum,
      description: 'READ: their read marker is at or past the message; DELIVERED: their delivery marker is; SENT otherwise.',
      resolve: (r) => r.status,
    }),
  }),
});

const DeliveryStatusRef = builder.objectRef<DeliveryStatus>('DeliveryStatus').implement({
  description:
    'Where a message got to, for its sender. Recipients are the channel\u2019s other current members (a member who joins ' +
    'later is one, with nothing delivered yet; one who leaves no longer is).',
  fields: (t) => ({
    status: t.field({
      type: DeliveryStateEnum,
      description: 'READ when every recipient read it, DELIVERED when it reached every one, SENT otherwise and when there is no recipient.',
      resolve: (s) => s.status,
    }),
    recipientCount: t.exposeInt('recipientCount'),
    deliveredCount: t.exposeInt('deliveredCount', { description: 'Recipients it reached (reading counts as delivery).' }),
    readCount: t.exposeInt('readCount'),
    recipients: t.field({
      type: [DeliveryRecipient],
      nullable: true,
      description: `Each recipient, ordered by membership; null when there are more than ${DELIVERY_DETAIL_MAX} (the counts remain).`,
      resolve: (s) => s.recipients,
    }),
  }),
});

builder.objectField(Message, 'deliveryStatus', (t) =>
  t.loadable({
    type: DeliveryStatusRef,
    nullable: true,
    description:
      'For the message\u2019s sender: sent, delivered to every other member, or read by every other member, with counts and, ' +
      `in channels of up to ${DELIVERY_DETAIL_MAX} other members, each one. Null for every other viewer and for a deleted message. ` +
      'Follow DeliveryReceiptEvent and ReadReceiptEvent to keep it current.',
    load: (messageIds: string[], ctx) =>
      ctx.viewer ? ctx.services.readState.deliveryStatuses(ctx.viewer, messageIds) : Promise.resolve(messageIds.map(() => null)),
    // Decided here, before any query: only the sender sees it, so a live
    // event costs the other subscribers nothing.
    resolve: (m, _args, ctx) => (ctx.viewer && m.senderId === ctx.viewer.id && m.deletedAt === null ? m.id : null),
  }),
);

builder.mutationFields((t) => ({
  markChannelDelivered: t.withAuth({ authenticated: true }).prismaField({
    type: 'ChannelMember',
    description:
      'The viewer\u2019s client received the channel up to seq (clamped to its last seq). The marker never moves back; a lower ' +
      'seq changes nothing. Call it for every batch received: a DeliveryReceiptEvent is logged only when the marker passes a ' +
      'message someone else sent.',
    args: { channelId: t.arg.globalID({ for: Channel }), seq: t.arg.int({ validate: z.number().int().min(0) }) },
    resolve: (_query, _root, args, ctx) => ctx.services.readState.markDelivered(ctx.viewer, args.channelId.id, args.seq),
  }),
  markChannelUnread: t.withAuth({ authenticated: true }).prismaField({
    type: 'ChannelMember',
    description:
      'Marks the message at seq and everything after it unread for the viewer: lastReadSeq becomes seq - 1 (it may move back). ' +
      'seq must be between 1 and the channel\u2019s lastSeq. Delivery is unchanged. Logged as a ReadReceiptEvent.',
    args: { channelId: t.arg.globalID({ for: Channel }), seq: t.arg.int({ validate: z.number().int() }) },
    resolve: (_query, _root, args, ctx) => ctx.services.readState.markUnread(ctx.viewer, args.channelId.id, args.seq),
  }),
}));
