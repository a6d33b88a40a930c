import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import WebSocket from 'ws';
import { loadConfig, rateLimitDefaults, type Config, type RateLimitConfig } from '../src/config.ts';
import { eventually, startServer, uid, type TestServer } from './helpers/app.ts';
import { createChannel, createUser, errorCode, ok, registerOrg, send, type TestOrg, type TestUser } from './helpers/fixtures.ts';
import { collect } from './helpers/subscription.ts';
import { multipart, uploadFile } from './helpers/upload.ts';
import { rawSocket, wsClient, wsRequest } from './helpers/ws.ts';
import { graphql } from './generated/index.ts';

// Rate limits (issue 13 §1), on both databases (in memory here; the
// multiprocess and fault tests cover Redis across processes and its outage).

/**
 * A server's limits, with a Redis prefix of its own on PostgreSQL: limits by
 * address count 127.0.0.1 for every test server, so servers sharing a prefix
 * would share those counts.
 */
const limits = (change: (config: RateLimitConfig) => void): Pick<Config, 'rateLimits' | 'redisPrefix'> => {
  const config = structuredClone(rateLimitDefaults);
  change(config);
  return { rateLimits: config, redisPrefix: `${inject('redisPrefix')}${uid()}:` };
};

const LOGIN = graphql(`
  mutation RateLimitLogin($o: String!, $u: String!, $p: String!) {
    login(organization: $o, username: $u, password: $p) {
      token
    }
  }
`);

/** One HTTP request with its status and headers, as a client sees them. */
async function post(s: TestServer, query: string, variables: Record<string, unknown>, headers: Record<string, string> = {}) {
  const response = await fetch(s.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: unknown; errors?: { message: string; extensions: Record<string, unknown> }[] };
  return { status: response.status, retryAfter: response.headers.get('retry-after'), body };
}

const loginText = `mutation ($o: String!, $u: String!, $p: String!) { login(organization: $o, username: $u, password: $p) { token } }`;
const UPLOAD_TEXT = `mutation ($file: Upload!) { uploadFile(file: $file) { id } }`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('config', () => {
  it('reads RATE_LIMIT_* as points per period, 0 for none, and refuses nonsense', () => {
    const base = { JWT_SECRET: 'x'.repeat(16) };
    const config = loadConfig({ ...base, RATE_LIMIT_SEND_MESSAGE: '5/2m', RATE_LIMIT_REACTIONS: '0', RATE_LIMIT_WS_SUBSCRIBES: '3/s' });
    expect(config.rateLimits.writes.sendMessage).toEqual({ points: 5, seconds: 120 });
    expect(config.rateLimits.writes.reactions.points).toBe(0);
    expect(config.rateLimits.websocket.subscribes).toEqual({ points: 3, seconds: 1 });
    expect(config.rateLimits.enabled).toBe(true);
    expect(loadConfig({ ...base, RATE_LIMITS: 'off' }).rateLimits.enabled).toBe(false);
    expect(() => loadConfig({ ...base, RATE_LIMIT_EDITS: 'ten' })).toThrow(/RATE_LIMIT_EDITS must be like "30\/10s"/);
  });
});

