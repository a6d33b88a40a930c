// Benchmark: uploads (issue 12, §5). A Parley server in a child process (its
// own memory and event loop, measured from outside through /proc) takes
// GraphQL multipart uploads from N clients at once: first 10 KB PDFs (the
// baseline: the same requests, the same path, almost no bytes), then 10 MB
// PDFs. Throughout, a probe client sends `{ viewer { id } }` every 50 ms, and
// its latency, idle and under each load, shows whether reading, inspecting
// and storing files holds up the other requests. PDFs are stored as they
// come (no re-encoding), so the 10 MB rows measure the upload path itself.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cleanups, runBenchmark } from './lib/cleanup.ts';
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
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(`npx tsx bench/upload.ts [--duration 20] [--warmup 3] [--idle 5] [--clients 8] [--size 10000000] [--small 10240] [--postgres]

  --duration   seconds measured per load row (default 20), after --warmup seconds of the same load (default 3)
  --idle       seconds the probe runs alone first (default 5)
  --clients    concurrent uploaders, each with one upload in flight (default 8)
  --size       bytes of the large PDF (default 10,000,000: under UPLOAD_MAX_FILE_BYTES, 10 MiB)
  --small      bytes of the baseline PDF (default 10,240)
  --postgres   PostgreSQL instead of the embedded database: DATABASE_URL if set, else a throwaway
               database parley_bench_upload_<id> made from BENCH_PG_ADMIN_URL and dropped at the end
  --profile    the server runs with --cpu-prof: a V8 CPU profile of its whole life in bench/results/profiles/

The server runs as \`node --import tsx src/server.ts\` in a child process (NODE_ENV=production,
files on disk in a temp directory, no Redis, no storage quota), stopped by its pid at the end.`);
  process.exit(0);
}
const durationMs = Number(args.duration) * 1000;
const warmupMs = Number(args.warmup) * 1000;
const idleMs = Number(args.idle) * 1000;
const clients = Number(args.clients);
const largeBytes = Number(args.size);
const smallBytes = Number(args.small);
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

