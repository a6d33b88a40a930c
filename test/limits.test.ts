import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers/app.ts';
import { errorCode, registerOrg } from './helpers/fixtures.ts';

let s: TestServer;
let token: string;
beforeAll(async () => {
  s = await startServer();
  token = (await registerOrg(s)).owner.token;
});
afterAll(async () => {
  await s?.stop();
});

describe('query limits', () => {
  it('rejects too many aliases with BAD_USER_INPUT before running anything', async () => {
    const before = s.app.queryCount();
    const aliases = Array.from({ length: 30 }, (_, i) => `a${i}: viewer { id }`).join(' ');
    const result = await s.gql(`{ ${aliases} }`, {}, token);
    expect(errorCode(result)).toBe('BAD_USER_INPUT');
    expect(result.errors?.[0]?.message).toMatch(/Aliases limit/);
    expect(s.app.queryCount()).toBe(before);
  });

  it('rejects documents nested deeper than the limit', async () => {
    let selection = 'id';
    for (let i = 0; i < 8; i++) selection = `channel { members(first: 1) { edges { node { ${selection} } } } }`;
    const result = await s.gql(`{ viewer { id } channels(first: 1) { edges { node { ${selection} } } } }`, {}, token);
    expect(errorCode(result)).toBe('BAD_USER_INPUT');
    expect(result.errors?.[0]?.message).toMatch(/depth/i);
  });

  it('rejects oversized documents', async () => {
    const fields = Array.from({ length: 2100 }, () => '__typename').join(' ');
    const result = await s.gql(`{ ${fields} }`, {}, token);
    // The token limit is enforced by the parser, so Yoga reports a parse failure.
    expect(errorCode(result)).toBe('GRAPHQL_PARSE_FAILED');
    expect(result.errors?.[0]?.message).toMatch(/Token limit/i);
  });

  it('codes malformed documents and unknown fields', async () => {
    expect(errorCode(await s.gql(`{ viewer { id `, {}, token))).toBe('GRAPHQL_PARSE_FAILED');
    expect(errorCode(await s.gql(`{ nope }`, {}, token))).toBe('GRAPHQL_VALIDATION_FAILED');
  });
});

describe('query limits allow real screens', () => {
  it('accepts a history screen: 50 messages with senders and five readers each', async () => {
    const result = await s.gql(
      `query($c: ID!) { channel(id: $c) { messages(first: 50) { edges { node { id body sender { displayName } readCount readBy(first: 5) { edges { node { user { displayName } } } } } } } } }`,
      { c: 'Q2hhbm5lbDowMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwMDA=' },
      token,
    );
    // Passes the limits and runs: the channel does not exist.
    expect(result.errors?.[0]?.message).toBe('Channel not found');
    expect(errorCode(result)).toBe('NOT_FOUND');
  });
});
