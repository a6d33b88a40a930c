import type { RemovalResult } from '../services/attachment-removal.ts';
import { Attachment } from './attachment.ts';
import { builder } from './builder.ts';
import { Message } from './message.ts';

// removeAttachment (issue 12 §3): a file taken off its message or request, or
// an unattached upload dropped; its storage is freed by the cleanup job.

const RemoveAttachmentPayload = builder.objectRef<RemovalResult>('RemoveAttachmentPayload').implement({
  fields: (t) => ({
    attachmentId: t.globalID({ resolve: (p) => ({ type: 'Attachment', id: p.attachmentId }) }),
    removed: t.exposeBoolean('removed', {
      description: 'false when the file had been removed already: nothing changed and no event was logged.',
    }),
    message: t.field({
      type: Message,
      nullable: true,
      description:
        'The message the file was on, as it is now (null for an unattached upload, a request\u2019s file, or a deleted message).',
      resolve: (p, _args, ctx) => (p.messageId ? ctx.prisma.message.findUnique({ where: { id: p.messageId } }) : null),
    }),
    clientRequestId: t.globalID({
      nullable: true,
      description: 'The client request the file was on.',
      resolve: (p) => (p.clientRequestId ? { type: 'ClientRequest', id: p.clientRequestId } : null),
    }),
  }),
});

builder.mutationFields((t) => ({
  removeAttachment: t.withAuth({ authenticated: true }).field({
    type: RemoveAttachmentPayload,
    description:
      'Removes a file from its message or client request (AttachmentRemovedEvent in the channel log), or drops an unattached ' +
      'upload (no event). Its uploader may, and organization staff and channel owners and admins; in an archived channel only ' +
      'organization admins. Storage is freed shortly after. Removing a removed file again changes nothing (removed: false).',
    args: { id: t.arg.globalID({ for: Attachment }) },
    resolve: (_root, { id }, ctx) => ctx.services.attachmentRemoval.remove(ctx.viewer, id.id),
  }),
}));
