import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import pino from 'pino';
import { inject } from 'vitest';
import { buildApp, type App } from '../../src/app.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import { queryText, type Operation } from './operation.ts';

/** Sends one GraphQL request over HTTP the way a client does. */
export interface GqlSender {
  <R, V>(query: TypedDocumentNode<R, V>, variables?: V, token?: string | null): Promise<GqlResult<R>>;
  /** Untyped: for documents that are invalid on purpose or built at run time. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- an untyped document's result is whatever the test says it is
  <T = any>(query: string, variables?: Record<string, unknown>, token?: string | null): Promise<GqlResult<T>>;
}

/** A Parley server as clients see it: its URL, over HTTP and WebSocket. */
export interface GqlEndpoint {
  url: string;
  port: number;
  gql: GqlSender;
}

export interface TestServer extends GqlEndpoint {
  app: App;
  /** Where an embedded server keeps its database (unused on PostgreSQL). */
  dataDir: string;
  stop(): Promise<void>;
}

export interface GqlError {
  message: string;
  path?: (string | number)[];
  extensions?: Record<string, unknown>;
}

export interface GqlResult<T> {
  data?: T;
  errors?: GqlError[];
}

/**
 * The lane this test file runs in: `postgres` (the run's PostgreSQL database
 * and Redis prefix) or `embedded` (what `npm start` runs: a PGlite database of
 * its own per server and in-process pub/sub). vitest.config.ts names the files
 * each lane runs.
 */
export const lane = inject('lane');
export const onEmbedded = lane === 'embedded';

/** Starts a Parley app on port 0 in this file's lane. */
export async function startServer(overrides: Partial<Config> = {}): Promise<TestServer> {
  // A data directory passed in belongs to the test (a restart on the same data); one made here goes with the server.
  const ownDataDir = overrides.dataDir === undefined;
  const dataDir = overrides.dataDir ?? mkdtempSync(join(tmpdir(), 'parley-test-'));
  if (onEmbedded && !existsSync(join(dataDir, 'pgdata')))
    cpSync(join(inject('embeddedTemplate'), 'pgdata'), join(dataDir, 'pgdata'), { recursive: true });
  const config = loadConfig(
    { LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent', PASSWORD_HASH_COST: '10', RATE_LIMITS: 'off' },
    {
      ...(onEmbedded
        ? { databaseUrl: null, redisUrl: null }
        : { databaseUrl: inject('databaseUrl'), redisUrl: inject('redisUrl'), redisPrefix: inject('redisPrefix') }),
      dataDir,
      jwtSecret: 'test-secret-0123456789abcdef',
      host: '127.0.0.1',
      graphiql: false,
      // Test files share one database: only the retention tests prune it.
      channelLogRetentionDays: 0,
      ...overrides,
    },
  );
  const app = await buildApp(config, { log: pino({ level: config.logLevel }), countQueries: true });
  const port = await app.start(0);
  const url = `http://127.0.0.1:${port}/graphql`;
  return {
    app,
    dataDir,
    url,
    port,
    gql: senderFor(url),
    stop: async () => {
      await app.stop();
      if (ownDataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A GqlSender for the server at `url`. */
export const senderFor = (url: string): GqlSender =>
  // Both overloads are one function underneath: `gql` takes either kind of document.
  ((query: string, variables?: Record<string, unknown>, token?: string | null) => gql(url, query, variables, token)) as GqlSender;

/** Sends one GraphQL request to `url` over HTTP (see GqlSender). */
export function gql<R, V>(url: string, query: TypedDocumentNode<R, V>, variables?: V, token?: string | null): Promise<GqlResult<R>>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- untyped, as in GqlSender
export function gql<T = any>(url: string, query: string, variables?: Record<string, unknown>, token?: string | null): Promise<GqlResult<T>>;
export async function gql(
  url: string,
  query: Operation<unknown, unknown>,
  variables: unknown = {},
  token?: string | null,
): Promise<GqlResult<unknown>> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query: queryText(query), variables }),
  });
  return (await response.json()) as GqlResult<unknown>;
}

/** A short random suffix for slugs and names, unique within a run. */
export const uid = () => randomBytes(4).toString('hex');

/** Polls `check` every 50 ms until it passes (true) or `ms` have gone by (false). */
export async function eventually(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  for (const start = Date.now(); Date.now() - start < ms;) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}
