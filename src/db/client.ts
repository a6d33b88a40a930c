import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../generated/prisma/client.ts';

export type Db = PrismaClient;

/**
 * A Prisma client over node-postgres; `poolSize` 1 for PGlite. `onQuery`
 * observes every statement sent (tests count them to catch N+1 lists).
 */
export function createPrisma(url: string, poolSize: number, onQuery?: () => void): PrismaClient {
  const adapter = new PrismaPg({ connectionString: url, max: poolSize });
  if (!onQuery) return new PrismaClient({ adapter });
  const client = new PrismaClient({ adapter, log: [{ emit: 'event', level: 'query' }] });
  client.$on('query', onQuery);
  return client;
}
