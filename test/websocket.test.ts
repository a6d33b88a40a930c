import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { websocketDefaults } from '../src/config.ts';
import { startServer, uid, type GqlError, type TestServer } from './helpers/app.ts';
import { createUser, errorCode, ok, registerOrg } from './helpers/fixtures.ts';
import { liveSocket, rawConnect, rawSocket, wsClient, wsRequest, type CloseInfo } from './helpers/ws.ts';
import { graphql } from './generated/index.ts';
import type { WebsocketViewerQuery } from './generated/graphql.ts';
import { queryText } from './helpers/operation.ts';

// `s` runs the default limits; `limited` small ones, so each limit is reached
// with a handful of sockets and within a fraction of a second.
let s: TestServer;
let limited: TestServer;
beforeAll(async () => {
  [s, limited] = await Promise.all([
    startServer({ graphiql: true }),
    startServer({
      websocket: {
        ...websocketDefaults,
        connectionInitTimeoutMs: 300,
        maxSocketsPerUser: 2,
        maxSubscriptionsPerSocket: 2,
        pingIntervalMs: 300,
      },
    }),
  ]);
});
afterAll(async () => {
  await Promise.all([s?.stop(), limited?.stop()]);
});

/** The close, or a failure if the socket is still open after `ms` (the promptness the feature promises). */
function closedWithin(closed: Promise<CloseInfo>, ms: number): Promise<CloseInfo> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`socket still open after ${ms} ms`)), ms)));
  return Promise.race([closed, timeout]).finally(() => clearTimeout(timer));
}

const VIEWER = graphql(`
  query WebsocketViewer {
    viewer {
      id
      role
    }
  }
`);

