import type { Logger } from 'pino';
import { Prisma, type PrismaClient } from '../generated/prisma/client.ts';
import type { UploadLimits } from '../config.ts';
import { allVariants, storageKey } from './attachments.ts';
import type { BlobStore } from './files/storage.ts';

/** Rows per statement and per blob-store call. */
const BATCH = 100;
/** A removal's cleanup waits this long, so a burst of removals is freed in one pass. */
const SOON_MS = 1000;
const HOUR_MS = 3600 * 1000;

export interface CleanupCounts {
  /** Uploads never attached within UPLOAD_UNATTACHED_TTL_HOURS, retired by this pass. */
  expired: number;
  /** Attached files whose message or request is gone (deleted with its channel), retired by this pass. */
  orphaned: number;
  /** Rows deleted together with their stored bytes. */
  deleted: number;
  freedBytes: number;
  /** The blob store failed: what is left stays DELETED for the next pass. */
  storageFailed: boolean;
}

/** Limits a pass to one organization (tests, tools). */
export interface CleanupScope {
  organizationId?: string;
}

/**
 * Frees the storage of files nobody can reach any more (issue 12 §1, §3):
 * removed files, files of hard-deleted messages, uploads left unattached past
 * their TTL, and files whose message or request vanished with its channel.
 *
 * The order makes every race end on the safe side:
 *  1. Retire: expired uploads and orphans turn DELETED through conditional
 *     UPDATEs. A send attaching an upload at the same moment either commits
 *     first (the row is ATTACHED and not matched) or finds it DELETED and
 *     fails as for any vanished upload. Nothing leaves DELETED, so from here
 *     on no one can attach or read the row again.
 *  2. Delete the blobs of DELETED rows. Only now, because deleting the bytes of
 *     a row that could still be attached would lose a user's file.
 *  3. Delete those rows and subtract their bytes from their organizations'
 *     quota, in one statement (only rows still DELETED and still there, so two
 *     passes at once subtract once). Rows go after their blobs: a process
 *     dying between 2 and 3 leaves rows whose blobs are gone, which the next
 *     pass deletes again harmlessly; the other order would leak blobs no row
 *     knows of.
 * A storage failure stops the pass with the rows still DELETED (warned; the
 * next interval retries). One pass at a time per process; passes of several
 * processes at once are safe by the conditions above (blob deletes of missing
 * keys are no error), only duplicated work.
 */
