// The results of B1, combined from slices, printed as tables and written as JSON.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import type { LoadResult } from './load.ts';
import { perSecond, summarize, type LatencySummary } from './stats.ts';

/** One benchmark row: a concurrency and whether the workers share one channel or each own one. */
export interface Case {
  concurrency: number;
  channels: 'shared' | 'own';
}

/** One run of the load generator against one server, with the CPU it cost. */
export interface Slice extends LoadResult {
  /** CPU of the benchmark process (the servers) during the measured part, in ms. */
  serverCpuMs: number;
  machineBusyTicks: number;
  machineTotalTicks: number;
}

/** The slices of one server in one row, combined. */
export interface Measured {
  requests: number;
  elapsedMs: number;
  perSecond: number;
  latency: LatencySummary;
  /** CPU of the benchmark process (the server under test) as a share of one core. */
  serverCpu: number;
  /** CPU of the load generator as a share of one core. */
  clientCpu: number;
  /** Busy share of all cores of the machine (servers, load generator, PostgreSQL, Redis, anything else). */
  machineBusy: number;
  slices: number;
}

export interface Row extends Case {
  parley: Measured;
  floor: Measured;
  ratio: number;
}

export interface Integrity {
  channels: number;
  messages: number;
  events: number;
  gapFree: boolean;
}

export interface Profile {
  statements: { sql: string; ms: number }[];
  statementsPerSend: number;
  /** Medians over HTTP at concurrency 1; the server-side timings come from the same sendMessage requests. */
  http: { typename: number; typenameWithToken: number; sendMessage: number; viewerFromToken: number; serviceSend: number; floor: number };
  /** Medians of sequential in-process calls, without HTTP. */
  inProcess: { jwtVerify: number; accessCheck: number; serviceSend: number; floorTransaction: number };
}

export interface Verdict {
  pass: boolean;
  worst: { concurrency: number; channels: string; ratio: number };
  /** The same judgement over every row, the one-channel-per-worker rows included. */
  allRows?: { pass: boolean; worst: { concurrency: number; channels: string; ratio: number } };
}

/** How the run was set up, for the header and the JSON file. */
export interface RunInfo {
  pgVersion: string;
  database: string;
  poolSize: number;
  /** Redis URL, or null for in-process pub/sub. */
  redisUrl: string | null;
  durationMs: number;
  slices: number;
  warmupRequests: number;
  /** Idle share of the machine in the second before the run. */
  idleBefore: number;
  target: number;
}

export function combine(parts: Slice[]): Measured {
  const sum = (pick: (s: Slice) => number) => parts.reduce((total, s) => total + pick(s), 0);
  const requests = sum((s) => s.requests);
  const elapsedMs = sum((s) => s.elapsedMs);
  return {
    requests,
    elapsedMs,
    perSecond: perSecond(requests, elapsedMs),
    latency: summarize(parts.flatMap((s) => s.samples)),
    serverCpu: sum((s) => s.serverCpuMs) / elapsedMs,
    clientCpu: sum((s) => s.clientCpuMs) / elapsedMs,
    machineBusy: sum((s) => s.machineBusyTicks) / sum((s) => s.machineTotalTicks),
    slices: parts.length,
  };
}

const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '-');
const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '-');
const pct = (n: number) => `${Math.round(n * 100)} %`;
const pad = (s: string, n: number) => s.padStart(n);
const channelsOf = (r: Case) => (r.channels === 'shared' ? '1' : String(r.concurrency));

/** Server CPU milliseconds spent per committed message. */
const cpuPerMessage = (m: Measured) => (m.serverCpu * 1000) / m.perSecond;

