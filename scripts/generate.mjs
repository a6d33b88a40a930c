// Generates what is not committed: the Prisma client and the Pothos Prisma
// types (src/generated/), then, with --operations, the types of the tests'
// and the example client's GraphQL operations and their manifests of trusted
// documents (test/generated/, examples/generated/, from codegen.ts). Prisma's CLI tries to download its schema engine even for
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
/** The files named `*<ext>` under a folder of ours (none if it is missing), generated ones left out. */
const filesOf = (dir, ext) =>
  existsSync(join(root, dir))
    ? readdirSync(join(root, dir), { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile() && e.name.endsWith(ext))
        .map((e) => join(e.parentPath, e.name))
        .filter((path) => !path.includes('/generated/'))
    : [];
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
// The tests import test/generated/ and start a server with its manifest of trusted documents
// (persisted-documents.json); the example client's output has one too. A changed operation in a
// test or an example, a changed schema or config regenerates them.
// Only when asked (install, `npm test`, `npm run generate`: not `npm start`, which needs none of it) and in a
// checkout that has the tests (the Docker build copies no test/).
const outputs = ['test/generated/gql.ts', 'test/generated/persisted-documents.json', 'examples/generated/persisted-documents.json'].map(
  (path) => join(root, path),
);
const inputs = [join(root, 'schema.graphql'), join(root, 'codegen.ts'), ...filesOf('test', '.ts'), ...filesOf('examples', '.graphql')];
const wanted = process.argv.includes('--operations') && existsSync(join(root, 'test')) && existsSync(join(root, 'codegen.ts'));
if (wanted && outputs.some((output) => stale(output, inputs))) {
  run([join(root, 'node_modules/@graphql-codegen/cli/esm/bin.js'), '--config', 'codegen.ts', '--silent']);
  // Codegen leaves an unchanged file alone; mark each current so the next run skips.
  const now = new Date();
  for (const output of outputs) utimesSync(output, now, now);
}
