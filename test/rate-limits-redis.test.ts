import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { rateLimitDefaults } from '../src/config.ts';
import { eventually, startServer, uid, type TestServer } from './helpers/app.ts';
import { createChannel, createUser, errorCode, ok, registerOrg, send, type TestOrg } from './helpers/fixtures.ts';
import { startTestServerProcess, type ServerProcessEndpoint } from './helpers/process.ts';
import { throwawayRedis, type ThrowawayRedis } from './helpers/redis-server.ts';
import { graphql } from './generated/index.ts';

// Rate limits kept in Redis (issue 13 §1): they hold across server processes,
// and a Redis outage falls back to per-process limits in memory (neither open
// nor closed), back in Redis once it returns. Runs once, on PostgreSQL.

const LOGIN = graphql(`
  mutation RateLimitRedisLogin($o: String!, $u: String!, $p: String!) {
    login(organization: $o, username: $u, password: $p) {
      token
    }
  }
`);
const SEND_TEXT = `mutation ($c: ID!) { sendMessage(input: { channelId: $c, body: "over" }) { id } }`;

describe('two server processes on one Redis', () => {
  let a: ServerProcessEndpoint;
  let b: ServerProcessEndpoint;
  beforeAll(async () => {
    const env = {
      RATE_LIMITS: 'on',
      REDIS_PREFIX: `${inject('redisPrefix')}${uid()}:`,
      RATE_LIMIT_SEND_MESSAGE: '4/1m',
      RATE_LIMIT_SIGN_IN_FREE_FAILURES: '2',
    };
    [a, b] = await Promise.all([startTestServerProcess(env), startTestServerProcess(env)]);
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it('counts a user’s sends on both together', async () => {
    const org = await registerOrg(a);
    const member = await createUser(a, org);
    const channelId = await createChannel(a, org.owner.token, { memberIds: [member.id] });
    await send(a, member.token, channelId, '1');
    await send(b, member.token, channelId, '2');
    await send(a, member.token, channelId, '3');
    await send(b, member.token, channelId, '4');
    const refused = await a.gql(SEND_TEXT, { c: channelId }, member.token);
    expect(refused.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED', limit: 'sendMessage' });
    expect(errorCode(await b.gql(SEND_TEXT, { c: channelId }, member.token))).toBe('RATE_LIMITED');
  });

  it('holds a sign-in lock made on one process on the other', async () => {
    const org = await registerOrg(a);
    const user = await createUser(a, org);
    const wrong = { o: org.slug, u: user.username, p: 'wrong password' };
    expect(errorCode(await a.gql(LOGIN, wrong))).toBe('UNAUTHENTICATED');
    expect(errorCode(await b.gql(LOGIN, wrong))).toBe('UNAUTHENTICATED');
    expect(errorCode(await a.gql(LOGIN, wrong))).toBe('UNAUTHENTICATED');
    // Locked through a; b refuses the right password.
    expect(errorCode(await b.gql(LOGIN, { ...wrong, p: 'password123' }))).toBe('RATE_LIMITED');
  });
});

describe('a Redis outage', () => {
  let redis: ThrowawayRedis;
  let s: TestServer;
  let org: TestOrg;
  beforeAll(async () => {
    redis = await throwawayRedis();
    const rateLimits = structuredClone(rateLimitDefaults);
    rateLimits.writes.sendMessage = { points: 3, seconds: 60 };
    rateLimits.signIn.freeFailures = 2;
    s = await startServer({ redisUrl: redis.url, rateLimits });
    org = await registerOrg(s);
  });
  afterAll(async () => {
    await s?.stop();
    await redis?.stop();
  });

  const keys = async () => {
    const client = new Redis(redis.url);
    try {
      return await client.keys('*rl:*');
    } finally {
      client.disconnect();
    }
  };

  it('keeps limiting in memory while Redis is down, and in Redis again once it is back', async () => {
    const member = await createUser(s, org);
    const channelId = await createChannel(s, org.owner.token, { memberIds: [member.id] });
    await send(s, member.token, channelId, 'before');
    expect((await keys()).some((key) => key.includes('rl:send:'))).toBe(true);

    await redis.stop();
    try {
      // Sends still work (the database has them), and are still limited: three in memory, then refused.
      const other = await createUser(s, org);
      ok(
        await s.gql(
          graphql(`
            mutation RateLimitRedisAdd($c: ID!, $u: [ID!]!) {
              addChannelMembers(channelId: $c, userIds: $u) {
                id
              }
            }
          `),
          { c: channelId, u: [other.id] },
          org.owner.token,
        ),
      );
      for (let i = 0; i < 3; i++) await send(s, other.token, channelId, `down ${i}`);
      expect(errorCode(await s.gql(SEND_TEXT, { c: channelId }, other.token))).toBe('RATE_LIMITED');
      // A sign-in lock is not lifted by the outage.
      const wrong = { o: org.slug, u: other.username, p: 'wrong password' };
      for (let i = 0; i < 3; i++) expect(errorCode(await s.gql(LOGIN, wrong))).toBe('UNAUTHENTICATED');
      expect(errorCode(await s.gql(LOGIN, { ...wrong, p: 'password123' }))).toBe('RATE_LIMITED');
    } finally {
      await redis.start();
    }

    // Back: counts go to Redis again (a restarted Redis kept nothing).
    const third = await createUser(s, org);
    const own = await createChannel(s, org.owner.token, { memberIds: [third.id] });
    expect(
      await eventually(async () => {
        await s.gql(SEND_TEXT, { c: own }, third.token);
        return (await keys()).some((key) => key.includes('rl:send:'));
      }, 10_000),
    ).toBe(true);
  });
});
