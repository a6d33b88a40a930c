// Runs the migration runner against throwaway databases on a real PostgreSQL
// and checks that prisma/migrations reproduces prisma/schema.prisma exactly.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checksumOf, migrate, MIGRATIONS_DIR } from '../src/db/migrate.ts';

const ADMIN_URL = process.env.TEST_PG_ADMIN_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const run = promisify(execFile);

const created: string[] = [];
let admin: pg.Client;

function urlFor(database: string): string {
  const url = new URL(ADMIN_URL);
  url.pathname = `/${database}`;
  return url.toString();
}

async function createDatabase(): Promise<string> {
  const name = `parley_mig_${randomBytes(6).toString('hex')}`;
  await admin.query(`CREATE DATABASE "${name}"`);
  created.push(name);
  return urlFor(name);
}

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

function migrationDirs(): string[] {
  return readdirSync(MIGRATIONS_DIR, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
}

/** SQL creating the current schema.prisma from nothing, from the wasm engine in a flagged child process. */
async function schemaSql(): Promise<string> {
  const { stdout } = await run(process.execPath, ['--experimental-wasm-modules', '--import', 'tsx', 'src/scripts/print-schema-sql.ts'], {
    cwd: ROOT,
    env: { ...process.env, SHADOW_DATABASE_URL: ADMIN_URL },
    timeout: 60_000,
    maxBuffer: 16 << 20,
  });
  return stdout;
}

/**
 * One line per catalog object of the public schema, sorted, so a mismatch
 * shows up in the test output as a readable line diff. Column order is left
 * out on purpose: an added column lands last in a migrated table but in model
 * order in a freshly created one, and Prisma does not care either way.
 */
async function catalogDump(url: string): Promise<string[]> {
  return withClient(url, async (client) => {
    const lines = async (sql: string): Promise<string[]> => (await client.query<{ line: string }>(sql)).rows.map((row) => row.line);
    const dump = [
      ...(await lines(`
        SELECT 'table ' || c.relname || ' (' || c.relkind::text || ')' AS line
        FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
          AND c.relname <> '_prisma_migrations'`)),
      ...(await lines(`
        SELECT 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
          || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE ' NULL' END
          || coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')
          || CASE WHEN a.attidentity <> '' THEN ' IDENTITY ' || a.attidentity::text ELSE '' END
          || CASE WHEN a.attgenerated <> '' THEN ' GENERATED ' || a.attgenerated::text ELSE '' END AS line
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
          AND c.relname <> '_prisma_migrations' AND a.attnum > 0 AND NOT a.attisdropped`)),
      ...(await lines(`
        SELECT 'enum ' || t.typname || ': ' || string_agg(e.enumlabel, ', ' ORDER BY e.enumsortorder) AS line
        FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
        WHERE t.typnamespace = 'public'::regnamespace
        GROUP BY t.typname`)),
      ...(await lines(`
        SELECT 'index ' || indexname || ': ' || indexdef AS line
        FROM pg_indexes
        WHERE schemaname = 'public' AND tablename <> '_prisma_migrations'`)),
      ...(await lines(`
        SELECT 'constraint ' || coalesce(c.relname, '-') || '.' || k.conname || ': ' || pg_get_constraintdef(k.oid) AS line
        FROM pg_constraint k LEFT JOIN pg_class c ON c.oid = k.conrelid
        WHERE k.connamespace = 'public'::regnamespace AND coalesce(c.relname, '') <> '_prisma_migrations'`)),
      ...(await lines(`
        SELECT 'sequence ' || sequencename || ' ' || data_type || ' start ' || start_value || ' by ' || increment_by AS line
        FROM pg_sequences
        WHERE schemaname = 'public'`)),
    ];
    return dump.sort();
  });
}

beforeAll(async () => {
  admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
});

afterAll(async () => {
  // FORCE: a test that failed mid-way may have left a connection open.
  for (const name of created) await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await admin.end();
});

describe('migrations', () => {
  it('applies every migration once and records it like Prisma', async () => {
    const url = await createDatabase();
    const dirs = migrationDirs();
    expect(dirs.length).toBeGreaterThan(0);

    expect((await migrate(url)).applied).toEqual(dirs);
    expect((await migrate(url)).applied).toEqual([]);

    const rows = await withClient(
      url,
      async (client) =>
        (
          await client.query<{ migration_name: string; checksum: string; finished: boolean; steps: number }>(
            `SELECT migration_name, checksum, finished_at IS NOT NULL AND rolled_back_at IS NULL AS finished,
                  applied_steps_count AS steps
           FROM "_prisma_migrations" ORDER BY migration_name`,
          )
        ).rows,
    );
    expect(rows).toEqual(
      dirs.map((name) => ({
        migration_name: name,
        checksum: checksumOf(readFileSync(join(MIGRATIONS_DIR, name, 'migration.sql'), 'utf8')),
        finished: true,
        steps: 1,
      })),
    );
  });

  it('schema.prisma and migrations agree', { timeout: 60_000 }, async () => {
    const [migrated, fromSchema, sql] = await Promise.all([createDatabase(), createDatabase(), schemaSql()]);
    await migrate(migrated);
    await withClient(fromSchema, (client) => client.query(sql));

    const [expected, actual] = await Promise.all([catalogDump(fromSchema), catalogDump(migrated)]);
    expect(expected.length).toBeGreaterThan(0);
    // On failure: lines only in "expected" are missing from the migrations;
    // run `npm run db:migration:new <name>` to add a migration for them.
    expect(actual).toEqual(expected);
  });

  it('refuses to run when an applied migration was edited', async () => {
    const url = await createDatabase();
    await migrate(url);
    const first = migrationDirs()[0]!;
    await withClient(url, (client) =>
      client.query(`UPDATE "_prisma_migrations" SET checksum = $1 WHERE migration_name = $2`, ['0'.repeat(64), first]),
    );

    await expect(migrate(url)).rejects.toThrow(new RegExp(`Migration ${first} was edited after it was applied`));
  });

  it('rolls a failing migration back completely and names it', async () => {
    const url = await createDatabase();
    const dir = mkdtempSync(join(tmpdir(), 'parley-migrations-'));
    try {
      const write = (name: string, sql: string) => {
        mkdirSync(join(dir, name));
        writeFileSync(join(dir, name, 'migration.sql'), sql);
      };
      write('20000101000000_ok', 'CREATE TABLE "a" ("id" INTEGER PRIMARY KEY);');
      write('20000102000000_broken', 'CREATE TABLE "b" ("id" INTEGER PRIMARY KEY);\nINSERT INTO "missing" VALUES (1);');

      await expect(migrate(url, { migrationsDir: dir })).rejects.toThrow(
        /Migration 20000102000000_broken failed at line 2 of migration\.sql: relation "missing" does not exist/,
      );
      const state = await withClient(url, async (client) => ({
        tables: (await client.query(`SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`)).rows,
        recorded: (await client.query(`SELECT migration_name FROM "_prisma_migrations"`)).rows,
      }));
      expect(state).toEqual({
        tables: [{ tablename: '_prisma_migrations' }, { tablename: 'a' }],
        recorded: [{ migration_name: '20000101000000_ok' }],
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('lets concurrent runners apply each migration exactly once', async () => {
    const url = await createDatabase();
    const results = await Promise.all(Array.from({ length: 4 }, () => migrate(url)));
    const applied = results.map((r) => r.applied).filter((names) => names.length > 0);
    expect(applied).toEqual([migrationDirs()]);
  });
});
