import { spawn } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { gql, uid } from './helpers/app.ts';
import { throwawayPostgres } from './helpers/postgres-server.ts';
import { startNpmStart, startTestServerProcess, type ServerProcess } from './helpers/process.ts';
import { freePort, throwawayRedis } from './helpers/redis-server.ts';
import { liveSocket } from './helpers/ws.ts';
import { graphql } from './generated/index.ts';

const root = new URL('..', import.meta.url).pathname;

/** Cleanups of whatever a test started, run even when it fails. */
const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Kills a process still running at the end of a test (by its pid, whole group when it leads one). */
function reap(server: ServerProcess, group = false) {
  cleanups.push(() => {
    // A group may outlive its leader: that is the bug these tests catch.
    if (!group && (server.child.exitCode !== null || server.child.signalCode !== null)) return;
    try {
      process.kill(group ? -server.child.pid! : server.child.pid!, 'SIGKILL');
    } catch {
      /* already gone */
    }
  });
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'parley-shutdown-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** What `npm start` runs on a fresh machine: embedded database, in-process pub/sub. */
function embeddedEnv(port: number, dataDir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    PARLEY_DATA_DIR: dataDir,
    PASSWORD_HASH_COST: '10',
    LOG_LEVEL: 'info',
  };
  delete env.DATABASE_URL;
  delete env.REDIS_URL;
  return env;
}

const portAnswers = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Node's banner under an uncaught exception or unhandled rejection. */
const crashed = (output: string) => /^Node\.js v\d+/m.test(output);

/** The pino lines with this `msg`. */
const logLines = (output: string, msg: string) =>
  output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { msg: string; pid: number; signal?: string })
    .filter((line) => line.msg === msg);

describe('SIGTERM', () => {
  it('closes sockets with 1001, lets in-flight mutations finish, and exits 0', async () => {
    // The full scrypt cost keeps registerOrganization busy for a while: the in-flight request.
    const server = await startTestServerProcess({ PASSWORD_HASH_COST: '17' });
    reap(server);
    const { url } = server;

    const slug = `sigterm-${uid()}`;
    const register = (username: string) =>
      gql(
        url,
        graphql(`
          mutation ShutdownRegisterOrganization($input: RegisterOrganizationInput!) {
            registerOrganization(input: $input) {
              token
            }
          }
        `),
        {
          input: { name: 'Shutdown', slug: `${slug}-${username}`, username, displayName: username, password: 'password123' },
        },
      );
    const { data } = await register('first');
    const socket = liveSocket(url, { authToken: data!.registerOrganization.token });
    expect(await socket.acked).toBe(true);

    const inFlight = register('second');
    await new Promise((r) => setTimeout(r, 100)); // the request is in, hashing
    const exited = server.stop();

    expect((await socket.closed).code).toBe(1001);
    const finished = await inFlight;
    expect(finished.errors).toBeUndefined();
    expect(finished.data!.registerOrganization.token).toEqual(expect.any(String));
    expect(await exited).toBe(0);
  }, 60_000);
});

describe('npm start', () => {
  // Ctrl-C in a terminal signals the whole foreground process group: npm and
  // the server each get SIGINT, and npm forwards its own to the server too.
  it.each([
    ['SIGTERM to npm', 'SIGTERM', false],
    ['SIGINT to npm', 'SIGINT', false],
    ['SIGINT to the process group (Ctrl-C)', 'SIGINT', true],
  ] as const)(
    '%s: the server stops gracefully, once, and npm exits 0',
    async (_name, signal, group) => {
      const port = await freePort();
      const server = await startNpmStart(embeddedEnv(port, tempDir()));
      reap(server, true);
      const answer = await gql(
        `http://127.0.0.1:${port}/graphql`,
        graphql(`
          query ShutdownTypename {
            __typename
          }
        `),
      );
      expect(answer.data).toEqual({ __typename: 'Query' });
      const [listening] = logLines(server.output(), 'Parley listening on http://localhost:' + port + '/graphql');
      const serverPid = listening!.pid;
      expect(serverPid).not.toBe(server.child.pid);

      const started = Date.now();
      process.kill(group ? -server.child.pid! : server.child.pid!, signal);
      const code = await server.exited;
      const elapsed = Date.now() - started;

      const output = server.output();
      expect(code, output).toBe(0);
      const shuttingDown = logLines(output, 'shutting down');
      expect(shuttingDown).toHaveLength(1);
      expect(shuttingDown[0]).toMatchObject({ pid: serverPid, signal });
      expect(logLines(output, 'stopped')).toHaveLength(1);
      expect(output).not.toMatch(/shutdown forced|did not finish/);
      // npm waits for its script: once it has exited, so has the server.
      expect(alive(serverPid)).toBe(false);
      expect(await portAnswers(port)).toBe(false);
      expect(elapsed).toBeLessThan(5000);
    },
    60_000,
  );
});

