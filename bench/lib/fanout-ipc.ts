// Request/response over a forked child's IPC channel, shared by the processes of
// B3/B4 (servers, subscribers, sender): each runs in its own process so that its
// CPU is measured apart from the others'.
import { fork, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

/** Wall clock with sub-millisecond resolution; comparable across processes on one machine. */
export const wallNow = (): number => performance.timeOrigin + performance.now();

/** CPU and event-loop use of one process since it started (deltas are taken by the caller). */
export interface Usage {
  /** User + system CPU time, in ms. */
  cpuMs: number;
  /** Event-loop idle and active time, in ms (performance.eventLoopUtilization). */
  idleMs: number;
  activeMs: number;
  /** This process's wallNow() when sampled. */
  at: number;
}

export type Handler = (arg: any) => unknown;

interface Request {
  id: number;
  method: string;
  arg: unknown;
}

type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };

let profiler: Session | null = null;

/** Starts V8's CPU profiler in this process (for the measured steps only). */
async function profileStart(): Promise<void> {
  profiler = new Session();
  profiler.connect();
  await profiler.post('Profiler.enable');
  await profiler.post('Profiler.setSamplingInterval', { interval: 100 });
  await profiler.post('Profiler.start');
}

/** Stops the profiler and writes the profile to `file` (open it in Chrome DevTools or speedscope). */
async function profileStop(file: string): Promise<void> {
  if (!profiler) return;
  const { profile } = await profiler.post('Profiler.stop');
  profiler.disconnect();
  profiler = null;
  writeFileSync(file, JSON.stringify(profile));
}

function usage(): Usage {
  const cpu = process.cpuUsage();
  const elu = performance.eventLoopUtilization();
  return { cpuMs: (cpu.user + cpu.system) / 1000, idleMs: elu.idle, activeMs: elu.active, at: wallNow() };
}

/**
 * Child side: answers the parent's calls with `handlers`, plus `usage`, `clock`,
 * `profileStart`/`profileStop` and `shutdown` (which runs `onShutdown`, answers, then exits). A child whose
 * parent is gone exits too, so a crashed benchmark leaves no process behind.
 */
export function serve(handlers: Record<string, Handler>, onShutdown: () => Promise<void> | void = () => {}): void {
  const all: Record<string, Handler> = {
    ...handlers,
    usage,
    profileStart,
    profileStop,
    clock: () => wallNow(),
    shutdown: async () => {
      await onShutdown();
      setImmediate(() => process.exit(0));
    },
  };
  process.on('message', (request: Request) => {
    const handler = all[request.method];
    const reply = (message: Reply) => process.connected && process.send?.(message);
    if (!handler) return reply({ id: request.id, ok: false, error: `unknown method ${request.method}` });
    Promise.resolve()
      .then(() => handler(request.arg))
      .then(
        (value) => reply({ id: request.id, ok: true, value }),
        (error: unknown) => reply({ id: request.id, ok: false, error: (error as Error)?.stack ?? String(error) }),
      );
  });
  process.on('disconnect', () => process.exit(0));
  process.send?.({ ready: true });
}

/** Parent side: one child process and the calls in flight to it. */
export class Child {
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve: (value: any) => void; reject: (error: Error) => void; method: string }>();
  private exited = false;

  private constructor(
    readonly name: string,
    private readonly process: ChildProcess,
  ) {
    process.on('message', (message: Reply) => {
      const call = this.waiting.get(message.id);
      if (!call) return;
      this.waiting.delete(message.id);
      if (message.ok) call.resolve(message.value);
      else call.reject(new Error(`${this.name}.${call.method}: ${message.error}`));
    });
    process.on('exit', (code, signal) => {
      this.exited = true;
      for (const call of this.waiting.values())
        call.reject(new Error(`${this.name} exited (code ${code}, signal ${signal}) during ${call.method}`));
      this.waiting.clear();
    });
  }

  get pid(): number {
    return this.process.pid!;
  }

  /**
   * Forks `script` (a .ts file next to this one) with this process's loader
   * flags (tsx) and waits for it to be ready. `serialization: 'advanced'`
   * carries typed arrays (latency histograms) as they are.
   */
  static async start(script: string, name: string, execArgv: string[] = process.execArgv): Promise<Child> {
    const child = fork(fileURLToPath(new URL(script, import.meta.url)), [], {
      stdio: 'inherit',
      serialization: 'advanced',
      execArgv,
    });
    await new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`${name} exited while starting (code ${code})`)));
    });
    child.removeAllListeners('exit');
    child.removeAllListeners('error');
    return new Child(name, child);
  }

  call<T = unknown>(method: string, arg?: unknown): Promise<T> {
    if (this.exited) return Promise.reject(new Error(`${this.name} has exited`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, method });
      this.process.send({ id, method, arg } satisfies Request);
    });
  }

  /** Asks the child to shut down cleanly; kills it by pid if it has not exited within `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.process.once('exit', () => resolve()));
    const timer = setTimeout(() => {
      if (!this.exited) this.process.kill('SIGKILL');
    }, graceMs);
    this.call('shutdown').catch(() => {});
    await exited;
    clearTimeout(timer);
  }
}
