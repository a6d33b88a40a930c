import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { gql } from './helpers/app.ts';
import { startServerProcess, type ServerProcess } from './helpers/process.ts';
import { freePort } from './helpers/redis-server.ts';
import { graphql } from './generated/index.ts';

const root = new URL('..', import.meta.url).pathname;
const dataDir = mkdtempSync(join(tmpdir(), 'parley-embedded-'));

/** The environment of `npm start` with no database or Redis configured. */
function embeddedEnv(port: number, dir = dataDir): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    PARLEY_DATA_DIR: dir,
    PASSWORD_HASH_COST: '10',
    LOG_LEVEL: 'info',
  };
  delete env.DATABASE_URL;
  delete env.REDIS_URL;
  delete env.JWT_SECRET;
  return env;
}

const startProcess = (port: number): Promise<ServerProcess> => startServerProcess(embeddedEnv(port));

afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe('embedded mode (no DATABASE_URL, no REDIS_URL)', () => {
  it('keeps data and tokens across a restart', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/graphql`;
    let server = await startProcess(port);
    let token: string;
    let channelId: string;
    try {
      const registered = await gql(
        url,
        graphql(`
          mutation EmbeddedRegisterOrganization {
            registerOrganization(
              input: { name: "Embedded", slug: "embedded", username: "ada", displayName: "Ada", password: "password123" }
            ) {
              token
            }
          }
        `),
      );
      token = registered.data!.registerOrganization.token;
      const channel = await gql(
        url,
        graphql(`
          mutation EmbeddedCreateChannel {
            createChannel(input: { kind: GROUP, name: "general" }) {
              id
            }
          }
        `),
        {},
        token,
      );
      channelId = channel.data!.createChannel.id;
      const sent = await gql(
        url,
        graphql(`
          mutation EmbeddedSendMessage($c: ID!) {
            sendMessage(input: { channelId: $c, body: "still here?" }) {
              seq
            }
          }
        `),
        { c: channelId },
        token,
      );
      expect(sent.data!.sendMessage.seq).toBe(2);
    } finally {
      expect(await server.stop()).toBe(0);
    }

    server = await startProcess(port);
    try {
      // The token was signed with the secret kept in the data directory.
      const history = await gql(
        url,
        graphql(`
          query EmbeddedChannel($c: ID!) {
            channel(id: $c) {
              messages(first: 10) {
                edges {
                  node {
                    body
                  }
                }
              }
            }
          }
        `),
        { c: channelId },
        token,
      );
      expect(history.errors).toBeUndefined();
      expect(history.data!.channel.messages.edges.map((e) => e.node.body)).toEqual(['still here?']);
      const login = await gql(
        url,
        graphql(`
          mutation EmbeddedLogin {
            login(organization: "embedded", username: "ada", password: "password123") {
              user {
                username
              }
            }
          }
        `),
      );
      expect(login.data!.login.user.username).toBe('ada');
    } finally {
      expect(await server.stop()).toBe(0);
    }
  }, 120_000);
});

describe('embedded mode after errors', () => {
  it('answers a retried send with the original message and keeps working after failed statements', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/graphql`;
    const server = await startProcess(port);
    try {
      const registered = await gql(
        url,
        graphql(`
          mutation EmbeddedRegisterRetry {
            registerOrganization(input: { name: "Retry", slug: "retry", username: "ada", displayName: "Ada", password: "password123" }) {
              token
            }
          }
        `),
      );
      const token = registered.data!.registerOrganization.token;
      const channelId = (
        await gql(
          url,
          graphql(`
            mutation EmbeddedCreateChannel {
              createChannel(input: { kind: GROUP, name: "general" }) {
                id
              }
            }
          `),
          {},
          token,
        )
      ).data!.createChannel.id;
      const SEND = graphql(`
        mutation EmbeddedSendKeyed($c: ID!, $k: String, $p: ID) {
          sendMessage(input: { channelId: $c, body: "Hello, Parley", clientMessageId: $k, parentId: $p }) {
            id
            seq
          }
        }
      `);
      // The README's walk-through, sent twice: the second hits the unique key and returns the first.
      const first = await gql(url, SEND, { c: channelId, k: 'first' }, token);
      const retry = await gql(url, SEND, { c: channelId, k: 'first' }, token);
      expect(retry.errors).toBeUndefined();
      expect(retry.data!.sendMessage).toEqual(first.data!.sendMessage);
      // A unique violation inside a transaction, and a reference that fails.
      const taken = await gql(
        url,
        graphql(`
          mutation EmbeddedRegisterTakenSlug {
            registerOrganization(input: { name: "Again", slug: "retry", username: "bob", displayName: "Bob", password: "password123" }) {
              token
            }
          }
        `),
      );
      expect(taken.errors?.[0]?.extensions?.code).toBe('CONFLICT');
      const orphan = await gql(
        url,
        SEND,
        { c: channelId, k: 'orphan', p: 'TWVzc2FnZTowMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwMDA=' },
        token,
      );
      expect(['BAD_USER_INPUT', 'NOT_FOUND']).toContain(orphan.errors?.[0]?.extensions?.code);
      for (let i = 0; i < 3; i++) {
        const again = await gql(url, SEND, { c: channelId, k: 'first' }, token);
        expect(again.data!.sendMessage).toEqual(first.data!.sendMessage);
      }
      const next = await gql(url, SEND, { c: channelId, k: 'second' }, token);
      expect(next.errors).toBeUndefined();
      expect(next.data!.sendMessage.seq).toBe(first.data!.sendMessage.seq + 1);
      const login = await gql(
        url,
        graphql(`
          mutation EmbeddedRetryLogin {
            login(organization: "retry", username: "ada", password: "password123") {
              user {
                username
              }
            }
          }
        `),
      );
      expect(login.data!.login.user.username).toBe('ada');
    } finally {
      expect(await server.stop()).toBe(0);
    }
  }, 120_000);
});

describe('one process per data directory', () => {
  /** Runs an entry point to its end and returns its exit code and what it printed. */
  function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      child.once('exit', (code) => resolve({ code, out }));
    });
  }

  it('refuses a second server and a seed with one line naming the holder, and takes over a stale lock', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-locked-'));
    const env = (port: number) => embeddedEnv(port, dir);
    const port = await freePort();
    const holder = await startServerProcess(env(port));
    try {
      const line = `data directory ${dir} is in use by process ${holder.child.pid}`;
      const second = await run(['src/server.ts'], env(await freePort()));
      expect(second.code).toBe(1);
      expect(second.out.trim()).toBe(line);
      const seeded = await run(['src/scripts/seed.ts'], env(port));
      expect(seeded.code).toBe(1);
      expect(seeded.out.trim()).toBe(line);
      // The holder is unharmed.
      expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
    } finally {
      expect(await holder.stop()).toBe(0);
    }
    expect(existsSync(join(dir, 'parley.pid'))).toBe(false);

    // A process that died without cleaning up (4194305 is above Linux's largest pid, 2^22).
    writeFileSync(join(dir, 'parley.pid'), '4194305\n');
    const restarted = await startServerProcess(env(port));
    try {
      expect(
        (
          await gql(
            `http://127.0.0.1:${port}/graphql`,
            graphql(`
              query EmbeddedTypename {
                __typename
              }
            `),
          )
        ).data!.__typename,
      ).toBe('Query');
    } finally {
      expect(await restarted.stop()).toBe(0);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
