// The PostgreSQL a benchmark runs against: a database of its own, created for
// the run and dropped at its end. The benchmarks keep their own copy of this
// rather than the test suite's helper, so bench/ depends on src/ alone.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { migrate } from '../../src/db/migrate.ts';
import { cleanups } from './cleanup.ts';

/** Where throwaway databases are created (any database on the server; the user may create databases). */
export const adminUrl = process.env.BENCH_PG_ADMIN_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

export interface BenchDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/**
 * Creates `parley_bench_<kind>_<id>` next to the admin URL's database, so a
 * run never sees another run's rows (or a test suite's), and applies the
 * project's migrations unless `migrations` is false. Unless `keep`, its drop is registered
 * with the cleanups before anything else can fail, so the database goes on
 * success, failure or Ctrl-C; `drop` is safe to call twice and forces out
 * connections a crashed run may have left open.
 */
export async function createBenchDatabase(kind: string, options: { migrations?: boolean; keep?: boolean } = {}): Promise<BenchDatabase> {
  const name = `parley_bench_${kind}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  await withClient(adminUrl, (client) => client.query(`CREATE DATABASE "${name}"`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  let dropped = false;
  const database: BenchDatabase = {
    name,
    url: url.toString(),
    async drop() {
      if (dropped) return;
      dropped = true;
      await withClient(adminUrl, (client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
    },
  };
  if (!options.keep) cleanups.push(() => database.drop());
  if (options.migrations !== false) await migrate(database.url);
  return database;
}

/** Runs `work` on a connection of its own to `url`, closed afterwards. */
export async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** The rows of one statement, on a connection of its own. */
export async function rows<T>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  return withClient(url, async (client) => (await client.query(sql, params)).rows as T[]);
}

/** The first column of the first row of one statement. */
export async function scalar<T>(url: string, sql: string, params: unknown[] = []): Promise<T> {
  return Object.values((await rows<object>(url, sql, params))[0]!)[0] as T;
}
