import { Writable } from 'node:stream';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { buildApp, type App } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { migrate } from '../src/db/migrate.ts';
import { gql } from './helpers/app.ts';
import { createThrowawayDatabase, type ThrowawayDatabase } from './helpers/database.ts';
import { graphql } from './generated/index.ts';

// An app on its own throwaway database, broken on purpose (a table dropped
// behind its back), to see what an unexpected failure looks like to a client
// and in the log.
const lines: Record<string, unknown>[] = [];
let database: ThrowawayDatabase;
let app: App;
let url: string;
let databaseUrl: string;

beforeAll(async () => {
  database = await createThrowawayDatabase(inject('adminDatabaseUrl'), 'parley_err');
  databaseUrl = database.url;
  await migrate(databaseUrl);
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  const config = loadConfig(
    { PASSWORD_HASH_COST: '10' },
    { databaseUrl, redisUrl: null, host: '127.0.0.1', jwtSecret: 'test-secret-0123456789abcdef', graphiql: false },
  );
  app = await buildApp(config, { log: pino({ level: 'error' }, sink) });
  url = `http://127.0.0.1:${await app.start(0)}/graphql`;
});

afterAll(async () => {
  await app?.stop();
  await database?.drop();
});

describe('unexpected errors', () => {
  it('are masked for the client, logged with the same request id, and leave no partial write', async () => {
    const db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    try {
      await db.query(`DROP TABLE "AuditLog"`); // registerOrganization writes its audit row last
      const result = await gql(
        url,
        graphql(`
          mutation ErrorsRegisterOrganization {
            registerOrganization(input: { name: "Broken", slug: "broken", username: "ada", displayName: "Ada", password: "password123" }) {
              token
            }
          }
        `),
      );
      const error = result.errors?.[0];
      expect(error?.message).toBe('Unexpected error');
      expect(error?.extensions?.code).toBe('INTERNAL_SERVER_ERROR');
      expect(JSON.stringify(result)).not.toMatch(/AuditLog|prisma|stack|at /i);
      const requestId = error?.extensions?.requestId;
      expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
      const logged = lines.find((l) => l.requestId === requestId);
      expect(logged?.msg).toBe('unexpected error');
      expect(JSON.stringify(logged)).toMatch(/AuditLog/);
      // Once: Yoga's own report of the error it masked is not a second line.
      expect(lines.filter((l) => JSON.stringify(l).includes('AuditLog'))).toHaveLength(1);
      // The organization and owner were written before the failure, in the same transaction.
      const { rows } = await db.query(`SELECT count(*)::int AS n FROM "Organization" WHERE slug = 'broken'`);
      expect(rows[0].n).toBe(0);
    } finally {
      await db.end();
    }
  });
});

describe('client mistakes', () => {
  it('are not logged as errors: parse, validation, query limits, bad tokens, domain errors', async () => {
    const from = lines.length;
    const deep = `{ channels(first: 1) { edges { node { ${'messages(first: 1) { edges { node { parent { '.repeat(3)}id${' } } } }'.repeat(3)} } } } }`;
    const results = [
      await gql(url, `{ channels(`),
      await gql(url, `{ noSuchField }`),
      await gql(url, deep),
      await gql(
        url,
        graphql(`
          query ErrorsChannelsWithBadToken {
            channels(first: 1) {
              edges {
                node {
                  id
                }
              }
            }
          }
        `),
        {},
        'not-a-token',
      ),
      await gql(
        url,
        graphql(`
          query ErrorsChannel($c: ID!) {
            channel(id: $c) {
              id
            }
          }
        `),
        { c: 'bm90LWFuLWlk' },
      ),
    ];
    for (const result of results) {
      expect(result.errors?.[0]?.extensions?.code).toMatch(
        /^(GRAPHQL_PARSE_FAILED|GRAPHQL_VALIDATION_FAILED|BAD_USER_INPUT|UNAUTHENTICATED|NOT_FOUND)$/,
      );
    }
    expect(lines.slice(from)).toEqual([]);
  });
});
