// Benchmark: uploads (issue 12, §5). A Parley server in a child process (its
// own memory and event loop, measured from outside through /proc) takes
// GraphQL multipart uploads from N clients at once: first 10 KB PDFs (the
// baseline: the same requests, the same path, almost no bytes), then 10 MB
// PDFs. Throughout, a probe client sends `{ viewer { id } }` every 50 ms, and
// its latency, idle and under each load, shows whether reading, inspecting
// and storing files holds up the other requests. PDFs are stored as they
// come (no re-encoding), so the 10 MB rows measure the upload path itself.
//
// In the same run, a bare reference (bench/bare-upload-server.mjs: node:http
// + busboy streaming each file to disk, no GraphQL, no authentication, no
// inspection, no database, no quota) takes the same loads: the upper bound a
// hand-written endpoint sets on this machine. Then a sweep of concurrency
// (1, 2, 4, 8 clients of 10 MB) on both finds the highest uploads/s each
// sustains while its upload p99 stays within a bound (--bound-ms).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cleanups, runBenchmark } from './lib/cleanup.ts';
import { busyShare, cpuTimes } from './lib/cpu.ts';
import { createBenchDatabase } from './lib/database.ts';
import { graphqlClient, registerOrganization } from './lib/graphql.ts';
import { perSecond, summarize } from './lib/stats.ts';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '3' },
    idle: { type: 'string', default: '5' },
    clients: { type: 'string', default: '8' },
    size: { type: 'string', default: String(10 * 1000 * 1000) },
    small: { type: 'string', default: String(10 * 1024) },
    postgres: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    bare: { type: 'boolean', default: true },
    sweep: { type: 'boolean', default: true },
    'sweep-clients': { type: 'string', default: '1,2,4,8' },
    'sweep-duration': { type: 'string', default: '8' },
    'sweep-warmup': { type: 'string', default: '2' },
    'bound-ms': { type: 'string', default: '2000' },
    help: { type: 'boolean', default: false },
  },
  allowNegative: true,
});
if (args.help) {
  console.log(`npx tsx bench/upload.ts [--duration 20] [--warmup 3] [--idle 5] [--clients 8] [--size 10000000] [--small 10240] [--postgres]
    [--no-bare] [--no-sweep] [--sweep-clients 1,2,4,8] [--sweep-duration 8] [--sweep-warmup 2] [--bound-ms 2000]

  --duration   seconds measured per load row (default 20), after --warmup seconds of the same load (default 3)
  --idle       seconds the probe runs alone first (default 5)
  --clients    concurrent uploaders, each with one upload in flight (default 8)
  --size       bytes of the large PDF (default 10,000,000: under UPLOAD_MAX_FILE_BYTES, 10 MiB)
  --small      bytes of the baseline PDF (default 10,240)
  --postgres   PostgreSQL instead of the embedded database: DATABASE_URL if set, else a throwaway
               database parley_bench_upload_<id> made from BENCH_PG_ADMIN_URL and dropped at the end
  --profile    the server runs with --cpu-prof: a V8 CPU profile of its whole life in bench/results/profiles/
  --no-bare    skip the bare reference (bench/bare-upload-server.mjs: node:http + busboy streaming to disk)
  --no-sweep   skip the concurrency sweep
  --sweep-clients   concurrencies of the sweep of --size uploads, on each server (default 1,2,4,8)
  --sweep-duration  seconds measured per sweep step (default 8), after --sweep-warmup seconds (default 2)
  --bound-ms   the latency bound: sustained uploads/s is the highest of a step whose upload p99 is within it (default 2000)

The server runs as \`node --import tsx src/server.ts\` in a child process (NODE_ENV=production,
files on disk in a temp directory, no Redis, no storage quota), stopped by its pid at the end; the bare
reference runs as \`node bench/bare-upload-server.mjs\` in a child process of its own, alive at the same time.`);
  process.exit(0);
}
const durationMs = Number(args.duration) * 1000;
const warmupMs = Number(args.warmup) * 1000;
const idleMs = Number(args.idle) * 1000;
const clients = Number(args.clients);
const largeBytes = Number(args.size);
const smallBytes = Number(args.small);
const sweepClients = args['sweep-clients']
  .split(',')
  .map(Number)
  .filter((n) => Number.isInteger(n) && n > 0);
