// Benchmark B1: sendMessage over HTTP against PostgreSQL, beside a floor measured
// in the same run (see bench/README.md for how to read the output).
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cpuTimes, idleShare } from './lib/cpu.ts';
import { createBenchDatabase, rows, scalar } from './lib/database.ts';
import { assertRedis, defaultRedisUrl, redisCpuMs, sumOfKeys } from './lib/redis.ts';
import { startFloor, type Floor } from './lib/floor.ts';
import { createGroupChannel, graphqlClient, rawId, registerOrganization, type Gql } from './lib/graphql.ts';
import { CHANNEL, KEY, LoadGenerator, type LoadSpec } from './lib/load.ts';
import {
  combine,
  printHeader,
  printIntegrity,
  printProfile,
  printRows,
  printVerdict,
  writeResults,
  type Case,
  type Integrity,
  type Profile,
  type Row,
  type RunInfo,
  type Slice,
} from './lib/report.ts';
import { inSlices, median } from './lib/stats.ts';
import { cleanups, runBenchmark } from './lib/cleanup.ts';
import type { Config } from '../src/config.ts';

const TARGET = 0.6;
const BODY = 'Benchmark message: the quick brown fox jumps over the lazy dog.';
const SEND = `mutation Send($input: SendMessageInput!) { sendMessage(input: $input) { id seq body clientMessageId createdAt } }`;

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '200' },
    slices: { type: 'string', default: '4' },
    concurrency: { type: 'string', default: '1,16,64' },
    'no-redis': { type: 'boolean', default: false },
    'skip-profile': { type: 'boolean', default: false },
    'skip-mentions': { type: 'boolean', default: false },
    'mentions-only': { type: 'boolean', default: false },
    'skip-limits': { type: 'boolean', default: false },
    'limits-only': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(`npm run bench:send -- [--duration 5] [--slices 4] [--warmup 200] [--concurrency 1,16,64] [--no-redis] [--skip-profile]
                      [--skip-mentions | --mentions-only] [--skip-limits | --limits-only]

  --duration       seconds measured per row and server (default 5)
  --warmup         requests before each measured row, on the same connections (default 200)
  --slices         alternating floor/Parley slices the duration is cut into (default 4)
  --concurrency    comma-separated worker counts (default 1,16,64)
  --no-redis       in-process pub/sub instead of Redis
  --skip-profile   skip the per-request breakdown at concurrency 1
  --skip-mentions  skip the plain vs "3 mentions + 2 links" comparison
  --mentions-only  run only that comparison (no floor rows, no profile)
  --skip-limits    skip the rate limiter off vs on comparison
  --limits-only    run only that comparison (no floor rows, no profile)

Environment: BENCH_PG_ADMIN_URL (default postgresql://postgres@127.0.0.1:5432/postgres),
REDIS_URL (default redis://127.0.0.1:6379), DATABASE_POOL_SIZE (default 10, used by both servers),
NODE_ENV (default production, as in docker-compose.yml).`);
  process.exit(0);
}

const durationMs = Number(args.duration) * 1000;
const warmupRequests = Number(args.warmup);
const slices = Number(args.slices);
const levels = args.concurrency.split(',').map(Number);
if (
  !(durationMs > 0) ||
  !(warmupRequests >= 0) ||
  !Number.isInteger(slices) ||
  slices < 1 ||
  levels.some((c) => !Number.isInteger(c) || c < 1)
) {
  throw new Error('--duration must be positive, --warmup non-negative, --slices and --concurrency positive integers');
}
const redisUrl = args['no-redis'] ? null : defaultRedisUrl;
const runId = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

// Production mode as docker-compose.yml runs it; it must be set before the
// schema module loads, because the Pothos builder reads it at import time.
process.env.NODE_ENV ??= 'production';
const { buildApp } = await import('../src/app.ts');
const { loadConfig } = await import('../src/config.ts');
const { writableChannel } = await import('../src/services/access.ts');
const { TokenService } = await import('../src/auth/tokens.ts');
type App = Awaited<ReturnType<typeof buildApp>>;

/** A server under test: where to send, what to send, and its channels (one shared, one per worker). */
interface Target {
  name: 'parley' | 'floor';
  port: number;
  path: string;
  headers: Record<string, string>;
  template: string;
  shared: string;
  own: string[];
}

