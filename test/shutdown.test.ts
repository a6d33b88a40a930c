import { describe, expect, inject, it } from 'vitest';
import { gql, uid } from './helpers/app.ts';
import { startServerProcess } from './helpers/process.ts';
import { freePort } from './helpers/redis-server.ts';
import { liveSocket } from './helpers/ws.ts';

describe('SIGTERM', () => {
  it('closes sockets with 1001, lets in-flight mutations finish, and exits 0', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/graphql`;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      DATABASE_URL: inject('databaseUrl'),
      REDIS_URL: inject('redisUrl'),
      REDIS_PREFIX: inject('redisPrefix'),
      JWT_SECRET: 'shutdown-test-secret-0123456789',
      LOG_LEVEL: 'info',
      // The full scrypt cost keeps registerOrganization busy for a while: the in-flight request.
      PASSWORD_HASH_COST: '17',
    };
    const server = await startServerProcess(env);

    const slug = `sigterm-${uid()}`;
    const register = (username: string) =>
      gql(url, `mutation($input: RegisterOrganizationInput!) { registerOrganization(input: $input) { token } }`, {
        input: { name: 'Shutdown', slug: `${slug}-${username}`, username, displayName: username, password: 'password123' },
      });
    const { data } = await register('first');
    const socket = liveSocket(url, { authToken: data.registerOrganization.token });
    expect(await socket.acked).toBe(true);

    const inFlight = register('second');
    await new Promise((r) => setTimeout(r, 100)); // the request is in, hashing
    const exited = server.stop();

    expect((await socket.closed).code).toBe(1001);
    const finished = await inFlight;
    expect(finished.errors).toBeUndefined();
    expect(finished.data.registerOrganization.token).toEqual(expect.any(String));
    expect(await exited).toBe(0);
  }, 60_000);
});
