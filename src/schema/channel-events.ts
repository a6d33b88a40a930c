import { z } from 'zod';
import { isStreamError, type StreamItem } from '../services/live/channel-stream.ts';
import type { ChannelEvent as LoggedEvent, ChannelEventOf, SystemEventPayload } from '../bus/events.ts';
import { sharedEvents } from './shared-events.ts';
import { builder } from './builder.ts';
import { Channel, ChannelVisibility } from './channel.ts';
import { Message, messageFromSnapshot } from './message.ts';

// Live events resolve every field from the published payload, so delivering
// one event to N subscribers runs no query per subscriber (DESIGN §3.8).

/** The GraphQL type of each kind of log entry: a kind added to the log without one does not compile. */
const EVENT_TYPES: Record<LoggedEvent['type'], string> = {
  MESSAGE_ADDED: 'MessageAddedEvent',
  MESSAGE_EDITED: 'MessageEditedEvent',
  MESSAGE_DELETED: 'MessageDeletedEvent',
  MEMBER_ADDED: 'MemberAddedEvent',
  MEMBER_REMOVED: 'MemberRemovedEvent',
  CHANNEL_UPDATED: 'ChannelUpdatedEvent',
  READ_RECEIPT: 'ReadReceiptEvent',
  SYSTEM_EVENT: 'SystemEvent',
  REACTIONS_CHANGED: 'ReactionChangedEvent',
  MESSAGE_PINNED: 'MessagePinnedEvent',
  MESSAGE_UNPINNED: 'MessageUnpinnedEvent',
  DELIVERY_RECEIPT: 'DeliveryReceiptEvent',
  ATTACHMENT_ADDED: 'AttachmentAddedEvent',
  ATTACHMENT_REMOVED: 'AttachmentRemovedEvent',
};

