import { describe, expect, it } from 'vitest';
import { gql, uid } from './helpers/app.ts';
import { startTestServerProcess } from './helpers/process.ts';
import { liveSocket } from './helpers/ws.ts';

describe('SIGTERM', () => {
  it('closes sockets with 1001, lets in-flight mutations finish, and exits 0', async () => {
    // The full scrypt cost keeps registerOrganization busy for a while: the in-flight request.
    const server = await startTestServerProcess({ PASSWORD_HASH_COST: '17' });
    const { url } = server;

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
