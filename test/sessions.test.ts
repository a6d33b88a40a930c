import { createHash, randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startServer, uid, type GqlResult, type TestServer } from './helpers/app.ts';
import { createUser, errorCode, ok, registerOrg, type TestOrg } from './helpers/fixtures.ts';
import { queryText } from './helpers/operation.ts';
import { liveSocket, wsRequest, type CloseInfo } from './helpers/ws.ts';
import { graphql } from './generated/index.ts';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';

// Sessions (issue 13 §2): short-lived access tokens naming a session, rotating
// refresh tokens with reuse detection, and the operations that list and end
// sessions. Every check goes through the API as a client would.

const LOGIN = graphql(`
  mutation SessionsLogin($o: String!, $u: String!, $p: String!) {
    login(organization: $o, username: $u, password: $p) {
      token
      refreshToken
      accessTokenExpiresAt
      session {
        id
        current
        ip
        userAgent
        createdAt
        lastSeenAt
        expiresAt
      }
      user {
        id
      }
    }
  }
`);
const REFRESH = graphql(`
  mutation SessionsRefresh($refreshToken: String!) {
    refreshSession(refreshToken: $refreshToken) {
      token
      refreshToken
      accessTokenExpiresAt
      session {
        id
        current
        expiresAt
      }
      user {
        id
      }
    }
  }
`);
const VIEWER = graphql(`
  query SessionsViewer {
    viewer {
      id
    }
  }
`);
const SESSIONS = graphql(`
  query SessionsList {
    sessions(first: 50) {
      edges {
        node {
          id
          current
          ip
          userAgent
          createdAt
          lastSeenAt
          expiresAt
        }
      }
    }
  }
`);
const LOGOUT = graphql(`
  mutation SessionsLogout {
    logout
  }
`);
const LOGOUT_EVERYWHERE = graphql(`
  mutation SessionsLogoutEverywhere {
    logoutEverywhere
  }
`);
const REVOKE = graphql(`
  mutation SessionsRevoke($id: ID!) {
    revokeSession(id: $id)
  }
`);
const CHANGE_PASSWORD = graphql(`
  mutation SessionsChangePassword($current: String!, $next: String!) {
    changePassword(currentPassword: $current, newPassword: $next)
  }
`);
const AUDIT = graphql(`
  query SessionsAudit($action: String!) {
    auditEvents(first: 20, filter: { action: $action }) {
      edges {
        node {
          action
          targetType
          actorId
        }
      }
    }
  }
`);
const DEACTIVATE = graphql(`
  mutation SessionsDeactivate($id: ID!) {
    deactivateUser(userId: $id) {
      id
    }
  }
`);
const REACTIVATE = graphql(`
  mutation SessionsReactivate($id: ID!) {
    reactivateUser(userId: $id) {
      id
    }
  }
`);

const PASSWORD = 'password123';
const rawId = (globalId: string) => Buffer.from(globalId, 'base64').toString('utf8').split(':')[1]!;

/** One GraphQL request with a user agent of the test's choosing (the shared helper sends fetch's own). */
async function post<R, V>(s: TestServer, query: TypedDocumentNode<R, V>, variables: V, userAgent: string): Promise<GqlResult<R>> {
  const response = await fetch(s.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'user-agent': userAgent },
    body: JSON.stringify({ query: queryText(query), variables }),
  });
  return (await response.json()) as GqlResult<R>;
}

/** A new session for `username` of `org`, as a device with `userAgent` signs in. */
async function signIn(s: TestServer, org: TestOrg, username: string, userAgent = `device-${uid()}`, password = PASSWORD) {
  return ok(await post(s, LOGIN, { o: org.slug, u: username, p: password }, userAgent)).login;
}

const works = async (s: TestServer, token: string) => errorCode(await s.gql(VIEWER, {}, token)) === undefined;
const refreshFails = async (s: TestServer, refreshToken: string) => errorCode(await s.gql(REFRESH, { refreshToken })) === 'UNAUTHENTICATED';

