import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers/app.ts';
import { createUser, errorCode, ok, registerOrg } from './helpers/fixtures.ts';
import { wsClient, wsRequest } from './helpers/ws.ts';

let s: TestServer;
beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s?.stop();
});

describe('graphql-ws transport', () => {
  it('runs operations with the token from connectionParams', async () => {
    const org = await registerOrg(s);
    const client = wsClient(s.url, org.owner.token);
    try {
      const result = await wsRequest(client, `{ viewer { username role } }`);
      expect(ok(result).viewer).toEqual({ username: 'owner', role: 'OWNER' });
    } finally {
      await client.dispose();
    }
  });

  it('closes the socket for an invalid token', async () => {
    const client = wsClient(s.url, 'not-a-token');
    try {
      const error = await wsRequest(client, `{ viewer { id } }`).then(
        () => null,
        (e: unknown) => e,
      );
      expect((error as { code?: number } | null)?.code).toBe(4403);
    } finally {
      await client.dispose();
    }
  });

  it('answers UNAUTHENTICATED on an anonymous socket', async () => {
    const client = wsClient(s.url, null);
    try {
      expect(errorCode(await wsRequest(client, `{ viewer { id } }`))).toBe('UNAUTHENTICATED');
    } finally {
      await client.dispose();
    }
  });

  it('stops serving a user on an open socket once they are deactivated', async () => {
    const org = await registerOrg(s);
    const member = await createUser(s, org, 'MEMBER');
    const client = wsClient(s.url, member.token, { keepOpen: true });
    try {
      expect(ok(await wsRequest(client, `{ viewer { id } }`)).viewer.id).toBe(member.id);
      ok(await s.gql(`mutation($id: ID!) { deactivateUser(userId: $id) { id } }`, { id: member.id }, org.owner.token));
      expect(errorCode(await wsRequest(client, `{ viewer { id } }`))).toBe('UNAUTHENTICATED');
      // A new socket with the same token is refused outright.
      const again = wsClient(s.url, member.token);
      const refused = await wsRequest(again, `{ viewer { id } }`).then(() => null, (e: unknown) => e);
      await again.dispose();
      expect((refused as { code?: number } | null)?.code).toBe(4403);
    } finally {
      await client.dispose();
    }
  });
});
