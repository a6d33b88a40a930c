import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, type App } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { migrate } from '../src/db/migrate.ts';
import { createReadiness } from '../src/ops/readiness.ts';
import { createPubSub } from '../src/bus/pubsub.ts';
import { createPool } from '../src/db/client.ts';
import { eventually, gql, onEmbedded, startServer, type TestServer } from './helpers/app.ts';
import { createChannel, errorCode, registerOrg, send, type TestOrg } from './helpers/fixtures.ts';
import { throwawayPostgres, type ThrowawayPostgres } from './helpers/postgres-server.ts';
import { freePort, throwawayRedis, type ThrowawayRedis } from './helpers/redis-server.ts';
import { collect } from './helpers/subscription.ts';
import { liveSocket, wsClient, wsRequest } from './helpers/ws.ts';
import { graphql } from './generated/index.ts';
import type { ReadinessReport } from '../src/ops/readiness.ts';

// The metrics count operations by name (`anonymous` without one), so the
// anonymous documents here stay plain strings, untyped: naming them, as
// codegen needs, would change what the tests count.

const base = (s: { port: number }) => `http://127.0.0.1:${s.port}`;

async function ready(s: { port: number }): Promise<{ status: number; body: ReadinessReport['body'] }> {
  const response = await fetch(`${base(s)}/ready`);
  return { status: response.status, body: (await response.json()) as ReadinessReport['body'] };
}

