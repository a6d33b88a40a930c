import type { Attachment, PrismaClient } from '../generated/prisma/client.ts';
import { assertId, channelAccess, isAdmin, isStaff, readableAttachmentWhere } from './access.ts';
import type { AttachmentService } from './attachments.ts';
import type { ChannelLog } from './channel-log.ts';
import { forbidden, notFound } from './errors.ts';
import type { Viewer } from './viewer.ts';

export interface RemovalResult {
  attachmentId: string;
  /** The message the file was on (null for an unattached upload or a request's file). */
  messageId: string | null;
  clientRequestId: string | null;
  /** false when the file had been removed already: nothing was done and no event was logged. */
  removed: boolean;
}

/**
 * removeAttachment (issue 12 §3). Who may remove a file follows soft message
 * deletion: its uploader, organization staff, and the channel's owners and
 * admins. In an archived channel (read-only) only organization admins may, as
 * they may delete a message permanently there. An unattached upload is its
 * uploader's alone: to everyone else it does not exist (NOT_FOUND), as for
 * downloads. A file someone cannot read (`readableAttachmentWhere`, the
 * download rule: a soft-deleted message's only for admins) is NOT_FOUND too;
 * one they can see but may not remove is FORBIDDEN. A request's file follows
 * the same rule, with its conversation's owners and admins as channel admins.
 *
 * The row turns DELETED and ATTACHMENT_REMOVED is appended to the channel log
 * in one transaction; the bytes and the row go with the next cleanup pass,
 * which is scheduled right after the commit. Removing a removed file again is
 * a no-op with no event (until the cleanup has deleted the row: then NOT_FOUND).
 */
export class AttachmentRemovalService {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly channelLog: ChannelLog,
    private readonly attachments: AttachmentService,
  ) {}

  async remove(viewer: Viewer, id: string): Promise<RemovalResult> {
    assertId(id, 'Attachment');
    // Two rounds at most: an upload attached by a concurrent send is removed from its message.
    for (let attempt = 0; attempt < 2; attempt++) {
      const row = await this.prisma.attachment.findFirst({ where: { id, organizationId: viewer.organizationId } });
      if (!row) throw notFound('Attachment');
      const result =
        row.channelId === null && row.state !== 'ATTACHED' ? await this.removeUpload(viewer, row) : await this.removeShared(viewer, row);
      if (result) return result;
    }
    throw notFound('Attachment');
  }

  /** An upload never attached: its uploader's only. Null when a send attached it meanwhile. */
  private async removeUpload(viewer: Viewer, row: Attachment): Promise<RemovalResult | null> {
    if (row.uploaderId !== viewer.id) throw notFound('Attachment');
    const result = { attachmentId: row.id, messageId: null, clientRequestId: null };
    if (row.state === 'DELETED') return { ...result, removed: false };
    // Conditional, so a send that attaches it at the same time either wins (then the
    // file is removed from its message, with an event) or finds it gone.
    const { count } = await this.prisma.attachment.updateMany({
      where: { id: row.id, uploaderId: viewer.id, state: 'UPLOADED' },
      data: { state: 'DELETED' },
    });
    if (!count) return null;
    this.attachments.scheduleCleanup();
    return { ...result, removed: true };
  }

  /** A file of a message or a request: checked like a message delete, removed with an event. */
  private async removeShared(viewer: Viewer, row: Attachment): Promise<RemovalResult | null> {
    // Its message, request or channel is gone: the cleanup job takes it; nobody can see it.
    if (!row.channelId) throw notFound('Attachment');
    const channelId = row.channelId;
    const access = await channelAccess(this.prisma, viewer, channelId).catch(() => null);
    if (!access) throw notFound('Attachment');
    // An attached file is seen as downloads see it: a message's by its channel (a soft-deleted
    // one's by admins only), a request's by the request's readers. A removed one (here or by a
    // concurrent removal since it was read) by its uploader and the channel's readers.
    let visible =
      row.state === 'ATTACHED' && (await this.prisma.attachment.count({ where: { id: row.id, ...readableAttachmentWhere(viewer) } })) > 0;
    if (!visible && (row.state === 'DELETED' || (await this.stateOf(row.id)) === 'DELETED')) {
      visible = row.uploaderId === viewer.id || access.canRead;
    }
    if (!visible) throw notFound('Attachment');
    if (row.uploaderId !== viewer.id && !isStaff(viewer) && !access.canManage) {
      throw forbidden('Only the uploader, staff or channel admins remove this file');
    }
    if (access.channel.archivedAt && !isAdmin(viewer)) throw forbidden('This channel is archived and read-only');
    const result = { attachmentId: row.id, messageId: row.messageId, clientRequestId: row.clientRequestId };
    if (row.state === 'DELETED') return { ...result, removed: false };
    try {
      await this.channelLog.transaction(viewer.organizationId, viewer.id, async (tx, log) => {
        await log.append(channelId, 'ATTACHMENT_REMOVED', async () => {
          // After the seq bump, which queues this behind every other writer to the
          // channel (a hard delete of the message included): the row is read in
          // the state they left it.
          const [gone] = await tx.$queryRaw<Pick<Attachment, 'messageId' | 'clientRequestId'>[]>`
            UPDATE "Attachment" SET state = 'DELETED'
            WHERE id = ${row.id}::uuid AND state = 'ATTACHED' AND "channelId" = ${channelId}::uuid
            RETURNING "messageId", "clientRequestId"`;
          // Removed (or its message deleted) meanwhile: undo this seq bump.
          if (!gone) throw new AlreadyRemoved();
          const message = gone.messageId ? await tx.message.findUnique({ where: { id: gone.messageId }, select: { seq: true } }) : null;
          return {
            attachmentId: row.id,
            messageId: gone.messageId,
            messageSeq: message?.seq ?? null,
            clientRequestId: gone.clientRequestId,
            removedById: viewer.id,
          };
        });
      });
    } catch (error) {
      if (error instanceof AlreadyRemoved) return { ...result, removed: false };
      throw error;
    }
    this.attachments.scheduleCleanup();
    return { ...result, removed: true };
  }

  private async stateOf(id: string): Promise<Attachment['state'] | null> {
    return (await this.prisma.attachment.findUnique({ where: { id }, select: { state: true } }))?.state ?? null;
  }
}

class AlreadyRemoved extends Error {}