export function printHeader(info: RunInfo): void {
  const cpu = cpus();
  console.log(`B1 sendMessage over HTTP: Parley vs a bare node:http + pg floor, measured in the same run`);
  console.log(
    `  machine   ${cpu.length} cores (${cpu[0]?.model.trim() ?? 'unknown'}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB, ` +
      `${pct(info.idleBefore)} idle in the second before the run`,
  );
  console.log(`  software  Node ${process.version}, PostgreSQL ${info.pgVersion}, NODE_ENV=${process.env.NODE_ENV}`);
  console.log(
    `  setup     database ${info.database} (dropped at the end), pool ${info.poolSize} connections per server, ` +
      `pub/sub ${info.redisUrl ? `Redis ${info.redisUrl}` : 'in-process'}`,
  );
  console.log(
    `  method    per row and server: ${info.durationMs / 1000} s measured in ${info.slices} alternating slices (floor/Parley), ` +
      `${info.warmupRequests} warm-up requests first; keep-alive HTTP/1.1, one request in flight per worker`,
  );
  console.log(
    `  note      the load generator (one child process), both servers (this process) and PostgreSQL share these ${cpu.length} cores`,
  );
  if (info.idleBefore < 0.8) console.log(`  WARNING   something else keeps the machine busy; numbers will be noisy`);
  console.log('');
}

export function printRows(rows: Row[], poolSize: number): void {
  console.log(`\nThroughput and latency (msg/s = committed sends per second; p50/p99 in ms; pool ${poolSize} each)`);
  const head =
    `${pad('conc', 5)} ${pad('channels', 9)} | ${pad('Parley msg/s', 12)} ${pad('p50', 6)} ${pad('p99', 6)} | ` +
    `${pad('floor msg/s', 11)} ${pad('p50', 6)} ${pad('p99', 6)} | ${pad('Parley/floor', 12)}`;
  console.log(head);
  console.log('-'.repeat(head.length));
  for (const r of rows) {
    console.log(
      `${pad(String(r.concurrency), 5)} ${pad(channelsOf(r), 9)} | ` +
        `${pad(r.parley.perSecond.toFixed(0), 12)} ${pad(f1(r.parley.latency.p50), 6)} ${pad(f1(r.parley.latency.p99), 6)} | ` +
        `${pad(r.floor.perSecond.toFixed(0), 11)} ${pad(f1(r.floor.latency.p50), 6)} ${pad(f1(r.floor.latency.p99), 6)} | ` +
        `${pad(pct(r.ratio), 12)}`,
    );
  }
  console.log(
    `\nCPU during the measured part: server = this process in % of one core, and its CPU time per message; ` +
      `machine = how busy all cores were; load gen = the client process (Parley/floor)`,
  );
  const cpuHead =
    `${pad('conc', 5)} ${pad('channels', 9)} | ${pad('Parley server', 13)} ${pad('ms/msg', 7)} ${pad('machine', 8)} | ` +
    `${pad('floor server', 12)} ${pad('ms/msg', 7)} ${pad('machine', 8)} | ${pad('load gen', 11)}`;
  console.log(cpuHead);
  console.log('-'.repeat(cpuHead.length));
  for (const r of rows) {
    console.log(
      `${pad(String(r.concurrency), 5)} ${pad(channelsOf(r), 9)} | ` +
        `${pad(pct(r.parley.serverCpu), 13)} ${pad(f2(cpuPerMessage(r.parley)), 7)} ${pad(pct(r.parley.machineBusy), 8)} | ` +
        `${pad(pct(r.floor.serverCpu), 12)} ${pad(f2(cpuPerMessage(r.floor)), 7)} ${pad(pct(r.floor.machineBusy), 8)} | ` +
        `${pad(`${pct(r.parley.clientCpu)}/${pct(r.floor.clientCpu)}`, 11)}`,
    );
  }
}

export function printIntegrity(i: Integrity): void {
  console.log(
    `\nLog check: ${i.channels} channels, ${i.messages} messages, ${i.events} events; ` +
      (i.gapFree
        ? 'every channel has seqs 1..lastSeq with none missing, one MESSAGE_ADDED per message'
        : 'MISMATCH between lastSeq, events and messages'),
  );
}

