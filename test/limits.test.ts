import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type GqlResult, type TestServer } from './helpers/app.ts';
import { errorCode, registerOrg } from './helpers/fixtures.ts';
import { graphql } from './generated/index.ts';

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

  it('counts aliases of __typename like any other', async () => {
    const aliases = Array.from({ length: 500 }, (_, i) => `t${i}: __typename`).join(' ');
    const result = await s.gql(`{ ${aliases} }`, {}, token);
    expect(errorCode(result)).toBe('BAD_USER_INPUT');
    expect(result.errors?.[0]?.message).toMatch(/Aliases limit/);
    expect(
      (
        await s.gql(
          graphql(`
            query LimitsTwoAliases {
              a: __typename
              b: __typename
            }
          `),
          {},
          token,
        )
      ).data,
    ).toEqual({ a: 'Query', b: 'Query' });
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
      graphql(`
        query LimitsChannel($c: ID!) {
          channel(id: $c) {
            messages(first: 50) {
              edges {
                node {
                  id
                  body
                  sender {
                    displayName
                  }
                  readCount
                  readBy(first: 5) {
                    edges {
                      node {
                        user {
                          displayName
                        }
                      }
                    }
                  }
                }
              }
            }
          }
        }
      `),
      { c: 'Q2hhbm5lbDowMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwMDA=' },
      token,
    );
    // Passes the limits and runs: the channel does not exist.
    expect(result.errors?.[0]?.message).toBe('Channel not found');
    expect(errorCode(result)).toBe('NOT_FOUND');
  });
});

describe('request body limit (HTTP_MAX_BODY_BYTES)', () => {
  let small: TestServer;
  beforeAll(async () => {
    small = await startServer({ httpMaxBodyBytes: 2000 });
  });
  afterAll(async () => {
    await small?.stop();
  });

  /** A raw HTTP request, so the test controls the body's framing. */
  function post(body: string, headers: Record<string, string>): Promise<{ status: number; json: GqlResult<unknown> }> {
    return new Promise((resolve, reject) => {
      const req = request(small.url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(text) }));
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  const document = (padding: number) => JSON.stringify({ query: `{ __typename }${' '.repeat(padding)}` });

  it('answers a body within the limit', async () => {
    const body = document(1500);
    const { status, json } = await post(body, { 'content-length': String(Buffer.byteLength(body)) });
    expect(status).toBe(200);
    expect(json).toEqual({ data: { __typename: 'Query' } });
  });

  it('refuses a larger body by its Content-Length with 413 and BAD_USER_INPUT', async () => {
    const body = document(2500);
    const { status, json } = await post(body, { 'content-length': String(Buffer.byteLength(body)) });
    expect(status).toBe(413);
    expect(json.errors![0]!.extensions!.code).toBe('BAD_USER_INPUT');
    expect(json.errors![0]!.message).toMatch(/at most 2000 bytes/);
  });

  it('refuses a chunked body, whose size nothing announces, with 411', async () => {
    const { status, json } = await post(document(10), { 'transfer-encoding': 'chunked' });
    expect(status).toBe(411);
    expect(json.errors![0]!.extensions!.code).toBe('BAD_USER_INPUT');
  });
});
