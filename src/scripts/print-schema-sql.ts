// Prints the SQL that creates prisma/schema.prisma from an empty database
// (or a given schema file's). It loads the wasm schema engine, so run it with
// `node --experimental-wasm-modules --import tsx`; the migrations test spawns
// it because vitest workers lack that flag.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { diffSchemas } from '../db/schema-diff.ts';

const schemaPath = process.argv[2] ?? fileURLToPath(new URL('../../prisma/schema.prisma', import.meta.url));
process.stdout.write(await diffSchemas(null, readFileSync(schemaPath, 'utf8')));
