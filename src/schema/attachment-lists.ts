import { dataloaderGetter } from '@pothos/plugin-dataloader';
import { z } from 'zod';
import type { Attachment as AttachmentRow } from '../generated/prisma/client.ts';
import { isId, maySeeDeletedContent } from '../services/access.ts';
import { ATTACHMENTS_PER_ITEM_MAX } from '../services/attachments.ts';
import { badInput } from '../services/errors.ts';
import type { ChannelFilesCursor } from '../services/request-attachments.ts';
import { Attachment, AttachmentKind } from './attachment.ts';
import { builder } from './builder.ts';
import { Channel } from './channel.ts';
import { ClientRequest } from './client-request.ts';
import { Message } from './message.ts';
import type { Context } from './context.ts';
import { keysetPage, pageCap } from './pagination.ts';

// Attachments in lists (issue 12 §1 and §4): the files of a message, of a
// client request and of a channel, and adding files to a request after filing it.

/** Each request's files: one query per request for every request asked about. */
const requestAttachments = dataloaderGetter<string, AttachmentRow[], Context>(
  undefined,
  (requestIds, context) => (context as Context).services.attachments.forRequests(requestIds),
  undefined,
  undefined,
);

/** Each message's files: one query per request for every message asked about (live snapshots included). */
const messageAttachments = dataloaderGetter<string, AttachmentRow[], Context>(
  undefined,
  (messageIds, context) => (context as Context).services.attachments.forMessages(messageIds),
  undefined,
  undefined,
);

builder.objectFields(Message, (t) => ({
  attachments: t.field({
    type: [Attachment],
    description: `Files sent with the message, in order (at most ${ATTACHMENTS_PER_ITEM_MAX}). Empty once the message is deleted, except for organization admins.`,
    resolve: (message, _args, ctx) =>
      message.deletedAt && !(ctx.viewer && maySeeDeletedContent(ctx.viewer)) ? [] : messageAttachments(ctx).load(message.id),
  }),
}));

builder.objectFields(ClientRequest, (t) => ({
  attachments: t.field({
    type: [Attachment],
    description: `Files filed with the request or added to it since, in order (at most ${ATTACHMENTS_PER_ITEM_MAX}).`,
    resolve: (request, _args, ctx) => requestAttachments(ctx).load(request.id),
  }),
}));

const AttachmentConnection = builder.connectionObject({ type: Attachment, name: 'AttachmentConnection' }, { name: 'AttachmentEdge' });

const encodeCursor = (a: AttachmentRow) => Buffer.from(`file:${a.attachedAt!.getTime()}:${a.id}`).toString('base64url');

/** A Channel.attachments cursor names a file (its attach time and id); anything else is refused rather than read as the start. */
function decodeCursor(after: string | null | undefined): ChannelFilesCursor | null {
  if (after == null) return null;
  const match = /^file:(\d{1,15}):(.+)$/.exec(Buffer.from(after, 'base64url').toString());
  if (!match || !isId(match[2]!)) throw badInput('after', 'after is not a cursor of Channel.attachments');
  return { attachedAt: new Date(Number(match[1])), id: match[2]! };
}

const page = (files: AttachmentRow[], first: number) => keysetPage(files, first, encodeCursor, (file) => file);

builder.objectField(Channel, 'attachments', (t) =>
  t.loadable({
    type: AttachmentConnection,
    description:
      'Files in this channel (sent with messages, or added to its client request), newest first. ' +
      'Files of deleted messages only for organization admins.',
    args: {
      first: t.arg.int({ required: false, validate: z.number().int().min(0) }),
      after: t.arg.string({ required: false }),
      kind: t.arg({ type: AttachmentKind, required: false, description: 'Only files of this kind, e.g. IMAGE for a gallery.' }),
    },
    byPath: true,
    load: async (channelIds: string[], ctx, args) => {
      pageCap(args, ctx);
      const first = args.first ?? 20;
      const after = decodeCursor(args.after);
      if (!ctx.viewer) return channelIds.map(() => page([], first));
      const pages = await ctx.services.requestAttachments.inChannels(ctx.viewer, channelIds, first + 1, after, args.kind ?? null);
      return pages.map((files) => page(files, first));
    },
    resolve: (channel) => channel.id,
  }),
);

const AddClientRequestAttachmentsInput = builder.inputType('AddClientRequestAttachmentsInput', {
  fields: (t) => ({
    clientRequestId: t.globalID({ for: ClientRequest }),
    attachmentIds: t.globalIDList({
      for: Attachment,
      description: `Files from uploadFile, in this order; each the viewer\u2019s own upload, not attached yet. At most ${ATTACHMENTS_PER_ITEM_MAX} per request in all.`,
    }),
  }),
});

builder.mutationFields((t) => ({
  addClientRequestAttachments: t.withAuth({ authenticated: true }).prismaField({
    type: 'ClientRequest',
    description:
      'Adds files to a client request, after the ones it has; its conversation gets an AttachmentAddedEvent. ' +
      'The requester adds while the request is PENDING, organization staff while it is PENDING or APPROVED ' +
      '(staff join its conversation). Another user\u2019s or organization\u2019s upload is NOT_FOUND, an attached one CONFLICT.',
    args: { input: t.arg({ type: AddClientRequestAttachmentsInput }) },
    resolve: async (query, _root, { input }, ctx) => {
      const request = await ctx.services.requestAttachments.add(
        ctx.viewer,
        input.clientRequestId.id,
        input.attachmentIds.map((id) => id.id),
      );
      return ctx.prisma.clientRequest.findUniqueOrThrow({ ...query, where: { id: request.id } });
    },
  }),
}));
