import { z } from 'zod';
import type { Message as MessageRow } from '../generated/prisma/client.ts';
import { channelEventStream, isStreamError, type StreamItem } from '../realtime/channel-stream.ts';
import type { ChannelEventPayload } from '../realtime/pubsub.ts';
import { sharedEvents } from '../realtime/shared-execution.ts';
import { builder } from './builder.ts';
import { Channel } from './channel.ts';
import { Message } from './message.ts';

// Live events resolve every field from the published payload, so delivering
// one event to N subscribers runs no query per subscriber (DESIGN §3.8).

const ChannelEvent = builder.interfaceRef<ChannelEventPayload>('ChannelEvent').implement({
  description: 'One committed change in a channel, in the channel\u2019s log order.',
  fields: (t) => ({
    seq: t.exposeInt('seq', { description: 'Position in the channel\u2019s log: consecutive, never reused.' }),
    cursor: t.string({
      description: 'Resume after this event with channelEvents(channelId, after: seq).',
      resolve: (e) => String(e.seq),
    }),
    channelId: t.globalID({ resolve: (e) => ({ type: 'Channel', id: e.channelId }) }),
    actorId: t.globalID({ nullable: true, resolve: (e) => (e.actorId ? { type: 'User', id: e.actorId } : null) }),
    createdAt: t.field({ type: 'DateTime', resolve: (e) => e.createdAt }),
  }),
});

type Payload<T> = ChannelEventPayload & { payload: T };

/** A message as the log carries it: dates as ISO strings, relations by id only. */
type MessageSnapshot = Omit<MessageRow, 'editedAt' | 'deletedAt' | 'createdAt' | 'deletedById' | 'organizationId'> & {
  editedAt: string | null;
  deletedAt: string | null;
  createdAt: string;
};

const is = (type: string) => (e: unknown) => (e as ChannelEventPayload).type === type;
// Message fields read the snapshot's columns; DateTime accepts the ISO strings.
const asMessage = (e: Payload<MessageSnapshot>) => e.payload as unknown as MessageRow;

builder.objectRef<Payload<MessageSnapshot>>('MessageAddedEvent').implement({
  interfaces: [ChannelEvent],
  isTypeOf: is('MESSAGE_ADDED'),
  fields: (t) => ({ message: t.field({ type: Message, resolve: asMessage }) }),
});

builder.objectRef<Payload<MessageSnapshot>>('MessageEditedEvent').implement({
  interfaces: [ChannelEvent],
  isTypeOf: is('MESSAGE_EDITED'),
  fields: (t) => ({ message: t.field({ type: Message, resolve: asMessage }) }),
});

builder.objectRef<Payload<{ messageId: string; hard: boolean }>>('MessageDeletedEvent').implement({
  interfaces: [ChannelEvent],
  isTypeOf: is('MESSAGE_DELETED'),
  fields: (t) => ({
    messageId: t.globalID({ resolve: (e) => ({ type: 'Message', id: e.payload.messageId }) }),
    hard: t.boolean({ resolve: (e) => e.payload.hard }),
  }),
});

builder.objectRef<Payload<{ userIds: string[] }>>('MemberAddedEvent').implement({
  interfaces: [ChannelEvent],
  isTypeOf: is('MEMBER_ADDED'),
  fields: (t) => ({
    userIds: t.globalIDList({ resolve: (e) => e.payload.userIds.map((id) => ({ type: 'User', id })) }),
  }),
});

builder.objectRef<Payload<{ userId: string; reason: string }>>('MemberRemovedEvent').implement({
  interfaces: [ChannelEvent],
  isTypeOf: is('MEMBER_REMOVED'),
  fields: (t) => ({
    userId: t.globalID({ resolve: (e) => ({ type: 'User', id: e.payload.userId }) }),
    reason: t.string({ description: 'REMOVED, LEFT or PROJECT_ACCESS_REVOKED.', resolve: (e) => e.payload.reason }),
  }),
});

builder.objectRef<Payload<{ archived?: boolean }>>('ChannelUpdatedEvent').implement({
  interfaces: [ChannelEvent],
  isTypeOf: is('CHANNEL_UPDATED'),
  fields: (t) => ({ archived: t.boolean({ nullable: true, resolve: (e) => e.payload.archived ?? null }) }),
});

