// Loads the Prisma schema engine compiled to WebAssembly: on Node 20 that
// needs `node --experimental-wasm-modules`, so import this module only from
// processes started with that flag (never from the server or vitest workers).
import { SchemaEngine } from '@prisma/schema-engine-wasm';
import { PrismaPg } from '@prisma/adapter-pg';
import { bindMigrationAwareSqlAdapterFactory } from '@prisma/driver-adapter-utils';
import pg from 'pg';

const SCHEMA_PATH = 'schema.prisma';

/** The database the engine's adapter connects to; it reads no table there. */
export function diffDatabaseUrl(env: NodeJS.ProcessEnv = process.env): string {
  return env.SHADOW_DATABASE_URL || env.DATABASE_URL || 'postgresql://postgres@127.0.0.1:5432/postgres';
}

/**
 * Returns the PostgreSQL script that turns a database matching the `from`
 * Prisma schema (null = an empty database) into one matching `to`. Nothing is
 * applied; the engine only needs a reachable server for its adapter.
 */
export async function diffSchemas(from: string | null, to: string, databaseUrl: string = diffDatabaseUrl()): Promise<string> {
  // An external pool lets us close the connection ourselves; otherwise the
  // engine's pool keeps the process alive after the diff.
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 1 });
  try {
    const adapter = bindMigrationAwareSqlAdapterFactory(new PrismaPg(pool));
    const engine = await SchemaEngine.new({ datamodels: [[SCHEMA_PATH, to]] }, () => {}, adapter);
    try {
      const result = await engine.diff({
        from: from === null ? { tag: 'empty' } : { tag: 'schemaDatamodel', files: [{ path: SCHEMA_PATH, content: from }] },
        to: { tag: 'schemaDatamodel', files: [{ path: SCHEMA_PATH, content: to }] },
        script: true,
        exitCode: null,
        filters: { externalTables: [], externalEnums: [] },
      });
      return result.stdout ?? '';
    } finally {
      engine.free();
    }
  } finally {
    await pool.end();
  }
}

/** True when a diff script contains no statement (the engine still prints a comment). */
export function isEmptyMigration(sql: string): boolean {
  return sql
    .split('\n')
    .map((line) => line.trim())
    .every((line) => line === '' || line.startsWith('--'));
}
