// Generates the Prisma client and the Pothos Prisma types (not committed).
// Prisma's CLI tries to download its schema engine even for `generate`, which
// does not use it; pointing PRISMA_SCHEMA_ENGINE_BINARY at any executable skips
// that download so this works offline (see shared BUILD-FACTS).
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const schema = join(root, 'prisma/schema.prisma');
const marker = join(root, 'src/generated/pothos-types.ts');

// Skip when the generated files are newer than the schema: `npm start` and
// `npm test` call this every time and it should cost nothing when current.
if (!process.argv.includes('--force') && existsSync(marker) && statSync(marker).mtimeMs >= statSync(schema).mtimeMs) {
  process.exit(0);
}
const env = {
  ...process.env,
  PATH: `${join(root, 'node_modules/.bin')}:${process.env.PATH ?? ''}`,
  PRISMA_HIDE_UPDATE_MESSAGE: '1',
  CHECKPOINT_DISABLE: '1',
};
if (!env.PRISMA_SCHEMA_ENGINE_BINARY) env.PRISMA_SCHEMA_ENGINE_BINARY = process.execPath;
const r = spawnSync(process.execPath, [join(root, 'node_modules/prisma/build/index.js'), 'generate'], {
  cwd: root,
  env,
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