async function main(): Promise<void> {
  if (redisUrl) await assertRedis(redisUrl, 'start it or pass --no-redis');
  const db = await createBenchDatabase('send');

  const config = loadConfig(
    // Rate limits off: one user sends as fast as it can, which the default
    // limits would refuse, and B1's rows stay comparable with runs from before
    // the limiter. What the limiter costs is its own comparison (compareLimits).
    { LOG_LEVEL: 'silent', PASSWORD_HASH_COST: '10', DATABASE_POOL_SIZE: process.env.DATABASE_POOL_SIZE, RATE_LIMITS: 'off' },
    {
      databaseUrl: db.url,
      redisUrl,
      redisPrefix: `parley-bench:${runId}:`,
      host: '127.0.0.1',
      dataDir: join(tmpdir(), `parley-bench-${runId}`),
      jwtSecret: `bench-secret-${runId}-0123456789`,
      // One sign-in serves the whole run, however many rows and seconds it is given.
      accessTokenTtlSeconds: 24 * 3600,
      graphiql: false,
    },
  );
  const app = await buildApp(config);
  cleanups.push(() => app.stop());
  const port = await app.start(0);
  const gql = graphqlClient(`http://127.0.0.1:${port}/graphql`);

  const info: RunInfo = {
    pgVersion: await scalar<string>(db.url, 'SHOW server_version'),
    database: db.name,
    poolSize: config.databasePoolSize,
    redisUrl,
    durationMs,
    slices,
    warmupRequests,
    idleBefore: await idleShare(1000),
    target: TARGET,
  };
  printHeader(info);

  const maxConcurrency = Math.max(...levels);
  const setup = await prepare(gql, db.url, maxConcurrency);
  if (args['mentions-only'] || args['limits-only']) {
    const load = await LoadGenerator.start();
    cleanups.push(() => load.stop());
    if (args['mentions-only']) {
      const result = await compareMentions(load, port, setup, maxConcurrency);
      console.log(`\nResults written to ${writeComparison('mentions', 'B1 sendMessage: mentions', info, result)}`);
    }
    if (args['limits-only']) {
      const result = await compareLimits(load, config, setup);
      console.log(`\nResults written to ${writeComparison('limits', 'B1 sendMessage: rate limiter', info, result)}`);
    }
    return;
  }
  const floor = await startFloor({
    databaseUrl: db.url,
    poolSize: config.databasePoolSize,
    organizationId: setup.organizationId,
    senderId: setup.userId,
  });
  cleanups.push(() => floor.stop());
  const load = await LoadGenerator.start();
  cleanups.push(() => load.stop());

  const parleyTarget: Target = {
    name: 'parley',
    port,
    path: '/graphql',
    headers: { authorization: `Bearer ${setup.token}` },
    template: JSON.stringify({ query: SEND, variables: { input: { channelId: CHANNEL, body: BODY, clientMessageId: KEY } } }),
    shared: setup.parley.shared,
    own: setup.parley.own,
  };
  const floorTarget: Target = {
    name: 'floor',
    port: floor.port,
    path: '/',
    headers: {},
    template: JSON.stringify({ channelId: CHANNEL, body: BODY, clientMessageId: KEY }),
    shared: setup.floor.shared,
    own: setup.floor.own,
  };

  // JIT, connection pools and caches settle before anything counts.
  const settle = Math.max(1000, Math.min(durationMs, 2000));
  for (const target of [floorTarget, parleyTarget]) {
    await measure(load, target, { concurrency: Math.min(16, maxConcurrency), channels: 'own' }, settle, 'settle', 0);
  }

  const cases: Case[] = levels.flatMap((concurrency): Case[] =>
    concurrency === 1
      ? [{ concurrency, channels: 'shared' }]
      : [
          { concurrency, channels: 'shared' },
          { concurrency, channels: 'own' },
        ],
  );
  const rows: Row[] = [];
  for (const c of cases) {
    process.stdout.write(
      `  running concurrency ${c.concurrency}, ${c.channels === 'shared' ? 'one channel' : 'one channel per worker'} ...`,
    );
    // Short alternating slices (floor, Parley, Parley, floor, ...) so that load
    // from other processes on the machine hits both servers alike.
    const [floorParts, parleyParts] = await inSlices([floorTarget, parleyTarget], slices, (target, i) =>
      measure(load, target, c, durationMs / slices, `row${i}`, i === 0 ? warmupRequests : c.concurrency),
    );
    const floorResult = combine(floorParts!);
    const parleyResult = combine(parleyParts!);
    rows.push({ ...c, floor: floorResult, parley: parleyResult, ratio: parleyResult.perSecond / floorResult.perSecond });
    process.stdout.write(' done\n');
  }

  const integrity = await checkLogs(db.url, [...setup.parley.raw, ...setup.floor.raw]);
  printRows(rows, config.databasePoolSize);
  printIntegrity(integrity);
  if (!integrity.gapFree) process.exitCode = 1;

  let profile: Profile | null = null;
  if (!args['skip-profile']) {
    process.stdout.write('\n  profiling one request at concurrency 1 ...');
    profile = await profileOneRequest({ config, load, parleyTarget, floorTarget, floor, setup, app });
    process.stdout.write(' done\n');
    printProfile(profile);
  }
  const verdict = printVerdict(rows, TARGET);
  const file = writeResults(info, { rows, integrity, profile, verdict });
  console.log(`\nResults written to ${file}`);
  if (!args['skip-mentions']) {
    const result = await compareMentions(load, port, setup, maxConcurrency);
    console.log(`Results written to ${writeComparison('mentions', 'B1 sendMessage: mentions', info, result)}`);
  }
  if (!args['skip-limits']) {
    const result = await compareLimits(load, config, setup);
    console.log(`Results written to ${writeComparison('limits', 'B1 sendMessage: rate limiter', info, result)}`);
  }
}