async function query<T>(s: TestServer, sql: string, params: unknown[]): Promise<T[]> {
  const db = new pg.Client({ connectionString: s.app.databaseUrl });
  await db.connect();
  try {
    return (await db.query(sql, params)).rows as T[];
  } finally {
    await db.end();
  }
}

function closedWithin(closed: Promise<CloseInfo>, ms: number): Promise<CloseInfo> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`socket still open after ${ms} ms`)), ms)));
  return Promise.race([closed, timeout]).finally(() => clearTimeout(timer));
}

let s: TestServer;
beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s?.stop();
});

describe('sign-in', () => {
  it('gives a short-lived access token, a refresh token stored only hashed, and the session with the client’s address and user agent', async () => {
    const org = await registerOrg(s);
    const before = Date.now();
    const login = await signIn(s, org, 'owner', 'Parley-Test/1.0 (sessions)');
    expect(await works(s, login.token)).toBe(true);
    expect(login.refreshToken).toMatch(/^prt_[A-Za-z0-9_-]{43}$/);
    // ACCESS_TOKEN_TTL_SECONDS, 900 by default: whole seconds from the sign-in.
    const ttl = (Date.parse(login.accessTokenExpiresAt as string) - before) / 1000;
    expect(ttl).toBeGreaterThan(890);
    expect(ttl).toBeLessThanOrEqual(901);
    expect(login.session).toMatchObject({ current: true, ip: '127.0.0.1', userAgent: 'Parley-Test/1.0 (sessions)' });
    // REFRESH_TOKEN_TTL_DAYS, 30 by default.
    const days = (Date.parse(login.session.expiresAt as string) - Date.parse(login.session.createdAt as string)) / 86_400_000;
    expect(days).toBeCloseTo(30, 3);

    const rows = await query<{ tokenHash: string; rotatedAt: Date | null }>(
      s,
      'SELECT "tokenHash", "rotatedAt" FROM "RefreshToken" WHERE "sessionId" = $1',
      [rawId(login.session.id)],
    );
    expect(rows).toEqual([{ tokenHash: createHash('sha256').update(login.refreshToken).digest('hex'), rotatedAt: null }]);
  });

  it('registerOrganization starts a session too', async () => {
    const slug = `sess-${uid()}`;
    const { registerOrganization } = ok(
      await s.gql(
        graphql(`
          mutation SessionsRegister($input: RegisterOrganizationInput!) {
            registerOrganization(input: $input) {
              token
              refreshToken
              session {
                id
                current
              }
            }
          }
        `),
        { input: { name: `Org ${slug}`, slug, username: 'owner', displayName: 'Owner', password: PASSWORD } },
      ),
    );
    expect(registerOrganization.session.current).toBe(true);
    const refreshed = ok(await s.gql(REFRESH, { refreshToken: registerOrganization.refreshToken })).refreshSession;
    expect(refreshed.session.id).toBe(registerOrganization.session.id);
  });

  it('costs no query per request once the session and the viewer are cached', async () => {
    const org = await registerOrg(s);
    const login = await signIn(s, org, 'owner');
    ok(await s.gql('{ __typename }', {}, login.token));
    const before = s.app.queryCount();
    for (let i = 0; i < 5; i++) ok(await s.gql('{ __typename }', {}, login.token));
    expect(s.app.queryCount() - before).toBe(0);
  });
});

