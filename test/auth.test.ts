import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenService } from '../src/auth/tokens.ts';
import { startServer, uid, type TestServer } from './helpers/app.ts';
import { errorCode, ok, registerOrg } from './helpers/fixtures.ts';
import { graphql } from './generated/index.ts';

const REGISTER = graphql(`
  mutation AuthRegisterOrganization($input: RegisterOrganizationInput!) {
    registerOrganization(input: $input) {
      token
      user {
        id
        username
        displayName
        email
        role
        organization {
          slug
          name
        }
      }
    }
  }
`);
const LOGIN = graphql(`
  mutation AuthLogin($o: String!, $u: String!, $p: String!) {
    login(organization: $o, username: $u, password: $p) {
      token
      user {
        id
        username
        role
      }
    }
  }
`);
const VIEWER = graphql(`
  query AuthViewer {
    viewer {
      id
      username
      role
      organization {
        slug
      }
    }
  }
`);

const rawId = (globalId: string) => Buffer.from(globalId, 'base64').toString('utf8').split(':')[1]!;

function registerInput(overrides: Record<string, unknown> = {}) {
  const slug = `auth-${uid()}`;
  return {
    name: `Org ${slug}`,
    slug,
    username: 'founder',
    displayName: 'Founder',
    email: 'founder@example.com',
    password: 'correct horse',
    ...overrides,
  };
}

let s: TestServer;
beforeAll(async () => {
  s = await startServer();
});
afterAll(async () => {
  await s?.stop();
});

describe('registerOrganization', () => {
  it('creates the organization and its owner, and returns a working token', async () => {
    const input = registerInput();
    const { registerOrganization: result } = ok(await s.gql(REGISTER, { input }));
    expect(result.user).toMatchObject({
      username: 'founder',
      displayName: 'Founder',
      email: 'founder@example.com',
      role: 'OWNER',
      organization: { slug: input.slug, name: input.name },
    });
    const { viewer } = ok(await s.gql(VIEWER, {}, result.token));
    expect(viewer).toEqual({ id: result.user.id, username: 'founder', role: 'OWNER', organization: { slug: input.slug } });
  });

  it('shows the signed-in user their own email in the login payload', async () => {
    const input = registerInput();
    ok(await s.gql(REGISTER, { input }));
    const { login } = ok(
      await s.gql(
        graphql(`
          mutation AuthLoginEmail($o: String!, $u: String!, $p: String!) {
            login(organization: $o, username: $u, password: $p) {
              user {
                email
              }
            }
          }
        `),
        { o: input.slug, u: input.username, p: input.password },
      ),
    );
    expect(login.user.email).toBe(input.email);
  });

  it('rejects a slug that is taken with CONFLICT', async () => {
    const input = registerInput();
    ok(await s.gql(REGISTER, { input }));
    const again = await s.gql(REGISTER, { input: { ...input, username: 'someone-else' } });
    expect(errorCode(again)).toBe('CONFLICT');
    expect(again.errors?.[0]?.extensions?.field).toBe('slug');
    expect(again.data).toBeNull();
  });

  it.each([
    ['slug', { slug: 'Not A Slug' }],
    ['slug', { slug: '-leading-dash' }],
    ['username', { username: 'x' }],
    ['username', { username: 'has spaces' }],
    ['password', { password: 'short' }],
    ['displayName', { displayName: '   ' }],
    ['email', { email: 'not-an-email' }],
  ])('rejects an invalid %s with BAD_USER_INPUT naming the field (%j)', async (field, overrides) => {
    const input = registerInput(overrides);
    const result = await s.gql(REGISTER, { input });
    expect(errorCode(result)).toBe('BAD_USER_INPUT');
    expect(result.errors?.[0]?.message).toContain(field);
    expect(result.errors?.[0]?.extensions?.field).toBe(`input.${field}`);
    expect(result.data).toBeNull();
    if (field !== 'slug') {
      // Nothing was created: the same slug with valid input still registers.
      ok(await s.gql(REGISTER, { input: registerInput({ slug: input.slug }) }));
    }
  });

  it('stores passwords as scrypt hashes, never in plain text', async () => {
    const input = registerInput({ password: 'a very secret passphrase' });
    const { registerOrganization: result } = ok(await s.gql(REGISTER, { input }));
    const db = new pg.Client({ connectionString: s.app.databaseUrl });
    await db.connect();
    try {
      const { rows } = await db.query<{ passwordHash: string }>('SELECT "passwordHash" FROM "User" WHERE id = $1', [rawId(result.user.id)]);
      const hash = rows[0]!.passwordHash;
      expect(hash.startsWith('scrypt$')).toBe(true);
      expect(hash).not.toContain(input.password);
      expect(hash.split('$')).toHaveLength(6);
    } finally {
      await db.end();
    }
  });
});

describe('login', () => {
  it('signs in with the right credentials', async () => {
    const org = await registerOrg(s);
    const { login } = ok(await s.gql(LOGIN, { o: org.slug, u: 'owner', p: 'password123' }));
    expect(login.user).toEqual({ id: org.owner.id, username: 'owner', role: 'OWNER' });
    const { viewer } = ok(await s.gql(VIEWER, {}, login.token));
    expect(viewer.id).toBe(org.owner.id);
  });

  it('answers a wrong password, an unknown user and an unknown organization alike', async () => {
    const org = await registerOrg(s);
    const attempts = [
      { o: org.slug, u: 'owner', p: 'wrong-password' },
      { o: org.slug, u: 'nobody', p: 'password123' },
      { o: `missing-${uid()}`, u: 'owner', p: 'password123' },
    ];
    const results = await Promise.all(attempts.map((vars) => s.gql(LOGIN, vars)));
    for (const result of results) {
      expect(errorCode(result)).toBe('UNAUTHENTICATED');
      expect(result.data).toBeNull();
    }
    const messages = new Set(results.map((r) => r.errors?.[0]?.message));
    expect(messages.size).toBe(1);
  });

  it('does not let a user of one organization sign in to another', async () => {
    const a = await registerOrg(s);
    const b = await registerOrg(s);
    // Both owners are called "owner" with the same password; the slug decides whose account it is.
    const { login } = ok(await s.gql(LOGIN, { o: b.slug, u: 'owner', p: 'password123' }));
    expect(login.user.id).toBe(b.owner.id);
    expect(login.user.id).not.toBe(a.owner.id);
  });
});