/** Issue 11: a send with 3 mentions and 2 links costs at most this many times a plain one. */
const MENTION_TARGET = 1.3;

interface MentionRow extends Case {
  plain: ReturnType<typeof combine>;
  mentions: ReturnType<typeof combine>;
  /** Plain throughput over mention throughput: how many plain sends one mention send costs. */
  throughputRatio: number;
  /** Median latency of a mention send over that of a plain send. */
  latencyRatio: number;
  /** Server CPU per mention send over that per plain send. */
  cpuRatio: number;
}

/**
 * Plain sends against sends whose body mentions three members and links two
 * entities, in alternating slices of the same run and on the same channels:
 * what mentions, links and their notifications add to a send (issue 11).
 */
async function compareMentions(load: LoadGenerator, port: number, setup: Setup, maxConcurrency: number) {
  const names = setup.mentioned.map((u) => `@${u}`).join(' ');
  const mentionBody = `Benchmark message for ${names}: see @task#45 and @task#46, the quick brown fox.`;
  const target = (name: 'parley', body: string): Target => ({
    name,
    port,
    path: '/graphql',
    headers: { authorization: `Bearer ${setup.token}` },
    template: JSON.stringify({ query: SEND, variables: { input: { channelId: CHANNEL, body, clientMessageId: KEY } } }),
    shared: setup.parley.shared,
    own: setup.parley.own,
  });
  const plain = target('parley', BODY);
  const mentions = target('parley', mentionBody);
  const cases: Case[] = [
    { concurrency: 1, channels: 'shared' },
    { concurrency: Math.min(16, maxConcurrency), channels: 'own' },
  ];
  console.log(`\n  Mentions (issue 11): plain body vs "${mentionBody}"`);
  const rows: MentionRow[] = [];
  for (const c of cases) {
    process.stdout.write(
      `  running concurrency ${c.concurrency}, ${c.channels === 'shared' ? 'one channel' : 'one channel per worker'} ...`,
    );
    const [plainParts, mentionParts] = await inSlices([plain, mentions], slices, (t, i) =>
      measure(load, t, c, durationMs / slices, `${t === plain ? 'plain' : 'mentions'}${i}`, i === 0 ? warmupRequests : c.concurrency),
    );
    const p = combine(plainParts!);
    const m = combine(mentionParts!);
    const cpuPer = (x: ReturnType<typeof combine>) => x.serverCpu / x.perSecond;
    rows.push({
      ...c,
      plain: p,
      mentions: m,
      throughputRatio: p.perSecond / m.perSecond,
      latencyRatio: m.latency.p50 / p.latency.p50,
      cpuRatio: cpuPer(m) / cpuPer(p),
    });
    process.stdout.write(' done\n');
  }
  const f = (n: number, d = 2) => n.toFixed(d);
  console.log('\n  conc  channels   plain/s  mentions/s  cost (plain/s ÷ mentions/s)  p50 plain  p50 mentions  p50 ratio  CPU/send ratio');
  for (const r of rows) {
    console.log(
      `  ${String(r.concurrency).padStart(4)}  ${(r.channels === 'shared' ? '1' : String(r.concurrency)).padStart(8)}  ${f(r.plain.perSecond, 0).padStart(8)}  ${f(r.mentions.perSecond, 0).padStart(10)}  ${f(r.throughputRatio).padStart(27)}  ${f(r.plain.latency.p50).padStart(9)}  ${f(r.mentions.latency.p50).padStart(12)}  ${f(r.latencyRatio).padStart(9)}  ${f(r.cpuRatio).padStart(14)}`,
    );
  }
  const worst = Math.max(...rows.map((r) => Math.max(r.throughputRatio, r.latencyRatio)));
  const pass = worst <= MENTION_TARGET;
  console.log(`\n  Mentions verdict: ${pass ? 'PASS' : 'FAIL'} (worst cost ratio ${f(worst)}, target at most ${MENTION_TARGET})`);
  return { body: mentionBody, rows, target: MENTION_TARGET, worst, pass };
}

