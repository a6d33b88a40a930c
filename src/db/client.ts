import { PrismaPg } from '@prisma/adapter-pg';
import { createHash } from 'node:crypto';
import { PrismaClient } from '../generated/prisma/client.ts';

export type Db = PrismaClient;

export interface PrismaOptions {
  /** 1 for PGlite. */
  poolSize: number;
  /** Name statements so each connection prepares them once (see `statementNames`). */
  preparedStatements: boolean;
  /** Observes every statement sent (tests count them to catch N+1 lists). */
  onQuery?: () => void;
}

/** A Prisma client over node-postgres. */
export function createPrisma(url: string, { poolSize, preparedStatements, onQuery }: PrismaOptions): PrismaClient {
  // Connections stay open once opened (node-postgres drops idle ones after
  // 10 s by default): a new one costs a PostgreSQL backend start, tens of
  // milliseconds that the first burst after a quiet spell would wait out.
  const adapter = new PrismaPg({ connectionString: url, max: poolSize, idleTimeoutMillis: 0 }, preparedStatements ? { statementNameGenerator: statementNames() } : {});
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