describe('refreshSession', () => {
  it('rotates: new tokens for the same session, and the old refresh token no longer works', async () => {
    const org = await registerOrg(s);
    const login = await signIn(s, org, 'owner');
    const refreshed = ok(await s.gql(REFRESH, { refreshToken: login.refreshToken })).refreshSession;
    expect(refreshed.refreshToken).not.toBe(login.refreshToken);
    expect(refreshed.session).toMatchObject({ id: login.session.id, current: true });
    expect(refreshed.user.id).toBe(login.user.id);
    expect(Date.parse(refreshed.session.expiresAt as string)).toBeGreaterThanOrEqual(Date.parse(login.session.expiresAt as string));
    expect(await works(s, refreshed.token)).toBe(true);
    expect(await refreshFails(s, login.refreshToken)).toBe(true);
  });

  it('taking a rotated refresh token for theft: its reuse ends the whole session, newest tokens included, and is audited', async () => {
    const org = await registerOrg(s);
    const login = await signIn(s, org, 'owner');
    const first = ok(await s.gql(REFRESH, { refreshToken: login.refreshToken })).refreshSession;
    const second = ok(await s.gql(REFRESH, { refreshToken: first.refreshToken })).refreshSession;
    expect(await works(s, second.token)).toBe(true);
    // Someone presents the first refresh token again: one of its two holders is not the user.
    const reused = await s.gql(REFRESH, { refreshToken: login.refreshToken });
    expect(errorCode(reused)).toBe('UNAUTHENTICATED');
    expect(reused.data).toBeNull();
    expect(await works(s, second.token)).toBe(false);
    expect(await works(s, first.token)).toBe(false);
    expect(await refreshFails(s, second.refreshToken)).toBe(true);
    // The owner signs in again and finds the reuse in the audit trail.
    const again = await signIn(s, org, 'owner');
    const audit = ok(await s.gql(AUDIT, { action: 'session.refreshTokenReused' }, again.token)).auditEvents.edges;
    expect(audit.map((e) => e.node)).toEqual([{ action: 'session.refreshTokenReused', targetType: 'Session', actorId: null }]);
  });

  it('answers an unknown, a reused and an ended session’s refresh token alike', async () => {
    const org = await registerOrg(s);
    const login = await signIn(s, org, 'owner');
    const refreshed = ok(await s.gql(REFRESH, { refreshToken: login.refreshToken })).refreshSession;
    const reused = await s.gql(REFRESH, { refreshToken: login.refreshToken });
    const ended = await s.gql(REFRESH, { refreshToken: refreshed.refreshToken });
    const unknown = await s.gql(REFRESH, { refreshToken: `prt_${'A'.repeat(43)}` });
    const garbage = await s.gql(REFRESH, { refreshToken: 'not a token' });
    const answers = [reused, ended, unknown, garbage].map((r) => ({ code: errorCode(r), message: r.errors?.[0]?.message, data: r.data }));
    expect(new Set(answers.map((a) => JSON.stringify(a))).size).toBe(1);
    expect(answers[0]).toMatchObject({ code: 'UNAUTHENTICATED', data: null });
  });

  it('of concurrent refreshes with one token exactly one wins; the others count as reuse and end the session', async () => {
    const org = await registerOrg(s);
    const login = await signIn(s, org, 'owner');
    const results = await Promise.all(Array.from({ length: 5 }, () => s.gql(REFRESH, { refreshToken: login.refreshToken })));
    const winners = results.filter((r) => !r.errors);
    expect(winners).toHaveLength(1);
    expect(results.filter((r) => errorCode(r) === 'UNAUTHENTICATED')).toHaveLength(4);
    const winner = winners[0]!.data!.refreshSession;
    expect(await refreshFails(s, winner.refreshToken)).toBe(true);
    expect(await works(s, winner.token)).toBe(false);
  });

  it('needs no access token, and works after the access token expired', async () => {
    const short = await startServer({ accessTokenTtlSeconds: 2 });
    try {
      const org = await registerOrg(short);
      const login = ok(await short.gql(LOGIN, { o: org.slug, u: 'owner', p: PASSWORD })).login;
      expect(await works(short, login.token)).toBe(true);
      // Functional wait: until the token's own expiry (whole seconds) has passed.
      await new Promise((resolve) =>
        setTimeout(resolve, Math.max(0, Date.parse(login.accessTokenExpiresAt as string) + 1100 - Date.now())),
      );
      expect(errorCode(await short.gql(VIEWER, {}, login.token))).toBe('UNAUTHENTICATED');
      const refreshed = ok(await short.gql(REFRESH, { refreshToken: login.refreshToken })).refreshSession;
      expect(refreshed.session.id).toBe(login.session.id);
      expect(await works(short, refreshed.token)).toBe(true);
    } finally {
      await short.stop();
    }
  });
});

