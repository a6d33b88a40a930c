import pg from 'pg';
import type { Logger } from 'pino';
import { Prisma, type PrismaClient } from '../generated/prisma/client.ts';
import { isAdmin } from './access.ts';
import type { Clock } from './clock.ts';
import { badInput, forbidden } from './errors.ts';
import { eraseMessages } from './messages.ts';
import type { Viewer } from './viewer.ts';

/**
 * Messages per transaction. Each batch locks only its own message rows (and
 * the rows that reference them), never a channel row, and commits before the
 * next one starts, so senders and other writers wait for at most one batch.
 */
const BATCH = 500;
const DAY_MS = 24 * 3600 * 1000;
/** Batches may wait behind row locks of busy messages; Prisma's 5 s default is too tight for 500 deletes with their cascades. */
const TRANSACTION_LIMITS = { maxWait: 15_000, timeout: 60_000 };
/**
 * The session advisory lock that admits one pass at a time across every
 * process on the database. An arbitrary constant: all processes must agree on it.
 */
export const MESSAGE_RETENTION_LOCK_KEY = '7301002014';

/** A century: longer is no policy, and a day count that large would overflow the cutoff's date arithmetic. */
export const MAX_POLICY_DAYS = 36_500;

export type PurgeReason = 'deleted' | 'policy';

export interface RetentionRun {
  /** False when another pass held the lock: this one did nothing. */
  ran: boolean;
  /** Soft-deleted messages past DELETED_MESSAGE_RETENTION_DAYS, deleted for good. */
  deleted: number;
  /** Messages past their organization's retention policy, deleted for good. */
  policy: number;
}

export interface RetentionOptions {
  /** Limits the pass to one organization (tests, tools). */
  organizationId?: string;
}

export interface RetentionObserver {
  run(outcome: 'ran' | 'skipped' | 'failed'): void;
  purged(reason: PurgeReason, count: number): void;
}

interface PurgedRow {
  id: string;
  organizationId: string;
  channelId: string;
  seq: number;
  senderId: string;
}

/**
 * Deletes messages for good once their retention ends (issue 14 §4): soft-
 * deleted ones DELETED_MESSAGE_RETENTION_DAYS after their deletion, and all of
 * an organization's messages `messageRetentionDays` after they were sent when
 * the organization set that policy. A purge is a hard delete done in bulk:
 * the attachments turn DELETED (their blobs are freed by the file cleanup),
 * mentions, links, reactions, the pin and the edit history go with the row,
 * notifications about the message lose their excerpt (they keep the id, as
 * after a hard delete), and the channel log keeps every entry so replays
 * stay gap-free. Only the content is blanked in the entries that carry it
 * (MESSAGE_ADDED and MESSAGE_EDITED snapshots), so a replay never brings a
 * purged body back. No new entry is appended: that would take each channel's
 * row lock and seq for a change nobody made now, and the entries already
 * there (the soft delete's MESSAGE_DELETED, the blanked snapshot) are the
 * tombstone.
 *
 * One pass at a time across a deployment: a pass first takes a session
 * advisory lock on a connection of its own, and skips when another process
 * holds it; the lock goes with that connection, also when the process dies.
 * The embedded database (PGlite) is one session used by this process alone
 * (its data directory is locked), where an advisory lock cannot tell callers
 * apart: there the in-process guard is the lock.
 */
export class MessageRetention {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<RetentionRun> | null = null;
  private stopped = false;
  /** Told about each pass and each batch (metrics). */
  observer: RetentionObserver | null = null;
  /** Called when a pass turned attachments DELETED, so their blobs are freed soon. */
  scheduleFileCleanup: () => void = () => {};

  constructor(
    private readonly prisma: PrismaClient,
    private readonly log: Logger,
    private readonly clock: Pick<Clock, 'now'>,
    /** 0 keeps soft-deleted messages for ever. */
    private readonly deletedRetentionDays: number,
    private readonly intervalMs: number,
    /** A PostgreSQL server's URL, for the lock's own connection; null for the embedded database. */
    private readonly lockUrl: string | null,
  ) {}