/** Writes a comparison's results to bench/results/send-<name>-<timestamp>.json and returns the path. */
function writeComparison(name: string, benchmark: string, info: RunInfo, result: object): string {
  const dir = new URL('./results/', import.meta.url);
  mkdirSync(dir, { recursive: true });
  const at = new Date().toISOString();
  const file = new URL(`send-${name}-${at.replace(/[:.]/g, '-')}.json`, dir);
  writeFileSync(file, `${JSON.stringify({ benchmark, at, info, ...result }, null, 2)}\n`);
  return fileURLToPath(file);
}

/** Issue 13: the rate limiter may cost at most this share of sendMessage throughput. */
const LIMITS_TARGET = 0.05;

/** Budgets no benchmark reaches, so the limiter counts every send and refuses none. */
const UNREACHABLE = { points: 1_000_000_000, seconds: 3600 };

interface LimitsRow extends Case {
  /** Both limiter-off apps together. */
  off: ReturnType<typeof combine>;
  on: ReturnType<typeof combine>;
  /** 1 - on/off throughput: the share of throughput the limiter costs. */
  loss: number;
  /** 1 - (second off app)/(first off app): two identical apps differ by this much; a loss within it is noise. */
  control: number;
  /** Server CPU per send, in ms. */
  cpuPerSend: { off: number; on: number };
  /** Idle share of the machine just before the row (it waits up to 10 s for 80 %). */
  idleBefore: number;
}

/**
 * sendMessage with the rate limiter off against the same with it on (budgets
 * no one reaches, so every send is counted and none refused), in rotating
 * slices of the same run, on the same channels, from the same load generator.
 * Three fresh apps with identical settings apart from the switch, each with
 * its own Redis prefix, built in the order off, on, off: the two off apps are
 * the control (what separates two identical apps in this process and on this
 * machine), and the on app is built between them. The limiter's
 * store is Redis when the run uses Redis, memory otherwise, as in production.
 */
