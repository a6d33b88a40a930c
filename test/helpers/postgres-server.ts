import { execFile } from 'node:child_process';
import { chownSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './redis-server.ts';

const run = promisify(execFile);

export interface ThrowawayPostgres {
  url: string;
  /** Stops the cluster; `immediate` is a crash (no shutdown checkpoint, clients cut). */
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  /** Starts it again after a stop, on the same port and data. */
  start(): Promise<void>;
  /**
   * Freezes the server and its backends (SIGSTOP): connections stay open and
   * nothing answers, as with a host that hangs or a network that drops packets.
   */
  pause(): Promise<void>;
  resume(): Promise<void>;
  /** Stops it if it runs and deletes its files. */
  destroy(): Promise<void>;
}

/**
 * A PostgreSQL cluster of our own on a spare loopback port, for fault tests:
 * the machine's shared server is never touched. PostgreSQL refuses to run as
 * root, so the `postgres` user runs it (see BUILD-FACTS).
 */
export async function throwawayPostgres(): Promise<ThrowawayPostgres> {
  const version = readdirSync('/usr/lib/postgresql').sort().at(-1)!;
  const bin = (name: string) => `/usr/lib/postgresql/${version}/bin/${name}`;
  const { stdout } = await run('id', ['-u', 'postgres']);
  const dir = mkdtempSync(join(tmpdir(), 'parley-pg-'));
  chownSync(dir, Number(stdout.trim()), Number(stdout.trim()));
  const port = await freePort();
  const data = join(dir, 'data');
  const asPostgres = (args: string[]) => run('runuser', ['-u', 'postgres', '--', ...args]);
  await asPostgres([bin('initdb'), '-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
  const ctl = (args: string[]) => asPostgres([bin('pg_ctl'), '-D', data, ...args]);
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`;
  await ctl(['-o', options, '-l', join(dir, 'log'), '-w', 'start']);
  let running = true;
  const stop = async (mode: 'fast' | 'immediate' = 'fast') => {
    if (!running) return;
    await ctl(['-m', mode, '-w', 'stop']);
    running = false;
  };
  // The postmaster's pid heads its pid file; its backends are its children.
  const processes = async () => {
    const postmaster = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    const { stdout } = await run('ps', ['-o', 'pid=', '--ppid', String(postmaster)]).catch(() => ({ stdout: '' }));
    return [postmaster, ...stdout.split('\n').filter(Boolean).map(Number)];
  };
  const signal = async (name: NodeJS.Signals) => {
    for (const pid of await processes()) {
      try {
        process.kill(pid, name);
      } catch {
        /* the process has already exited */
      }
    }
  };
  let paused = false;
  const resume = async () => {
    paused = false;
    await signal('SIGCONT');
  };
  return {
    url: `postgresql://postgres@127.0.0.1:${port}/postgres`,
    stop,
    async start() {
      if (running) return;
      await ctl(['-o', options, '-l', join(dir, 'log'), '-w', 'start']);
      running = true;
    },
    async pause() {
      paused = true;
      await signal('SIGSTOP');
    },
    resume,
    async destroy() {
      if (paused) await resume();
      await stop('immediate').catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