  /**
   * A pass every `intervalMs` until `stop()`. Not one at start: a starting
   * process is busy enough, and the first pass of a deployment's processes
   * comes within one interval anyway.
   */
  start(): void {
    if (this.timer || this.stopped) return;
    this.timer = setInterval(() => {
      this.run().catch((error: unknown) => this.log.warn({ err: error }, 'message retention failed; retrying at the next interval'));
    }, this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running?.catch(() => {});
  }

  /**
   * Sets the viewer's organization's retention policy (owners and admins):
   * messages older than `days` are deleted for good by the next passes. Null
   * or 0 turns it off.
   */
  async setPolicy(viewer: Viewer, days: number | null) {
    if (!isAdmin(viewer)) throw forbidden('Only organization owners and admins change the retention policy');
    if (days !== null && (!Number.isInteger(days) || days < 0 || days > MAX_POLICY_DAYS)) {
      throw badInput('messageRetentionDays', `messageRetentionDays must be a whole number of days from 0 to ${MAX_POLICY_DAYS}, or null`);
    }
    return this.prisma.organization.update({ where: { id: viewer.organizationId }, data: { messageRetentionDays: days || null } });
  }

  /** One pass now, at the clock's time; skipped (`ran: false`) while another pass runs here or in another process. */
  run(options: RetentionOptions = {}): Promise<RetentionRun> {
    if (this.running) {
      this.observer?.run('skipped');
      return Promise.resolve({ ran: false, deleted: 0, policy: 0 });
    }
    this.running = this.locked(options).finally(() => (this.running = null));
    return this.running;
  }

  private async locked(options: RetentionOptions): Promise<RetentionRun> {
    let release: (() => Promise<void>) | null;
    try {
      release = await this.acquire();
    } catch (error) {
      this.observer?.run('failed');
      throw error;
    }
    if (!release) {
      this.observer?.run('skipped');
      this.log.debug('message retention skipped: another process holds the lock');
      return { ran: false, deleted: 0, policy: 0 };
    }
    try {
      const result = await this.pass(options);
      this.observer?.run('ran');
      return result;
    } catch (error) {
      this.observer?.run('failed');
      throw error;
    } finally {
      await release();
    }
  }

  /** The lock's release, or null when another process holds it. */
  private async acquire(): Promise<(() => Promise<void>) | null> {
    if (!this.lockUrl) return async () => {};
    const client = new pg.Client({ connectionString: this.lockUrl });
    // A connection lost mid-pass releases the lock; the pass goes on, and a
    // second pass that starts meanwhile is safe (SKIP LOCKED), only duplicated work.
    client.on('error', (error) => this.log.warn({ err: error }, 'the message retention lock connection failed'));
    try {
      await client.connect();
      const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS locked', [
        MESSAGE_RETENTION_LOCK_KEY,
      ]);
      if (rows[0]?.locked) return () => client.end().catch(() => {});
    } catch (error) {
      await client.end().catch(() => {});
      throw error;
    }
    await client.end().catch(() => {});
    return null;
  }

  private async pass({ organizationId }: RetentionOptions): Promise<RetentionRun> {
    const started = Date.now();
    const now = this.clock.now();
    const scope = organizationId ? Prisma.sql`AND "organizationId" = ${organizationId}::uuid` : Prisma.empty;
    let deleted = 0;
    if (this.deletedRetentionDays > 0) {
      const cutoff = new Date(now.getTime() - this.deletedRetentionDays * DAY_MS);
      deleted = await this.purgeAll(
        'deleted',
        Prisma.sql`SELECT id, "organizationId", "channelId", seq, "senderId" FROM "Message" WHERE "deletedAt" < ${cutoff} ${scope}
          ORDER BY "deletedAt" LIMIT ${BATCH} FOR UPDATE SKIP LOCKED`,
      );
    }
    let policy = 0;
    const organizations = await this.prisma.organization.findMany({
      where: { messageRetentionDays: { gt: 0 }, ...(organizationId ? { id: organizationId } : {}) },
      select: { id: true, messageRetentionDays: true },
    });
    for (const org of organizations) {
      if (this.stopped) break;
      const cutoff = new Date(now.getTime() - org.messageRetentionDays! * DAY_MS);
      policy += await this.purgeAll(
        'policy',
        Prisma.sql`SELECT id, "organizationId", "channelId", seq, "senderId" FROM "Message" WHERE "organizationId" = ${org.id}::uuid AND "createdAt" < ${cutoff}
          ORDER BY "createdAt" LIMIT ${BATCH} FOR UPDATE SKIP LOCKED`,
      );
    }
    if (deleted || policy) this.log.info({ deleted, policy, ms: Date.now() - started }, 'message retention deleted messages for good');
    return { ran: true, deleted, policy };
  }

  /** Purges what `select` finds, batch after batch, until a batch comes back short. */
  private async purgeAll(reason: PurgeReason, select: Prisma.Sql): Promise<number> {
    let total = 0;
    for (;;) {
      const { purged, files } = await this.prisma.$transaction((tx) => purgeBatch(tx, select, reason), TRANSACTION_LIMITS);
      total += purged;
      if (purged) {
        this.observer?.purged(reason, purged);
        this.log.debug({ reason, purged, total }, 'message retention batch');
      }
      if (files) this.scheduleFileCleanup();
      if (purged < BATCH || this.stopped) return total;
    }
  }
}

type Tx = Prisma.TransactionClient;

/**
 * One batch: the messages `select` locks, removed for good as a hard delete
 * removes one (eraseMessages), each with an audit entry (`message.purge`, no
 * actor, the reason; never the body), so "who deleted this and when" has an
 * answer for a message retention removed too.
 */
async function purgeBatch(tx: Tx, select: Prisma.Sql, reason: PurgeReason): Promise<{ purged: number; files: number }> {
  const rows = await tx.$queryRaw<PurgedRow[]>(select);
  if (rows.length === 0) return { purged: 0, files: 0 };
  await tx.auditLog.createMany({
    data: rows.map((m) => ({
      organizationId: m.organizationId,
      actorId: null,
      action: 'message.purge',
      targetType: 'Message',
      targetId: m.id,
      data: { reason, channelId: m.channelId, senderId: m.senderId },
    })),
  });
  return { purged: rows.length, files: await eraseMessages(tx, rows) };
}
