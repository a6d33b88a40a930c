import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { gql } from './helpers/app.ts';

const root = new URL('..', import.meta.url).pathname;
const dataDir = mkdtempSync(join(tmpdir(), 'parley-embedded-'));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Starts `src/server.ts` as `npm start` does, with no database or Redis in the environment. */
async function startProcess(port: number): Promise<ChildProcess> {
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port), HOST: '127.0.0.1', PARLEY_DATA_DIR: dataDir, PASSWORD_HASH_COST: '10', LOG_LEVEL: 'info' };
  delete env.DATABASE_URL;
  delete env.REDIS_URL;
  delete env.JWT_SECRET;
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Parley listening')) resolve();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`server exited with ${code}:\n${output}`)));
  });
  return child;
}

async function stopProcess(child: ChildProcess): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  return exited;
}

afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe('embedded mode (no DATABASE_URL, no REDIS_URL)', () => {
  it('keeps data and tokens across a restart', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/graphql`;
    let server = await startProcess(port);
    let token: string;
    let channelId: string;
    try {
      const registered = await gql(url, `mutation { registerOrganization(input: { name: "Embedded", slug: "embedded", username: "ada", displayName: "Ada", password: "password123" }) { token } }`);
      token = registered.data.registerOrganization.token;
      const channel = await gql(url, `mutation { createChannel(input: { kind: GROUP, name: "general" }) { id } }`, {}, token);
      channelId = channel.data.createChannel.id;
      const sent = await gql(url, `mutation($c: ID!) { sendMessage(input: { channelId: $c, body: "still here?" }) { seq } }`, { c: channelId }, token);
      expect(sent.data.sendMessage.seq).toBe(2);
    } finally {
      expect(await stopProcess(server)).toBe(0);
    }

    server = await startProcess(port);
    try {
      // The token was signed with the secret kept in the data directory.
      const history = await gql(url, `query($c: ID!) { channel(id: $c) { messages(first: 10) { edges { node { body } } } } }`, { c: channelId }, token);
      expect(history.errors).toBeUndefined();
      expect(history.data.channel.messages.edges.map((e: { node: { body: string } }) => e.node.body)).toEqual(['still here?']);
      const login = await gql(url, `mutation { login(organization: "embedded", username: "ada", password: "password123") { user { username } } }`);
      expect(login.data.login.user.username).toBe('ada');
    } finally {
      expect(await stopProcess(server)).toBe(0);
    }
  }, 120_000);
});
