import { defineConfig } from 'vitest/config';

export default defineConfig({
  // graphql@16 ships CJS (index.js) and ESM (index.mjs). Node loads the CJS
  // build for dependencies (Pothos, Yoga); Vite would pick the ESM one for our
  // sources, and two copies of graphql reject each other's types.
  resolve: { alias: [{ find: /^graphql$/, replacement: 'graphql/index.js' }] },
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // Each file starts its own app on port 0 against the run's database;
    // two workers match the two cores CI has.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
