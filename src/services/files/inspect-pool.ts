import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { DomainError } from '../errors.ts';
import type { DetectedType } from './inspect.ts';
import type { InspectResult } from './inspect-worker.ts';

/**
 * Upload inspection (type from the bytes, cleaned name) on worker threads,
 * off the event loop. Threads start on the first upload and stop when idle.
 * Workers load TypeScript through tsx, as the server itself does (a worker
 * does not inherit a test runner's own loader, so it is named explicitly).
 */
export class InspectPool {
  private readonly pool = new Piscina({
    filename: new URL('./inspect-worker.ts', import.meta.url).href,
    minThreads: 0,
    maxThreads: Math.max(1, Math.min(2, availableParallelism() - 1)),
    idleTimeout: 60_000,
    execArgv: process.execArgv.some((arg) => arg.includes('tsx')) ? process.execArgv : [...process.execArgv, '--import', 'tsx'],
  });

  /** The type and cleaned name of an upload, or the BAD_USER_INPUT that refuses it. */
  async inspect(bytes: Uint8Array, name: string): Promise<{ type: DetectedType; name: string }> {
    const result = (await this.pool.run({ bytes, name })) as InspectResult;
    if (!result.ok) throw new DomainError(result.code, result.message, result.details);
    return result;
  }

  close(): Promise<void> {
    return this.pool.destroy();
  }
}