async function startServer(env: NodeJS.ProcessEnv): Promise<Server> {
  const port = await freePort();
  const profile = args.profile ? ['--cpu-prof', `--cpu-prof-dir=${join(repoRoot, 'bench', 'results', 'profiles')}`] : [];
  const child = spawn(process.execPath, [...profile, '--import', 'tsx', 'src/server.ts'], {
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
  const server: Server = { child, pid, port, output: () => lines.join('\n') };
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the server exited while starting (code ${child.exitCode}):\n${server.output()}`);
    const ok = await fetch(`http://127.0.0.1:${port}/ready`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return server;
    await sleep(200);
  }
  throw new Error(`the server was not ready within 90 s:\n${server.output()}`);
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
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs `clients` uploaders of `file` (none for the idle row) for warm-up +
 * duration, with the probe and the memory sampler running; counts what
 * completes inside the measured window.
 */
async function measure(server: Server, token: string, name: string, file: Buffer | null, warmup: number, duration: number): Promise<Row> {
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
  const sampler = setInterval(() => {
    rssPeak = Math.max(rssPeak, memoryOf(server.pid).rss);
  }, RSS_EVERY_MS);
  const cpuMark = setTimeout(() => (cpuStart = cpuMsOf(server.pid)), warmup);

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
  return {
    name,
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
  };
}

// --- the run -------------------------------------------------------------------

const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(0);
const ms = (value: number | undefined) => (value === undefined || Number.isNaN(value) ? '–' : value.toFixed(1));
const size = (bytes: number) => (bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${(bytes / 1024).toFixed(0)} KB`);

await runBenchmark(async () => {
  // A hard bound on the whole run, whatever hangs: the cleanups still stop the child.
  const budgetMs = idleMs + 2 * (warmupMs + durationMs) + 3 * 60_000;
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

  const server = await startServer(env);
  const gql = graphqlClient(`http://127.0.0.1:${server.port}/graphql`);
  const runId = randomBytes(4).toString('hex');
  const { token } = await registerOrganization(gql, `Upload bench ${runId}`, `upload-bench-${runId}`, 'correct horse battery staple');

  const small = pdfOf(smallBytes);
  const large = pdfOf(largeBytes);
  // One upload of each before measuring: the mutation must exist and take both.
  for (const file of [small, large]) {
    const boundary = `----parley-bench-${runId}`;
    const reply = await post(
      new Agent(),
      server.port,
      { 'content-type': `multipart/form-data; boundary=${boundary}`, 'x-graphql-yoga-csrf': '1', authorization: `Bearer ${token}` },
      multipartBody(file, boundary),
    );
    const problem = failure(reply);
    if (problem) throw new Error(`a ${size(file.length)} upload failed before the run: ${problem}`);
    const stored = (JSON.parse(reply.text) as { data: { uploadFile: { size: number } } }).data.uploadFile.size;
    if (stored !== file.length) throw new Error(`uploaded ${file.length} bytes, stored ${stored}`);
  }

  console.log(
    `Uploads: ${clients} clients, each with one GraphQL multipart upload in flight; ${args.warmup} s warm-up + ${args.duration} s measured per row.`,
  );
  console.log(`Server: child process ${server.pid}, ${database}, files on disk (fs driver), NODE_ENV=production.`);
  console.log(`Probe: { viewer { id } } every ${PROBE_EVERY_MS} ms from a separate client, timed from when it was due.\n`);

  const rows: Row[] = [];
  rows.push(await measure(server, token, 'idle (probe only)', null, 0, idleMs));
  rows.push(await measure(server, token, `${clients} × ${size(small.length)} PDF (baseline)`, small, warmupMs, durationMs));
  rows.push(await measure(server, token, `${clients} × ${size(large.length)} PDF`, large, warmupMs, durationMs));

  console.log(
    '| load | uploads/s | MB/s | upload p50 ms | upload p99 ms | errors | server CPU | RSS before → peak MB | VmHWM MB | probe p50 ms | probe p99 ms | probe max ms |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const row of rows) {
    console.log(
      `| ${row.name} | ${row.fileBytes ? row.uploadsPerSecond.toFixed(1) : '–'} | ${row.fileBytes ? row.megabytesPerSecond.toFixed(1) : '–'} | ${ms(row.latency?.p50)} | ${ms(row.latency?.p99)} | ${row.errors} | ${(row.serverCpu * 100).toFixed(0)} % | ${mb(row.rssStart)} → ${mb(row.rssPeak)} | ${mb(row.hwmEnd)} | ${ms(row.probe.p50)} | ${ms(row.probe.p99)} | ${ms(row.probe.max)} |`,
    );
  }
  const [idle, baseline, loaded] = rows as [Row, Row, Row];
  console.log('');
  console.log(
    `10 MB vs baseline: ${(loaded.uploadsPerSecond / baseline.uploadsPerSecond).toFixed(3)} × the uploads/s, ` +
      `${(loaded.megabytesPerSecond / Math.max(baseline.megabytesPerSecond, 1e-9)).toFixed(0)} × the MB/s; ` +
      `server peak RSS ${mb(loaded.rssPeak)} MB with ${clients} uploads of ${size(large.length)} in flight, ${mb(loaded.rssPeak - loaded.rssStart)} MB over its RSS before the row.`,
  );
  console.log(
    `Probe p99: idle ${ms(idle.probe.p99)} ms, during 10 KB uploads ${ms(baseline.probe.p99)} ms, during 10 MB uploads ${ms(loaded.probe.p99)} ms.`,
  );
  console.log(
    'RSS: sampled every 100 ms from /proc/<pid>/status (VmRSS); VmHWM: the peak since the server started (in embedded mode, starting PGlite sets it).',
  );
  for (const row of rows) if (row.firstError) console.log(`First error (${row.name}): ${row.firstError}`);

  const resultsDir = join(repoRoot, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `upload-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ clients, durationMs, warmupMs, database, rows }, null, 2));
  console.log(`\nJSON: ${file}`);
  clearTimeout(watchdog);
});