describe('graphql-ws authentication', () => {
  it('runs operations with the token from connectionParams', async () => {
    const org = await registerOrg(s);
    const client = wsClient(s.url, org.owner.token);
    try {
      const result = await wsRequest(
        client,
        graphql(`
          query WebsocketViewerUsername {
            viewer {
              username
              role
            }
          }
        `),
      );
      expect(ok(result).viewer).toEqual({ username: 'owner', role: 'OWNER' });
    } finally {
      await client.dispose();
    }
  });

  it('closes a socket without a token with 4401 (sign in first)', async () => {
    const socket = liveSocket(s.url, {});
    expect(await socket.acked).toBe(false);
    expect((await socket.closed).code).toBe(4401);
  });

  it('closes a socket with a malformed or forged token with 4403', async () => {
    const forged = await new SignJWT({ org: 'any' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('any')
      .setIssuer('parley')
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode('not-the-server-secret-0123456789'));
    for (const authToken of ['not-a-token', forged]) {
      const socket = liveSocket(s.url, { authToken });
      expect(await socket.acked).toBe(false);
      expect((await socket.closed).code).toBe(4403);
    }
  });

  it('closes a deactivated user’s open socket with 4403 at once, and leaves other users’ sockets open', async () => {
    const org = await registerOrg(s);
    const member = await createUser(s, org, 'MEMBER');
    const memberSocket = liveSocket(s.url, { authToken: member.token });
    const ownerSocket = liveSocket(s.url, { authToken: org.owner.token });
    try {
      expect(await memberSocket.acked).toBe(true);
      expect(await ownerSocket.acked).toBe(true);
      expect(ok(await wsRequest(memberSocket.client, VIEWER)).viewer.id).toBe(member.id);

      ok(
        await s.gql(
          graphql(`
            mutation WebsocketDeactivateUser($id: ID!) {
              deactivateUser(userId: $id) {
                id
              }
            }
          `),
          { id: member.id },
          org.owner.token,
        ),
      );
      const closed = await closedWithin(memberSocket.closed, 3000);
      expect(closed.code).toBe(4403);
      expect(closed.reason).toMatch(/deactivated/i);

      expect(ok(await wsRequest(ownerSocket.client, VIEWER)).viewer.id).toBe(org.owner.id);
      // A new socket with the same token is refused outright.
      const again = liveSocket(s.url, { authToken: member.token });
      expect((await again.closed).code).toBe(4403);
    } finally {
      await Promise.all([memberSocket.client.dispose(), ownerSocket.client.dispose()]);
    }
  });

  it('closes the socket of a user whose role changed; a new socket has the new role', async () => {
    const org = await registerOrg(s);
    const member = await createUser(s, org, 'MEMBER');
    const before = liveSocket(s.url, { authToken: member.token });
    expect(await before.acked).toBe(true);

    ok(
      await s.gql(
        graphql(`
          mutation WebsocketChangeUserRole($id: ID!) {
            changeUserRole(userId: $id, role: ADMIN) {
              id
            }
          }
        `),
        { id: member.id },
        org.owner.token,
      ),
    );
    expect((await closedWithin(before.closed, 3000)).code).toBe(4403);

    const after = liveSocket(s.url, { authToken: member.token });
    try {
      expect(await after.acked).toBe(true);
      expect(ok(await wsRequest(after.client, VIEWER)).viewer.role).toBe('ADMIN');
    } finally {
      await Promise.all([before.client.dispose(), after.client.dispose()]);
    }
  });

  it('keeps a socket open past its token’s expiry while the session stands, refuses the expired token for a new one, and closes it when the session ends', async () => {
    const short = await startServer({ accessTokenTtlSeconds: 2 });
    try {
      const org = await registerOrg(short);
      const socket = liveSocket(short.url, { authToken: org.owner.token });
      expect(await socket.acked).toBe(true);
      expect(ok(await wsRequest(socket.client, VIEWER)).viewer.id).toBe(org.owner.id);
      // The token lives 1 to 2 s (`exp` is whole seconds); the socket checks its
      // session at that moment and goes on, and so do its operations.
      await new Promise((resolve) => setTimeout(resolve, 3000));
      expect(ok(await wsRequest(socket.client, VIEWER)).viewer.id).toBe(org.owner.id);
      expect(errorCode(await short.gql(VIEWER, {}, org.owner.token))).toBe('UNAUTHENTICATED');
      const again = liveSocket(short.url, { authToken: org.owner.token });
      expect(await again.closed).toEqual({ code: 4401, reason: 'Token expired' });

      // The session ends (logoutEverywhere, from a new sign-in): the socket closes.
      const login = `mutation ($o: String!) { login(organization: $o, username: "owner", password: "password123") { token } }`;
      const fresh = ok(await short.gql(login, { o: org.slug })).login.token as string;
      ok(await short.gql(`mutation { logoutEverywhere }`, {}, fresh));
      expect(await closedWithin(socket.closed, 3000)).toEqual({ code: 4401, reason: 'Session ended; sign in again' });
    } finally {
      await short.stop();
    }
  });
  it('closes a socket at its next session check when its session ended without a signal (one lost while Redis was away)', async () => {
    const short = await startServer({ accessTokenTtlSeconds: 2, viewerCacheMs: 100 });
    try {
      const org = await registerOrg(short);
      const socket = liveSocket(short.url, { authToken: org.owner.token });
      expect(await socket.acked).toBe(true);
      // Ended in the database only: no process is told.
      await short.app.services.prisma.session.updateMany({
        where: { organization: { slug: org.slug } },
        data: { revokedAt: new Date(), revokedReason: 'REVOKED' },
      });
      expect(await closedWithin(socket.closed, 5000)).toEqual({ code: 4401, reason: 'Session ended; sign in again' });
    } finally {
      await short.stop();
    }
  });
});

describe('graphql-ws limits', () => {
  it('closes a socket that never sends connection_init with 4408', async () => {
    const raw = await rawSocket(limited.url);
    expect((await closedWithin(raw.closed, 3000)).code).toBe(4408);
  });

  it('closes a socket that sends a message larger than maxPayload with 1009', async () => {
    const org = await registerOrg(s);
    const raw = await rawConnect(s.url, org.owner.token);
    // Just under the limit is still served: the limit is the configured one.
    const padding = (bytes: number) => `{ viewer { id } } # ${'x'.repeat(bytes)}`;
    raw.send({ id: 'fits', type: 'subscribe', payload: { query: padding(websocketDefaults.maxPayloadBytes - 200) } });
    expect((await raw.next((m) => m.id === 'fits')).type).toBe('next');

    raw.send({ id: 'big', type: 'subscribe', payload: { query: padding(websocketDefaults.maxPayloadBytes) } });
    expect((await closedWithin(raw.closed, 3000)).code).toBe(1009);
  });

  it('refuses an operation beyond the per-socket cap with RATE_LIMITED and keeps the socket', async () => {
    const org = await registerOrg(limited);
    const raw = await rawConnect(limited.url, org.owner.token);
    try {
      // Sent in one tick, the three arrive in one read and are all running
      // when the third is checked (the cap is 2).
      for (const id of ['1', '2', '3']) raw.send({ id, type: 'subscribe', payload: { query: queryText(VIEWER) } });
      const outcomes = await Promise.all(['1', '2', '3'].map((id) => raw.next<GqlError[]>((m) => m.id === id && m.type !== 'complete')));
      expect(outcomes.map((m) => m.type)).toEqual(['next', 'next', 'error']);
      expect(outcomes[2]!.payload[0]!.extensions!.code).toBe('RATE_LIMITED');

      raw.send({ id: '4', type: 'subscribe', payload: { query: queryText(VIEWER) } });
      expect((await raw.next<{ data: WebsocketViewerQuery }>((m) => m.id === '4')).payload.data.viewer.id).toBe(org.owner.id);
    } finally {
      raw.ws.close();
    }
  });

  it('closes a user’s socket beyond the per-user cap with 4429, and frees the slot when one closes', async () => {
    const org = await registerOrg(limited);
    const other = await createUser(limited, org, 'MEMBER');
    const first = liveSocket(limited.url, { authToken: org.owner.token });
    const open = [first, liveSocket(limited.url, { authToken: org.owner.token })];
    try {
      expect(await Promise.all(open.map((socket) => socket.acked))).toEqual([true, true]);
      const third = liveSocket(limited.url, { authToken: org.owner.token });
      expect(await third.acked).toBe(false);
      expect((await third.closed).code).toBe(4429);
      // The cap is per user.
      const others = liveSocket(limited.url, { authToken: other.token });
      expect(await others.acked).toBe(true);
      await others.client.dispose();

      await first.client.dispose();
      await first.closed;
      // The server sees the close a moment after the client does.
      let replacement: ReturnType<typeof liveSocket> | undefined;
      for (const start = Date.now(); Date.now() - start < 3000;) {
        replacement = liveSocket(limited.url, { authToken: org.owner.token });
        if (await replacement.acked) break;
      }
      expect(await replacement?.acked).toBe(true);
      open.push(replacement!);
    } finally {
      await Promise.all(open.map((socket) => socket.client.dispose()));
    }
  });

  it('drops a socket that stops answering pings, and keeps one that answers', async () => {
    const org = await registerOrg(limited);
    const member = await createUser(limited, org, 'MEMBER');
    const healthy = liveSocket(limited.url, { authToken: org.owner.token });
    try {
      expect(await healthy.acked).toBe(true);
      const halfOpen = await rawConnect(limited.url, member.token, { autoPong: false });
      // Terminated without a close frame: the client sees 1006.
      expect((await closedWithin(halfOpen.closed, 3000)).code).toBe(1006);
      // The healthy socket has lived through the same pings.
      expect(ok(await wsRequest(healthy.client, VIEWER)).viewer.id).toBe(org.owner.id);
    } finally {
      await healthy.client.dispose();
    }
  });

  it('answers syntax, validation and query-limit errors with the HTTP codes and keeps the socket', async () => {
    const org = await registerOrg(s);
    const socket = liveSocket(s.url, { authToken: org.owner.token });
    const refusal = (query: string) =>
      wsRequest(socket.client, query).then(
        () => undefined,
        (errors: { extensions?: { code?: string } }[]) => errors[0]?.extensions?.code,
      );
    try {
      expect(await refusal(`{ viewer { `)).toBe('GRAPHQL_PARSE_FAILED');
      expect(await refusal(`{ nope }`)).toBe('GRAPHQL_VALIDATION_FAILED');
      const aliases = Array.from({ length: 25 }, (_, i) => `a${i}: viewer { id }`).join(' ');
      expect(await refusal(`{ ${aliases} }`)).toBe('BAD_USER_INPUT');
      expect(errorCode(await s.gql(`{ ${aliases} }`, {}, org.owner.token))).toBe('BAD_USER_INPUT');
      expect(ok(await wsRequest(socket.client, VIEWER)).viewer.id).toBe(org.owner.id);
    } finally {
      await socket.client.dispose();
    }
  });
});

describe('graphql-ws around the server', () => {
  it('serves GraphiQL set to run subscriptions over the WebSocket', async () => {
    const response = await fetch(s.url, { headers: { accept: 'text/html' } });
    expect(response.status).toBe(200);
    const html = await response.text();
    expect(html).toContain('<title>');
    expect(html).toContain('"subscriptionsProtocol":"WS"');
  });

  it('stop() closes sockets with 1001 and lets an in-flight mutation finish', async () => {
    // Kept past the stop: on the embedded database, the data to check afterwards.
    const dataDir = mkdtempSync(join(tmpdir(), 'parley-stop-'));
    const server = await startServer({ dataDir });
    let stopped = false;
    try {
      const org = await registerOrg(server);
      const socket = liveSocket(server.url, { authToken: org.owner.token });
      expect(await socket.acked).toBe(true);

      const slug = `org-${uid()}`;
      const before = server.app.queryCount();
      const mutation = server.gql(
        graphql(`
          mutation WebsocketRegisterOrganization($input: RegisterOrganizationInput!) {
            registerOrganization(input: $input) {
              user {
                id
              }
            }
          }
        `),
        {
          input: { name: 'Late', slug, username: 'owner', displayName: 'Owner', password: 'password123' },
        },
      );
      // Stop once the mutation has reached the database.
      for (const start = Date.now(); server.app.queryCount() === before && Date.now() - start < 5000;) {
        await new Promise((r) => setTimeout(r, 5));
      }
      expect(server.app.queryCount()).toBeGreaterThan(before);
      const stopping = server.stop().then(() => (stopped = true));

      expect((await socket.closed).code).toBe(1001);
      expect(ok(await mutation).registerOrganization.user.id).toBeTruthy();
      await stopping;
      // Committed: a server started afterwards on the same data signs the new owner in.
      const after = await startServer({ dataDir });
      try {
        const login = await after.gql(
          graphql(`
            mutation WebsocketLogin($o: String!) {
              login(organization: $o, username: "owner", password: "password123") {
                token
              }
            }
          `),
          { o: slug },
        );
        expect(ok(login).login.token).toBeTruthy();
      } finally {
        await after.stop();
      }
    } finally {
      if (!stopped) await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('token in connection_init headers', () => {
  it('accepts an Authorization header in connectionParams, as GraphiQL sends its Headers tab', async () => {
    const s = await startServer();
    try {
      const org = await registerOrg(s);
      for (const params of [{ Authorization: `Bearer ${org.owner.token}` }, { headers: { authorization: `Bearer ${org.owner.token}` } }]) {
        const socket = liveSocket(s.url, params);
        expect(await socket.acked).toBe(true);
        socket.client.dispose();
      }
      expect((await liveSocket(s.url, { Authorization: 'Bearer nonsense' }).closed).code).toBe(4403);
    } finally {
      await s.stop();
    }
  });
});
