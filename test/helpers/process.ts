import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { inject } from 'vitest';
import { senderFor, type GqlEndpoint } from './app.ts';
import { freePort } from './redis-server.ts';

const root = new URL('../..', import.meta.url).pathname;

export interface ServerProcess {
  child: ChildProcess;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  /** SIGTERM by pid, then the exit code. */
  stop(): Promise<number | null>;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
}

/** Runs `src/server.ts` as `npm start` does, with `env`, until it says it listens. */
export async function startServerProcess(env: NodeJS.ProcessEnv): Promise<ServerProcess> {
  return spawnUntilListening(process.execPath, ['--import', 'tsx', 'src/server.ts'], { env });
}

/**
 * Runs `npm start` itself (prestart included) in a process group of its own,
 * as a terminal runs a foreground job: `process.kill(-child.pid, 'SIGINT')`
 * is then what Ctrl-C sends.
 */
export async function startNpmStart(env: NodeJS.ProcessEnv): Promise<ServerProcess> {
  return spawnUntilListening('npm', ['start'], { env, detached: true });
}

async function spawnUntilListening(command: string, args: string[], options: SpawnOptions): Promise<ServerProcess> {
  const child = spawn(command, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], ...options });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let output = '';
  const onData = (chunk: Buffer) => void (output += chunk.toString());
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  await new Promise<void>((resolve, reject) => {
    const check = () => {
      if (output.includes('Parley listening')) resolve();
    };
    child.stdout!.on('data', check);
    child.stderr!.on('data', check);
    void exited.then((code) => reject(new Error(`server exited (${code}) before listening:\n${output}`)));
  });
  return {
    child,
    exited,
    output: () => output,
    stop: () => {
      process.kill(child.pid!, 'SIGTERM');
      return exited;
    },
  };
}

export type ServerProcessEndpoint = GqlEndpoint & ServerProcess;

/**
 * A real server process (`src/server.ts`) on the test run's PostgreSQL and
 * Redis prefix, on a free port: what a deployment runs, several at once.
 */
export async function startTestServerProcess(env: NodeJS.ProcessEnv = {}): Promise<ServerProcessEndpoint> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/graphql`;
  const server = await startServerProcess({
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    DATABASE_URL: inject('databaseUrl'),
    REDIS_URL: inject('redisUrl'),
    REDIS_PREFIX: inject('redisPrefix'),
    JWT_SECRET: 'process-test-secret-0123456789',
    LOG_LEVEL: 'info',
    PASSWORD_HASH_COST: '10',
    CHANNEL_LOG_RETENTION_DAYS: '0',
    // Limits by address would count every test process as one client (127.0.0.1); the rate-limit tests turn them on.
    RATE_LIMITS: 'off',
    ...env,
  });
  return { ...server, url, port, gql: senderFor(url) };
}
