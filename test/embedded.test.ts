import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { gql } from './helpers/app.ts';
import { startServerProcess, type ServerProcess } from './helpers/process.ts';
import { freePort } from './helpers/redis-server.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'parley-embedded-'));

/** `npm start` with no database or Redis in the environment. */
function startProcess(port: number): Promise<ServerProcess> {
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port), HOST: '127.0.0.1', PARLEY_DATA_DIR: dataDir, PASSWORD_HASH_COST: '10', LOG_LEVEL: 'info' };
  delete env.DATABASE_URL;
  delete env.REDIS_URL;
  delete env.JWT_SECRET;
  return startServerProcess(env);
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
      expect(await server.stop()).toBe(0);
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
      expect(await server.stop()).toBe(0);
    }
  }, 120_000);
});
