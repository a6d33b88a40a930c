import { decodeGlobalID, encodeGlobalID } from '@pothos/plugin-relay';
import { z } from 'zod';
import type { Context } from './context.ts';
import type { ChannelMember as ChannelMemberRow, Message as MessageRow, Prisma } from '../generated/prisma/client.ts';
import type { MessageSnapshot } from '../bus/events.ts';
import { assertId, maySeeWhoDeleted } from '../services/access.ts';
import { badInput } from '../services/errors.ts';
import { CUSTOM_FIELDS_MAX } from '../services/message-content.ts';
import type { DeleteResult } from '../services/messages.ts';
import { builder } from './builder.ts';
import { Channel, ChannelMember, MessageFilter } from './channel.ts';
import { messageFilterWhere } from '../services/message-filter.ts';
import { pageCap } from './pagination.ts';
import { withSelection } from './selection.ts';
import { Attachment } from './attachment.ts';
import { loadVisibleUsers, User } from './user.ts';

/**
 * A relatedConnection's fallback `resolve`. Pothos types it with the parent
 * model's query and a list of lists; at run time it is handed the relation's
 * query (page, order, the field's `where`, the planned selection) and takes the rows.
 */
function connectionFallback<Args>(load: (query: Args, message: MessageRow, ctx: Context) => Promise<unknown[]>): never {
  return ((query: Args, message: MessageRow, _args: unknown, ctx: Context) => load(query, message, ctx)) as never;
}

// A message may come from a channel log snapshot rather than a query, and a
// snapshot outlives its row: a replay hands out messages hard-deleted since.
// Pothos answers a relation of a row it did not load by reloading that row by
// its id (findUniqueOrThrow), which fails for such a message. So every
// relation and count below resolves from the columns the snapshot carries
// (channelId, senderId, parentId, its own id) instead, and never needs the
// message's own row to exist: a hard-deleted parent is null, a hard-deleted
// message has no replies, edits or readers, as its MessageDeletedEvent says.
//
// The one conversion of a logged message in the schema: Message is backed by
// the Prisma row, and its fields read the snapshot's columns by name
// (DateTime accepts its ISO strings; organizationId and deletedById, which a
// snapshot leaves out, are read by no field). A snapshot is not converted
// into a row because its body is null once a hard delete scrubbed it, which
// the row type cannot say and `body` shows as null.
export const messageFromSnapshot = (snapshot: MessageSnapshot) => snapshot as unknown as MessageRow;