const sweepDurationMs = Number(args['sweep-duration']) * 1000;
const sweepWarmupMs = Number(args['sweep-warmup']) * 1000;
const boundMs = Number(args['bound-ms']);
/** The bare server's file-size limit: Parley's default UPLOAD_MAX_FILE_BYTES. */
const MAX_FILE_BYTES = 10 * 1024 * 1024;
/** The probe's period, and the sampling period of the server's memory. */
const PROBE_EVERY_MS = 50;
const RSS_EVERY_MS = 100;
/** No single request may take longer than this (the run stays bounded). */
const REQUEST_TIMEOUT_MS = 60_000;
const repoRoot = fileURLToPath(new URL('..', import.meta.url));

// --- the files -------------------------------------------------------------

/**
 * A valid one-page PDF whose one stream holds `size`-ish random bytes. The
 * bytes that could start a PDF name or a tag (`/`, `<`) are changed, so the
 * server's inspection never mistakes noise for `/JS` or `<script`.
 */
function pdfOf(size: number): Buffer {
  const head = '%PDF-1.4\n%\xe2\xe3\xcf\xd3\n';
  const objects = [
    '1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n',
    '2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n',
    '3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>\nendobj\n',
  ];
  const fixed = Buffer.byteLength(head + objects.join(''), 'latin1') + 400; // + stream header, xref, trailer
  const noise = randomBytes(Math.max(16, size - fixed));
  for (let i = 0; i < noise.length; i++) if (noise[i] === 0x2f || noise[i] === 0x3c) noise[i] = 0x41;
  const parts: Buffer[] = [Buffer.from(head, 'latin1')];
  const offsets: number[] = [];
  let length = parts[0]!.length;
  const add = (part: Buffer) => {
    parts.push(part);
    length += part.length;
  };
  for (const object of objects) {
    offsets.push(length);
    add(Buffer.from(object, 'latin1'));
  }
  offsets.push(length);
  add(Buffer.from(`4 0 obj\n<< /Length ${noise.length} >>\nstream\n`, 'latin1'));
  add(noise);
  add(Buffer.from('\nendstream\nendobj\n', 'latin1'));
  const xrefAt = length;
  const xref = ['xref', '0 5', '0000000000 65535 f ', ...offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n `)].join('\n');
  add(Buffer.from(`${xref}\ntrailer\n<< /Size 5 /Root 1 0 R >>\nstartxref\n${xrefAt}\n%%EOF\n`, 'latin1'));
  return Buffer.concat(parts);
}

const UPLOAD = 'mutation($file: Upload!){ uploadFile(file:$file){ id size } }';

/** The whole multipart request body (graphql-multipart-request-spec) carrying `file`. */
function multipartBody(file: Buffer, boundary: string): Buffer {
  const operations = JSON.stringify({ query: UPLOAD, variables: { file: null } });
  const map = JSON.stringify({ '0': ['variables.file'] });
  const field = (name: string, value: string) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
  return Buffer.concat([
    Buffer.from(
      field('operations', operations) +
        field('map', map) +
        `--${boundary}\r\nContent-Disposition: form-data; name="0"; filename="bench.pdf"\r\nContent-Type: application/pdf\r\n\r\n`,
    ),
    file,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
}

// --- HTTP ------------------------------------------------------------------

interface Reply {
  status: number;
  text: string;
}

function post(agent: Agent, port: number, headers: Record<string, string>, body: Buffer): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      { agent, host: '127.0.0.1', port, path: '/graphql', method: 'POST', headers: { ...headers, 'content-length': body.length } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** Why a reply is not a successful GraphQL result, or null when it is one. */
function failure(reply: Reply): string | null {
  if (reply.status !== 200) return `HTTP ${reply.status}: ${reply.text.slice(0, 300)}`;
  try {
    const json = JSON.parse(reply.text) as { data?: unknown; errors?: unknown };
    return json.errors || !json.data ? reply.text.slice(0, 300) : null;
  } catch {
    return `not JSON: ${reply.text.slice(0, 300)}`;
  }
}

// --- the server process ----------------------------------------------------

interface Server {
  /** Parley, or the bare reference. */
  label: string;
  child: ChildProcess;
  pid: number;
  port: number;
  /** The last lines it wrote, for the error message when it fails. */
  output: () => string;
}

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function startServer(label: string, argv: string[], env: NodeJS.ProcessEnv): Promise<Server> {
  const port = await freePort();
  const child = spawn(process.execPath, argv, {
    cwd: repoRoot,
    env: { ...env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const keep = (chunk: Buffer) => {
    lines.push(...chunk.toString().split('\n').filter(Boolean));
    lines.splice(0, Math.max(0, lines.length - 40));
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const pid = child.pid!;
  cleanups.push(() => stopServer(child));
  const server: Server = { label, child, pid, port, output: () => lines.join('\n') };
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${label} exited while starting (code ${child.exitCode}):\n${server.output()}`);
    const ok = await fetch(`http://127.0.0.1:${port}/ready`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return server;
    await sleep(200);
  }
  throw new Error(`${label} was not ready within 90 s:\n${server.output()}`);
}