/** The value of one sample of `/metrics` text, e.g. `metric('x_total', { code: 'A' })`; undefined when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found: Record<string, string> = {};
    for (const [, key, value] of (match[3] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) found[key!] = value!;
    if (Object.entries(labels).every(([key, value]) => found[key] === value)) return Number(match[4]);
  }
  return undefined;
}

async function scrape(url: string): Promise<string> {
  const response = await fetch(url);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return response.text();
}

describe('a healthy app', () => {
  let s: TestServer;
  let org: TestOrg;
  const metricsText = () => scrape(`${base(s)}/metrics`);
  beforeAll(async () => {
    s = await startServer();
    org = await registerOrg(s);
  });
  afterAll(() => s?.stop());

  it('answers /health', async () => {
    const response = await fetch(`${base(s)}/health`);
    expect(response.status).toBe(200);
  });

  it('is ready: database, migrations, and Redis when it has one', async () => {
    const { status, body } = await ready(s);
    expect(status).toBe(200);
    expect(body).toEqual({
      status: 'ready',
      checks: { database: 'up', migrations: 'up', redis: onEmbedded ? 'not configured' : 'up', files: 'up' },
    });
  });

  it('counts operations by name, type and outcome, with their duration', async () => {
    const query = graphql(`
      query OpsChannels {
        channels(first: 1) {
          edges {
            node {
              id
            }
          }
        }
      }
    `);
    for (let i = 0; i < 3; i++) expect((await s.gql(query, {}, org.owner.token)).errors).toBeUndefined();
    const failed = await s.gql(query);
    expect(errorCode(failed)).toBe('UNAUTHENTICATED');

    const text = await metricsText();
    const labels = { operation_name: 'OpsChannels', operation_type: 'query' };
    expect(sample(text, 'parley_graphql_operations_total', { ...labels, outcome: 'success' })).toBe(3);
    expect(sample(text, 'parley_graphql_operations_total', { ...labels, outcome: 'error' })).toBe(1);
    expect(sample(text, 'parley_graphql_operation_duration_seconds_count', { ...labels, outcome: 'success' })).toBe(3);
    expect(sample(text, 'parley_graphql_operation_duration_seconds_sum', { ...labels, outcome: 'success' })).toBeGreaterThan(0);
  });

  it('counts errors by extensions.code', async () => {
    const before = await metricsText();
    const count = (text: string, code: string) => sample(text, 'parley_graphql_errors_total', { code }) ?? 0;
    // Twice: the second is answered from Yoga's validation cache.
    expect(errorCode(await s.gql(`{ noSuchField }`))).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(errorCode(await s.gql(`{ noSuchField }`))).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(errorCode(await s.gql(`{ channels(`))).toBe('GRAPHQL_PARSE_FAILED');
    expect(errorCode(await s.gql(`{ channels(first: 1) { edges { node { id } } } }`))).toBe('UNAUTHENTICATED');
    expect(errorCode(await s.gql(`{ channels(first: 1) { edges { node { id } } } }`))).toBe('UNAUTHENTICATED');
    const after = await metricsText();
    expect(count(after, 'GRAPHQL_VALIDATION_FAILED') - count(before, 'GRAPHQL_VALIDATION_FAILED')).toBe(2);
    expect(count(after, 'GRAPHQL_PARSE_FAILED') - count(before, 'GRAPHQL_PARSE_FAILED')).toBe(1);
    expect(count(after, 'UNAUTHENTICATED') - count(before, 'UNAUTHENTICATED')).toBe(2);
  });

  it('counts open sockets, active subscriptions and live deliveries', async () => {
    const channelId = await createChannel(s, org.owner.token);
    const initial = await metricsText();
    expect(sample(initial, 'parley_websocket_open_sockets')).toBe(0);
    expect(sample(initial, 'parley_graphql_active_subscriptions')).toBe(0);
    const delivered = sample(initial, 'parley_live_deliveries_total')!;

    const client = wsClient(s.url, org.owner.token, { keepOpen: true });
    try {
      // A query first: the socket is open and acknowledged once it answers.
      expect((await wsRequest(client, `{ channels(first: 1) { edges { node { id } } } }`)).errors).toBeUndefined();
      const stream = collect(
        client,
        `subscription($c: ID!) { channelEvents(channelId: $c) { seq } }`,
        { c: channelId },
        (d) => d.channelEvents.seq,
      );
      expect(await eventually(async () => sample(await metricsText(), 'parley_graphql_active_subscriptions') === 1, 5000)).toBe(true);
      const open = await metricsText();
      expect(sample(open, 'parley_websocket_open_sockets')).toBe(1);
      expect(
        sample(open, 'parley_graphql_operations_total', {
          operation_name: 'anonymous',
          operation_type: 'subscription',
          outcome: 'success',
        }),
      ).toBe(1);

      await send(s, org.owner.token, channelId, 'counted');
      await stream.waitFor(1);
      expect(sample(await metricsText(), 'parley_live_deliveries_total')).toBe(delivered + 1);

      stream.unsubscribe();
      expect(await eventually(async () => sample(await metricsText(), 'parley_graphql_active_subscriptions') === 0, 5000)).toBe(true);
    } finally {
      await client.dispose();
    }
    expect(await eventually(async () => sample(await metricsText(), 'parley_websocket_open_sockets') === 0, 5000)).toBe(true);
  });

  it('reports the database pool: connections lent out and requests waiting', async () => {
    // Background work (presence, a socket's close from the test before) may hold it for a moment.
    expect(await eventually(async () => sample(await metricsText(), 'parley_db_pool_in_use') === 0, 5000)).toBe(true);
    const idle = await metricsText();
    expect(sample(idle, 'parley_db_pool_waiting')).toBe(0);
    expect(sample(idle, 'parley_db_pool_connections')).toBeGreaterThanOrEqual(1);
    // A transaction holds its connection until it ends.
    await s.app.services.prisma.$transaction(async (tx) => {
      await tx.$queryRaw`SELECT 1`;
      const busy = await metricsText();
      expect(sample(busy, 'parley_db_pool_in_use')).toBe(1);
      expect(sample(busy, 'parley_db_pool_waiting')).toBe(0);
    });
    expect(await eventually(async () => sample(await metricsText(), 'parley_db_pool_in_use') === 0, 5000)).toBe(true);
  });

  it('exports process metrics and event-loop lag', async () => {
    const text = await metricsText();
    expect(sample(text, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(sample(text, 'nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0);
    expect(sample(text, 'parley_channel_hub_gap_fills_total')).toBe(0);
    expect(sample(text, 'parley_pubsub_reconnects_total')).toBe(0);
  });
});

describe('metrics configuration', () => {
  it('METRICS=off serves no /metrics', async () => {
    expect(loadConfig({ METRICS: 'off', JWT_SECRET: 'x'.repeat(16) }).metrics).toEqual({ enabled: false, port: null });
    const s = await startServer({ metrics: { enabled: false, port: null } });
    try {
      expect((await fetch(`${base(s)}/metrics`)).status).toBe(404);
      expect((await ready(s)).status).toBe(200);
    } finally {
      await s.stop();
    }
  });

  it('METRICS_PORT serves /metrics on that port only', async () => {
    const port = await freePort();
    expect(loadConfig({ METRICS_PORT: String(port), JWT_SECRET: 'x'.repeat(16) }).metrics).toEqual({ enabled: true, port });
    expect(() => loadConfig({ METRICS: 'maybe', JWT_SECRET: 'x'.repeat(16) })).toThrow(/METRICS/);
    const s = await startServer({ metrics: { enabled: true, port } });
    try {
      expect((await fetch(`${base(s)}/metrics`)).status).toBe(404);
      await s.gql(
        graphql(`
          query OnTheSide {
            __typename
          }
        `),
      );
      const text = await scrape(`http://127.0.0.1:${port}/metrics`);
      expect(sample(text, 'parley_graphql_operations_total', { operation_name: 'OnTheSide', outcome: 'success' })).toBe(1);
      expect((await fetch(`http://127.0.0.1:${port}/ready`)).status).toBe(404);
    } finally {
      await s.stop();
    }
    // Closed with the app.
    await expect(fetch(`http://127.0.0.1:${port}/metrics`)).rejects.toThrow();
  });
});

describe('readiness', () => {
  it('answers 200 in embedded mode (no DATABASE_URL, no REDIS_URL)', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'parley-ops-'));
    const config = loadConfig({ LOG_LEVEL: 'silent' }, { databaseUrl: null, redisUrl: null, dataDir, host: '127.0.0.1', graphiql: false });
    const app = await buildApp(config);
    try {
      const port = await app.start(0);
      expect(await ready({ port })).toEqual({
        status: 200,
        body: { status: 'ready', checks: { database: 'up', migrations: 'up', redis: 'not configured', files: 'up' } },
      });
    } finally {
      await app.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);

  it('names pending migrations', async () => {
    const s = await startServer();
    const pool = createPool(s.app.databaseUrl, { poolSize: 1 });
    const pubsub = createPubSub(null, '');
    try {
      const readiness = createReadiness({ pool, pubsub, migrations: ['99990101000000_not_applied'] });
      expect(await readiness.check(false)).toEqual({
        ready: false,
        body: {
          status: 'unavailable',
          checks: { database: 'up', migrations: 'down: 1 pending (99990101000000_not_applied)', redis: 'not configured' },
        },
      });
      expect((await readiness.check(true)).body).toEqual({ status: 'unavailable', checks: { server: 'down: shutting down' } });
    } finally {
      await pool.end();
      await s.stop();
    }
  });

  it('answers 503 while the server shuts down', async () => {
    const s = await startServer();
    // A keep-alive connection stays usable while stop() waits for it.
    const { request } = await import('node:http');
    const agent = new (await import('node:http')).Agent({ keepAlive: true, maxSockets: 1 });
    const get = () =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        request(`${base(s)}/ready`, { agent }, (res) => {
          let body = '';
          res.on('data', (chunk) => (body += chunk));
          res.on('end', () => resolve({ status: res.statusCode!, body }));
        })
          .on('error', reject)
          .end();
      });
    expect(await eventually(async () => (await get()).status === 200, 5000)).toBe(true);
    const stopped = s.stop();
    const during = await get().catch(() => null);
    await stopped;
    agent.destroy();
    // stop() closes idle connections at once; when it won the race there was no request to answer.
    if (during)
      expect(during).toEqual({ status: 503, body: JSON.stringify({ status: 'unavailable', checks: { server: 'down: shutting down' } }) });
  });
});

describe.skipIf(onEmbedded)('outages', () => {
  let redis: ThrowawayRedis;
  beforeAll(async () => {
    redis = await throwawayRedis();
  });
  afterAll(() => redis?.stop());

  it('Redis down: /ready answers 503 naming redis, and 200 again once it is back', async () => {
    const s = await startServer({ redisUrl: redis.url });
    try {
      // Not ready until both Redis connections are.
      expect(await eventually(async () => (await ready(s)).status === 200, 5000)).toBe(true);
      const org = await registerOrg(s);
      await redis.stop();
      // What needs Redis says so, with a code the client retries on.
      const presence = await s.gql(`mutation { setPresence(status: BUSY) { status } }`, {}, org.owner.token);
      expect(presence.errors?.[0]?.extensions).toEqual({ code: 'SERVICE_UNAVAILABLE', service: 'redis' });
      let last: Awaited<ReturnType<typeof ready>> | undefined;
      expect(await eventually(async () => (last = await ready(s)).status === 503, 5000)).toBe(true);
      expect(last!.body.status).toBe('unavailable');
      expect(last!.body.checks.redis).toMatch(/^down: /);
      expect(last!.body.checks.database).toBe('up');
      // Data still flows: PostgreSQL holds it all.
      expect(errorCode(await s.gql(`{ channels(first: 1) { edges { node { id } } } }`))).toBe('UNAUTHENTICATED');
      await redis.start();
      expect(await eventually(async () => (last = await ready(s)).status === 200, 10_000)).toBe(true);
      expect(last!.body.checks.redis).toBe('up');
      const text = await scrape(`${base(s)}/metrics`);
      expect(sample(text, 'parley_pubsub_reconnects_total')).toBeGreaterThanOrEqual(2);
    } finally {
      await s.stop();
    }
  }, 60_000);

  describe.skipIf(!existsSync('/usr/lib/postgresql'))('PostgreSQL down', () => {
    let postgres: ThrowawayPostgres;
    let app: App;
    let port: number;
    const lines: { level: number; msg: string; [key: string]: unknown }[] = [];
    beforeAll(async () => {
      postgres = await throwawayPostgres();
      await migrate(postgres.url);
      const sink = new Writable({
        write(chunk, _encoding, done) {
          for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
          done();
        },
      });
      const config = loadConfig(
        { PASSWORD_HASH_COST: '10' },
        {
          databaseUrl: postgres.url,
          redisUrl: null,
          host: '127.0.0.1',
          jwtSecret: 'test-secret-0123456789abcdef',
          graphiql: false,
          viewerCacheMs: 0,
        },
      );
      app = await buildApp(config, { log: pino({ level: 'debug' }, sink) });
      port = await app.start(0);
    }, 120_000);
    afterAll(async () => {
      await app?.stop();
      await postgres?.destroy();
    });

    it('/ready answers 503 naming the database, and GraphQL answers SERVICE_UNAVAILABLE', async () => {
      const url = `http://127.0.0.1:${port}/graphql`;
      const registered = await gql(
        url,
        graphql(`
          mutation OpsRegisterOrganization {
            registerOrganization(input: { name: "Down", slug: "down", username: "ada", displayName: "Ada", password: "password123" }) {
              token
            }
          }
        `),
      );
      const token = registered.data!.registerOrganization.token;
      expect((await ready({ port })).status).toBe(200);
      const open = liveSocket(url, { authToken: token });
      expect(await open.acked).toBe(true);

      await postgres.stop('immediate');
      const { status, body } = await ready({ port });
      expect(status).toBe(503);
      expect(body.status).toBe('unavailable');
      expect(body.checks.database).toMatch(/^down: .*ECONNREFUSED/);
      expect(body.checks.redis).toBe('not configured');

      const from = lines.length;
      // Through a resolver, and through the context (the token's user is looked up).
      const login = await gql(url, `mutation { login(organization: "down", username: "ada", password: "password123") { token } }`);
      const channels = await gql(url, `{ channels(first: 1) { edges { node { id } } } }`, {}, token);
      for (const result of [login, channels]) {
        expect(result.errors).toHaveLength(1);
        expect(result.errors![0]!.message).toBe('The database is unavailable; retry shortly');
        expect(result.errors![0]!.extensions).toEqual({ code: 'SERVICE_UNAVAILABLE', service: 'database' });
      }
      const logged = lines.slice(from);
      // Once at warn, without a stack; nothing at error.
      expect(logged.filter((l) => l.level >= 50)).toEqual([]);
      const warned = logged.filter((l) => l.level === 40);
      expect(warned).toHaveLength(1);
      expect(warned[0]!.msg).toMatch(/^database unavailable/);
      expect(JSON.stringify(warned[0])).not.toMatch(/stack/);

      const text = await scrape(`http://127.0.0.1:${port}/metrics`);
      expect(sample(text, 'parley_graphql_errors_total', { code: 'SERVICE_UNAVAILABLE' })).toBe(2);

      // Over graphql-ws: an open socket's operation fails alone, coded, and the
      // socket stays; a new socket is closed with 1013, which clients retry
      // (graphql-ws' own 4500 they would not).
      // Refused before execution, so as graphql-ws' `error` message (like RATE_LIMITED).
      const refusal = await wsRequest(open.client, `{ viewer { id } }`).then(
        () => null,
        (errors: unknown) => errors,
      );
      expect(refusal).toEqual([expect.objectContaining({ extensions: { code: 'SERVICE_UNAVAILABLE', service: 'database' } })]);
      const refused = liveSocket(url, { authToken: token });
      expect(await refused.acked).toBe(false);
      expect(await refused.closed).toEqual({ code: 1013, reason: 'The database is unavailable; retry shortly' });
      expect(lines.slice(from).filter((l) => l.level >= 50)).toEqual([]);
      await open.client.dispose();
    }, 60_000);

    it('a channel whose first live subscriber met the outage is followed again once the database is back', async () => {
      await postgres.stop('immediate');
      const channelId = '00000000-0000-4000-8000-000000000001';
      await expect(app.services.hub.subscribe(channelId, () => {})).rejects.toThrow();
      await postgres.start();
      // The failed setup was not kept for the next subscriber to await.
      const followed = await app.services.hub.subscribe(channelId, () => {});
      expect(followed.from).toBe(0);
      followed.unsubscribe();
    }, 60_000);
  });
});
