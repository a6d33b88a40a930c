import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../generated/prisma/client.ts';

export type Db = PrismaClient;

/**
 * A Prisma client over node-postgres; `poolSize` 1 for PGlite. `onQuery`
 * observes every statement sent (tests count them to catch N+1 lists).
 */
export function createPrisma(url: string, poolSize: number, onQuery?: () => void): PrismaClient {
  // Connections stay open once opened (node-postgres drops idle ones after
  // 10 s by default): a new one costs a PostgreSQL backend start, tens of
  // milliseconds that the first burst after a quiet spell would wait out.
  const adapter = new PrismaPg({ connectionString: url, max: poolSize, idleTimeoutMillis: 0 });
  if (!onQuery) return new PrismaClient({ adapter });
  const client = new PrismaClient({ adapter, log: [{ emit: 'event', level: 'query' }] });
  client.$on('query', onQuery);
  return client;
}