async function compareLimits(load: LoadGenerator, config: Config, setup: Setup) {
  const start = async (lane: 'off-a' | 'on' | 'off-b') => {
    const enabled = lane === 'on';
    const writes = Object.fromEntries(Object.keys(config.rateLimits.writes).map((bucket) => [bucket, UNREACHABLE]));
    const app = await buildApp({
      ...config,
      redisPrefix: `${config.redisPrefix}limits-${lane}:`,
      rateLimits: { ...config.rateLimits, enabled, writes: writes as Config['rateLimits']['writes'] },
    });
    cleanups.push(() => app.stop());
    let refused = 0;
    const metrics = app.services.rateLimits.onRefused;
    app.services.rateLimits.onRefused = (limit) => {
      refused++;
      metrics?.(limit);
    };
    const target: Target = {
      name: 'parley',
      port: await app.start(0),
      path: '/graphql',
      headers: { authorization: `Bearer ${setup.token}` },
      template: JSON.stringify({ query: SEND, variables: { input: { channelId: CHANNEL, body: BODY, clientMessageId: KEY } } }),
      shared: setup.parley.shared,
      own: setup.parley.own,
    };
    return { lane, app, target, sent: 0, refused: () => refused };
  };
  const offA = await start('off-a');
  const on = await start('on');
  const offB = await start('off-b');
  const lanes = [offA, on, offB];
  const store = config.redisUrl ? `Redis ${config.redisUrl}` : 'memory';
  // Every lane takes every position of a round equally often, and no lane runs twice in a row.
  const rounds = 3 * Math.ceil(slices / 3);
  console.log(
    `\n  Rate limiter (issue 13): off vs on (store: ${store}; every write bucket ${UNREACHABLE.points} per ${UNREACHABLE.seconds} s; ` +
      `${rounds} rounds of ${(durationMs / rounds / 1000).toFixed(2)} s per app)`,
  );

  type Lane = typeof on;
  const run = async (lane: Lane, c: Case, ms: number, tag: string, warmup: number) => {
    const slice = await measure(load, lane.target, c, ms, `limits-${lane.lane}-${tag}`, warmup);
    lane.sent += slice.sent;
    return slice;
  };
  // Each fresh app settles (its pool, Yoga's caches) before anything counts.
  const settle = Math.max(1000, Math.min(durationMs, 2000));
  const widest = Math.max(...levels);
  for (const lane of lanes) await run(lane, { concurrency: Math.min(16, widest), channels: 'own' }, settle, 'settle', 0);

  // Concurrency 1 has one channel anyway; above it every worker has its own, so
  // no channel row lock hides the limiter's cost behind queueing.
  const cases: Case[] = levels.map((concurrency) => ({ concurrency, channels: concurrency === 1 ? 'shared' : 'own' }));
  const rows: LimitsRow[] = [];
  for (const c of cases) {
    const idleBefore = await quietMachine();
    process.stdout.write(
      `  running concurrency ${c.concurrency}, ${c.channels === 'shared' ? 'one channel' : 'one channel per worker'} ...`,
    );
    const parts = new Map<Lane, Slice[]>(lanes.map((lane) => [lane, []]));
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < lanes.length; k++) {
        const lane = lanes[(round + k) % lanes.length]!;
        const slice = await run(lane, c, durationMs / rounds, String(round), round === 0 ? warmupRequests : c.concurrency);
        parts.get(lane)!.push(slice);
      }
    }
    const o = combine([...parts.get(offA)!, ...parts.get(offB)!]);
    const n = combine(parts.get(on)!);
    rows.push({
      ...c,
      off: o,
      on: n,
      loss: 1 - n.perSecond / o.perSecond,
      control: 1 - combine(parts.get(offB)!).perSecond / combine(parts.get(offA)!).perSecond,
      cpuPerSend: { off: (o.serverCpu * 1000) / o.perSecond, on: (n.serverCpu * 1000) / n.perSecond },
      idleBefore,
    });
    process.stdout.write(` done (machine ${Math.round(idleBefore * 100)} % idle before)\n`);
  }

  // The limiter falls back to memory when Redis fails, silently by design; the
  // counters in Redis show whether it really counted every send there.
  const counted = config.redisUrl ? await sumOfKeys(config.redisUrl, `${config.redisPrefix}limits-on:rl:send:*`) : null;
  const offCounted = config.redisUrl ? await sumOfKeys(config.redisUrl, `${config.redisPrefix}limits-off-*:rl:*`) : null;
  const refused = { off: offA.refused() + offB.refused(), on: on.refused() };
  const consume = await limiterCalls(on.app, setup.userId, config.redisUrl);

  const f = (n: number, d = 2) => n.toFixed(d);
  const pct = (n: number) => `${(n * 100).toFixed(1)} %`;
  console.log('\n  conc  channels | off msg/s  on msg/s    loss  off vs off | p50 off  p50 on | p99 off  p99 on | CPU ms/send off  on');
  for (const r of rows) {
    console.log(
      `  ${String(r.concurrency).padStart(4)}  ${(r.channels === 'shared' ? '1' : String(r.concurrency)).padStart(8)} | ` +
        `${f(r.off.perSecond, 0).padStart(9)}  ${f(r.on.perSecond, 0).padStart(8)}  ${pct(r.loss).padStart(6)}  ${pct(r.control).padStart(10)} | ` +
        `${f(r.off.latency.p50).padStart(7)}  ${f(r.on.latency.p50).padStart(6)} | ${f(r.off.latency.p99).padStart(7)}  ${f(r.on.latency.p99).padStart(6)} | ` +
        `${f(r.cpuPerSend.off, 3).padStart(14)}  ${f(r.cpuPerSend.on, 3)}`,
    );
  }
  console.log(
    `\n  Refused (RATE_LIMITED): ${refused.on} with the limiter on, ${refused.off} off; every request answered (a failed one stops the run).`,
  );
  if (counted !== null) {
    console.log(
      `  Redis counted ${counted} sends for the limiter-on app, which was sent ${on.sent}; the limiter-off apps left ${offCounted} counts.`,
    );
  }
  // The check's CPU (this process and Redis, which share the machine's cores
  // with it here) as a share of what a send costs without it: the loss to
  // expect once the server is CPU-bound, far steadier than throughput.
  const checkCpuMs = consume.cpuMsPerCall + (consume.redisCpuMsPerCall ?? 0);
  const busiest = rows[rows.length - 1]!;
  const expectedLoss = checkCpuMs / (busiest.cpuPerSend.off + checkCpuMs);
  console.log(
    `  One limiter check in-process (${store}), as the plugin calls it: ${f(consume.sequentialMs, 3)} ms median alone; with 64 in flight ` +
      `${f(consume.cpuMsPerCall * 1000, 0)} µs of this process's CPU` +
      `${consume.redisCpuMsPerCall === null ? '' : ` and ${f(consume.redisCpuMsPerCall * 1000, 0)} µs of Redis's (all its clients')`} each, ` +
      `${pct(expectedLoss)} of the ${f(busiest.cpuPerSend.off, 3)} ms a send cost at concurrency ${busiest.concurrency} without it.`,
  );
  const quiet = Math.min(...rows.map((r) => r.idleBefore)) >= 0.8;
  if (!quiet) console.log(`  WARNING: the machine was busy before a row: other work, not the limiter, may set the losses above.`);
  const countsHold = refused.on === 0 && refused.off === 0 && (counted === null || (counted === on.sent && offCounted === 0));
  const worst = Math.max(...rows.map((r) => r.loss));
  // A row's loss that its control (two identical apps) matches or exceeds says nothing about the limiter.
  const over = rows.filter((r) => r.loss > LIMITS_TARGET);
  const verdict = !countsHold
    ? 'FAIL'
    : over.length === 0
      ? 'PASS'
      : over.every((r) => r.loss <= Math.abs(r.control))
        ? 'INCONCLUSIVE'
        : 'FAIL';
  console.log(
    `\n  Rate limiter verdict: ${verdict} (worst throughput loss ${pct(worst)}, target at most ${pct(LIMITS_TARGET)}` +
      `${over.length > 0 ? `; over it: ${over.map((r) => `concurrency ${r.concurrency} (${pct(r.loss)}, off vs off ${pct(r.control)})`).join(', ')}` : ''}` +
      `${countsHold ? '' : '; the limiter refused sends or did not count them all in Redis'})`,
  );
  if (!countsHold) process.exitCode = 1;
  return {
    store: config.redisUrl ? 'redis' : 'memory',
    budget: UNREACHABLE,
    rounds,
    rows,
    refused,
    redisCounted: counted,
    onSent: on.sent,
    consume,
    expectedLoss,
    quiet,
    target: LIMITS_TARGET,
    worst,
    verdict,
  };
}

