import { webcrypto } from 'node:crypto';
import type { Logger } from 'pino';
import { v7 as uuidv7 } from 'uuid';
import { Prisma, type Attachment, type AttachmentKind, type PrismaClient } from '../generated/prisma/client.ts';
import type { UploadLimits } from '../config.ts';
import { columns } from '../db/columns.ts';
import { assertId, readableAttachmentWhere } from './access.ts';
import { badInput, conflict, DomainError, notFound, ServiceUnavailableError } from './errors.ts';
import type { ImageProcessor } from './files/images.ts';
import type { InspectPool } from './files/inspect-pool.ts';
import type { BlobStore } from './files/storage.ts';
import type { Viewer } from './viewer.ts';

/** Files one message or request may carry. */
export const ATTACHMENTS_PER_ITEM_MAX = 10;
/** Thumbnail widths made for every image (WebP, fit inside width × width). */
export const THUMBNAIL_WIDTHS = [320, 1280] as const;

/** A stored form of an attachment: the original, or a thumbnail by its width. */
export type Variant = 'original' | `${number}`;

/** The file an upload hands over (the Fetch API's File that Yoga parses multipart parts into). */
export interface UploadedFile {
  readonly name: string;
  readonly size: number;
  arrayBuffer(): Promise<ArrayBuffer>;
}

/** Where a variant lives in the blob store: ids only, no user input. */
export const storageKey = (a: Pick<Attachment, 'organizationId' | 'id'>, variant: Variant) => `${a.organizationId}/${a.id}/${variant}`;

/** Every stored form of an attachment: what the cleanup job deletes. */
export const allVariants = (a: Pick<Attachment, 'thumbnails'>): Variant[] => ['original', ...a.thumbnails.map((w) => String(w) as Variant)];

/**
 * Uploads and the rules about who may read, attach and remove files. Bytes go
 * to the blob store; rows track every key ever written, so the cleanup job
 * can always free what a failure or a removal left behind.
 */
export class AttachmentService {
  constructor(
    private readonly prisma: PrismaClient,
    readonly store: BlobStore,
    private readonly images: ImageProcessor,
    private readonly inspector: InspectPool,
    private readonly limits: UploadLimits,
    private readonly log: Logger,
  ) {}

  /**
   * Stores an upload as an UPLOADED attachment of the viewer. The type comes
   * from the bytes; images are re-encoded without their metadata and get
   * thumbnails. The quota is taken in the statement that creates the row, so
   * concurrent uploads cannot pass it together.
   */
  async upload(viewer: Viewer, file: UploadedFile): Promise<Attachment> {
    if (file.size > this.limits.maxFileBytes) throw tooLarge(this.limits.maxFileBytes);
    const bytes = new Uint8Array(await file.arrayBuffer());
    if (bytes.byteLength > this.limits.maxFileBytes) throw tooLarge(this.limits.maxFileBytes);
    const { type, name } = await this.inspector.inspect(bytes, file.name ?? '');
    let original: Uint8Array = bytes;
    let contentType = type.contentType;
    let dimensions: { width: number; height: number } | null = null;
    let thumbnails: { width: number; body: Buffer }[] = [];
    if (type.kind === 'IMAGE') {
      const image = await this.images.process(bytes, type);
      original = image.original;
      contentType = image.contentType;
      dimensions = { width: image.width, height: image.height };
      thumbnails = image.thumbnails;
    }
    const storedBytes = original.byteLength + thumbnails.reduce((sum, t) => sum + t.body.byteLength, 0);
    const draft = {
      id: uuidv7(),
      organizationId: viewer.organizationId,
      uploaderId: viewer.id,
      kind: type.kind,
      contentType,
      name,
      size: original.byteLength,
      storedBytes,
      width: dimensions?.width ?? null,
      height: dimensions?.height ?? null,
      thumbnails: thumbnails.map((t) => t.width),
      // WebCrypto digests on libuv's threads, not on the event loop.
      sha256: Buffer.from(await webcrypto.subtle.digest('SHA-256', original)).toString('hex'),
    };
    const row = await this.reserve(draft);
    // Every put settles before a failure is handled, so the cleanup job,
    // which deletes every key the row names, never races a put still running.
    const puts = await Promise.allSettled([
      this.store.put(storageKey(row, 'original'), Buffer.from(original.buffer, original.byteOffset, original.byteLength), contentType),
      ...thumbnails.map((t) => this.store.put(storageKey(row, String(t.width) as Variant), t.body, 'image/webp')),
    ]);
    const failed = puts.find((p): p is PromiseRejectedResult => p.status === 'rejected');
    if (failed) {
      // The row knows every key: the cleanup job frees what was written, and gives the quota back.
      await this.prisma.attachment.update({ where: { id: row.id }, data: { state: 'DELETED' } }).catch(() => {});
      this.scheduleCleanup();
      this.log.warn({ err: failed.reason, attachmentId: row.id }, 'storing an upload failed');
      throw new ServiceUnavailableError('storage', 'File storage is unavailable');
    }
    return row;
  }

