import type { TestProject } from 'vitest/node';
import { migrate } from '../src/db/migrate.ts';
import { createThrowawayDatabase } from './helpers/database.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    adminDatabaseUrl: string;
    redisUrl: string;
    redisPrefix: string;
  }
}

/**
 * One database and one Redis key prefix per test run, so runs never see each
 * other's rows and a second run in a row starts clean. The database is dropped
 * at the end; the shared services themselves are never stopped.
 */
export default async function setup(project: TestProject) {
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
