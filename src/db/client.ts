import { PrismaPg } from '@prisma/adapter-pg';
import { createHash } from 'node:crypto';
import pg from 'pg';
import { PrismaClient } from '../generated/prisma/client.ts';

export type Db = PrismaClient;

export interface PoolOptions {
  /** 1 for PGlite. */
  poolSize: number;
  /**
   * Start every new connection with `DISCARD ALL`. The embedded server runs
   * one PGlite session for all of its connections, so a connection that
   * replaces a broken one would otherwise inherit the old one's prepared
   * statements (and fail with 42P05 when it prepares the same names).
   */
  freshSessions?: boolean;
}

/**
 * The node-postgres pool behind Prisma, kept by the app for its metrics and
 * readiness checks. Connections stay open once opened (node-postgres drops
 * idle ones after 10 s by default): a new one costs a PostgreSQL backend
 * start, tens of milliseconds that the first burst after a quiet spell would
 * wait out.
 */
export function createPool(url: string, { poolSize, freshSessions = false }: PoolOptions): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max: poolSize, idleTimeoutMillis: 0 });
  pool.query = keepConnectionOnStatementError(pool);
  if (freshSessions) {
    // Queued on the client ahead of whatever it was acquired for.
    pool.on('connect', (client) => void client.query('DISCARD ALL').catch(() => {}));
  }
  // An idle connection that the server drops is replaced on next use; without
  // a listener the pool's 'error' event would end the process.
  pool.on('error', () => {});
  return pool;
}

/**
 * `Pool.query` as Prisma's adapter uses it for statements outside
 * transactions, except that a statement the server refused (a unique
 * violation, say) gives its connection back instead of closing it, as the
 * adapter's transactions already do. pg-pool closes the connection after any
 * error: on PostgreSQL that cost a reconnect (and re-preparing every
 * statement) per failed statement, such as each idempotent retry; on the
 * embedded database it broke the server for good (see `freshSessions`).
 * Connection failures still close it.
 */
function keepConnectionOnStatementError(pool: pg.Pool): pg.Pool['query'] {
  const query = async (config: pg.QueryConfig) => {
    const client = await pool.connect();
    let failure: unknown;
    try {
      return await client.query(config);
    } catch (error) {
      failure = error;
      throw error;
    } finally {
      client.release(failure === undefined || failure instanceof pg.DatabaseError ? undefined : (failure as Error));
    }
  };
  return query as pg.Pool['query'];
}

export interface PrismaOptions {
  /** Name statements so each connection prepares them once (see `statementNames`). */
  preparedStatements: boolean;
  /** Observes every statement sent (tests count them to catch N+1 lists). */
  onQuery?: () => void;
}

/** A Prisma client over a node-postgres pool. */
export function createPrisma(pool: pg.Pool, { preparedStatements, onQuery }: PrismaOptions): PrismaClient {
  const adapter = new PrismaPg(pool, preparedStatements ? { statementNameGenerator: statementNames() } : {});
  // 'minimal': other formats capture a stack trace on every query, for a code
  // frame in error messages that clients never see (errors are masked).
  const errorFormat = 'minimal';
  if (!onQuery) return new PrismaClient({ adapter, errorFormat });
  const client = new PrismaClient({ adapter, errorFormat, log: [{ emit: 'event', level: 'query' }] });
  client.$on('query', onQuery);
  return client;
}

/**
 * Names for PostgreSQL prepared statements, so each connection parses and
 * plans a statement once instead of on every execution (planning alone was
 * half a millisecond of sendMessage's one statement). The name is a digest of
 * the SQL text: the same text always gets the same name on every connection.
 * Only the first `limit` distinct texts are named, so a stream of one-off
 * statements cannot grow each backend's cache without bound; later ones run
 * unnamed, as before.
 */
export function statementNames(limit = 1000): (query: { sql: string }) => string {
  const names = new Map<string, string>();
  return ({ sql }) => {
    let name = names.get(sql);
    if (name === undefined && names.size < limit) {
      name = `p${createHash('sha256').update(sql).digest('base64url').slice(0, 32)}`;
      names.set(sql, name);
    }
    // pg runs a query without a name unprepared.
    return name as string;
  };
}