  /** Inserts the row and counts its bytes against the organization's quota in one statement. */
  private async reserve(draft: {
    id: string;
    organizationId: string;
    uploaderId: string;
    kind: AttachmentKind;
    contentType: string;
    name: string;
    size: number;
    storedBytes: number;
    width: number | null;
    height: number | null;
    thumbnails: number[];
    sha256: string;
  }): Promise<Attachment> {
    const quota = this.limits.organizationQuotaBytes;
    const [row] = await this.prisma.$queryRaw<Attachment[]>`
      WITH quota AS (
        UPDATE "Organization" SET "storageBytes" = "storageBytes" + ${draft.storedBytes}
        WHERE id = ${draft.organizationId}::uuid AND (${quota}::bigint = 0 OR "storageBytes" + ${draft.storedBytes} <= ${quota}::bigint)
        RETURNING id
      )
      INSERT INTO "Attachment" (id, "organizationId", "uploaderId", kind, "contentType", name, size, "storedBytes", width, height, thumbnails, sha256)
      SELECT ${draft.id}::uuid, quota.id, ${draft.uploaderId}::uuid, ${draft.kind}::"AttachmentKind", ${draft.contentType}, ${draft.name},
        ${draft.size}, ${draft.storedBytes}, ${draft.width}::int, ${draft.height}::int, ${draft.thumbnails}::int[], ${draft.sha256}
      FROM quota
      RETURNING ${columns('Attachment')}`;
    if (!row) {
      const org = await this.prisma.organization.findUniqueOrThrow({
        where: { id: draft.organizationId },
        select: { storageBytes: true },
      });
      throw new DomainError('CONFLICT', `Your organization's file storage is full (quota ${quota} bytes); remove files first`, {
        limit: 'ORG_STORAGE_QUOTA_BYTES',
        quotaBytes: quota,
        usedBytes: Number(org.storageBytes),
      });
    }
    return row;
  }

  /**
   * Checks that the viewer may attach these uploads (their own, unattached,
   * within the per-item bound) and returns them in the given order. Another
   * user's or organization's ids are NOT_FOUND like ids that never existed.
   */
  async attachable(viewer: Viewer, ids: readonly string[]): Promise<Attachment[]> {
    if (ids.length > ATTACHMENTS_PER_ITEM_MAX) {
      throw badInput('attachmentIds', `at most ${ATTACHMENTS_PER_ITEM_MAX} attachments per message or request`);
    }
    if (new Set(ids).size !== ids.length) throw badInput('attachmentIds', 'attachmentIds must not repeat an id');
    for (const id of ids) assertId(id, 'Attachment');
    const rows = await this.prisma.attachment.findMany({
      where: { id: { in: [...ids] }, organizationId: viewer.organizationId, uploaderId: viewer.id, state: { not: 'DELETED' } },
    });
    const byId = new Map(rows.map((r) => [r.id, r]));
    return ids.map((id) => {
      const row = byId.get(id);
      if (!row) throw notFound('Attachment');
      if (row.state !== 'UPLOADED')
        throw conflict('This file is attached already; upload it again to share it twice', { field: 'attachmentIds' });
      return row;
    });
  }