export const Message = builder.prismaNode('Message', {
  id: { field: 'id' },
  fields: (t) => ({
    seq: t.exposeInt('seq', { description: 'Position in the channel\u2019s event log; orders history.' }),
    // Channels and users are never deleted (users are deactivated), so these rows always exist.
    channel: t.relation('channel', {
      resolve: (query, m, _args, ctx) => ctx.prisma.channel.findUniqueOrThrow({ ...query, where: { id: m.channelId } }),
    }),
    sender: t.relation('sender', {
      resolve: (query, m, _args, ctx) => ctx.prisma.user.findUniqueOrThrow({ ...query, where: { id: m.senderId } }),
    }),
    body: t.string({
      nullable: true,
      description: 'Null once deleted, except for organization admins.',
      // No field-level `select`: live events hand the published snapshot in
      // as the message, and a select would make Pothos reload it per subscriber.
      resolve: (m, _args, ctx) => (ctx.viewer ? ctx.services.messages.visibleBody(ctx.viewer, m) : null),
    }),
    parent: t.relation('parent', {
      nullable: true,
      description: 'The message this one replies to; null when it is not a reply or the parent was deleted for good.',
      resolve: (query, m, _args, ctx) => (m.parentId ? ctx.prisma.message.findUnique({ ...query, where: { id: m.parentId } }) : null),
    }),
    replies: t.relatedConnection('replies', {
      cursor: 'channelId_seq',
      maxSize: pageCap,
      query: { orderBy: { seq: 'asc' } },
      description: 'The thread under this message, oldest first.',
      resolve: connectionFallback<Prisma.MessageFindManyArgs>((query, m, ctx) =>
        ctx.prisma.message.findMany({ ...query, where: { ...query.where, parentId: m.id } }),
      ),
    }),
    clientMessageId: t.exposeString('clientMessageId', { nullable: true }),
    customFields: t.expose('customFields', { type: 'JSON', nullable: true }),
    edited: t.boolean({ resolve: (m) => m.editedAt !== null }),
    editedAt: t.expose('editedAt', { type: 'DateTime', nullable: true }),
    deleted: t.boolean({ resolve: (m) => m.deletedAt !== null }),
    deletedAt: t.expose('deletedAt', { type: 'DateTime', nullable: true, description: 'When it was deleted; every reader sees this.' }),
    // Loaded, not t.relation: a relation the parent's query preloads would skip
    // this check. One query for a page of deleted messages, not one each.
    deletedBy: t.loadable({
      type: User,
      nullable: true,
      description: 'Who deleted it (soft deletes): organization owners and admins only, null for everyone else.',
      load: loadVisibleUsers,
      resolve: (m, _args, ctx) => (ctx.viewer && maySeeWhoDeleted(ctx.viewer) ? m.deletedById : null),
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    edits: t.relatedConnection('edits', {
      cursor: 'id',
      maxSize: pageCap,
      description: 'Earlier versions, oldest first. Empty for a deleted message unless the viewer is an admin.',
      query: (_args, ctx) => ({
        orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
        // Hide history of deleted messages from non-admins without a second query.
        where: ctx.viewer && ctx.services.messages.canSeeDeleted(ctx.viewer) ? {} : { message: { deletedAt: null } },
      }),
      resolve: connectionFallback<Prisma.MessageEditFindManyArgs>((query, m, ctx) =>
        ctx.prisma.messageEdit.findMany({ ...query, where: { ...query.where, messageId: m.id } }),
      ),
    }),
  }),
});

builder.prismaNode('MessageEdit', {
  id: { field: 'id' },
  fields: (t) => ({
    previousBody: t.exposeString('previousBody', { description: 'The body as it was before this edit.' }),
    editor: t.relation('editor'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

builder.prismaObjectField(Channel, 'messages', (t) =>
  t.relatedConnection('messages', {
    cursor: 'channelId_seq',
    maxSize: pageCap,
    defaultSize: 50,
    description: 'History by seq, oldest first; page backwards with last/before. Replies included (see parent).',
    args: { filter: t.arg({ type: MessageFilter, required: false }) },
    query: ({ filter }) => ({
      orderBy: { seq: 'asc' },
      where: messageFilterWhere(filter && { ...filter, senderId: filter.senderId?.id }),
    }),
  }),
);

builder.objectField(Channel, 'lastMessage', (t) =>
  t.loadable({
    type: Message,
    nullable: true,
    description: 'The newest message that is not deleted.',
    load: (channelIds: string[], ctx) => ctx.services.channels.lastMessages(channelIds),
    resolve: (channel) => channel.id,
  }),
);

const MessageReadByConnection = builder.connectionObject(
  { type: ChannelMember, name: 'MessageReadByConnection' },
  { name: 'MessageReadByConnectionEdge' },
);

/** A readBy cursor is the member's global ID; anything else is refused rather than read as the start. */
function readByAfter(after: string | null | undefined): string | null {
  if (after == null) return null;
  try {
    const { typename, id } = decodeGlobalID(after);
    assertId(id, 'ChannelMember');
    if (typename === 'ChannelMember') return id;
  } catch {
    // falls through to the error below
  }
  throw badInput('after', 'after is not a cursor of readBy');
}

function readByPage(members: ChannelMemberRow[], first: number) {
  const edges = members.slice(0, first).map((node) => ({ cursor: encodeGlobalID('ChannelMember', node.id), node }));
  return {
    edges,
    pageInfo: {
      hasNextPage: members.length > first,
      hasPreviousPage: false,
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges.at(-1)?.cursor ?? null,
    },
  };
}

// Read receipts are batched over every message of a list (the loaders run
// one query per field of the operation, not per message).
builder.objectFields(Message, (t) => ({
  readBy: t.loadable({
    type: MessageReadByConnection,
    description:
      'Members whose read marker (ChannelMember.lastReadSeq) is at or past this message, the sender excepted; ordered by member.',
    args: {
      first: t.arg.int({ required: false, validate: z.number().int().min(0) }),
      after: t.arg.string({ required: false }),
    },
    byPath: true,
    load: async (messageIds: string[], ctx, args) => {
      pageCap(args, ctx);
      const first = args.first ?? 20;
      const pages = await ctx.services.readState.readers(messageIds, first + 1, readByAfter(args.after));
      return pages.map((members) => readByPage(members, first));
    },
    resolve: (message) => message.id,
  }),
  // Not a relationCount: a count is selected on the message's own row, which a
  // snapshot of a hard-deleted message no longer has.
  replyCount: t.loadable({
    type: 'Int',
    description: 'How many replies the thread under this message has.',
    load: (messageIds: string[], ctx) => ctx.services.messages.replyCounts(messageIds),
    resolve: (message) => message.id,
  }),
  readCount: t.loadable({
    type: 'Int',
    description: 'How many members have read this message (see readBy).',
    load: (messageIds: string[], ctx) => ctx.services.readState.readCounts(messageIds),
    resolve: (message) => message.id,
  }),
}));

const DeleteMessagePayload = builder.objectRef<DeleteResult>('DeleteMessagePayload').implement({
  fields: (t) => ({
    messageId: t.globalID({ resolve: (p) => ({ type: 'Message', id: p.messageId }) }),
    hard: t.exposeBoolean('hard', { description: 'true: the row is gone and `message` is null.' }),
    message: t.field({ type: Message, nullable: true, resolve: (p) => p.message }),
  }),
});

const SendMessageInput = builder.inputType('SendMessageInput', {
  fields: (t) => ({
    channelId: t.globalID({ for: Channel }),
    body: t.string({ description: 'Trimmed; must not be empty unless attachmentIds are given; at most MESSAGE_BODY_MAX characters.' }),
    parentId: t.globalID({ for: Message, required: false, description: 'Reply in this message\u2019s thread.' }),
    clientMessageId: t.string({
      required: false,
      description: 'Idempotency key: a retry with the same key returns the original message.',
    }),
    customFields: t.field({
      type: 'JSON',
      required: false,
      description: `A JSON object of your own fields, at most ${CUSTOM_FIELDS_MAX} characters serialized.`,
      validate: z.record(z.string(), z.unknown()),
    }),
    attachmentIds: t.globalIDList({
      for: Attachment,
      required: false,
      description:
        'Files from uploadFile to send with the message, in this order (at most 10); the body may then be empty. ' +
        'Each must be the viewer\u2019s own upload, not attached yet.',
    }),
  }),
});

const EditMessageInput = builder.inputType('EditMessageInput', {
  fields: (t) => ({ id: t.globalID({ for: Message }), body: t.string() }),
});

const DeleteMessageInput = builder.inputType('DeleteMessageInput', {
  fields: (t) => ({
    id: t.globalID({ for: Message }),
    hard: t.boolean({ required: false, description: 'Remove the row for good (organization admins).' }),
  }),
});

builder.queryFields((t) => ({
  message: t.withAuth({ authenticated: true }).prismaField({
    type: 'Message',
    args: { id: t.arg.globalID({ for: Message }) },
    resolve: (query, _root, args, ctx) => ctx.services.messages.get(ctx.viewer, args.id.id, query),
  }),
}));

builder.mutationFields((t) => ({
  sendMessage: t.withAuth({ authenticated: true }).prismaField({
    type: 'Message',
    args: { input: t.arg({ type: SendMessageInput }) },
    resolve: async (query, _root, { input }, ctx) => {
      const message = await ctx.services.messages.send(ctx.viewer, {
        ...input,
        channelId: input.channelId.id,
        parentId: input.parentId?.id,
        attachmentIds: input.attachmentIds?.map((id) => id.id),
      });
      return withSelection(query, message, (q) => ctx.prisma.message.findUniqueOrThrow({ ...q, where: { id: message.id } }));
    },
  }),
  editMessage: t.withAuth({ authenticated: true }).prismaField({
    type: 'Message',
    args: { input: t.arg({ type: EditMessageInput }) },
    resolve: async (query, _root, { input }, ctx) => {
      const message = await ctx.services.messages.edit(ctx.viewer, input.id.id, input.body);
      return withSelection(query, message, (q) => ctx.prisma.message.findUniqueOrThrow({ ...q, where: { id: message.id } }));
    },
  }),
  deleteMessage: t.withAuth({ authenticated: true }).field({
    type: DeleteMessagePayload,
    args: { input: t.arg({ type: DeleteMessageInput }) },
    resolve: (_root, { input }, ctx) => ctx.services.messages.delete(ctx.viewer, input.id.id, input.hard ?? false),
  }),
}));