/** SIGTERM by pid (a graceful stop), SIGKILL by pid if it has not exited within 15 s. */
async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid!, 'SIGTERM');
  const timer = setTimeout(() => {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
  }, 15_000);
  await exited;
  clearTimeout(timer);
}

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/** VmRSS and VmHWM (peak RSS since the process started) of `pid`, in bytes. */
function memoryOf(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** User + system CPU time of `pid`, in ms. */
function cpuMsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS) * 1000;
}

// --- measuring ---------------------------------------------------------------

interface Row {
  name: string;
  clients: number;
  fileBytes: number | null;
  uploads: number;
  errors: number;
  firstError: string | null;
  uploadsPerSecond: number;
  megabytesPerSecond: number;
  latency: ReturnType<typeof summarize> | null;
  probe: ReturnType<typeof summarize> & { count: number; errors: number };
  rssStart: number;
  rssPeak: number;
  hwmEnd: number;
  serverCpu: number;
  /** Share of the whole machine's CPU time busy in the measured window (clients, servers, everything else). */
  machineBusy: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs `clients` uploaders of `file` (none for the idle row) for warm-up +
 * duration, with the probe and the memory sampler running; counts what
 * completes inside the measured window.
 */
async function measure(
  server: Server,
  token: string,
  name: string,
  file: Buffer | null,
  clients: number,
  warmup: number,
  duration: number,
): Promise<Row> {
  const boundary = `----parley-bench-${randomBytes(8).toString('hex')}`;
  const body = file && multipartBody(file, boundary);
  const uploadHeaders = {
    'content-type': `multipart/form-data; boundary=${boundary}`,
    'x-graphql-yoga-csrf': '1',
    authorization: `Bearer ${token}`,
  };
  const started = performance.now();
  const windowStart = started + warmup;
  const windowEnd = windowStart + duration;

  // Memory and CPU of the server, sampled from outside.
  const rssStart = memoryOf(server.pid).rss;
  let rssPeak = rssStart;
  let cpuStart = cpuMsOf(server.pid);
  let machineStart = cpuTimes();
  const sampler = setInterval(() => {
    rssPeak = Math.max(rssPeak, memoryOf(server.pid).rss);
  }, RSS_EVERY_MS);
  const cpuMark = setTimeout(() => {
    cpuStart = cpuMsOf(server.pid);
    machineStart = cpuTimes();
  }, warmup);

  // The probe: a tiny query every 50 ms on a schedule of its own, each timed
  // from when it was due (a blocked server delays the replies, not the sends).
  const probeAgent = new Agent({ keepAlive: true, maxSockets: 4 });
  const probeBody = Buffer.from(JSON.stringify({ query: '{ viewer { id } }' }));
  const probeHeaders = { 'content-type': 'application/json', authorization: `Bearer ${token}` };
  const probeSamples: number[] = [];
  let probeErrors = 0;
  const probes: Promise<void>[] = [];
  let due = started;
  const probeTimer = setInterval(() => {
    while (due <= performance.now() && due < windowEnd) {
      const at = due;
      due += PROBE_EVERY_MS;
      probes.push(
        post(probeAgent, server.port, probeHeaders, probeBody).then(
          (reply) => {
            if (failure(reply)) probeErrors++;
            else if (at >= windowStart) probeSamples.push(performance.now() - at);
          },
          () => void probeErrors++,
        ),
      );
    }
  }, 5);

  // The uploaders: each keeps one upload in flight on its own connection.
  const latencies: number[] = [];
  let uploads = 0;
  let errors = 0;
  let firstError: string | null = null;
  const workers = body
    ? Array.from({ length: clients }, async () => {
        const agent = new Agent({ keepAlive: true, maxSockets: 1 });
        try {
          while (performance.now() < windowEnd) {
            const t0 = performance.now();
            const problem = await post(agent, server.port, uploadHeaders, body).then(failure, (error: Error) => error.message);
            const t1 = performance.now();
            if (problem) {
              errors++;
              firstError ??= problem;
              if (errors > 20 && uploads === 0) throw new Error(`uploads fail: ${firstError}`);
              continue;
            }
            if (t0 >= windowStart && t1 <= windowEnd) latencies.push(t1 - t0);
            if (t1 >= windowStart && t1 <= windowEnd) uploads++;
          }
        } finally {
          agent.destroy();
        }
      })
    : [sleep(warmup + duration)];
  try {
    await Promise.all(workers);
    while (performance.now() < windowEnd) await sleep(10);
  } finally {
    clearInterval(probeTimer);
    clearInterval(sampler);
    clearTimeout(cpuMark);
  }
  await Promise.all(probes);
  probeAgent.destroy();
  const measuredMs = duration;
  const serverCpu = (cpuMsOf(server.pid) - cpuStart) / measuredMs;
  const machineBusy = busyShare(machineStart, cpuTimes());
  return {
    name,
    clients: body ? clients : 0,
    fileBytes: file?.length ?? null,
    uploads,
    errors,
    firstError,
    uploadsPerSecond: perSecond(uploads, measuredMs),
    megabytesPerSecond: (perSecond(uploads, measuredMs) * (file?.length ?? 0)) / 1e6,
    latency: latencies.length ? summarize(latencies) : null,
    probe: { ...summarize(probeSamples), count: probeSamples.length, errors: probeErrors },
    rssStart,
    rssPeak,
    hwmEnd: memoryOf(server.pid).hwm,
    serverCpu,
    machineBusy,
  };
}

// --- the run -------------------------------------------------------------------

const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(0);
const ms = (value: number | undefined) => (value === undefined || Number.isNaN(value) ? '–' : value.toFixed(1));
const size = (bytes: number) => (bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${(bytes / 1024).toFixed(0)} KB`);
const ratio = (a: number, b: number) => (b > 0 && Number.isFinite(a) ? `${(a / b).toFixed(2)} ×` : '–');
/** RSS growth over a row: its peak over its start. */
const growth = (row: Row) => row.rssPeak - row.rssStart;
/** Whether a row's uploads kept their p99 within the bound, without errors. */
const withinBound = (row: Row) => row.errors === 0 && row.latency !== null && row.latency.p99 <= boundMs;

/** The step with the highest uploads/s among those within the bound, or null. */
function sustained(steps: Row[]): Row | null {
  let best: Row | null = null;
  for (const step of steps) if (withinBound(step) && (!best || step.uploadsPerSecond > best.uploadsPerSecond)) best = step;
  return best;
}

function printTable(rows: Row[]): void {
  console.log(
    `| load | uploads/s | MB/s | upload p50 ms | upload p99 ms | p99 ≤ ${boundMs} ms | errors | server CPU | machine busy | RSS before → peak MB | RSS growth MB | VmHWM MB | probe p50 ms | probe p99 ms | probe max ms |`,
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const row of rows) {
    const loaded = row.fileBytes !== null;
    console.log(
      `| ${row.name} | ${loaded ? row.uploadsPerSecond.toFixed(1) : '–'} | ${loaded ? row.megabytesPerSecond.toFixed(1) : '–'} | ${ms(row.latency?.p50)} | ${ms(row.latency?.p99)} | ${loaded ? (withinBound(row) ? 'yes' : 'no') : '–'} | ${row.errors} | ${(row.serverCpu * 100).toFixed(0)} % | ${(row.machineBusy * 100).toFixed(0)} % | ${mb(row.rssStart)} → ${mb(row.rssPeak)} | ${mb(growth(row))} | ${mb(row.hwmEnd)} | ${ms(row.probe.p50)} | ${ms(row.probe.p99)} | ${ms(row.probe.max)} |`,
    );
  }
}

/** One upload of each file before measuring: the server must take both and store every byte. */
async function checkUploads(server: Server, token: string, files: Buffer[]): Promise<void> {
  for (const file of files) {
    const boundary = `----parley-bench-${randomBytes(4).toString('hex')}`;
    const agent = new Agent();
    const reply = await post(
      agent,
      server.port,
      { 'content-type': `multipart/form-data; boundary=${boundary}`, 'x-graphql-yoga-csrf': '1', authorization: `Bearer ${token}` },
      multipartBody(file, boundary),
    );
    agent.destroy();
    const problem = failure(reply);
    if (problem) throw new Error(`a ${size(file.length)} upload to ${server.label} failed before the run: ${problem}`);
    const stored = (JSON.parse(reply.text) as { data: { uploadFile: { size: number } } }).data.uploadFile.size;
    if (stored !== file.length) throw new Error(`${server.label}: uploaded ${file.length} bytes, stored ${stored}`);
  }
}

const sustainedText = (row: Row | null) =>
  row
    ? `${row.uploadsPerSecond.toFixed(1)} uploads/s (${row.megabytesPerSecond.toFixed(0)} MB/s) at ${row.clients} client${row.clients === 1 ? '' : 's'}, upload p99 ${ms(row.latency?.p99)} ms, probe p99 ${ms(row.probe.p99)} ms`
    : `none: no step kept its upload p99 within ${boundMs} ms without errors`;

await runBenchmark(async () => {
  // A hard bound on the whole run, whatever hangs: the cleanups still stop the children.
  const servers = args.bare ? 2 : 1;
  const sweepSteps = args.sweep ? sweepClients.length : 0;
  const budgetMs = servers * (idleMs + 2 * (warmupMs + durationMs) + sweepSteps * (sweepWarmupMs + sweepDurationMs)) + 3 * 60_000;
  const watchdog = setTimeout(() => {
    console.error(`the run took longer than ${Math.round(budgetMs / 1000)} s: stopping`);
    process.kill(process.pid, 'SIGTERM');
  }, budgetMs);
  watchdog.unref();

  const dataDir = await mkdtemp(join(tmpdir(), 'parley-bench-upload-'));
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    PARLEY_DATA_DIR: dataDir,
    FILE_STORAGE: 'fs',
    FILE_STORAGE_DIR: join(dataDir, 'files'),
    ORG_STORAGE_QUOTA_BYTES: '0',
    JWT_SECRET: randomBytes(24).toString('hex'),
    GRAPHIQL: 'false',
  };
  delete env.REDIS_URL;
  let database = 'embedded (PGlite, in the server process: its memory counts in the RSS)';
  if (args.postgres) {
    if (process.env.DATABASE_URL) {
      env.DATABASE_URL = process.env.DATABASE_URL;
      database = 'PostgreSQL (DATABASE_URL)';
    } else {
      const created = await createBenchDatabase('upload');
      env.DATABASE_URL = created.url;
      database = `PostgreSQL (throwaway ${created.name})`;
    }
  } else {
    delete env.DATABASE_URL;
  }

  const profile = args.profile ? ['--cpu-prof', `--cpu-prof-dir=${join(repoRoot, 'bench', 'results', 'profiles')}`] : [];
  const parley = await startServer('Parley', [...profile, '--import', 'tsx', 'src/server.ts'], env);
  const gql = graphqlClient(`http://127.0.0.1:${parley.port}/graphql`);
  const runId = randomBytes(4).toString('hex');
  const { token } = await registerOrganization(gql, `Upload bench ${runId}`, `upload-bench-${runId}`, 'correct horse battery staple');

  let bare: Server | null = null;
  if (args.bare) {
    const bareDir = join(dataDir, 'bare');
    mkdirSync(bareDir);
    bare = await startServer('the bare server', [join('bench', 'bare-upload-server.mjs')], {
      PATH: process.env.PATH,
      NODE_ENV: 'production',
      UPLOAD_DIR: bareDir,
      MAX_FILE_BYTES: String(MAX_FILE_BYTES),
    });
  }

  const small = pdfOf(smallBytes);
  const large = pdfOf(largeBytes);
  await checkUploads(parley, token, [small, large]);
  if (bare) await checkUploads(bare, token, [small, large]);

  const cores = cpus().length;
  console.log(
    `Uploads: ${clients} clients, each with one GraphQL multipart upload in flight; ${args.warmup} s warm-up + ${args.duration} s measured per row.`,
  );
  console.log(`Parley: child process ${parley.pid}, ${database}, files on disk (fs driver), NODE_ENV=production.`);
  if (bare)
    console.log(
      `Bare reference: child process ${bare.pid}, node:http + busboy streaming each file to a fresh file (fsync, close), ${MAX_FILE_BYTES}-byte limit; no GraphQL, auth, inspection, database or quota.`,
    );
  console.log(
    `Probe: { viewer { id } } every ${PROBE_EVERY_MS} ms from a separate client, timed from when it was due (the bare server answers it with a fixed body).`,
  );
  if (args.sweep)
    console.log(
      `Sweep: ${sweepClients.join(', ')} clients of ${size(large.length)}, ${args['sweep-warmup']} s warm-up + ${args['sweep-duration']} s measured per step, the two servers alternating which goes first; bound: upload p99 ≤ ${boundMs} ms.`,
    );
  console.log(`Machine: ${cores} cores shared by the clients (this process), both servers${args.postgres ? ' and PostgreSQL' : ''}.\n`);

  const loads = async (server: Server): Promise<Row[]> => [
    await measure(server, token, 'idle (probe only)', null, clients, 0, idleMs),
    await measure(server, token, `${clients} × ${size(small.length)} PDF (baseline)`, small, clients, warmupMs, durationMs),
    await measure(server, token, `${clients} × ${size(large.length)} PDF`, large, clients, warmupMs, durationMs),
  ];
  const parleyRows = await loads(parley);
  const bareRows = bare ? await loads(bare) : [];

  // The sweep: at each concurrency both servers in turn, alternating which goes first.
  const parleySweep: Row[] = [];
  const bareSweep: Row[] = [];
  if (args.sweep) {
    for (const [i, n] of sweepClients.entries()) {
      const lanes: [Server, Row[]][] = [[parley, parleySweep]];
      if (bare) lanes.push([bare, bareSweep]);
      if (i % 2 === 1) lanes.reverse();
      for (const [server, steps] of lanes)
        steps.push(await measure(server, token, `sweep: ${n} × ${size(large.length)} PDF`, large, n, sweepWarmupMs, sweepDurationMs));
    }
  }

  console.log(`### Parley (${database})\n`);
  printTable([...parleyRows, ...parleySweep]);
  if (bare) {
    console.log('\n### Bare reference (node:http + busboy → fsync, no GraphQL)\n');
    printTable([...bareRows, ...bareSweep]);
  }

  const [idle, baseline, loaded] = parleyRows as [Row, Row, Row];
  console.log('\n### Summary\n');
  console.log(
    `- Parley, 10 MB vs its 10 KB baseline: ${(loaded.uploadsPerSecond / baseline.uploadsPerSecond).toFixed(3)} × the uploads/s, ` +
      `${(loaded.megabytesPerSecond / Math.max(baseline.megabytesPerSecond, 1e-9)).toFixed(0)} × the MB/s; ` +
      `probe p99 idle ${ms(idle.probe.p99)} ms, during 10 KB uploads ${ms(baseline.probe.p99)} ms, during 10 MB uploads ${ms(loaded.probe.p99)} ms.`,
  );
  const ratios: Record<string, number | null> = {};
  if (bare) {
    const [bareIdle, bareBaseline, bareLoaded] = bareRows as [Row, Row, Row];
    ratios.uploadsPerSecond10MB = loaded.uploadsPerSecond / bareLoaded.uploadsPerSecond;
    ratios.uploadsPerSecondBaseline = baseline.uploadsPerSecond / bareBaseline.uploadsPerSecond;
    ratios.peakRssGrowth10MB = growth(loaded) / Math.max(growth(bareLoaded), 1024 * 1024);
    console.log(
      `- ${clients} × ${size(large.length)}: Parley ${loaded.uploadsPerSecond.toFixed(1)} uploads/s, bare ${bareLoaded.uploadsPerSecond.toFixed(1)}: ` +
        `Parley ÷ bare = ${ratio(loaded.uploadsPerSecond, bareLoaded.uploadsPerSecond)} the uploads/s ` +
        `(upload p99 ${ms(loaded.latency?.p99)} vs ${ms(bareLoaded.latency?.p99)} ms; server CPU ${(loaded.serverCpu * 100).toFixed(0)} % vs ${(bareLoaded.serverCpu * 100).toFixed(0)} %).`,
    );
    console.log(
      `- ${clients} × ${size(small.length)} (per-request cost, few bytes): Parley ${baseline.uploadsPerSecond.toFixed(1)} uploads/s, bare ${bareBaseline.uploadsPerSecond.toFixed(1)}: ` +
        `Parley ÷ bare = ${ratio(baseline.uploadsPerSecond, bareBaseline.uploadsPerSecond)}.`,
    );
    console.log(
      `- Peak RSS growth under ${clients} × ${size(large.length)}: Parley +${mb(growth(loaded))} MB (${mb(loaded.rssStart)} → ${mb(loaded.rssPeak)} MB), ` +
        `bare +${mb(growth(bareLoaded))} MB (${mb(bareLoaded.rssStart)} → ${mb(bareLoaded.rssPeak)} MB): Parley ÷ bare = ${ratio(growth(loaded), Math.max(growth(bareLoaded), 1024 * 1024))}` +
        `${growth(bareLoaded) < 1024 * 1024 ? ' (bare growth counted as 1 MB)' : ''}. The bare server streams each part to disk; Parley's form parser holds each file whole in memory until the resolver runs.`,
    );
    console.log(
      `- Probe p99, idle → during ${clients} × ${size(large.length)}: Parley ${ms(idle.probe.p99)} → ${ms(loaded.probe.p99)} ms, bare ${ms(bareIdle.probe.p99)} → ${ms(bareLoaded.probe.p99)} ms.`,
    );
  }
  const parleySustained = args.sweep ? sustained(parleySweep) : null;
  const bareSustained = args.sweep && bare ? sustained(bareSweep) : null;
  if (args.sweep) {
    console.log(`- Sustained ${size(large.length)} uploads at upload p99 ≤ ${boundMs} ms (sweep ${sweepClients.join(', ')} clients):`);
    console.log(`  - Parley: ${sustainedText(parleySustained)}.`);
    if (bare) {
      console.log(`  - bare: ${sustainedText(bareSustained)}.`);
      if (parleySustained && bareSustained) {
        ratios.sustainedUploadsPerSecond = parleySustained.uploadsPerSecond / bareSustained.uploadsPerSecond;
        console.log(
          `  - Parley ÷ bare = ${ratio(parleySustained.uploadsPerSecond, bareSustained.uploadsPerSecond)} the sustained uploads/s.`,
        );
      }
    }
  }
  console.log(
    '- RSS: sampled every 100 ms from /proc/<pid>/status (VmRSS); VmHWM: the peak since the process started (in embedded mode, starting PGlite sets it). ' +
      "The sweep runs after the main rows, so a server's heap has already grown: its RSS growth column there is not a measure. " +
      `Server CPU: of one core (${cores} cores = ${cores * 100} %); machine busy: all cores, clients included.`,
  );
  for (const row of [...parleyRows, ...parleySweep])
    if (row.firstError) console.log(`- First error (Parley, ${row.name}): ${row.firstError}`);
  for (const row of [...bareRows, ...bareSweep]) if (row.firstError) console.log(`- First error (bare, ${row.name}): ${row.firstError}`);

  const cannotShow = [
    `One machine, ${cores} cores, shared by the clients, both servers${args.postgres ? ' and PostgreSQL' : ''}: the clients' own CPU competes with the server measured, so absolute rates are low and the ratio may differ where clients and server have machines of their own.`,
    'Loopback network, no TLS, no real client bandwidth: a real 10 MB upload trickles in over seconds, and Parley holds every part in flight in memory while it does, so its RSS grows with slow concurrent uploads, not with throughput; these runs do not show that.',
    "Disk: each file is fsynced, but on this VM's virtual disk behind the host's write cache; another disk, or FILE_STORAGE=s3 for Parley, changes the storing cost (the bare server only writes local files, and deletes them after answering).",
    'PDFs are stored as is; images are re-encoded with sharp, so a JPEG row would be bound by CPU in sharp rather than by the upload path measured here.',
    `Coarse p99: a ${args['sweep-duration']} s step at 1 client holds a few dozen uploads, so its p99 is near its max; the steps are ${sweepClients.join(', ')} clients, so the sustained rate is the best measured step, not the true maximum under the bound.`,
  ];
  console.log('\n### What these numbers cannot show\n');
  for (const line of cannotShow) console.log(`- ${line}`);

  const resultsDir = join(repoRoot, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `upload-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(
    file,
    JSON.stringify(
      {
        clients,
        durationMs,
        warmupMs,
        database,
        cores,
        rows: parleyRows,
        bare: bare ? { rows: bareRows } : null,
        sweep: args.sweep
          ? {
              clients: sweepClients,
              durationMs: sweepDurationMs,
              warmupMs: sweepWarmupMs,
              boundMs,
              parley: parleySweep,
              bare: bare ? bareSweep : null,
            }
          : null,
        sustained: args.sweep ? { boundMs, parley: parleySustained, bare: bareSustained } : null,
        parleyOverBare: ratios,
        cannotShow,
      },
      null,
      2,
    ),
  );
  console.log(`\nJSON: ${file}`);
  clearTimeout(watchdog);
});
