import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { startServer, type TestServer } from './helpers/app.ts';
import { errorCode, ok, registerOrg } from './helpers/fixtures.ts';

// Production mode (issue 13 §3, first part): NODE_ENV=production or
// PARLEY_PRODUCTION turns GraphiQL and introspection off unless enabled,
// blocks field suggestions, and adds HSTS to the headers every response carries.

const base = { JWT_SECRET: 'x'.repeat(16) };

describe('production mode: configuration', () => {
  it('follows NODE_ENV=production or PARLEY_PRODUCTION, and each switch can be set on its own', () => {
    expect(loadConfig(base)).toMatchObject({ production: false, graphiql: true, introspection: true });
    // Trusted documents only are an option of their own (test/trusted-documents.test.ts), off in production too.
    expect(loadConfig({ ...base, NODE_ENV: 'production' })).toMatchObject({
      production: true,
      graphiql: false,
      introspection: false,
      trustedDocuments: null,
    });
    expect(loadConfig({ ...base, PARLEY_PRODUCTION: 'true' })).toMatchObject({ production: true, graphiql: false, introspection: false });
    expect(loadConfig({ ...base, NODE_ENV: 'production', PARLEY_PRODUCTION: 'false' })).toMatchObject({ production: false });
    expect(loadConfig({ ...base, NODE_ENV: 'production', GRAPHIQL: 'true', INTROSPECTION: 'true' })).toMatchObject({
      production: true,
      graphiql: true,
      introspection: true,
    });
    expect(() => loadConfig({ ...base, INTROSPECTION: 'yes' })).toThrow(/INTROSPECTION must be "true" or "false"/);
  });
});

describe.each([
  ['production', { production: true, graphiql: false, introspection: false }],
  ['development', { production: false, graphiql: true, introspection: true }],
] as const)('a server in %s mode', (mode, overrides) => {
  let s: TestServer;
  let token: string;
  const production = mode === 'production';
  beforeAll(async () => {
    s = await startServer(overrides);
    token = (await registerOrg(s)).owner.token;
  });
  afterAll(async () => {
    await s?.stop();
  });

  it(production ? 'refuses introspection' : 'answers introspection', async () => {
    const result = await s.gql(`{ __schema { queryType { name } } }`, {}, token);
    if (production) {
      expect(errorCode(result)).toBe('GRAPHQL_VALIDATION_FAILED');
      expect(result.errors?.[0]?.message).toMatch(/introspection/i);
    } else {
      expect(ok(result).__schema.queryType.name).toBe('Query');
    }
    // __typename is not introspection: clients (Apollo, urql) add it everywhere.
    expect(ok(await s.gql(`{ __typename viewer { __typename } }`, {}, token)).viewer.__typename).toBe('User');
  });

  it(production ? 'gives no field suggestions' : 'suggests fields', async () => {
    const result = await s.gql(`{ viewr { id } }`, {}, token);
    expect(errorCode(result)).toBe('GRAPHQL_VALIDATION_FAILED');
    if (production) expect(result.errors?.[0]?.message).not.toMatch(/Did you mean/);
    else expect(result.errors?.[0]?.message).toMatch(/Did you mean "viewer"/);
  });

  it(production ? 'serves no GraphiQL' : 'serves GraphiQL', async () => {
    const page = await fetch(s.url, { headers: { accept: 'text/html' } });
    expect(page.headers.get('content-type') ?? '').toMatch(production ? /^(?!text\/html)/ : /^text\/html/);
  });

  it('puts the security headers on every response', async () => {
    const origin = new URL(s.url).origin;
    const responses = [
      await fetch(s.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ __typename }' }),
      }),
      await fetch(`${origin}/health`),
      await fetch(`${origin}/ready`),
      await fetch(`${origin}/files/nothing`),
      await fetch(`${origin}/nowhere`),
    ];
    for (const response of responses) {
      expect(response.headers.get('x-content-type-options'), response.url).toBe('nosniff');
      expect(response.headers.get('x-frame-options'), response.url).toBe('DENY');
      expect(response.headers.get('referrer-policy'), response.url).toBe('no-referrer');
      expect(response.headers.get('strict-transport-security'), response.url).toBe(
        production ? 'max-age=31536000; includeSubDomains' : null,
      );
    }
  });
});
