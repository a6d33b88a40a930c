// Benchmark B5: what a statement the database refuses costs the pool under
// Prisma. An idempotent retry of sendMessage is such a statement: its INSERT
// meets the unique key and the original message is read instead. node-postgres'
// own Pool.query closes the connection after any error, so the next statement
// waits for a new PostgreSQL backend and re-prepares its statements;
// createPool (src/db/client.ts) gives the connection back. Both run in the
// same process against the same throwaway database, in alternating slices.
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { createPool } from '../src/db/client.ts';
import { cleanups, runBenchmark } from './lib/cleanup.ts';
import { createBenchDatabase, withClient } from './lib/database.ts';
import { inSlices, perSecond, summarize } from './lib/stats.ts';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '4' },
    slices: { type: 'string', default: '4' },
    concurrency: { type: 'string', default: '1,16' },
    pool: { type: 'string', default: '10' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(`npm run bench:refused -- [--duration 4] [--slices 4] [--concurrency 1,16] [--pool 10]

  --duration       seconds measured per row and pool (default 4)
  --slices         alternating slices the duration is cut into (default 4)
  --concurrency    comma-separated worker counts (default 1,16)
  --pool           connections per pool (default 10)

Environment: BENCH_PG_ADMIN_URL (default postgresql://postgres@127.0.0.1:5432/postgres).`);
  process.exit(0);
}
const durationMs = Number(args.duration) * 1000;
const slices = Number(args.slices);
const levels = args.concurrency.split(',').map(Number);
const poolSize = Number(args.pool);

// The statements a retried send runs: the refused insert, then the read of the original.
const insert = { name: 'bench_insert', text: 'INSERT INTO refused (key) VALUES ($1)', values: ['taken'] };
const select = { name: 'bench_select', text: 'SELECT id, key FROM refused WHERE key = $1', values: ['taken'] };

async function retry(pool: pg.Pool): Promise<void> {
  await pool.query(insert).then(
    () => {
      throw new Error('the insert was expected to be refused');
    },
    (error: { code?: string }) => {
      if (error.code !== '23505') throw error;
    },
  );
  const { rows } = await pool.query(select);
  if (rows.length !== 1) throw new Error('the original row is missing');
}

/** Runs `workers` loops of retries for `ms`; returns each retry's latency in ms. */
async function measure(pool: pg.Pool, workers: number, ms: number): Promise<number[]> {
  const samples: number[] = [];
  const end = performance.now() + ms;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (performance.now() < end) {
        const start = performance.now();
        await retry(pool);
        samples.push(performance.now() - start);
      }
    }),
  );
  return samples;
}

await runBenchmark(async () => {
  // One table of its own: the project's schema plays no part here.
  const database = await createBenchDatabase('refused', { migrations: false });
  await withClient(database.url, async (setup) => {
    await setup.query('CREATE TABLE refused (id serial PRIMARY KEY, key text UNIQUE NOT NULL)');
    await setup.query(`INSERT INTO refused (key) VALUES ('taken')`);
  });

  const pools = {
    'pg Pool (closes on error)': new pg.Pool({ connectionString: database.url, max: poolSize, idleTimeoutMillis: 0 }),
    'createPool (keeps it)': createPool(database.url, { poolSize }),
  };
  for (const pool of Object.values(pools)) {
    pool.on('error', () => {});
    cleanups.push(() => pool.end());
  }

  console.log(
    `B5: a refused statement, then a read (an idempotent retry), pool of ${poolSize}, ${args.duration} s per row in ${slices} alternating slices\n`,
  );
  console.log('| workers | pool | retries/s | p50 ms | p99 ms | ratio to pg Pool |');
  console.log('|---|---|---|---|---|---|');
  for (const workers of levels) {
    for (const pool of Object.values(pools)) await measure(pool, workers, 300); // warm: connections and plans
    const names = Object.keys(pools) as (keyof typeof pools)[];
    const samples = (await inSlices(names, slices, (name) => measure(pools[name], workers, durationMs / slices))).map((parts) =>
      parts.flat(),
    );
    const rates = samples.map((lane) => perSecond(lane.length, durationMs));
    names.forEach((name, i) => {
      const latency = summarize(samples[i]!);
      console.log(
        `| ${workers} | ${name} | ${rates[i]!.toFixed(0)} | ${latency.p50.toFixed(2)} | ${latency.p99.toFixed(2)} | ${(rates[i]! / rates[0]!).toFixed(2)} |`,
      );
    });
  }
  console.log('\nWhat this cannot show: a pooler (PgBouncer) in front, where a new client connection is cheap but its');
  console.log('server connection may still be replaced; a remote database, where each reconnect also costs round trips.');
});
