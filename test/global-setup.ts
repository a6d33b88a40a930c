import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '../src/db/embedded.ts';
import { migrate } from '../src/db/migrate.ts';
import { createThrowawayDatabase } from './helpers/database.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    adminDatabaseUrl: string;
    redisUrl: string;
    redisPrefix: string;
    /** `postgres` or `embedded`: see test/helpers/app.ts. */
    lane: 'postgres' | 'embedded';
    /** An embedded data directory with every migration applied, for servers of the embedded lane to start from a copy of. */
    embeddedTemplate: string;
  }
}

/**
 * One database and one Redis key prefix per test run, so runs never see each
 * other's rows and a second run in a row starts clean. The database is dropped
 * at the end; the shared services themselves are never stopped.
 *
 * The embedded lane gets a migrated PGlite data directory instead: creating
 * one takes seconds (PGlite's initdb), copying it a fraction of that, and a
 * copy per server keeps files apart as a fresh `npm start` would.
 */
export default async function setup(project: TestProject) {
  if (project.name === 'embedded') {
    const template = mkdtempSync(join(tmpdir(), 'parley-template-'));
    const embedded = await startEmbeddedPostgres(template);
    try {
      await migrate(embedded.url);
    } finally {
      await embedded.stop();
    }
    project.provide('embeddedTemplate', template);
    return () => rmSync(template, { recursive: true, force: true });
  }

  const adminUrl = process.env.TEST_PG_ADMIN_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
  const redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
  const database = await createThrowawayDatabase(adminUrl, 'parley_test');
  await migrate(database.url);

  project.provide('databaseUrl', database.url);
  project.provide('adminDatabaseUrl', adminUrl);
  project.provide('redisUrl', redisUrl);
  project.provide('redisPrefix', `${database.name}:`);

  return async () => {
    if (!process.env.KEEP_TEST_DB) await database.drop();
  };
}