  /**
   * CTEs for the send statement: `att_lock` locks the uploads (so a
   * concurrent send of the same ids waits, then finds them taken), and the
   * guard `attachmentsFree` makes the statement write nothing unless every one
   * is still the viewer's and unattached; `att` attaches them to `msg`.
   */
  sendSql(viewer: Viewer, ids: readonly string[]): { lock: Prisma.Sql; guard: Prisma.Sql; attach: Prisma.Sql } | null {
    if (!ids.length) return null;
    const list = [...ids];
    return {
      lock: Prisma.sql`att_lock AS (
        SELECT id FROM "Attachment"
        WHERE id = ANY(${list}::uuid[]) AND "organizationId" = ${viewer.organizationId}::uuid
          AND "uploaderId" = ${viewer.id}::uuid AND state = 'UPLOADED'
        FOR UPDATE
      ),`,
      guard: Prisma.sql`(SELECT count(*) FROM att_lock) = ${list.length}`,
      attach: Prisma.sql`,
        att AS (
          UPDATE "Attachment" a SET state = 'ATTACHED', "messageId" = msg.id, "channelId" = msg."channelId",
            "attachedAt" = msg."createdAt", position = array_position(${list}::uuid[], a.id)
          FROM msg WHERE a.id IN (SELECT id FROM att_lock)
        )`,
    };
  }

  /** Attached files of each message, in order, for one page of messages (one query). */
  async forMessages(messageIds: readonly string[]): Promise<Attachment[][]> {
    const rows = await this.prisma.attachment.findMany({
      where: { messageId: { in: [...messageIds] }, state: 'ATTACHED' },
      orderBy: [{ messageId: 'asc' }, { position: 'asc' }],
    });
    return groupBy(messageIds, rows, (r) => r.messageId);
  }

  /** Attached files of each client request, in order (one query). */
  async forRequests(requestIds: readonly string[]): Promise<Attachment[][]> {
    const rows = await this.prisma.attachment.findMany({
      where: { clientRequestId: { in: [...requestIds] }, state: 'ATTACHED' },
      orderBy: [{ clientRequestId: 'asc' }, { position: 'asc' }],
    });
    return groupBy(requestIds, rows, (r) => r.clientRequestId);
  }

  /**
   * The attachment a user may download right now, or null (`readableAttachmentWhere`):
   * checked on every download, so whoever loses access loses the file at once.
   */
  async readableBy(userId: string, organizationId: string, attachmentId: string): Promise<Attachment | null> {
    const user = await this.prisma.user.findFirst({
      where: { id: userId, organizationId, deactivatedAt: null },
      select: { id: true, organizationId: true, role: true },
    });
    if (!user) return null;
    return this.prisma.attachment.findFirst({ where: { id: attachmentId, ...readableAttachmentWhere(user) } });
  }

  /** Stops the inspection threads and closes the blob store. */
  async close(): Promise<void> {
    await Promise.all([this.inspector.close(), this.store.close()]);
  }

  /** Set by the lifecycle wiring: frees removed files soon instead of at the next interval. */
  scheduleCleanup: () => void = () => {};
}

function tooLarge(max: number): DomainError {
  return new DomainError('BAD_USER_INPUT', `The file is too large: at most ${max} bytes (UPLOAD_MAX_FILE_BYTES)`, {
    field: 'file',
    limit: 'UPLOAD_MAX_FILE_BYTES',
    maxBytes: max,
  });
}

function groupBy<T>(keys: readonly string[], rows: T[], key: (row: T) => string | null): T[][] {
  const groups = new Map<string, T[]>();
  for (const row of rows) {
    const k = key(row);
    if (k === null) continue;
    const list = groups.get(k);
    if (list) list.push(row);
    else groups.set(k, [row]);
  }
  return keys.map((k) => groups.get(k) ?? []);
}
