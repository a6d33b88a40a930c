import { Prisma, type Attachment, type AttachmentKind, type ClientRequest, type PrismaClient } from '../generated/prisma/client.ts';
import { columns } from '../db/columns.ts';
import type { Tx } from '../db/tx.ts';
import { assertId, isStaff, maySeeDeletedContent } from './access.ts';
import { ATTACHMENTS_PER_ITEM_MAX, type AttachmentService } from './attachments.ts';
import { audit } from './audit.ts';
import type { ChannelLog, LogWriter } from './channel-log.ts';
import type { ClientRequestService, RequestFiles } from './client-requests.ts';
import type { Clock } from './clock.ts';
import { badInput, conflict, forbidden } from './errors.ts';
import { joinItemChannel } from './item-log.ts';
import type { Viewer } from './viewer.ts';

/**
 * Who adds files to a client request, and while it is in which status:
 * - its requester (with the project access that lets them file requests)
 *   while it is PENDING, the same window in which they may edit it: once
 *   staff decided, the request is what they decided on;
 * - organization staff (OWNER, ADMIN, STAFF) until it is closed, i.e. while
 *   PENDING or APPROVED (an approved request may still be converted, and
 *   the delivery note or the quote belongs with it). Staff join the
 *   request's conversation by adding, as deciders do, so they can read it.
 * Everyone else who reads the request (MEMBERs, other clients, VIEWER
 * access) is FORBIDDEN.
 */
export const FILE_WINDOW = { requester: ['PENDING'], staff: ['PENDING', 'APPROVED'] } as const satisfies Record<
  'requester' | 'staff',
  readonly ClientRequest['status'][]
>;

/** Where a page of `Channel.attachments` resumes: the last file's attachedAt and id. */
export interface ChannelFilesCursor {
  attachedAt: Date;
  id: string;
}

/**
 * Thrown inside the attaching transaction when an upload was no longer free
 * under its lock; turned into attachable()'s NOT_FOUND or CONFLICT after the
 * rollback (the embedded database has one connection: no query may run
 * beside the open transaction).
 */
class UploadsTaken extends Error {
  constructor() {
    super('an upload was taken by a concurrent attach');
  }
}

/**
 * Files on client requests (seed 000's ClientRequestAttachment) and the
 * files of a channel. Attaching writes the rows and the channel's
 * ATTACHMENT_ADDED event in one transaction, so the files are live and in
 * the replayable log together or not at all.
 */