describe('listing and ending sessions', () => {
  it('sessions lists the viewer’s own working sessions, newest first, with the current one marked', async () => {
    const org = await registerOrg(s);
    const member = await createUser(s, org);
    const laptop = await signIn(s, org, member.username, 'Laptop/1.0');
    const phone = await signIn(s, org, member.username, 'Phone/2.0');
    const list = ok(await s.gql(SESSIONS, {}, laptop.token)).sessions.edges.map((e) => e.node);
    // createUser's own sign-in, then the laptop, then the phone.
    expect(list).toHaveLength(3);
    expect(list.slice(0, 2).map((n) => [n.id, n.userAgent, n.current, n.ip])).toEqual([
      [phone.session.id, 'Phone/2.0', false, '127.0.0.1'],
      [laptop.session.id, 'Laptop/1.0', true, '127.0.0.1'],
    ]);
    // The owner's sessions are not the member's.
    const ownerList = ok(await s.gql(SESSIONS, {}, org.owner.token)).sessions.edges.map((e) => e.node.id);
    expect(ownerList).not.toContain(laptop.session.id);
    expect(ownerList).toHaveLength(1);
  });

  it('logout ends the current session only', async () => {
    const org = await registerOrg(s);
    const member = await createUser(s, org);
    const laptop = await signIn(s, org, member.username);
    const phone = await signIn(s, org, member.username);
    expect(ok(await s.gql(LOGOUT, {}, laptop.token)).logout).toBe(true);
    expect(await works(s, laptop.token)).toBe(false);
    expect(await refreshFails(s, laptop.refreshToken)).toBe(true);
    expect(await works(s, phone.token)).toBe(true);
    const list = ok(await s.gql(SESSIONS, {}, phone.token)).sessions.edges.map((e) => e.node.id);
    expect(list).not.toContain(laptop.session.id);
    expect(list).toContain(phone.session.id);
  });

  it('logoutEverywhere ends every session of the viewer, counts them, and is audited', async () => {
    const org = await registerOrg(s);
    const member = await createUser(s, org);
    const sessions = [await signIn(s, org, member.username), await signIn(s, org, member.username)];
    const other = await createUser(s, org);
    // createUser's sign-in and the two above.
    expect(ok(await s.gql(LOGOUT_EVERYWHERE, {}, sessions[0]!.token)).logoutEverywhere).toBe(3);
    for (const session of sessions) {
      expect(await works(s, session.token)).toBe(false);
      expect(await refreshFails(s, session.refreshToken)).toBe(true);
    }
    expect(await works(s, member.token)).toBe(false);
    expect(await works(s, other.token)).toBe(true);
    const audit = ok(await s.gql(AUDIT, { action: 'session.logoutEverywhere' }, org.owner.token)).auditEvents.edges;
    expect(audit.map((e) => e.node)).toEqual([{ action: 'session.logoutEverywhere', targetType: 'User', actorId: member.id }]);
  });

  it('revokeSession ends one of the viewer’s own sessions; anyone else’s is NOT_FOUND like a missing one', async () => {
    const org = await registerOrg(s);
    const member = await createUser(s, org);
    const laptop = await signIn(s, org, member.username);
    const phone = await signIn(s, org, member.username);
    const colleague = await signIn(s, org, (await createUser(s, org)).username);

    expect(ok(await s.gql(REVOKE, { id: phone.session.id }, laptop.token)).revokeSession).toBe(true);
    expect(await works(s, phone.token)).toBe(false);
    expect(await refreshFails(s, phone.refreshToken)).toBe(true);
    expect(await works(s, laptop.token)).toBe(true);
    // Once more: nothing left to end.
    expect(ok(await s.gql(REVOKE, { id: phone.session.id }, laptop.token)).revokeSession).toBe(false);

    // The organization's owner may not end the member's session either: sessions are their own user's.
    const foreign = await s.gql(REVOKE, { id: colleague.session.id }, laptop.token);
    const byOwner = await s.gql(REVOKE, { id: laptop.session.id }, org.owner.token);
    const missing = await s.gql(REVOKE, { id: Buffer.from(`Session:${randomUUID()}`).toString('base64') }, laptop.token);
    for (const result of [foreign, byOwner, missing]) {
      expect(errorCode(result)).toBe('NOT_FOUND');
      expect(result.errors?.[0]?.message).toBe(missing.errors?.[0]?.message);
    }
    expect(await works(s, colleague.token)).toBe(true);
    expect(await works(s, laptop.token)).toBe(true);
    const audit = ok(await s.gql(AUDIT, { action: 'session.revoke' }, org.owner.token)).auditEvents.edges;
    expect(audit.map((e) => e.node)).toEqual([{ action: 'session.revoke', targetType: 'Session', actorId: member.id }]);
  });

  it('changePassword keeps the current session, ends the others, and only the new password signs in', async () => {
    const org = await registerOrg(s);
    const member = await createUser(s, org);
    const laptop = await signIn(s, org, member.username);
    const phone = await signIn(s, org, member.username);

    const wrong = await s.gql(CHANGE_PASSWORD, { current: 'not the password', next: 'a new passphrase' }, laptop.token);
    expect(errorCode(wrong)).toBe('BAD_USER_INPUT');
    expect(wrong.errors?.[0]?.extensions?.field).toBe('currentPassword');
    expect(await works(s, phone.token)).toBe(true);
    const short = await s.gql(CHANGE_PASSWORD, { current: PASSWORD, next: 'short' }, laptop.token);
    expect(errorCode(short)).toBe('BAD_USER_INPUT');

    // createUser's sign-in and the phone end; the laptop, which changed it, stays.
    expect(ok(await s.gql(CHANGE_PASSWORD, { current: PASSWORD, next: 'a new passphrase' }, laptop.token)).changePassword).toBe(2);
    expect(await works(s, laptop.token)).toBe(true);
    expect(await works(s, phone.token)).toBe(false);
    expect(await works(s, member.token)).toBe(false);
    expect(await refreshFails(s, phone.refreshToken)).toBe(true);
    ok(await s.gql(REFRESH, { refreshToken: laptop.refreshToken }));

    const old = await s.gql(LOGIN, { o: org.slug, u: member.username, p: PASSWORD });
    expect(errorCode(old)).toBe('UNAUTHENTICATED');
    expect(await works(s, (await signIn(s, org, member.username, 'x', 'a new passphrase')).token)).toBe(true);
    const audit = ok(await s.gql(AUDIT, { action: 'user.changePassword' }, org.owner.token)).auditEvents.edges;
    expect(audit.map((e) => e.node)).toEqual([{ action: 'user.changePassword', targetType: 'User', actorId: member.id }]);
  });

  it('deactivation ends the user’s sessions: reactivated, they sign in again', async () => {
    const org = await registerOrg(s);
    const member = await createUser(s, org);
    const laptop = await signIn(s, org, member.username);
    ok(await s.gql(DEACTIVATE, { id: member.id }, org.owner.token));
    ok(await s.gql(REACTIVATE, { id: member.id }, org.owner.token));
    expect(await works(s, laptop.token)).toBe(false);
    expect(await refreshFails(s, laptop.refreshToken)).toBe(true);
    expect(await works(s, (await signIn(s, org, member.username)).token)).toBe(true);
  });

  it('closes a revoked session’s open socket with 4401 and leaves the user’s other sockets open', async () => {
    const org = await registerOrg(s);
    const member = await createUser(s, org);
    const laptop = await signIn(s, org, member.username);
    const phone = await signIn(s, org, member.username);
    const phoneSocket = liveSocket(s.url, { authToken: phone.token });
    const laptopSocket = liveSocket(s.url, { authToken: laptop.token });
    try {
      expect(await phoneSocket.acked).toBe(true);
      expect(await laptopSocket.acked).toBe(true);
      ok(await s.gql(REVOKE, { id: phone.session.id }, laptop.token));
      const closed = await closedWithin(phoneSocket.closed, 3000);
      expect(closed.code).toBe(4401);
      expect(closed.reason).toMatch(/session ended/i);
      expect(ok(await wsRequest(laptopSocket.client, VIEWER)).viewer.id).toBe(member.id);
      // A new socket with the ended session's token is refused the same way (graphql-ws clients do not retry 4401).
      const again = liveSocket(s.url, { authToken: phone.token });
      expect(await again.closed).toMatchObject({ code: 4401, reason: expect.stringMatching(/session ended/i) });

      // logout closes the current session's socket the same way.
      ok(await s.gql(LOGOUT, {}, laptop.token));
      expect((await closedWithin(laptopSocket.closed, 3000)).code).toBe(4401);
    } finally {
      await Promise.all([phoneSocket.client.dispose(), laptopSocket.client.dispose()]);
    }
  });
});