export function printProfile(p: Profile): void {
  console.log('\nWhere one sendMessage spends its time (concurrency 1, medians in ms)');
  console.log(`  ${f2(p.statementsPerSend)} statements per sendMessage (Prisma query events, which do not show BEGIN); one request's:`);
  for (const s of p.statements) {
    const sql = s.sql
      .replace(/\s+/g, ' ')
      .replace(/"public"\./g, '')
      .trim();
    console.log(`    ${pad(f2(s.ms), 6)}  ${sql.length > 100 ? `${sql.slice(0, 97)}...` : sql}`);
  }
  const { http, inProcess } = p;
  const rest = http.sendMessage - http.viewerFromToken - http.serviceSend;
  const line = (ms: number, text: string) => console.log(`  ${pad(f2(ms), 6)}  ${text}`);
  line(http.sendMessage, 'sendMessage over HTTP, of which (timed inside the server, same requests):');
  line(http.viewerFromToken, '  viewer from token: JWT verify and viewer (both cached after the first request)');
  line(http.serviceSend, '  MessageService.send: one statement (write check, seq, message, event), publish');
  line(rest, '  the rest: HTTP, Yoga, GraphQL execution and serialization of the mutation');
  line(http.typename, '{ __typename } over HTTP without a token (HTTP + Yoga on a trivial operation)');
  line(http.typenameWithToken, '{ __typename } over HTTP with a token (+ the viewer lookup)');
  line(http.floor, 'floor sendMessage over HTTP');
  console.log('  in-process, without HTTP (200 sequential calls):');
  line(inProcess.jwtVerify, '  JWT verify (cached claims)');
  line(inProcess.accessCheck, '  writableChannel: the full access check other operations use (send folds it into its statement)');
  line(inProcess.serviceSend, '  MessageService.send');
  line(inProcess.floorTransaction, "  the floor's transaction (BEGIN, UPDATE, 2 INSERTs, COMMIT with pg)");
}

export function printVerdict(rows: Row[], target: number): Verdict {
  const judge = (subset: Row[]) => {
    const worstRow = subset.reduce((a, b) => (b.ratio < a.ratio ? b : a));
    return {
      pass: subset.every((r) => r.ratio >= target),
      worst: { concurrency: worstRow.concurrency, channels: worstRow.channels, ratio: worstRow.ratio },
    };
  };
  const where = (w: Verdict['worst']) =>
    `lowest ${pct(w.ratio)} at concurrency ${w.concurrency} (${w.channels === 'shared' ? 'one channel' : 'one channel per worker'})`;
  // B1 as the issue defines it: every request to one channel, like the floor's
  // setup. The rows with one channel per worker take the lock contention away
  // and so weigh Parley's per-request CPU alone; they are reported beside it.
  const b1 = judge(rows.filter((r) => r.channels === 'shared'));
  const all = judge(rows);
  console.log(
    `\nVerdict B1 (one channel): ${b1.pass ? 'PASS' : 'FAIL'}: target Parley >= ${pct(target)} of the floor's throughput; ${where(b1.worst)}.`,
  );
  console.log(`Every row, one channel per worker included: ${all.pass ? 'PASS' : 'FAIL'}; ${where(all.worst)}.`);
  return { pass: b1.pass, worst: b1.worst, allRows: all };
}

/** Writes bench/results/send-<timestamp>.json and returns its path. */
export function writeResults(
  info: RunInfo,
  data: { rows: Row[]; integrity: Integrity; profile: Profile | null; verdict: Verdict },
): string {
  const dir = new URL('../results/', import.meta.url);
  mkdirSync(dir, { recursive: true });
  const at = new Date().toISOString();
  const file = new URL(`send-${at.replace(/[:.]/g, '-')}.json`, dir);
  const json = {
    benchmark: 'B1 sendMessage',
    at,
    machine: { cores: cpus().length, model: cpus()[0]?.model.trim(), idleBefore: info.idleBefore, loadAverageAtEnd: loadavg()[0] },
    node: process.version,
    postgres: info.pgVersion,
    nodeEnv: process.env.NODE_ENV,
    pubsub: info.redisUrl ? 'redis' : 'in-process',
    poolSize: info.poolSize,
    durationMs: info.durationMs,
    slices: info.slices,
    warmupRequests: info.warmupRequests,
    target: info.target,
    ...data,
  };
  writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
  return file.pathname;
}