describe('sign-in back-off', () => {
  let s: TestServer;
  let org: TestOrg;
  beforeAll(async () => {
    s = await startServer({
      ...limits((c) => {
        c.signIn = { freeFailures: 3, accountFreeFailures: 50, ipFailures: { points: 0, seconds: 3600 }, maxBackoffSeconds: 900 };
      }),
    });
    org = await registerOrg(s);
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('locks an account after its free failures, for a growing time, also against the right password', async () => {
    const user = await createUser(s, org);
    const wrong = { o: org.slug, u: user.username, p: 'wrong password' };
    for (let i = 0; i < 4; i++) expect(errorCode(await s.gql(LOGIN, wrong))).toBe('UNAUTHENTICATED');
    // The fourth failure locked the account for 1 s: even the right password waits.
    const locked = await post(s, loginText, { ...wrong, p: 'password123' });
    expect(locked.status).toBe(429);
    expect(locked.retryAfter).toBe('1');
    expect(locked.body.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED', limit: 'signIn' });
    expect(locked.body.errors?.[0]?.extensions.retryAfterMs).toBeGreaterThan(0);
    expect(locked.body.errors?.[0]?.extensions.retryAfterMs).toBeLessThanOrEqual(1000);
    expect(locked.body.errors?.[0]?.extensions).not.toHaveProperty('http');
    await sleep(1100);
    // The fifth failure doubles the wait.
    expect(errorCode(await s.gql(LOGIN, wrong))).toBe('UNAUTHENTICATED');
    const longer = await post(s, loginText, wrong);
    expect(longer.body.errors?.[0]?.extensions.retryAfterMs).toBeGreaterThan(1000);
    expect(longer.retryAfter).toBe('2');
    await sleep(2100);
    ok(await s.gql(LOGIN, { ...wrong, p: 'password123' }));
    // Success forgets the failures: three free ones again.
    for (let i = 0; i < 3; i++) expect(errorCode(await s.gql(LOGIN, wrong))).toBe('UNAUTHENTICATED');
    ok(await s.gql(LOGIN, { ...wrong, p: 'password123' }));
  });

  it('answers an unknown account exactly as a known one, so the lock reveals nothing', async () => {
    const known = await createUser(s, org);
    const answers = async (username: string) => {
      const seen: unknown[] = [];
      for (let i = 0; i < 5; i++) {
        const { status, body } = await post(s, loginText, { o: org.slug, u: username, p: 'wrong password' });
        const error = body.errors?.[0];
        seen.push([status, error?.message.replace(/\d+ s$/, 'N s'), error?.extensions.code]);
      }
      return seen;
    };
    const [forKnown, forUnknown] = await Promise.all([answers(known.username), answers(`nobody-${uid()}`)]);
    expect(forUnknown).toEqual(forKnown);
    expect(forKnown.at(-1)).toEqual([429, 'Too many failed sign-ins; retry in N s', 'RATE_LIMITED']);
  });

  it('backs off wrong current passwords in changePassword, so a stolen access token cannot guess the password', async () => {
    const user = await createUser(s, org);
    const change = (current: string) =>
      s.gql(`mutation ($c: String!) { changePassword(currentPassword: $c, newPassword: "a new password") }`, { c: current }, user.token);
    for (let i = 0; i < 4; i++) expect(errorCode(await change(`guess ${i}`))).toBe('BAD_USER_INPUT');
    const refused = await change('password123');
    expect(refused.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED', limit: 'signIn' });
    await sleep(1100);
    expect(ok(await change('password123')).changePassword).toBe(0);
  });

  it('counts an address’s failures across accounts (password spraying)', async () => {
    const spray = await startServer({
      ...limits((c) => {
        c.signIn.ipFailures = { points: 4, seconds: 3600 };
      }),
    });
    try {
      const sprayOrg = await registerOrg(spray);
      for (let i = 0; i < 4; i++) {
        expect(errorCode(await spray.gql(LOGIN, { o: sprayOrg.slug, u: `guess-${i}`, p: 'password123' }))).toBe('UNAUTHENTICATED');
      }
      // The owner's own, right password from that address now waits too.
      const refused = await post(spray, loginText, { o: sprayOrg.slug, u: 'owner', p: 'password123' });
      expect(refused.status).toBe(429);
      expect(Number(refused.retryAfter)).toBeGreaterThan(3000);
    } finally {
      await spray.stop();
    }
  });
});

describe('client address behind a proxy', () => {
  const tries = async (s: TestServer, org: TestOrg, forwardedFor: string) =>
    (await post(s, loginText, { o: org.slug, u: `guess-${uid()}`, p: 'x' }, { 'x-forwarded-for': forwardedFor })).body.errors?.[0]
      ?.extensions.code;
  const config = limits((c) => {
    c.signIn.ipFailures = { points: 2, seconds: 3600 };
  });

  it('ignores X-Forwarded-For unless TRUST_PROXY trusts the peer: a forged header does not escape the limit', async () => {
    const s = await startServer(config);
    try {
      const org = await registerOrg(s);
      expect(await tries(s, org, '203.0.113.1')).toBe('UNAUTHENTICATED');
      expect(await tries(s, org, '203.0.113.2')).toBe('UNAUTHENTICATED');
      expect(await tries(s, org, '203.0.113.3')).toBe('RATE_LIMITED');
    } finally {
      await s.stop();
    }
  });

  it('takes the client from X-Forwarded-For when the peer is a trusted proxy', async () => {
    const s = await startServer({ ...config, trustProxy: 'loopback' });
    try {
      const org = await registerOrg(s);
      expect(await tries(s, org, '203.0.113.1')).toBe('UNAUTHENTICATED');
      expect(await tries(s, org, '203.0.113.1')).toBe('UNAUTHENTICATED');
      expect(await tries(s, org, '203.0.113.1')).toBe('RATE_LIMITED');
      // Another client behind the same proxy has its own count.
      expect(await tries(s, org, '203.0.113.2')).toBe('UNAUTHENTICATED');
      // Only the hop the proxy appended counts: a client cannot pick its address by sending the header itself.
      expect(await tries(s, org, '203.0.113.1, 203.0.113.9')).toBe('UNAUTHENTICATED');
      expect(await tries(s, org, '198.51.100.7, 203.0.113.9')).toBe('UNAUTHENTICATED');
      expect(await tries(s, org, '198.51.100.8, 203.0.113.9')).toBe('RATE_LIMITED');
    } finally {
      await s.stop();
    }
  });
});

describe('write limits', () => {
  let s: TestServer;
  let org: TestOrg;
  let member: TestUser;
  let channelId: string;
  beforeAll(async () => {
    s = await startServer({
      metrics: { enabled: true, port: null },
      ...limits((c) => {
        c.writes.sendMessage = { points: 4, seconds: 60 };
        c.writes.mutations = { points: 8, seconds: 60 };
        c.writes.uploads = { points: 2, seconds: 60 };
      }),
    });
    org = await registerOrg(s);
    member = await createUser(s, org);
    channelId = await createChannel(s, org.owner.token, { memberIds: [member.id] });
  });
  afterAll(async () => {
    await s?.stop();
  });

  const sendText = `mutation ($input: SendMessageInput!) { sendMessage(input: $input) { id } }`;
  const messageCount = async () =>
    ok(
      await s.gql(
        graphql(`
          query RateLimitMessageCount($c: ID!) {
            channel(id: $c) {
              lastSeq
            }
          }
        `),
        { c: channelId },
        org.owner.token,
      ),
    ).channel.lastSeq;

  it('refuses a user’s sends past the limit with 429 and Retry-After, and refuses a mutation over it whole', async () => {
    const auth = { authorization: `Bearer ${member.token}` };
    for (let i = 0; i < 3; i++) await send(s, member.token, channelId, `m${i}`);
    const before = await messageCount();
    // One point left, two sends asked for: neither is done.
    const both = await post(
      s,
      `mutation ($c: ID!) { a: sendMessage(input: { channelId: $c, body: "a" }) { id } b: sendMessage(input: { channelId: $c, body: "b" }) { id } }`,
      { c: channelId },
      auth,
    );
    expect(both.status).toBe(429);
    expect(both.body.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED', limit: 'sendMessage' });
    expect(Number(both.retryAfter)).toBeGreaterThan(0);
    expect(Number(both.retryAfter)).toBeLessThanOrEqual(60);
    expect(await messageCount()).toBe(before);
    // The same request once more is refused too (the refused attempt counted).
    const again = await post(s, sendText, { input: { channelId, body: 'c' } }, auth);
    expect(again.body.errors?.[0]?.extensions.code).toBe('RATE_LIMITED');
    expect(await messageCount()).toBe(before);
    // Another user has a bucket of their own.
    await send(s, org.owner.token, channelId, 'owner speaks');
  });

  it('keeps other buckets apart: reactions and other mutations still work while sends are refused', async () => {
    const user = await createUser(s, org);
    const own = await createChannel(s, org.owner.token, { memberIds: [user.id] });
    const message = await send(s, org.owner.token, own, 'react to me');
    for (let i = 0; i < 4; i++) await send(s, user.token, own, `u${i}`);
    expect(errorCode(await s.gql(sendText, { input: { channelId: own, body: 'over' } }, user.token))).toBe('RATE_LIMITED');
    ok(await s.gql(`mutation ($m: ID!) { addReaction(messageId: $m, emoji: "👍") { id } }`, { m: message.id }, user.token));
    // The default bucket (8 here) covers everything without one of its own.
    const mute = `mutation ($c: ID!) { muteChannel(channelId: $c, until: null) { id } }`;
    for (let i = 0; i < 8; i++) expect(errorCode(await s.gql(mute, { c: own }, user.token))).toBeUndefined();
    expect(errorCode(await s.gql(mute, { c: own }, user.token))).toBe('RATE_LIMITED');
    // Queries are not writes.
    ok(await s.gql(`{ viewer { id } }`, {}, user.token));
  });

  it('refuses over graphql-ws the same way, without HTTP’s status hint in the error', async () => {
    const user = await createUser(s, org);
    const own = await createChannel(s, org.owner.token, { memberIds: [user.id] });
    const client = wsClient(s.url, user.token);
    try {
      for (let i = 0; i < 4; i++) ok(await wsRequest(client, sendText, { input: { channelId: own, body: `w${i}` } }));
      const refused = await wsRequest(client, sendText, { input: { channelId: own, body: 'over' } });
      expect(refused.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED', limit: 'sendMessage' });
      expect(refused.errors?.[0]?.extensions).not.toHaveProperty('http');
    } finally {
      await client.dispose();
    }
  });

  it('refuses an upload past the limit from its headers, before the file is read', async () => {
    const user = await createUser(s, org);
    const text = { name: 'notes.txt', bytes: new TextEncoder().encode('hello') };
    for (let i = 0; i < 2; i++) expect((await uploadFile(s.url, user.token, text)).status).toBe(200);
    const { status, headers, body } = await multipart(s.url, user.token, UPLOAD_TEXT, { file: null }, { 'variables.file': text });
    expect(status).toBe(429);
    expect(Number(headers.get('retry-after'))).toBeGreaterThan(0);
    expect(headers.get('connection')).toBe('close');
    expect(body.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED', limit: 'uploads' });
  });

  it('counts refusals in /metrics by limit', async () => {
    const text = await (await fetch(`http://127.0.0.1:${s.port}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('parley_rate_limited_total{limit="sendMessage"}'));
    expect(Number(line?.split(' ')[1])).toBeGreaterThanOrEqual(3);
    expect(text).toContain('parley_rate_limited_total{limit="mutations"} 1');
  });
});

describe('slow mode', () => {
  let s: TestServer;
  let org: TestOrg;
  let member: TestUser;
  let channelId: string;
  const UPDATE = graphql(`
    mutation RateLimitSlowMode($c: ID!, $seconds: Int) {
      updateChannel(input: { channelId: $c, slowModeSeconds: $seconds }) {
        slowModeSeconds
      }
    }
  `);
  beforeAll(async () => {
    // Slow mode is a channel's own setting: it holds with RATE_LIMITS off (the tests' default).
    s = await startServer();
    org = await registerOrg(s);
    member = await createUser(s, org);
    channelId = await createChannel(s, org.owner.token, { memberIds: [member.id] });
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('is set by those who manage the channel, within bounds, and logged as a channel change', async () => {
    expect(errorCode(await s.gql(UPDATE, { c: channelId, seconds: 5 }, member.token))).toBe('FORBIDDEN');
    expect(errorCode(await s.gql(UPDATE, { c: channelId, seconds: -1 }, org.owner.token))).toBe('BAD_USER_INPUT');
    expect(errorCode(await s.gql(UPDATE, { c: channelId, seconds: 86_401 }, org.owner.token))).toBe('BAD_USER_INPUT');
    expect(ok(await s.gql(UPDATE, { c: channelId, seconds: 2 }, org.owner.token)).updateChannel.slowModeSeconds).toBe(2);
    // Replayed from the log: the change is there for every member's client.
    const client = wsClient(s.url, member.token);
    try {
      const stream = collect(
        client,
        graphql(`
          subscription RateLimitSlowModeEvents($c: ID!) {
            channelEvents(channelId: $c, after: 0) {
              __typename
              ... on ChannelUpdatedEvent {
                changed
                slowModeSeconds
              }
            }
          }
        `),
        { c: channelId },
        (d) => d.channelEvents,
      );
      expect(await eventually(async () => stream.items.some((e) => e.__typename === 'ChannelUpdatedEvent'), 5000)).toBe(true);
      stream.unsubscribe();
      expect(stream.items.at(-1)).toEqual({ __typename: 'ChannelUpdatedEvent', changed: ['slowModeSeconds'], slowModeSeconds: 2 });
    } finally {
      await client.dispose();
    }
  });

  it('lets a member post once per interval; managers are exempt; a retried send gets its original', async () => {
    const first = await send(s, member.token, channelId, 'first', { clientMessageId: `slow-${uid()}` });
    const refused = await s.gql(
      `mutation ($c: ID!) { sendMessage(input: { channelId: $c, body: "too soon" }) { id } }`,
      { c: channelId },
      member.token,
    );
    expect(refused.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED', limit: 'slowMode' });
    expect(refused.errors?.[0]?.extensions?.retryAfterMs).toBeLessThanOrEqual(2000);
    expect(refused.errors?.[0]?.message).toMatch(/Slow mode: one message every 2 s/);
    // The network lost the answer to `first`; the client retries it.
    const retried = await send(s, member.token, channelId, 'first', { clientMessageId: first.clientMessageId });
    expect(retried.id).toBe(first.id);
    // The owner posts as often as they like.
    await send(s, org.owner.token, channelId, 'o1');
    await send(s, org.owner.token, channelId, 'o2');
    await sleep(2100);
    await send(s, member.token, channelId, 'second');
    // Off again: no wait.
    ok(await s.gql(UPDATE, { c: channelId, seconds: null }, org.owner.token));
    await send(s, member.token, channelId, 'third');
  });

  it('gives the turn back when the send fails for another reason', async () => {
    const newcomer = await createUser(s, org);
    ok(await s.gql(ADD_MEMBER, { c: channelId, u: [newcomer.id] }, org.owner.token));
    ok(await s.gql(UPDATE, { c: channelId, seconds: 60 }, org.owner.token));
    // A clientMessageId used in another channel: the send fails (CONFLICT) after the turn was taken.
    const elsewhere = await createChannel(s, org.owner.token, { memberIds: [newcomer.id] });
    const clientMessageId = `dup-${uid()}`;
    await send(s, newcomer.token, elsewhere, 'there', { clientMessageId });
    expect(errorCode(await s.gql(SEND_WITH_ID, { c: channelId, id: clientMessageId }, newcomer.token))).toBe('CONFLICT');
    await send(s, newcomer.token, channelId, 'my turn is still mine');
    expect(errorCode(await s.gql(SEND_WITH_ID, { c: channelId, id: `new-${uid()}` }, newcomer.token))).toBe('RATE_LIMITED');
    ok(await s.gql(UPDATE, { c: channelId, seconds: 0 }, org.owner.token));
  });
});

const SEND_WITH_ID = `mutation ($c: ID!, $id: String) { sendMessage(input: { channelId: $c, body: "x", clientMessageId: $id }) { id } }`;
const ADD_MEMBER = `mutation ($c: ID!, $u: [ID!]!) { addChannelMembers(channelId: $c, userIds: $u) { id } }`;

describe('websocket limits', () => {
  let s: TestServer;
  let org: TestOrg;
  beforeAll(async () => {
    s = await startServer({
      ...limits((c) => {
        c.websocket = {
          connections: { points: 4, seconds: 60 },
          initFailures: { points: 2, seconds: 60 },
          subscribes: { points: 3, seconds: 60 },
        };
      }),
    });
    org = await registerOrg(s);
  });
  afterAll(async () => {
    await s?.stop();
  });

  /** The HTTP status of an upgrade the server refused, or 101 when it accepted (then closed). */
  const upgrade = (): Promise<{ status: number; retryAfter?: string }> =>
    new Promise((resolve) => {
      const ws = new WebSocket(s.url.replace(/^http/, 'ws'), 'graphql-transport-ws');
      ws.once('open', () => {
        ws.close();
        resolve({ status: 101 });
      });
      ws.once('unexpected-response', (_req, res) => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] }));
      ws.on('error', () => {});
    });

  it('refuses operations started too fast on one socket, then connections after refused inits, then too many connections', async () => {
    // Operations per socket: three, then RATE_LIMITED for the fourth.
    const raw = await rawSocket(s.url);
    raw.send({ type: 'connection_init', payload: { authToken: org.owner.token } });
    await raw.next((m) => m.type === 'connection_ack');
    for (const id of ['1', '2', '3']) {
      raw.send({ type: 'subscribe', id, payload: { query: '{ viewer { id } }' } });
      await raw.next((m) => m.type === 'complete' && m.id === id);
    }
    raw.send({ type: 'subscribe', id: '4', payload: { query: '{ viewer { id } }' } });
    const refused = await raw.next<{ extensions: Record<string, unknown> }[]>((m) => m.id === '4');
    expect(refused.type).toBe('error');
    expect(refused.payload[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED', limit: 'wsSubscribes' });
    raw.ws.close();

    // Two refused connection_inits (a bad token): then the address's next connection is refused at the upgrade.
    for (let i = 0; i < 2; i++) {
      const bad = await rawSocket(s.url);
      bad.send({ type: 'connection_init', payload: { authToken: 'not-a-token' } });
      expect((await bad.closed).code).toBe(4403);
    }
    const afterFailures = await upgrade();
    expect(afterFailures.status).toBe(429);
    expect(Number(afterFailures.retryAfter)).toBeGreaterThan(0);
  });

  it('refuses connection attempts past the limit per address with 429 at the upgrade', async () => {
    const other = await startServer({
      ...limits((c) => {
        c.websocket.connections = { points: 2, seconds: 60 };
      }),
    });
    try {
      const open: WebSocket[] = [];
      const attempt = () =>
        new Promise<number>((resolve) => {
          const ws = new WebSocket(other.url.replace(/^http/, 'ws'), 'graphql-transport-ws');
          ws.once('open', () => {
            open.push(ws);
            resolve(101);
          });
          ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
          ws.on('error', () => {});
        });
      expect([await attempt(), await attempt(), await attempt()]).toEqual([101, 101, 429]);
      for (const ws of open) ws.close();
    } finally {
      await other.stop();
    }
  });
});
