import type { Logger } from 'pino';

const LATE = Symbol('late');

/**
 * The steps of a stop that wait on Redis or the database, which may not
 * answer: ioredis queues commands (QUIT included) for as long as it
 * reconnects, and a pool waits for queries in flight. Each step gets what is
 * left of the grace period, or at least a short slot after it, but none runs
 * past `graceEnd + slackMs`. One that has not finished by then is left behind
 * (its `force` runs), and `finish()` throws naming it.
 */
export class BoundedShutdown {
  private readonly forced: string[] = [];
  private readonly failed: string[] = [];

  constructor(
    private readonly log: Logger,
    private readonly graceEnd: number,
    private readonly slackMs = 3000,
    private readonly stepMinMs = 1000,
  ) {}

  async step(name: string, work: () => unknown, force?: () => void): Promise<void> {
    const forceEnd = this.graceEnd + this.slackMs;
    const ms = Math.max(this.graceEnd - Date.now(), Math.min(this.stepMinMs, forceEnd - Date.now()), 0);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<typeof LATE>((resolve) => (timer = setTimeout(() => resolve(LATE), ms)));
    try {
      if ((await Promise.race([Promise.resolve().then(work), late])) === LATE) {
        this.log.warn({ step: name, waitedMs: ms }, 'shutdown step did not finish in time; forcing it');
        this.forced.push(name);
        force?.();
      }
    } catch (error) {
      this.log.warn({ err: error, step: name }, 'shutdown step failed');
      this.failed.push(name);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Throws when a step was cut off or failed, so the process can exit non-zero. */
  finish(): void {
    if (!this.forced.length && !this.failed.length) return;
    const parts = [
      this.forced.length ? `${this.forced.join(', ')} did not finish in time` : '',
      this.failed.length ? `${this.failed.join(', ')} failed` : '',
    ];
    throw new Error(`shutdown forced: ${parts.filter(Boolean).join('; ')}`);
  }
}
