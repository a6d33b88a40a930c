import type { Logger } from 'pino';
import type { PrismaClient } from '../generated/prisma/client.ts';

/** Rows deleted per statement, so pruning never holds many locks or a long transaction. */
const BATCH = 5000;
const DAY_MS = 24 * 3600 * 1000;

/**
 * How long channel logs are kept. The log is what live streams replay from
 * (DESIGN §1.3); history itself lives in the messages, so a log entry older
 * than the retention period is deleted and a stream asked to resume from
 * before the oldest retained entry ends with RESYNC_REQUIRED: the client
 * reloads the channel instead of getting a silent gap. Every process prunes on
 * its own schedule; SKIP LOCKED lets several do it at once without waiting for
 * each other. The same schedule deletes expired and long-revoked sessions
 * (SessionService.prune), whatever the log's retention.
 */
export class LogRetention {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;
  private pruningSessions: Promise<unknown> | undefined;
  private stopped = false;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly log: Logger,
    /** 0 keeps the log for ever. */
    private readonly retentionDays: number,
    private readonly intervalMs: number,
    /** Expired and long-revoked sessions go on the same schedule (SessionService.prune), whatever the log's retention. */
    private readonly sessions?: { prune(): Promise<number> },
  ) {}

  /** Prunes now, then every `intervalMs`, until `stop()`. */
  start(): void {
    if (this.timer || (this.retentionDays === 0 && !this.sessions)) return;
    const tick = () => {
      if (this.stopped) return;
      this.prune().catch((error: unknown) =>
        this.log.warn({ err: error }, 'pruning the channel log failed; retrying at the next interval'),
      );
      this.pruningSessions ??= this.sessions
        ?.prune()
        .catch((error: unknown) => this.log.warn({ err: error }, 'deleting expired sessions failed; retrying at the next interval'))
        .finally(() => (this.pruningSessions = undefined));
    };
    this.timer = setInterval(tick, this.intervalMs);
    this.timer.unref();
    setImmediate(tick);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await Promise.all([this.running?.catch(() => {}), this.pruningSessions]);
  }

  /** Deletes the log entries older than the retention period; resolves with how many. */
  prune(now = new Date()): Promise<number> {
    if (this.retentionDays === 0) return Promise.resolve(0);
    // One pass at a time per process: an interval that fires during a long
    // pass joins it instead of starting another.
    this.running ??= this.deleteOlderThan(new Date(now.getTime() - this.retentionDays * DAY_MS)).finally(() => (this.running = null));
    return this.running;
  }

  private async deleteOlderThan(cutoff: Date): Promise<number> {
    let total = 0;
    for (;;) {
      const deleted = await this.prisma.$executeRaw`
        DELETE FROM "ChannelEvent" WHERE ("channelId", seq) IN (
          SELECT "channelId", seq FROM "ChannelEvent" WHERE "createdAt" < ${cutoff}
          LIMIT ${BATCH} FOR UPDATE SKIP LOCKED)`;
      total += deleted;
      if (deleted < BATCH || this.stopped) break;
    }
    if (total) this.log.info({ deleted: total, before: cutoff.toISOString() }, 'pruned the channel log');
    return total;
  }
}
