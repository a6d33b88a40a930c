import { defineConfig } from 'vitest/config';

/**
 * Files that run once, in the postgres project: they need what only the
 * production setup has (a PostgreSQL of their own to break or migrate, Redis
 * faults, several server processes on one database), or they choose their
 * database themselves (server processes in embedded mode, a page in a browser
 * that no database changes). Every other file also runs on the embedded
 * database, the default mode of `npm start`, so that mode cannot break unnoticed.
 */
const runOnce = [
  'test/embedded.test.ts',
  'test/errors.test.ts',
  'test/faults.test.ts',
  'test/graphiql.browser.test.ts',
  'test/migrations.test.ts',
  'test/multiprocess.test.ts',
  'test/prepared-statements.test.ts',
  'test/rate-limits-redis.test.ts',
  'test/shutdown.test.ts',
];

export default defineConfig({
  // graphql@16 ships CJS (index.js) and ESM (index.mjs). Node loads the CJS
  // build for dependencies (Pothos, Yoga); Vite would pick the ESM one for our
  // sources, and two copies of graphql reject each other's types.
  resolve: { alias: [{ find: /^graphql$/, replacement: 'graphql/index.js' }] },
  test: {
    globalSetup: ['test/global-setup.ts'],
    // Each file starts its own app on port 0 against the run's database;
    // two workers match the two cores CI has.
    pool: 'forks',
    maxWorkers: 2,
    // A worker keeps its modules between files: importing the app (Prisma,
    // Pothos, the schema) took about 2 s per file, 160 s of a run's 440. Files
    // share no state through modules: each builds its own app, database and
    // Redis prefix (and the code keeps no module globals).
    isolate: false,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: { name: 'postgres', include: ['test/**/*.test.ts'], provide: { lane: 'postgres' } },
      },
      {
        extends: true,
        test: { name: 'embedded', include: ['test/**/*.test.ts'], exclude: runOnce, provide: { lane: 'embedded' } },
      },
    ],
  },
});