describe('housekeeping', () => {
  it('records lastSeenAt when a request uses the session, at most once a minute', async () => {
    // No cache between requests: each one reads the session as stored.
    const uncached = await startServer({ viewerCacheMs: 1 });
    try {
      const org = await registerOrg(uncached);
      const login = ok(await uncached.gql(LOGIN, { o: org.slug, u: 'owner', p: PASSWORD })).login;
      const id = rawId(login.session.id);
      const longAgo = new Date(Date.now() - 10 * 60_000);
      await query(uncached, 'UPDATE "Session" SET "lastSeenAt" = $2 WHERE id = $1', [id, longAgo]);
      ok(await uncached.gql(VIEWER, {}, login.token));
      const seen = async () =>
        (await query<{ lastSeenAt: Date }>(uncached, 'SELECT "lastSeenAt" FROM "Session" WHERE id = $1', [id]))[0]!.lastSeenAt;
      expect(await eventually(async () => (await seen()).getTime() > longAgo.getTime(), 3000)).toBe(true);
      // Within the minute, requests leave it as it is.
      const recorded = await seen();
      for (let i = 0; i < 3; i++) ok(await uncached.gql(VIEWER, {}, login.token));
      expect((await seen()).getTime()).toBe(recorded.getTime());
    } finally {
      await uncached.stop();
    }
  });

  it('deletes expired and long-revoked sessions with their refresh tokens, and keeps the rest', async () => {
    const org = await registerOrg(s);
    const member = await createUser(s, org);
    const [expired, revoked, recent, active] = [
      await signIn(s, org, member.username),
      await signIn(s, org, member.username),
      await signIn(s, org, member.username),
      await signIn(s, org, member.username),
    ];
    const ids = [expired, revoked, recent, active].map((login) => rawId(login.session.id));
    await query(s, `UPDATE "Session" SET "expiresAt" = now() - interval '1 minute' WHERE id = $1`, [ids[0]]);
    await query(s, `UPDATE "Session" SET "revokedAt" = now() - interval '8 days', "revokedReason" = 'LOGOUT' WHERE id = $1`, [ids[1]]);
    ok(await s.gql(LOGOUT, {}, recent.token));
    await s.app.services.sessions.prune();
    const left = await query<{ id: string }>(s, 'SELECT id FROM "Session" WHERE id = ANY($1::uuid[]) ORDER BY id', [ids]);
    expect(left.map((row) => row.id)).toEqual([ids[2], ids[3]]);
    const tokens = await query<{ sessionId: string }>(
      s,
      'SELECT DISTINCT "sessionId" FROM "RefreshToken" WHERE "sessionId" = ANY($1::uuid[])',
      [ids],
    );
    expect(tokens.map((row) => row.sessionId).sort()).toEqual([ids[2], ids[3]].sort());
    expect(await works(s, active.token)).toBe(true);
  });
});