describe('viewer and tokens', () => {
  it('requires a token', async () => {
    const result = await s.gql(VIEWER);
    expect(errorCode(result)).toBe('UNAUTHENTICATED');
  });

  it('rejects a token signed with another secret', async () => {
    const org = await registerOrg(s);
    const [, payload] = org.owner.token.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8')) as { sub: string; org: string; sid: string };
    const forged = await new TokenService('some-other-secret-0123456789', 3600).issue({
      userId: claims.sub,
      organizationId: claims.org,
      sessionId: claims.sid,
    });
    expect(errorCode(await s.gql(VIEWER, {}, forged.token))).toBe('UNAUTHENTICATED');
    // The genuine token for the same user still works, so the claims were right.
    ok(await s.gql(VIEWER, {}, org.owner.token));
  });

  it('rejects a correctly signed token whose organization does not match the user', async () => {
    const a = await registerOrg(s);
    const b = await registerOrg(s);
    const claimsOf = (token: string) =>
      JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as { sub: string; org: string; sid: string };
    const tokens = new TokenService('test-secret-0123456789abcdef', 3600);
    const { sub, sid } = claimsOf(a.owner.token);
    const mixed = await tokens.issue({ userId: sub, organizationId: claimsOf(b.owner.token).org, sessionId: sid });
    expect(errorCode(await s.gql(VIEWER, {}, mixed.token))).toBe('UNAUTHENTICATED');
    // The same claims with the right organization work: only the organization was wrong.
    const right = await tokens.issue({ userId: sub, organizationId: claimsOf(a.owner.token).org, sessionId: sid });
    ok(await s.gql(VIEWER, {}, right.token));
  });

  it('rejects a correctly signed token whose session belongs to another user', async () => {
    const a = await registerOrg(s);
    const b = await registerOrg(s);
    const claimsOf = (token: string) =>
      JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as { sub: string; org: string; sid: string };
    const tokens = new TokenService('test-secret-0123456789abcdef', 3600);
    const { sub, org } = claimsOf(a.owner.token);
    const borrowed = await tokens.issue({ userId: sub, organizationId: org, sessionId: claimsOf(b.owner.token).sid });
    expect(errorCode(await s.gql(VIEWER, {}, borrowed.token))).toBe('UNAUTHENTICATED');
  });

  it('rejects a correctly signed token without a session (as tokens were before sessions)', async () => {
    const org = await registerOrg(s);
    const { sub, org: organizationId } = JSON.parse(Buffer.from(org.owner.token.split('.')[1]!, 'base64url').toString('utf8')) as {
      sub: string;
      org: string;
    };
    const sessionless = await new SignJWT({ org: organizationId })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(sub)
      .setIssuer('parley')
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode('test-secret-0123456789abcdef'));
    expect(errorCode(await s.gql(VIEWER, {}, sessionless))).toBe('UNAUTHENTICATED');
  });

  it.each([
    ['garbage', 'not-a-token'],
    ['three garbage parts', 'aaa.bbb.ccc'],
    [
      'unsigned',
      `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"x","org":"y","iss":"parley"}').toString('base64url')}.`,
    ],
  ])('rejects a malformed token (%s)', async (_name, token) => {
    const result = await s.gql(VIEWER, {}, token);
    expect(errorCode(result)).toBe('UNAUTHENTICATED');
  });

  it('rejects an expired token', async () => {
    const short = await startServer({ accessTokenTtlSeconds: 3 });
    try {
      const org = await registerOrg(short);
      ok(await short.gql(VIEWER, {}, org.owner.token));
      // Functional wait: until the token's own expiry (whole seconds) has passed,
      // however long signing up took on a busy machine.
      const { exp } = JSON.parse(Buffer.from(org.owner.token.split('.')[1]!, 'base64url').toString()) as { exp: number };
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, exp * 1000 + 1100 - Date.now())));
      expect(errorCode(await short.gql(VIEWER, {}, org.owner.token))).toBe('UNAUTHENTICATED');
    } finally {
      await short.stop();
    }
  });

  it('keeps tokens valid across an app restart with the same secret', async () => {
    const jwtSecret = `restart-secret-${uid()}-0123456789`;
    // The same data directory: on the embedded database, the restart's data.
    const dataDir = mkdtempSync(join(tmpdir(), 'parley-restart-'));
    const first = await startServer({ jwtSecret, dataDir });
    let org;
    try {
      org = await registerOrg(first);
    } finally {
      await first.stop();
    }
    const second = await startServer({ jwtSecret, dataDir });
    try {
      const { viewer } = ok(await second.gql(VIEWER, {}, org.owner.token));
      expect(viewer.id).toBe(org.owner.id);
    } finally {
      await second.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
    // A server with another secret rejects the same token.
    expect(errorCode(await s.gql(VIEWER, {}, org.owner.token))).toBe('UNAUTHENTICATED');
  });
});
