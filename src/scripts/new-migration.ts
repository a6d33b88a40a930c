// `npm run db:migration:new <name>`: writes the next Prisma migration without
// `prisma migrate dev` (its engine binary cannot be downloaded here). The SQL
// is the wasm engine's diff between prisma/migrations/schema.snapshot.prisma
// (the schema the migrations so far produce) and prisma/schema.prisma.
//
// Options, for trying the tool on copies: --schema <file> --dir <migrations dir>.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { readMigrations } from '../db/migrate.ts';
import { diffSchemas, isEmptyMigration } from '../db/schema-diff.ts';

const SNAPSHOT_FILE = 'schema.snapshot.prisma';

function fail(message: string): never {
  console.error(message);
  process.exit(1);
}

function usage(message: string): never {
  fail(`${message}\nUsage: npm run db:migration:new <name> [-- --schema <file> --dir <migrations dir>]`);
}

/** Prisma's own convention: lower-case words joined by underscores. */
function sanitizeName(raw: string): string {
  return raw
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, '_')
    .replace(/_+/g, '_')
    .replace(/^_|_$/g, '')
    .slice(0, 200);
}

function utcTimestamp(date: Date): string {
  return date.toISOString().replace(/\D/g, '').slice(0, 14);
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { schema: { type: 'string' }, dir: { type: 'string' } },
});
const schemaPath = values.schema ?? fileURLToPath(new URL('../../prisma/schema.prisma', import.meta.url));
const migrationsDir = values.dir ?? fileURLToPath(new URL('../../prisma/migrations', import.meta.url));
const snapshotPath = join(migrationsDir, SNAPSHOT_FILE);

if (positionals.length !== 1) usage('Give exactly one migration name.');
const name = sanitizeName(positionals[0]!);
if (!name) usage(`"${positionals[0]}" has no usable characters for a migration name ([a-z0-9_]).`);

const existing = readMigrations(migrationsDir);
const snapshot = existsSync(snapshotPath) ? readFileSync(snapshotPath, 'utf8') : null;
if (snapshot === null && existing.length > 0) {
  // Diffing from an empty schema would write a migration that recreates everything.
  fail(`${snapshotPath} is missing although migrations exist; restore it from version control.`);
}

const dirName = `${utcTimestamp(new Date())}_${name}`;
const last = existing.at(-1)?.name;
if (last !== undefined && dirName <= last) {
  fail(`The new migration ${dirName} would not sort after the latest one (${last}); check the clock or wait a second.`);
}

const schema = readFileSync(schemaPath, 'utf8');
const sql = await diffSchemas(snapshot, schema);
if (isEmptyMigration(sql)) {
  fail(`${schemaPath} matches the last migration's schema: nothing to migrate, no migration written.`);
}

const dir = join(migrationsDir, dirName);
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, 'migration.sql'), sql);
// Written last: if anything above failed, the next run diffs from the same base again.
writeFileSync(snapshotPath, schema);
console.log(`Wrote ${join(dir, 'migration.sql')}\nReview it, then apply it with \`npm run db:migrate\` (or restart the embedded server).`);