/**
 * What the limiter's check of one sendMessage costs on its own, called as the
 * Yoga plugin calls it: the median wall time of sequential calls (what it adds
 * to a lone request's latency), and this process's CPU per call with 64 in
 * flight (what it takes from throughput when the server is CPU-bound).
 */
async function limiterCalls(app: App, userId: string, redisUrl: string | null) {
  const limits = app.services.rateLimits;
  const who = { viewer: { id: userId }, integration: null, client: { ip: '127.0.0.1' } };
  const counts = new Map([['sendMessage' as const, 1]]);
  const sequentialMs = await timed(() => limits.write(who, counts), 500);
  const calls = 5000;
  const inFlight = 64;
  const cpu = process.cpuUsage();
  const redisBefore = redisUrl ? await redisCpuMs(redisUrl) : 0;
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next++ < calls) await limits.write(who, counts);
    }),
  );
  const redisMs = redisUrl ? (await redisCpuMs(redisUrl)) - redisBefore : null;
  const used = process.cpuUsage(cpu);
  return {
    sequentialMs,
    cpuMsPerCall: (used.user + used.system) / 1000 / calls,
    redisCpuMsPerCall: redisMs === null ? null : redisMs / calls,
  };
}

/** Waits until the machine is mostly idle (80 % over half a second), for at most 10 s; returns the last idle share seen. */
async function quietMachine(): Promise<number> {
  let idle = 0;
  for (const started = Date.now(); Date.now() - started < 10_000;) {
    idle = await idleShare(500);
    if (idle >= 0.8) break;
  }
  return idle;
}

interface ChannelSet {
  shared: string;
  own: string[];
  raw: string[];
}

interface Setup {
  token: string;
  /** Usernames of three members of every Parley channel, for the mentions comparison. */
  mentioned: string[];
  userId: string;
  organizationId: string;
  parley: ChannelSet;
  floor: ChannelSet;
}