const ChannelEvent = builder.interfaceRef<LoggedEvent>('ChannelEvent').implement({
  description: 'One committed change in a channel, in the channel\u2019s log order.',
  resolveType: (event) => EVENT_TYPES[event.type],
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

const asMessage = (e: ChannelEventOf<'MESSAGE_ADDED' | 'MESSAGE_EDITED'>) => messageFromSnapshot(e.payload);

builder.objectRef<ChannelEventOf<'MESSAGE_ADDED'>>('MessageAddedEvent').implement({
  interfaces: [ChannelEvent],
  fields: (t) => ({ message: t.field({ type: Message, resolve: asMessage }) }),
});

builder.objectRef<ChannelEventOf<'MESSAGE_EDITED'>>('MessageEditedEvent').implement({
  interfaces: [ChannelEvent],
  fields: (t) => ({ message: t.field({ type: Message, resolve: asMessage }) }),
});

builder.objectRef<ChannelEventOf<'MESSAGE_DELETED'>>('MessageDeletedEvent').implement({
  interfaces: [ChannelEvent],
  fields: (t) => ({
    messageId: t.globalID({ resolve: (e) => ({ type: 'Message', id: e.payload.messageId }) }),
    hard: t.boolean({ resolve: (e) => e.payload.hard }),
  }),
});

builder.objectRef<ChannelEventOf<'MEMBER_ADDED'>>('MemberAddedEvent').implement({
  interfaces: [ChannelEvent],
  fields: (t) => ({
    userIds: t.globalIDList({ resolve: (e) => e.payload.userIds.map((id) => ({ type: 'User', id })) }),
  }),
});

builder.objectRef<ChannelEventOf<'MEMBER_REMOVED'>>('MemberRemovedEvent').implement({
  interfaces: [ChannelEvent],
  fields: (t) => ({
    userId: t.globalID({ resolve: (e) => ({ type: 'User', id: e.payload.userId }) }),
    reason: t.string({ description: 'REMOVED, LEFT or PROJECT_ACCESS_REVOKED.', resolve: (e) => e.payload.reason }),
  }),
});

builder.objectRef<ChannelEventOf<'CHANNEL_UPDATED'>>('ChannelUpdatedEvent').implement({
  interfaces: [ChannelEvent],
  description: 'Channel settings changed. Only the fields named in `changed` changed; the others are null.',
  fields: (t) => ({
    changed: t.stringList({
      description: 'The fields that changed, e.g. ["topic", "description"]: tells a cleared topic (null) from an unchanged one.',
      resolve: (e) => Object.keys(e.payload).sort(),
    }),
    archived: t.boolean({ nullable: true, resolve: (e) => e.payload.archived ?? null }),
    name: t.string({ nullable: true, resolve: (e) => e.payload.name ?? null }),
    topic: t.string({ nullable: true, resolve: (e) => e.payload.topic ?? null }),
    description: t.string({ nullable: true, resolve: (e) => e.payload.description ?? null }),
    customFields: t.field({ type: 'JSON', nullable: true, resolve: (e) => e.payload.customFields ?? null }),
    visibility: t.field({ type: ChannelVisibility, nullable: true, resolve: (e) => e.payload.visibility ?? null }),
    membersMayPin: t.boolean({ nullable: true, resolve: (e) => e.payload.membersMayPin ?? null }),
    slowModeSeconds: t.int({ nullable: true, resolve: (e) => e.payload.slowModeSeconds ?? null }),
  }),
});

builder.objectRef<ChannelEventOf<'READ_RECEIPT'>>('ReadReceiptEvent').implement({
  interfaces: [ChannelEvent],
  fields: (t) => ({
    userId: t.globalID({ resolve: (e) => ({ type: 'User', id: e.payload.userId }) }),
    lastReadSeq: t.int({ resolve: (e) => e.payload.lastReadSeq }),
    previousReadSeq: t.int({
      nullable: true,
      description:
        'The read marker before this move (lower when markChannelUnread moved it back): messages between the two changed. ' +
        'Null in receipts logged before it was recorded.',
      resolve: (e) => e.payload.previousReadSeq ?? null,
    }),
    previousDeliveredSeq: t.int({
      nullable: true,
      description:
        'The member\u2019s delivery marker before this move. Reading implies delivery: after a forward move the member has ' +
        'everything up to max(previousDeliveredSeq, lastReadSeq) delivered, with no DeliveryReceiptEvent of its own.',
      resolve: (e) => e.payload.previousDeliveredSeq ?? null,
    }),
  }),
});

builder.objectRef<ChannelEventOf<'REACTIONS_CHANGED'>>('ReactionChangedEvent').implement({
  interfaces: [ChannelEvent],
  description: 'A member added or removed a reaction.',
  fields: (t) => ({
    messageId: t.globalID({ resolve: (e) => ({ type: 'Message', id: e.payload.messageId }) }),
    messageSeq: t.int({ resolve: (e) => e.payload.messageSeq }),
    emoji: t.string({ resolve: (e) => e.payload.emoji }),
    userId: t.globalID({ resolve: (e) => ({ type: 'User', id: e.payload.userId }) }),
    added: t.boolean({ description: 'true: added; false: removed.', resolve: (e) => e.payload.added }),
    count: t.int({ description: 'How many reacted with this emoji after the change.', resolve: (e) => e.payload.count }),
  }),
});

builder.objectRef<ChannelEventOf<'MESSAGE_PINNED'>>('MessagePinnedEvent').implement({
  interfaces: [ChannelEvent],
  fields: (t) => ({
    messageId: t.globalID({ resolve: (e) => ({ type: 'Message', id: e.payload.messageId }) }),
    messageSeq: t.int({ resolve: (e) => e.payload.messageSeq }),
    pinnedById: t.globalID({ resolve: (e) => ({ type: 'User', id: e.payload.pinnedById }) }),
  }),
});

builder.objectRef<ChannelEventOf<'MESSAGE_UNPINNED'>>('MessageUnpinnedEvent').implement({
  interfaces: [ChannelEvent],
  fields: (t) => ({
    messageId: t.globalID({ resolve: (e) => ({ type: 'Message', id: e.payload.messageId }) }),
    messageSeq: t.int({ resolve: (e) => e.payload.messageSeq }),
  }),
});

builder.objectRef<ChannelEventOf<'DELIVERY_RECEIPT'>>('DeliveryReceiptEvent').implement({
  interfaces: [ChannelEvent],
  description: 'A member\u2019s clients received the channel up to lastDeliveredSeq.',
  fields: (t) => ({
    userId: t.globalID({ resolve: (e) => ({ type: 'User', id: e.payload.userId }) }),
    lastDeliveredSeq: t.int({ resolve: (e) => e.payload.lastDeliveredSeq }),
    previousDeliveredSeq: t.int({
      // Nullable like ReadReceiptEvent.previousDeliveredSeq, so one selection may ask both.
      nullable: true,
      description:
        'The delivery marker before this move (reading counts as delivery): the member\u2019s status changed to DELIVERED ' +
        'for the messages after it, up to lastDeliveredSeq. Never null here.',
      resolve: (e) => e.payload.previousDeliveredSeq,
    }),
  }),
});

builder.objectRef<ChannelEventOf<'ATTACHMENT_ADDED'>>('AttachmentAddedEvent').implement({
  interfaces: [ChannelEvent],
  description: 'Files were added to the client request this channel belongs to (a message\u2019s files come with its MessageAddedEvent).',
  fields: (t) => ({
    clientRequestId: t.globalID({ resolve: (e) => ({ type: 'ClientRequest', id: e.payload.clientRequestId }) }),
    attachmentIds: t.globalIDList({ resolve: (e) => e.payload.attachmentIds.map((id) => ({ type: 'Attachment', id })) }),
  }),
});

builder.objectRef<ChannelEventOf<'ATTACHMENT_REMOVED'>>('AttachmentRemovedEvent').implement({
  interfaces: [ChannelEvent],
  description:
    'A file was removed from a message or client request and deleted from storage. Its fields are named apart from the ' +
    'messageId and messageSeq of other events (which are never null), so one selection may ask for all of them without aliases.',
  fields: (t) => ({
    attachmentId: t.globalID({ resolve: (e) => ({ type: 'Attachment', id: e.payload.attachmentId }) }),
    attachedToId: t.globalID({
      description: 'The Message or ClientRequest the file was on (the global id says which).',
      resolve: (e) =>
        e.payload.messageId ? { type: 'Message', id: e.payload.messageId } : { type: 'ClientRequest', id: e.payload.clientRequestId ?? '' },
    }),
    attachedToSeq: t.int({
      nullable: true,
      description: 'The message\u2019s seq, to find it in a loaded history; null for a client request\u2019s file.',
      resolve: (e) => e.payload.messageSeq,
    }),
    removedById: t.globalID({ resolve: (e) => ({ type: 'User', id: e.payload.removedById }) }),
  }),
});

const SystemEventItem = builder.enumType('SystemEventItem', { values: ['CLIENT_REQUEST', 'SUPPORT_TICKET'] as const });

/** What a conversation shows for a system event, e.g. "Assigned to Bo by Ada". */
function describe(p: SystemEventPayload): string {
  const by = `by ${p.actorName}`;
  const words = p.action.toLowerCase().replaceAll('_', ' ');
  const text =
    p.action === 'CREATED'
      ? `Request created ${by}`
      : p.action === 'OPENED'
        ? `Ticket opened ${by}`
        : p.action === 'ASSIGNED'
          ? `Assigned to ${String(p.assigneeName)} ${by}`
          : p.action === 'PRIORITY_CHANGED'
            ? `Priority changed from ${String(p.fromPriority)} to ${String(p.toPriority)} ${by}`
            : p.action === 'CATEGORY_CHANGED'
              ? `Category changed from ${String(p.fromCategory)} to ${String(p.toCategory)} ${by}`
              : p.action === 'RATED'
                ? `Rated ${String(p.rating)} of 5 ${by}`
                : p.action === 'IN_PROGRESS' || p.action === 'PENDING_USER'
                  ? `Status set to ${p.to} ${by}`
                  : `${words[0]!.toUpperCase()}${words.slice(1)} ${by}`;
  return p.reason ? `${text}: ${p.reason}` : text;
}

builder.objectRef<ChannelEventOf<'SYSTEM_EVENT'>>('SystemEvent').implement({
  interfaces: [ChannelEvent],
  description: 'A change to the request or ticket this channel belongs to, as its conversation shows it.',
  fields: (t) => ({
    item: t.field({ type: SystemEventItem, resolve: (e) => e.payload.item }),
    itemId: t.globalID({
      resolve: (e) => ({ type: e.payload.item === 'CLIENT_REQUEST' ? 'ClientRequest' : 'SupportTicket', id: e.payload.itemId }),
    }),
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
    subscribe: (_root, args, ctx) => ctx.services.channelEvents.stream(ctx.viewer, args.channelId.id, args.after ?? null),
    resolve: (item: StreamItem) => {
      if (isStreamError(item)) throw item.error;
      return item;
    },
  }),
);