builder.objectRef<Payload<{ userId: string; lastReadSeq: number }>>('ReadReceiptEvent').implement({
  interfaces: [ChannelEvent],
  isTypeOf: is('READ_RECEIPT'),
  fields: (t) => ({
    userId: t.globalID({ resolve: (e) => ({ type: 'User', id: e.payload.userId }) }),
    lastReadSeq: t.int({ resolve: (e) => e.payload.lastReadSeq }),
  }),
});

interface SystemPayload {
  item: 'CLIENT_REQUEST' | 'SUPPORT_TICKET';
  itemId: string;
  action: string;
  from: string | null;
  to: string;
  reason: string | null;
  actorName: string;
  [detail: string]: unknown;
}

const SystemEventItem = builder.enumType('SystemEventItem', { values: ['CLIENT_REQUEST', 'SUPPORT_TICKET'] as const });

/** What a conversation shows for a system event, e.g. "Assigned to Bo by Ada". */
function describe(p: SystemPayload): string {
  const by = `by ${p.actorName}`;
  const words = p.action.toLowerCase().replaceAll('_', ' ');
  const text =
    p.action === 'CREATED' ? `Request created ${by}`
    : p.action === 'OPENED' ? `Ticket opened ${by}`
    : p.action === 'ASSIGNED' ? `Assigned to ${String(p.assigneeName)} ${by}`
    : p.action === 'PRIORITY_CHANGED' ? `Priority changed from ${String(p.fromPriority)} to ${String(p.toPriority)} ${by}`
    : p.action === 'CATEGORY_CHANGED' ? `Category changed from ${String(p.fromCategory)} to ${String(p.toCategory)} ${by}`
    : p.action === 'RATED' ? `Rated ${String(p.rating)} of 5 ${by}`
    : p.action === 'IN_PROGRESS' || p.action === 'PENDING_USER' ? `Status set to ${p.to} ${by}`
    : `${words[0]!.toUpperCase()}${words.slice(1)} ${by}`;
  return p.reason ? `${text}: ${p.reason}` : text;
}

builder.objectRef<Payload<SystemPayload>>('SystemEvent').implement({
  interfaces: [ChannelEvent],
  description: 'A change to the request or ticket this channel belongs to, as its conversation shows it.',
  isTypeOf: is('SYSTEM_EVENT'),
  fields: (t) => ({
    item: t.field({ type: SystemEventItem, resolve: (e) => e.payload.item }),
    itemId: t.globalID({ resolve: (e) => ({ type: e.payload.item === 'CLIENT_REQUEST' ? 'ClientRequest' : 'SupportTicket', id: e.payload.itemId }) }),
    action: t.string({ description: 'CREATED, APPROVED, ASSIGNED, ESCALATED, PRIORITY_CHANGED, ...', resolve: (e) => e.payload.action }),
    fromStatus: t.string({ nullable: true, resolve: (e) => e.payload.from }),
    toStatus: t.string({ resolve: (e) => e.payload.to }),
    reason: t.string({ nullable: true, resolve: (e) => e.payload.reason }),
    text: t.string({ description: 'e.g. "Approved by Ada: within budget".', resolve: (e) => describe(e.payload) }),
  }),
});

builder.subscriptionField('channelEvents', (t) =>
  t.withAuth({ authenticated: true }).field({
    type: ChannelEvent,
    description:
      'The channel\u2019s changes after `after` (a seq; omitted: from now): first every logged event, then live, ' +
      'with no gap and no duplicate. Ends with RESYNC_REQUIRED when `after` is older than the retained log, and ' +
      'with FORBIDDEN once the viewer is removed from the channel.',
    args: {
      channelId: t.arg.globalID({ for: Channel }),
      after: t.arg.int({ required: false, validate: z.number().int().min(0) }),
    },
    extensions: sharedEvents,
    subscribe: (_root, args, ctx) =>
      channelEventStream(ctx.prisma, ctx.services.hub, ctx.viewer, args.channelId.id, args.after ?? null),
    resolve: (item: StreamItem) => {
      if (isStreamError(item)) throw item.error;
      return item;
    },
  }),
);