describe('start-up failures', () => {
  it('a port already in use: one line on stderr, exit 1, the data directory released', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => blocker.close(resolve)));
    const port = (blocker.address() as { port: number }).port;
    const dataDir = tempDir();

    const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
      cwd: root,
      env: embeddedEnv(port, dataDir),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => void (stderr += chunk.toString()));
    child.stdout.resume();
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));

    expect(code).toBe(1);
    expect(stderr.trim().split('\n'), stderr).toEqual([expect.stringMatching(new RegExp(`^port ${port} is in use`))]);
    expect(existsSync(join(dataDir, 'parley.pid'))).toBe(false);
  }, 60_000);
});

describe('shutdown with a dependency gone', () => {
  const GRACE_MS = 1000;
  // Past the grace, each remaining step that does not answer is forced; the
  // bound leaves room for process exit and the test's own polling.
  const BOUND_MS = GRACE_MS + 5000;

  it('Redis stopped: SIGTERM still exits within the grace period plus a few seconds, non-zero, saying it forced', async () => {
    const redis = await throwawayRedis();
    cleanups.push(() => redis.stop());
    const server = await startTestServerProcess({ REDIS_URL: redis.url, SHUTDOWN_GRACE_MS: String(GRACE_MS) });
    reap(server);
    // A signed-in socket: its presence lives in Redis and its registry follows Redis signals.
    const { data } = await server.gql(
      graphql(`
        mutation ShutdownRegisterOrganization($input: RegisterOrganizationInput!) {
          registerOrganization(input: $input) {
            token
          }
        }
      `),
      {
        input: { name: 'Redis down', slug: `redis-down-${uid()}`, username: 'ada', displayName: 'Ada', password: 'password123' },
      },
    );
    const socket = liveSocket(server.url, { authToken: data!.registerOrganization.token });
    expect(await socket.acked).toBe(true);

    await redis.stop();
    const started = Date.now();
    const code = await server.stop();
    const elapsed = Date.now() - started;
    console.log(`shutdown with Redis down: ${elapsed} ms (grace ${GRACE_MS} ms), exit ${code}`);

    expect(elapsed).toBeLessThan(BOUND_MS);
    expect(server.output()).toContain('shutdown forced');
    expect(code).toBe(1);
    expect(crashed(server.output())).toBe(false);
    expect(await portAnswers(server.port)).toBe(false);
  }, 60_000);

  it.each([
    ['crashed (connections refused)', 'crash'],
    ['hung (connections open, nothing answers)', 'hang'],
  ] as const)(
    'PostgreSQL %s: SIGTERM still exits within the grace period plus a few seconds',
    async (_name, fault) => {
      const postgres = await throwawayPostgres();
      cleanups.push(() => postgres.destroy());
      const server = await startTestServerProcess({ DATABASE_URL: postgres.url, SHUTDOWN_GRACE_MS: String(GRACE_MS) });
      reap(server);
      const { data } = await server.gql(
        graphql(`
          mutation ShutdownRegisterOrganization($input: RegisterOrganizationInput!) {
            registerOrganization(input: $input) {
              token
            }
          }
        `),
        {
          input: { name: 'PG down', slug: `pg-down-${uid()}`, username: 'ada', displayName: 'Ada', password: 'password123' },
        },
      );
      const socket = liveSocket(server.url, { authToken: data!.registerOrganization.token });
      expect(await socket.acked).toBe(true);

      if (fault === 'crash') await postgres.stop('immediate');
      else await postgres.pause();
      // A request waiting on the database when the signal comes.
      const pending = server
        .gql(
          graphql(`
            query ShutdownChannels {
              channels(first: 5) {
                edges {
                  node {
                    id
                  }
                }
              }
            }
          `),
          {},
          data!.registerOrganization.token,
        )
        .catch(() => null);
      await new Promise((r) => setTimeout(r, 200));
      const started = Date.now();
      const code = await server.stop();
      const elapsed = Date.now() - started;
      console.log(`shutdown with PostgreSQL ${fault}: ${elapsed} ms (grace ${GRACE_MS} ms), exit ${code}`);
      await pending;

      expect(elapsed).toBeLessThan(BOUND_MS);
      if (code !== 0) expect(server.output()).toContain('shutdown forced');
      expect(crashed(server.output())).toBe(false);
      expect(await portAnswers(server.port)).toBe(false);
    },
    90_000,
  );
});
