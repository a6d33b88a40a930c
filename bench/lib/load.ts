import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Placeholders a request template carries; each request gets its own values. */
export const CHANNEL = '__CHANNEL__';
export const KEY = '__KEY__';

/** One measured run: warm-up requests on the same connections, then a fixed duration. */
export interface LoadSpec {
  port: number;
  path: string;
  headers: Record<string, string>;
  /** JSON request body; CHANNEL and KEY are replaced per request. */
  template: string;
  /** Worker w sends to channels[w % channels.length]. */
  channels: string[];
  concurrency: number;
  warmupRequests: number;
  durationMs: number;
  /** Makes the KEY values (idempotency keys) unique across runs. */
  tag: string;
}

export interface LoadResult {
  /** Requests measured: answered successfully after warm-up. */
  requests: number;
  /** Every request sent, warm-up and failures included. */
  sent: number;
  errors: number;
  firstError: string | null;
  elapsedMs: number;
  /** Latency of every measured request, in ms, in completion order. */
  samples: number[];
  /** CPU the load generator itself used during the measured part, in ms. */
  clientCpuMs: number;
}

/** What the child sends back while it runs a spec. */
export type WorkerMessage = { type: 'measuring' } | { type: 'result'; result: LoadResult };

/**
 * Drives HTTP load from a child process, so the client's own JavaScript does
 * not queue on the event loop of the server it measures. The child inherits
 * this process's loader flags (tsx), so it runs TypeScript too.
 */
export class LoadGenerator {
  private constructor(private readonly child: ChildProcess) {}

  static async start(): Promise<LoadGenerator> {
    const child = fork(fileURLToPath(new URL('./load-worker.ts', import.meta.url)), [], { stdio: 'inherit' });
    await new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`load generator exited early (code ${code})`)));
    });
    child.removeAllListeners('exit');
    return new LoadGenerator(child);
  }

  /** Runs one spec; `onMeasuring` fires when warm-up ends and the measured part starts. */
  run(spec: LoadSpec, onMeasuring: () => void = () => {}): Promise<LoadResult> {
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`load generator exited during a run (code ${code})`));
      const onMessage = (message: WorkerMessage) => {
        if (message.type === 'measuring') return onMeasuring();
        this.child.off('exit', onExit);
        this.child.off('message', onMessage);
        resolve(message.result);
      };
      this.child.once('exit', onExit);
      this.child.on('message', onMessage);
      this.child.send(spec);
    });
  }

  stop(): void {
    if (this.child.connected) this.child.disconnect();
    this.child.kill();
  }
}