export class RequestAttachmentService implements RequestFiles {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly channelLog: ChannelLog,
    private readonly attachments: AttachmentService,
    private readonly requests: ClientRequestService,
    private readonly clock: Clock,
  ) {}

  /** The errors attachable() names, before any transaction: foreign or missing ids NOT_FOUND, attached ones CONFLICT. */
  async check(viewer: Viewer, ids: readonly string[]): Promise<void> {
    if (ids.length) await this.attachments.attachable(viewer, ids);
  }

  /** addClientRequestAttachments: see FILE_WINDOW for who may, and when. */
  async add(viewer: Viewer, requestId: string, ids: readonly string[]): Promise<ClientRequest> {
    if (!ids.length) throw badInput('attachmentIds', 'attachmentIds must name at least one file');
    const request = await this.requests.get(viewer, requestId);
    const who = await this.adder(viewer, request);
    await this.check(viewer, ids);
    return this.channelLog
      .transaction(viewer.organizationId, viewer.id, async (tx, log) => {
        // The request's row lock orders concurrent adds to it (positions, the per-request bound, the status).
        const [locked] = await tx.$queryRaw<ClientRequest[]>`
          SELECT ${columns('ClientRequest')} FROM "ClientRequest" WHERE id = ${request.id}::uuid FOR UPDATE`;
        const row = locked!;
        if (!(FILE_WINDOW[who] as readonly string[]).includes(row.status)) {
          throw conflict(
            who === 'staff'
              ? `The request is ${row.status}; files can no longer be added`
              : `The request is ${row.status}; only staff add files to it now`,
            { status: row.status },
          );
        }
        if (who === 'staff') await joinItemChannel(tx, log, viewer.id, row.channelId);
        await this.attach(tx, log, viewer, row, ids);
        return row;
      })
      .catch((error: unknown) => this.rethrow(viewer, ids, error));
  }

  /**
   * Attaches the viewer's uploads to `request` inside the caller's
   * transaction and appends ATTACHMENT_ADDED to its channel. The uploads are
   * locked (in id order, so two attaches of overlapping sets cannot
   * deadlock) and taken only while still UPLOADED: of two concurrent uses of
   * one upload, the second waits for the first to commit, then finds it
   * taken and fails (see `rethrow`).
   */
  async attach(tx: Tx, log: LogWriter, viewer: Viewer, request: ClientRequest, ids: readonly string[]): Promise<void> {
    checkIds(ids);
    const list = [...ids];
    const [{ attached } = { attached: 0 }] = await tx.$queryRaw<{ attached: number }[]>`
      SELECT count(*)::int AS attached FROM "Attachment" WHERE "clientRequestId" = ${request.id}::uuid AND state = 'ATTACHED'`;
    if (attached + list.length > ATTACHMENTS_PER_ITEM_MAX) {
      throw conflict(`A request carries at most ${ATTACHMENTS_PER_ITEM_MAX} files; this one has ${attached}`, {
        field: 'attachmentIds',
        limit: ATTACHMENTS_PER_ITEM_MAX,
        attached,
      });
    }
    const taken = await tx.$queryRaw<{ id: string }[]>`
      WITH free AS (
        SELECT id FROM "Attachment"
        WHERE id = ANY(${list}::uuid[]) AND "organizationId" = ${viewer.organizationId}::uuid
          AND "uploaderId" = ${viewer.id}::uuid AND state = 'UPLOADED'
        ORDER BY id
        FOR UPDATE
      ),
      base AS (SELECT COALESCE(max(position), 0) AS position FROM "Attachment" WHERE "clientRequestId" = ${request.id}::uuid)
      UPDATE "Attachment" a SET state = 'ATTACHED', "clientRequestId" = ${request.id}::uuid, "channelId" = ${request.channelId}::uuid,
        "attachedAt" = ${this.clock.now()}, position = base.position + array_position(${list}::uuid[], a.id)
      FROM base
      WHERE a.id IN (SELECT id FROM free)
      RETURNING a.id`;
    if (taken.length !== list.length) throw new UploadsTaken();
    await log.append(request.channelId, 'ATTACHMENT_ADDED', { clientRequestId: request.id, attachmentIds: list });
    await audit(tx, {
      organizationId: viewer.organizationId,
      actorId: viewer.id,
      action: 'ClientRequest.FILES_ADDED',
      targetType: 'ClientRequest',
      targetId: request.id,
      data: { attachmentIds: list },
    });
  }

  /** After a failed attaching transaction: names why an upload was not free (NOT_FOUND or CONFLICT), or passes the error on. */
  async rethrow(viewer: Viewer, ids: readonly string[], error: unknown): Promise<never> {
    if (!(error instanceof UploadsTaken)) throw error;
    await this.attachments.attachable(viewer, ids);
    throw conflict('This file is attached already; upload it again to share it twice', { field: 'attachmentIds' });
  }

  /**
   * `Channel.attachments` for a page of channels the viewer reads (the
   * Channel object checked that): up to `take` attached files of each, newest
   * first, from the index on (channelId, attachedAt, id), one query for all.
   * Files of soft-deleted messages only for those who see deleted content.
   */
  async inChannels(
    viewer: Viewer,
    channelIds: readonly string[],
    take: number,
    after: ChannelFilesCursor | null,
    kind: AttachmentKind | null,
  ): Promise<Attachment[][]> {
    if (!channelIds.length || take <= 0) return channelIds.map(() => []);
    const rows = await this.prisma.$queryRaw<Attachment[]>`
      SELECT ${columns('Attachment', 'f')}
      FROM unnest(${[...channelIds]}::uuid[]) AS ch(id)
      CROSS JOIN LATERAL (
        SELECT ${columns('Attachment', 'a')} FROM "Attachment" a
        WHERE a."channelId" = ch.id AND a."organizationId" = ${viewer.organizationId}::uuid AND a.state = 'ATTACHED'
          ${kind ? Prisma.sql`AND a.kind = ${kind}::"AttachmentKind"` : Prisma.empty}
          ${after ? Prisma.sql`AND (a."attachedAt", a.id) < (${after.attachedAt}, ${after.id}::uuid)` : Prisma.empty}
          ${
            maySeeDeletedContent(viewer)
              ? Prisma.empty
              : Prisma.sql`AND NOT EXISTS (SELECT 1 FROM "Message" m WHERE m.id = a."messageId" AND m."deletedAt" IS NOT NULL)`
          }
        ORDER BY a."attachedAt" DESC, a.id DESC
        LIMIT ${take}
      ) f`;
    const byChannel = new Map<string, Attachment[]>(channelIds.map((id) => [id, []]));
    for (const row of rows) byChannel.get(row.channelId!)?.push(row);
    return channelIds.map((id) => byChannel.get(id) ?? []);
  }

  /** Whether the viewer adds as staff or as the requester; FORBIDDEN for everyone else who reads the request. */
  private async adder(viewer: Viewer, request: ClientRequest): Promise<keyof typeof FILE_WINDOW> {
    if (isStaff(viewer)) return 'staff';
    if (request.requesterId !== viewer.id) throw forbidden('Only the requester and organization staff add files to a request');
    // The requester keeps the right only while their project access lets them file requests.
    await this.requests.authorize(viewer, 'requester', request);
    return 'requester';
  }
}

/** attachable()'s checks of the list itself, for the path that does not call it first (an idempotent create). */
function checkIds(ids: readonly string[]): void {
  if (ids.length > ATTACHMENTS_PER_ITEM_MAX) {
    throw badInput('attachmentIds', `at most ${ATTACHMENTS_PER_ITEM_MAX} attachments per message or request`);
  }
  if (new Set(ids).size !== ids.length) throw badInput('attachmentIds', 'attachmentIds must not repeat an id');
  for (const id of ids) assertId(id, 'Attachment');
}
