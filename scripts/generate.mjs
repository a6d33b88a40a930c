// Generates what is not committed: the Prisma client and the Pothos Prisma
// types (src/generated/), then, with --operations, the types of the tests'
// and the example client's GraphQL operations (test/generated/,
// examples/generated/, from codegen.ts). Prisma's CLI tries to download its schema engine even for
// `generate`, which does not use it; pointing PRISMA_SCHEMA_ENGINE_BINARY at
// any executable skips that download so this works offline (see shared BUILD-FACTS).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, utimesSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const force = process.argv.includes('--force');
const env = {
  ...process.env,
  PATH: `${join(root, 'node_modules/.bin')}:${process.env.PATH ?? ''}`,
  PRISMA_HIDE_UPDATE_MESSAGE: '1',
  CHECKPOINT_DISABLE: '1',
};
if (!env.PRISMA_SCHEMA_ENGINE_BINARY) env.PRISMA_SCHEMA_ENGINE_BINARY = process.execPath;

const mtime = (path) => statSync(path).mtimeMs;
/** The .ts files under a folder of ours, generated ones left out. */
const tsFiles = (dir) =>
  readdirSync(join(root, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => join(e.parentPath, e.name))
    .filter((path) => !path.includes('/generated/'));
/** True when `output` is missing or older than any of `inputs`. */
const stale = (output, inputs) => force || !existsSync(output) || inputs.some((input) => mtime(input) > mtime(output));
function run(args) {
  const r = spawnSync(process.execPath, args, { cwd: root, env, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

// Skip what is current: `npm start` and `npm test` call this every time and it should cost nothing then.
if (stale(join(root, 'src/generated/pothos-types.ts'), [join(root, 'prisma/schema.prisma')])) {
  run([join(root, 'node_modules/prisma/build/index.js'), 'generate']);
}
// The tests import test/generated/; a changed operation in a test, a changed schema or config regenerates it.
// Only when asked (install, `npm test`, `npm run generate`: not `npm start`, which needs none of it) and in a
// checkout that has the tests (the Docker build copies no test/).
const operations = join(root, 'test/generated/gql.ts');
const wanted = process.argv.includes('--operations') && existsSync(join(root, 'test')) && existsSync(join(root, 'codegen.ts'));
if (wanted && stale(operations, [join(root, 'schema.graphql'), join(root, 'codegen.ts'), ...tsFiles('test')])) {
  run([join(root, 'node_modules/@graphql-codegen/cli/esm/bin.js'), '--config', 'codegen.ts', '--silent']);
  // Codegen leaves an unchanged file alone; mark it current so the next run skips.
  const now = new Date();
  utimesSync(operations, now, now);
}