/** One organization and its owner; for each server one shared channel and one per worker, all made through the API. */
async function prepare(gql: Gql, databaseUrl: string, perWorker: number): Promise<Setup> {
  const auth = await registerOrganization(gql, 'Benchmark', `bench-${runId}`, 'benchmark-password');
  const names = (prefix: string) => Array.from({ length: perWorker + 1 }, (_, i) => `${prefix}-${i}`);
  const channelSet = async (prefix: string): Promise<ChannelSet> => {
    const ids: string[] = [];
    for (const name of names(prefix)) ids.push(await createGroupChannel(gql, auth.token, name));
    const [shared, ...own] = ids;
    return { shared: shared!, own, raw: ids.map(rawId) };
  };
  const parley = await channelSet('parley');
  const floorSet = await channelSet('floor');
  const userId = auth.userId;
  const mentioned = [`alice-${runId}`, `bob-${runId}`, `carol-${runId}`];
  const memberIds: string[] = [];
  for (const username of mentioned) {
    const { createUser } = await gql<{ createUser: { id: string } }>(
      `mutation($input: CreateUserInput!) { createUser(input: $input) { id } }`,
      { input: { username, displayName: username, role: 'MEMBER', password: 'benchmark-password' } },
      auth.token,
    );
    memberIds.push(createUser.id);
  }
  for (const channelId of [parley.shared, ...parley.own]) {
    await gql(
      `mutation($c: ID!, $u: [ID!]!) { addChannelMembers(channelId: $c, userIds: $u) { id } }`,
      { c: channelId, u: memberIds },
      auth.token,
    );
  }
  return {
    token: auth.token,
    mentioned,
    userId,
    organizationId: await scalar<string>(databaseUrl, 'SELECT "organizationId" FROM "User" WHERE id = $1', [userId]),
    parley,
    // The floor takes raw uuids in its JSON body.
    floor: { shared: rawId(floorSet.shared), own: floorSet.own.map(rawId), raw: floorSet.raw },
  };
}

async function measure(
  load: LoadGenerator,
  target: Target,
  c: Case,
  ms: number,
  tag: string,
  warmup = warmupRequests,
  onMeasuring: () => void = () => {},
): Promise<Slice> {
  const spec: LoadSpec = {
    port: target.port,
    path: target.path,
    headers: target.headers,
    template: target.template,
    channels: c.channels === 'shared' ? [target.shared] : target.own.slice(0, c.concurrency),
    concurrency: c.concurrency,
    warmupRequests: warmup,
    durationMs: ms,
    tag: `${target.name}-${tag}-${c.concurrency}-${c.channels}-${runId}`,
  };
  let cpuStart = process.cpuUsage();
  let machineStart = cpuTimes();
  let wallStart = performance.now();
  const result = await load.run(spec, () => {
    onMeasuring();
    cpuStart = process.cpuUsage();
    machineStart = cpuTimes();
    wallStart = performance.now();
  });
  const wall = performance.now() - wallStart;
  const cpu = process.cpuUsage(cpuStart);
  const machineEnd = cpuTimes();
  if (result.errors > 0) {
    throw new Error(`${target.name}: ${result.errors} failed requests at concurrency ${c.concurrency}; first: ${result.firstError}`);
  }
  return {
    ...result,
    elapsedMs: wall,
    serverCpuMs: (cpu.user + cpu.system) / 1000,
    machineBusyTicks: machineEnd.busy - machineStart.busy,
    machineTotalTicks: machineEnd.total - machineStart.total,
  };
}

/** Every measured send must have produced one message and one event, with seqs 1..lastSeq and none missing. */
async function checkLogs(url: string, channelIds: string[]): Promise<Integrity> {
  const [row] = await rows<{ channels: string; messages: string; events: string; bad: string }>(
    url,
    `SELECT count(*) AS channels, sum(m.n) AS messages, sum(e.n) AS events,
            count(*) FILTER (WHERE e.n <> ch."lastSeq" OR e.maxseq <> ch."lastSeq" OR m.n <> e.added) AS bad
       FROM "Channel" ch
       CROSS JOIN LATERAL (SELECT count(*) AS n FROM "Message" WHERE "channelId" = ch.id) m
       CROSS JOIN LATERAL (SELECT count(*) AS n, coalesce(max(seq), 0) AS maxseq,
                                  count(*) FILTER (WHERE type = 'MESSAGE_ADDED') AS added
                             FROM "ChannelEvent" WHERE "channelId" = ch.id) e
      WHERE ch.id = ANY($1::uuid[])`,
    [channelIds],
  );
  return { channels: Number(row!.channels), messages: Number(row!.messages), events: Number(row!.events), gapFree: row!.bad === '0' };
}

/**
 * Where one sendMessage spends its time at concurrency 1: the statements it
 * sends, a ladder of HTTP requests that each add one layer, server-side
 * timings of the viewer lookup and the service inside real HTTP requests, and
 * the layers called in-process without HTTP.
 */
