import type pg from 'pg';
import { readMigrations } from '../db/migrate.ts';
import type { ParleyPubSub } from '../bus/pubsub.ts';

export interface ReadinessDeps {
  /** The app's own pool: readiness means its requests can get a connection. */
  pool: pg.Pool;
  pubsub: ParleyPubSub;
  /**
   * Where attachment files live. Reported, but it does not make the process
   * unready: chat works without files, and taking every process out of the
   * balancer because the object store is down would stop chat too.
   */
  files?: { check(): Promise<void> };
  /** Migration names the database must have applied; defaults to the project's migrations directory. */
  migrations?: string[];
  /** How long each check may take before it counts as down. */
  timeoutMs?: number;
}

export interface ReadinessReport {
  ready: boolean;
  body: { status: 'ready' | 'unavailable'; checks: Record<string, string> };
}

const UP = 'up';

/**
 * The checks behind `GET /ready`. Each names its dependency `up`, or `down: …`
 * with the reason, so an operator reading the 503 sees what to fix.
 */
export function createReadiness({ pool, pubsub, files, migrations, timeoutMs = 2000 }: ReadinessDeps) {
  const expected = migrations ?? readMigrations().map((m) => m.name);
  // The app applies every migration before it serves, and nothing here
  // unapplies one: once seen complete, later probes need not ask again.
  let migrationsUp = false;
  // At most one probe of each kind is outstanding: a database that hangs
  // instead of refusing would otherwise collect a waiting connection per probe.
  let database: Promise<string> | null = null;
  let redis: Promise<string> | null = null;
  let fileStorage: Promise<string> | null = null;

  const checkFiles = async (): Promise<Record<string, string>> => {
    if (!files) return {};
    fileStorage ??= files
      .check()
      .then(() => UP, down)
      .finally(() => (fileStorage = null));
    return { files: await withinTime(fileStorage, timeoutMs, 'no answer') };
  };

  const checkDatabase = async (): Promise<{ database: string; migrations: string }> => {
    database ??= probeDatabase().finally(() => (database = null));
    const state = await withinTime(database, timeoutMs, 'no answer');
    if (state !== UP) return { database: state, migrations: migrationsUp ? UP : 'unknown: database down' };
    return { database: UP, migrations: await withinTime(checkMigrations(), timeoutMs, 'no answer') };
  };

  const probeDatabase = async () => {
    try {
      await pool.query('SELECT 1');
      return UP;
    } catch (error) {
      return down(error);
    }
  };

  const checkMigrations = async () => {
    if (migrationsUp) return UP;
    try {
      const { rows } = await pool.query<{ migration_name: string }>(
        'SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL',
      );
      const applied = new Set(rows.map((row) => row.migration_name));
      const pending = expected.filter((name) => !applied.has(name));
      if (pending.length) return `down: ${pending.length} pending (${pending.join(', ')})`;
      migrationsUp = true;
      return UP;
    } catch (error) {
      return down(error);
    }
  };

  const checkRedis = async () => {
    const client = pubsub.redis;
    if (!client) return 'not configured';
    // While disconnected ioredis would queue a PING until it is back.
    const status = pubsub.connectionStatus();
    if (status !== 'ready') return `down: ${status}`;
    redis ??= client
      .ping()
      .then(() => UP, down)
      .finally(() => (redis = null));
    return withinTime(redis, timeoutMs, 'no answer to PING');
  };

  return {
    async check(stopping: boolean): Promise<ReadinessReport> {
      if (stopping) return { ready: false, body: { status: 'unavailable', checks: { server: 'down: shutting down' } } };
      const [db, redisState, fileState] = await Promise.all([checkDatabase(), checkRedis(), checkFiles()]);
      const checks = { ...db, redis: redisState, ...fileState };
      const ready = checks.database === UP && checks.migrations === UP && (redisState === UP || redisState === 'not configured');
      return { ready, body: { status: ready ? 'ready' : 'unavailable', checks } };
    },
  };
}

function down(error: unknown): string {
  const { code, message } = error as { code?: unknown; message?: unknown };
  return `down: ${typeof message === 'string' && message ? message : String(error)}${typeof code === 'string' && !String(message).includes(code) ? ` (${code})` : ''}`;
}

function withinTime(work: Promise<string>, ms: number, what: string): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`down: ${what} within ${ms} ms`), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}
