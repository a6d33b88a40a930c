import { dataloaderGetter } from '@pothos/plugin-dataloader';
import { z } from 'zod';
import type { Attachment as AttachmentRow } from '../generated/prisma/client.ts';
import { isId } from '../services/access.ts';
import { ATTACHMENTS_PER_ITEM_MAX } from '../services/attachments.ts';
import { badInput } from '../services/errors.ts';
import type { ChannelFilesCursor } from '../services/request-attachments.ts';
import { Attachment, AttachmentKind } from './attachment.ts';
import { builder } from './builder.ts';
import { Channel } from './channel.ts';
import { ClientRequest } from './client-request.ts';
import type { Context } from './context.ts';
import { pageCap } from './pagination.ts';

// Attachments in lists (issue 12 §1 and §4): the files of a client request
// and the files of a channel, and adding files to a request after filing it.

/** Each request's files: one query per request for every request asked about. */
const requestAttachments = dataloaderGetter<string, AttachmentRow[], Context>(
  undefined,
  (requestIds, context) => (context as Context).services.attachments.forRequests(requestIds),
  undefined,
  undefined,
);

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

function page(files: AttachmentRow[], first: number) {
  const edges = files.slice(0, first).map((file) => ({ cursor: encodeCursor(file), node: file }));
  return {
    edges,
    pageInfo: {
      hasNextPage: files.length > first,
      hasPreviousPage: false,
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges.at(-1)?.cursor ?? null,
    },
  };
}

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
      description: `Files from uploadFile, in this order; each the viewer\u2019s own upload, not attached yet. At most ${ATTACHMENTS_PER_ITEM_MAX} per request in all.`,
    }),
  }),
});

/** Raw attachment ids from global ids, which must name attachments. */
function attachmentIdsOf(ids: readonly { typename: string; id: string }[]): string[] {
  return ids.map((id) => {
    if (id.typename !== 'Attachment') throw badInput('attachmentIds', 'attachmentIds must be Attachment ids');
    return id.id;
  });
}

builder.mutationFields((t) => ({
  addClientRequestAttachments: t.withAuth({ authenticated: true }).prismaField({
    type: 'ClientRequest',
    description:
      'Adds files to a client request, after the ones it has; its conversation gets an AttachmentAddedEvent. ' +
      'The requester adds while the request is PENDING, organization staff while it is PENDING or APPROVED ' +
      '(staff join its conversation). Another user\u2019s or organization\u2019s upload is NOT_FOUND, an attached one CONFLICT.',
    args: { input: t.arg({ type: AddClientRequestAttachmentsInput }) },
    resolve: async (query, _root, { input }, ctx) => {
      const request = await ctx.services.requestAttachments.add(ctx.viewer, input.clientRequestId.id, attachmentIdsOf(input.attachmentIds));
      return ctx.prisma.clientRequest.findUniqueOrThrow({ ...query, where: { id: request.id } });
    },
  }),
}));