async function profileOneRequest(ctx: {
  config: ReturnType<typeof loadConfig>;
  load: LoadGenerator;
  parleyTarget: Target;
  floorTarget: Target;
  floor: Floor;
  setup: Setup;
  app: App;
}): Promise<Profile> {
  const { config, load, parleyTarget, floorTarget, floor, setup, app } = ctx;
  const one: Case = { concurrency: 1, channels: 'shared' };
  const { statements, statementsPerSend } = await statementsOfOneSend(config, load, parleyTarget, setup);

  const ladderMs = 1500;
  const ladder = async (target: Target, onMeasuring?: () => void) =>
    median((await measure(load, target, one, ladderMs, 'ladder', 100, onMeasuring)).samples);
  const typename = JSON.stringify({ query: '{ __typename }' });
  const viewerTimes: number[] = [];
  const sendTimes: number[] = [];
  // `authenticate` is what each request's context calls: JWT verify, session and viewer (reported as viewerFromToken).
  const restore = [timeMethod(app.services.auth, 'authenticate', viewerTimes), timeMethod(app.services.messages, 'send', sendTimes)];
  const sendMessage = await ladder(parleyTarget, () => {
    viewerTimes.length = 0;
    sendTimes.length = 0;
  });
  for (const undo of restore) undo();
  const http = {
    typename: await ladder({ ...parleyTarget, template: typename, headers: {} }),
    typenameWithToken: await ladder({ ...parleyTarget, template: typename }),
    sendMessage,
    viewerFromToken: median(viewerTimes),
    serviceSend: median(sendTimes),
    floor: await ladder(floorTarget),
  };

  const services = app.services;
  const viewer = (await services.auth.viewerFromToken(setup.token))!;
  const channelId = setup.parley.raw[0]!;
  const floorChannel = setup.floor.raw[0]!;
  const tokens = new TokenService(config.jwtSecret, config.accessTokenTtlSeconds);
  const inProcess = {
    jwtVerify: await timed(() => tokens.verify(setup.token)),
    accessCheck: await timed(() => writableChannel(services.prisma, viewer, channelId)),
    serviceSend: await timed((i) => services.messages.send(viewer, { channelId, body: BODY, clientMessageId: `profile-${runId}-${i}` })),
    floorTransaction: await timed((i) =>
      floor.sendDirect({ channelId: floorChannel, body: BODY, clientMessageId: `profile-floor-${runId}-${i}` }),
    ),
  };

  return { statements, statementsPerSend, http, inProcess };
}

/**
 * Statements per sendMessage, from a second app with Prisma's query events on
 * (the measured app runs without them, as production does).
 */
async function statementsOfOneSend(config: ReturnType<typeof loadConfig>, load: LoadGenerator, parleyTarget: Target, setup: Setup) {
  const counted = await buildApp(config, { countQueries: true });
  try {
    const port = await counted.start(0);
    const statements: { sql: string; ms: number }[] = [];
    let capturing = false;
    const events = counted.services.prisma as unknown as {
      $on(event: 'query', listener: (e: { query: string; duration: number }) => void): void;
    };
    events.$on('query', (e) => {
      if (capturing) statements.push({ sql: e.query, ms: e.duration });
    });
    const target: Target = { ...parleyTarget, port };
    const one: Case = { concurrency: 1, channels: 'shared' };
    await measure(load, target, one, 300, 'count-warm', 0);
    const before = counted.queryCount();
    const counting = await measure(load, target, one, 500, 'count', 0);
    const statementsPerSend = (counted.queryCount() - before) / counting.requests;
    capturing = true;
    await graphqlClient(`http://127.0.0.1:${port}/graphql`)(SEND, { input: { channelId: setup.parley.shared, body: BODY } }, setup.token);
    capturing = false;
    return { statements, statementsPerSend };
  } finally {
    await counted.stop();
  }
}

/** Records the duration of every call of `object[name]` until the returned function undoes it. */
function timeMethod(object: object, name: string, into: number[]): () => void {
  const target = object as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const original = target[name]!;
  target[name] = async (...args) => {
    const started = performance.now();
    try {
      return await original.apply(object, args);
    } finally {
      into.push(performance.now() - started);
    }
  };
  return () => void delete target[name];
}

/** Median wall time of `work` over sequential iterations, after a few unmeasured ones. */
async function timed(work: (i: number) => Promise<unknown>, iterations = 200): Promise<number> {
  for (let i = 0; i < 20; i++) await work(-1 - i);
  const samples: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const started = performance.now();
    await work(i);
    samples.push(performance.now() - started);
  }
  return median(samples);
}

// Last, so every module-level constant above is initialized before main runs.
await runBenchmark(main);