export class FileCleanup {
  private interval: NodeJS.Timeout | null = null;
  private soon: NodeJS.Timeout | null = null;
  /** The pass running or queued last; a new pass waits for it. */
  private tail: Promise<unknown> = Promise.resolve();
  /** A pass queued and not started yet: later requests join it. */
  private queued: Promise<CleanupCounts> | null = null;
  private stopped = false;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly store: BlobStore,
    private readonly log: Logger,
    private readonly now: () => Date,
    private readonly limits: Pick<UploadLimits, 'unattachedTtlHours' | 'cleanupIntervalMs'>,
  ) {}

  /**
   * A pass every FILE_CLEANUP_INTERVAL_MS until `stop()`; what a restart left
   * behind waits for the first. Not one at start: a process that starts is
   * busy enough, and its first queries are its clients'.
   */
  start(): void {
    if (this.interval || this.stopped) return;
    this.interval = setInterval(() => this.tick(), this.limits.cleanupIntervalMs);
    this.interval.unref();
  }

  /** A pass soon (after a removal or a hard delete), joined with others asked for meanwhile. */
  schedule(): void {
    if (this.soon || this.stopped) return;
    this.soon = setTimeout(() => {
      this.soon = null;
      this.tick();
    }, SOON_MS);
    this.soon.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.interval) clearInterval(this.interval);
    if (this.soon) clearTimeout(this.soon);
    this.interval = this.soon = null;
    await this.tail.catch(() => {});
  }

  /**
   * One pass, after the one running (if any) has finished, so it sees what
   * was removed before the call. Calls while a pass is waiting share it.
   */
  runOnce(scope: CleanupScope = {}): Promise<CleanupCounts> {
    if (this.queued && !scope.organizationId) return this.queued;
    const pass = this.tail
      .catch(() => {})
      .then(() => {
        if (this.queued === pass) this.queued = null;
        return this.pass(scope);
      });
    if (!scope.organizationId) this.queued = pass;
    this.tail = pass;
    return pass;
  }

  private tick(): void {
    if (this.stopped) return;
    this.runOnce().catch((error: unknown) => this.log.warn({ err: error }, 'file cleanup failed; retrying at the next interval'));
  }

  private async pass(scope: CleanupScope): Promise<CleanupCounts> {
    const counts: CleanupCounts = { expired: 0, orphaned: 0, deleted: 0, freedBytes: 0, storageFailed: false };
    const org = scope.organizationId ? Prisma.sql`AND "organizationId" = ${scope.organizationId}::uuid` : Prisma.empty;
    const cutoff = new Date(this.now().getTime() - this.limits.unattachedTtlHours * HOUR_MS);
    counts.expired = await this.retire(Prisma.sql`state = 'UPLOADED' AND "createdAt" < ${cutoff} ${org}`);
    counts.orphaned = await this.retire(Prisma.sql`state = 'ATTACHED' AND "messageId" IS NULL AND "clientRequestId" IS NULL ${org}`);
    while (!this.stopped) {
      const rows = await this.prisma.$queryRaw<{ id: string; organizationId: string; thumbnails: number[] }[]>`
        SELECT id, "organizationId", thumbnails FROM "Attachment"
        WHERE state = 'DELETED' ${org} ORDER BY "createdAt", id LIMIT ${BATCH}`;
      if (!rows.length) break;
      try {
        await this.store.delete(rows.flatMap((row) => allVariants(row).map((variant) => storageKey(row, variant))));
      } catch (error) {
        this.log.warn({ err: error, files: rows.length }, 'file cleanup: the file storage failed; the files stay removed and are retried');
        counts.storageFailed = true;
        break;
      }
      const [gone] = await this.prisma.$queryRaw<{ rows: number; bytes: bigint }[]>`
        WITH gone AS (
          DELETE FROM "Attachment" WHERE id = ANY(${rows.map((r) => r.id)}::uuid[]) AND state = 'DELETED'
          RETURNING "organizationId", "storedBytes"
        ), freed AS (
          SELECT "organizationId", sum("storedBytes")::bigint AS bytes FROM gone GROUP BY "organizationId"
        ), quota AS (
          UPDATE "Organization" o SET "storageBytes" = o."storageBytes" - freed.bytes
          FROM freed WHERE o.id = freed."organizationId"
          RETURNING o.id
        )
        SELECT count(*)::int AS rows, coalesce(sum("storedBytes"), 0)::bigint AS bytes FROM gone`;
      counts.deleted += gone?.rows ?? 0;
      counts.freedBytes += Number(gone?.bytes ?? 0);
      // A short batch was the last; none deleted means another process took them.
      if (rows.length < BATCH || !gone?.rows) break;
    }
    if (counts.expired || counts.orphaned || counts.deleted) this.log.info({ ...counts, ...scope }, 'file cleanup: freed storage');
    return counts;
  }

  /** Turns the rows matching `where` DELETED, a batch per statement; returns how many. */
  private async retire(where: Prisma.Sql): Promise<number> {
    let total = 0;
    while (!this.stopped) {
      // SKIP LOCKED passes over a row a send holds right now; the next pass sees what it left.
      const retired = await this.prisma.$executeRaw`
        UPDATE "Attachment" SET state = 'DELETED'
        WHERE id IN (SELECT id FROM "Attachment" WHERE ${where} LIMIT ${BATCH} FOR UPDATE SKIP LOCKED) AND ${where}`;
      total += retired;
      if (retired < BATCH) break;
    }
    return total;
  }
}
