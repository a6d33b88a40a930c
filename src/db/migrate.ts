// Applies prisma/migrations/*/migration.sql without the Prisma engine binary,
// which cannot be downloaded on our machines. The bookkeeping table and lock
// key are Prisma's own, so `prisma migrate deploy` can take over (or run
// alongside) wherever the engine is available.
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

/** The Prisma migrations directory of this project. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../prisma/migrations', import.meta.url));

// Prisma Migrate's own advisory lock key: sharing it also serializes us with
// a concurrent `prisma migrate deploy`.
const LOCK_KEY = 72707369;

const CREATE_TABLE = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`;

export interface MigrationFile {
  name: string;
  sql: string;
  checksum: string;
}

interface MigrationRow {
  migration_name: string;
  checksum: string;
  finished_at: Date | null;
  rolled_back_at: Date | null;
}

export interface MigrateOptions {
  log?: (msg: string) => void;
  /** Defaults to the project's prisma/migrations; tests point it elsewhere. */
  migrationsDir?: string;
}

/** sha256 hex of a migration script, as Prisma stores it in `_prisma_migrations.checksum`. */
export function checksumOf(sql: string): string {
  return createHash('sha256').update(sql, 'utf8').digest('hex');
}

/** The migrations of a Prisma migrations directory, in the order they apply (by name). */
export function readMigrations(dir: string = MIGRATIONS_DIR): MigrationFile[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort()
    .map((name) => {
      const file = join(dir, name, 'migration.sql');
      // A directory without its script is a half-written migration; skipping
      // it would silently leave the database behind the schema.
      if (!existsSync(file)) throw new Error(`Migration ${name} has no migration.sql (${file})`);
      const sql = readFileSync(file, 'utf8');
      return { name, sql, checksum: checksumOf(sql) };
    });
}

/**
 * Applies the pending migrations to the database at `connectionString`, each
 * in its own transaction together with its `_prisma_migrations` row, and
 * returns the names applied (empty when the database is up to date). Uses a
 * single connection, so it also works against a one-connection embedded
 * server. Throws, naming the migration, when a migration fails (nothing of it
 * stays applied) or when an applied migration's file was edited afterwards.
 */
export async function migrate(connectionString: string, opts: MigrateOptions = {}): Promise<{ applied: string[] }> {
  const log = opts.log ?? (() => {});
  const migrations = readMigrations(opts.migrationsDir);
  const client = new pg.Client({ connectionString });
  // A dropped connection also rejects the pending query; this only keeps the
  // 'error' event from crashing the process in between queries.
  client.on('error', () => {});
  await client.connect();
  try {
    const locked = await lock(client, log);
    try {
      await client.query(CREATE_TABLE);
      const pending = pendingMigrations(migrations, await appliedRows(client), log);
      for (const migration of pending) {
        log(`Applying migration ${migration.name}`);
        await applyOne(client, migration);
      }
      return { applied: pending.map((m) => m.name) };
    } finally {
      if (locked) await client.query('SELECT pg_advisory_unlock($1)', [LOCK_KEY]).catch(() => {});
    }
  } finally {
    await client.end().catch(() => {});
  }
}

/** Waits for the migration lock; false when the server has no advisory locks. */
async function lock(client: pg.Client, log: (msg: string) => void): Promise<boolean> {
  try {
    await client.query('SELECT pg_advisory_lock($1)', [LOCK_KEY]);
    return true;
  } catch (err) {
    // Only "this server cannot do that" is safe to ignore: running unlocked
    // is fine on a server that has just this one connection anyway.
    const code = (err as { code?: string }).code;
    if (code !== '42883' && code !== '0A000') throw err;
    log(`Advisory locks unavailable (${(err as Error).message}); migrating without a lock`);
    return false;
  }
}

async function appliedRows(client: pg.Client): Promise<MigrationRow[]> {
  const { rows } = await client.query<MigrationRow>(
    'SELECT migration_name, checksum, finished_at, rolled_back_at FROM "_prisma_migrations" ORDER BY started_at',
  );
  return rows;
}

function pendingMigrations(migrations: MigrationFile[], rows: MigrationRow[], log: (msg: string) => void): MigrationFile[] {
  // Rows marked rolled back (by `prisma migrate resolve`) count as never applied.
  const live = rows.filter((row) => row.rolled_back_at === null);
  const failed = live.find((row) => row.finished_at === null);
  if (failed) {
    // Only Prisma's own runner leaves such rows; ours rolls the row back with the migration.
    throw new Error(
      `Migration ${failed.migration_name} is recorded as started but not finished in _prisma_migrations. ` +
        'Fix the database by hand, then mark it with `prisma migrate resolve` or delete that row.',
    );
  }
  const applied = new Map(live.map((row) => [row.migration_name, row.checksum]));
  for (const migration of migrations) {
    const checksum = applied.get(migration.name);
    if (checksum !== undefined && checksum !== migration.checksum) {
      throw new Error(
        `Migration ${migration.name} was edited after it was applied (checksum ${migration.checksum} in the file, ` +
          `${checksum} in the database). Restore the applied file and put the change in a new migration.`,
      );
    }
  }
  const known = new Set(migrations.map((m) => m.name));
  for (const name of applied.keys()) {
    if (!known.has(name)) log(`Migration ${name} is applied to the database but missing from the migrations directory`);
  }
  return migrations.filter((m) => !applied.has(m.name));
}

async function applyOne(client: pg.Client, migration: MigrationFile): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query(migration.sql);
    await client.query(
      `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, finished_at, applied_steps_count)
       VALUES ($1, $2, $3, now(), clock_timestamp(), 1)`,
      [randomUUID(), migration.checksum, migration.name],
    );
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw new Error(`Migration ${migration.name} failed${where(migration.sql, err)}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** " at line N" from PostgreSQL's 1-based character position in the script, if it sent one. */
function where(sql: string, err: unknown): string {
  const position = Number((err as { position?: string }).position);
  if (!Number.isInteger(position) || position < 1) return '';
  const line = sql.slice(0, position - 1).split('\n').length;
  return ` at line ${line} of migration.sql`;
}
