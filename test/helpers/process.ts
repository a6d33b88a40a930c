import { spawn, type ChildProcess } from 'node:child_process';
import { inject } from 'vitest';
import { gql, type GqlEndpoint } from './app.ts';
import { freePort } from './redis-server.ts';

const root = new URL('../..', import.meta.url).pathname;

export interface ServerProcess {
  child: ChildProcess;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  /** SIGTERM by pid, then the exit code. */
  stop(): Promise<number | null>;
}

/** Runs `src/server.ts` as `npm start` does, with `env`, until it says it listens. */
export async function startServerProcess(env: NodeJS.ProcessEnv): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Parley listening')) resolve();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then((code) => reject(new Error(`server exited (${code}) before listening:\n${output}`)));
  });
  return {
    child,
    exited,
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
    ...env,
  });
  return { ...server, url, port, gql: (query, variables, token) => gql(url, query, variables, token) };
}
