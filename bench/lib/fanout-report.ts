// The results of B3/B4 as tables and a JSON file (see bench/README.md for how to read them).
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import type { ServerKind } from './fanout-server.ts';
import type { LatencyStats } from './stats.ts';

/**
 * What is measured: Parley as clients use it (the subscription selects the
 * message body), Parley with a selection that needs nothing but the published
 * payload (a diagnostic: see bench/README.md), the two peers of the issue, and
 * the durable floor (the bare floor committing each message first).
 */
export type Peer = 'parley' | 'parley-lean' | 'socketio' | 'bare' | 'durable';
export const PEERS: Peer[] = ['parley', 'parley-lean', 'socketio', 'bare', 'durable'];
export const PEER_NAMES: Record<Peer, string> = {
  parley: 'Parley',
  'parley-lean': 'Parley-l',
  socketio: 'Socket.IO',
  bare: 'bare ws',
  durable: 'durable',
};
export const serverKind = (peer: Peer): ServerKind => (peer === 'parley-lean' ? 'parley' : peer);

/** Where the CPU went during one measured step, in cores (1 = one core busy the whole time). */
export interface CpuSplit {
  /** The server processes in use, together, and each one's event-loop utilization (0..1). */
  servers: number;
  serverElu: number[];
  /** Sender and subscriber processes together: the client side. */
  clients: number;
  sender: number;
  subscribers: number;
  /** The other peers' server processes, which should be idle: work left over from an earlier phase shows here. */
  idleServers: number;
  /** Everything else that was busy: PostgreSQL, Redis, the kernel, this process, other programs. */
  other: number;
  /** Busy cores of the whole machine. */
  machine: number;
}

export interface StepRow {
  peer: Peer;
  servers: number;
  subscribers: number;
  /** Messages per second asked of the sender, and the deliveries per second that asks for. */
  rate: number;
  offered: number;
  /** Messages answered with success, and how many were due but could not be issued. */
  sent: number;
  sendBehind: number;
  deliveries: number;
  /** sent × subscribers: what a loss-free run delivers. */
  expected: number;
  /** From the first send to the last subscriber's receipt of the last message. */
  elapsedMs: number;
  /** deliveries / elapsed. */
  achieved: number;
  /** The step could not keep up with what was offered (achieved below 90 % of it). */
  saturated: boolean;
  /** 'send' when the sender could not get its messages accepted at the rate; 'fan-out' otherwise. */
  bound: 'send' | 'fan-out';
  latency: LatencyStats;
  /** Per message, its first receipt by any subscriber (see `firstReceipts`); `late`: messages over the p99 target already then. */
  firstReceipts: { count: number; p50: number; p99: number; late: number };
  /** Time from the sender's request to its HTTP answer. */
  answerP50: number;
  answerP99: number;
  cpu: CpuSplit;
  /** CPU time per delivery, in µs. */
  usPerDelivery: { servers: number; clients: number };
  /** SQL statements Parley's servers sent during the step (0 for the peers). */
  statements: number;
}

export interface PhaseResult {
  peer: Peer;
  servers: number;
  steps: StepRow[];
  /** The latency row: 100 subscribers × 50 messages/s (null when 100 was not among the subscriber counts). */
  latency: StepRow | null;
  /** Time to open and subscribe the sockets added for each subscriber count, in ms. */
  connectMs: Record<number, number>;
  violations: { count: number; first: string[] };
}

export interface Summary {
  peer: Peer;
  servers: number;
  subscribers: number;
  /** The highest deliveries/s any step reached. */
  best: StepRow;
  /** Whether some step saturated: if not, `best` is a lower bound. */
  saturated: boolean;
}

export interface RunInfo {
  pgVersion: string;
  database: string;
  redisPrefix: string;
  stepMs: number;
  latencyMs: number;
  subscriberCounts: number[];
  serverCounts: number[];
  users: number;
  maxInFlight: number;
  openFilesLimit: string;
  idleBefore: number;
  clockSkewMs: number;
  quick: boolean;
}

export interface Verdict {
  pass: boolean;
  lines: { text: string; pass: boolean }[];
  /** The same lines for the diagnostic variant; they do not count. */
  info: { text: string; pass: boolean }[];
  /** Parley against the durable floor (see `judge`). */
  durable: { pass: boolean; lines: { text: string; pass: boolean }[] };
}

const pad = (text: string, width: number) => text.padStart(width);
const padEnd = (text: string, width: number) => text.padEnd(width);
const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '-');
const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '-');
const int = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-');
const pct = (n: number) => (Number.isFinite(n) ? `${Math.round(n * 100)} %` : '-');
const cores = (n: number) => (Number.isFinite(n) ? `${Math.round(n * 100)} %` : '-');

export function printHeader(info: RunInfo): void {
  const cpu = cpus();
  console.log(
    `B3/B4 fan-out: one channel, ${info.subscriberCounts.join('/')} subscribers, ${info.serverCounts.join(' and ')} server process(es)`,
  );
  console.log(
    `  ${cpu.length} cores (${cpu[0]?.model.trim()}), Node ${process.version}, PostgreSQL ${info.pgVersion}, Redis pub/sub (prefix ${info.redisPrefix})`,
  );
  console.log(
    `  steps of ${info.stepMs / 1000} s, latency row ${info.latencyMs / 1000} s, ${info.users} users sharing the Parley sockets, ` +
      `sender keeps at most ${info.maxInFlight} sends in flight, open-files limit ${info.openFilesLimit}`,
  );
  console.log(
    `  clock skew between the sender and subscriber processes: ${f2(info.clockSkewMs)} ms; machine idle before the run: ${pct(info.idleBefore)}`,
  );
  if (info.idleBefore < 0.8) console.log('  WARNING: the machine was busy before the run; the numbers will be low and noisy.');
}

/** Highest deliveries/s per peer, server count and subscriber count. */
export function summarize(phases: PhaseResult[]): Summary[] {
  const out: Summary[] = [];
  for (const phase of phases) {
    const counts = [...new Set(phase.steps.map((s) => s.subscribers))];
    for (const subscribers of counts) {
      const steps = phase.steps.filter((s) => s.subscribers === subscribers);
      const best = steps.reduce((a, b) => (b.achieved > a.achieved ? b : a));
      out.push({ peer: phase.peer, servers: phase.servers, subscribers, best, saturated: steps.some((s) => s.saturated) });
    }
  }
  return out;
}

function find(summaries: Summary[], peer: Peer, servers: number, subscribers: number): Summary | undefined {
  return summaries.find((s) => s.peer === peer && s.servers === servers && s.subscribers === subscribers);
}

export function printSaturation(summaries: Summary[], serverCounts: number[], subscriberCounts: number[]): void {
  console.log('\nB3: deliveries/s at saturation (deliveries = messages × subscribers that received them; the best step of each ladder)');
  const measured = PEERS.filter((p) => summaries.some((s) => s.peer === p));
  const ratios: [Peer, Peer][] = (
    [
      ['parley', 'socketio'],
      ['parley', 'bare'],
      ['parley-lean', 'bare'],
      ['parley', 'durable'],
    ] as [Peer, Peer][]
  ).filter(([a, b]) => measured.includes(a) && measured.includes(b));
  const short: Record<Peer, string> = { parley: 'P', 'parley-lean': 'Pl', socketio: 'SIO', bare: 'bare', durable: 'dur' };
  const head =
    `${pad('servers', 7)} ${pad('subs', 5)} | ` +
    measured.map((p) => pad(PEER_NAMES[p], 10)).join(' ') +
    ` | ${ratios.map(([a, b]) => pad(`${short[a]}/${short[b]}`, 7)).join(' ')} | ${pad('Parley bound by', 15)}`;
  console.log(head);
  console.log('-'.repeat(head.length));
  for (const servers of serverCounts) {
    for (const subscribers of subscriberCounts) {
      const get = (peer: Peer) => find(summaries, peer, servers, subscribers);
      const cell = (peer: Peer) => {
        const s = get(peer);
        return pad(s ? `${s.saturated ? '' : '≥'}${int(s.best.achieved)}` : '-', 10);
      };
      const ratio = ([a, b]: [Peer, Peer]) => {
        const x = get(a);
        const y = get(b);
        return pad(x && y ? pct(x.best.achieved / y.best.achieved) : '-', 7);
      };
      const parley = get('parley');
      console.log(
        `${pad(String(servers), 7)} ${pad(String(subscribers), 5)} | ${measured.map(cell).join(' ')} | ${ratios.map(ratio).join(' ')} | ` +
          `${pad(parley ? parley.best.bound : '-', 15)}`,
      );
    }
  }
  console.log('  ≥: the ladder ended before that server saturated, so the number is a lower bound.');

  console.log('\nCPU at the best step (cores busy: 100 % = one core; the machine has 2) and CPU time per delivery');
  const cpuHead =
    `${padEnd('peer', 9)} ${pad('servers', 7)} ${pad('subs', 5)} | ${pad('msg/s', 6)} | ${pad('servers', 7)} ${pad('clients', 7)} ${pad('other', 6)} ${pad('machine', 7)} | ` +
    `${pad('client share', 12)} | ${pad('µs/deliv srv', 12)} ${pad('µs/deliv cli', 12)} | ${pad('server event loops', 18)}`;
  console.log(cpuHead);
  console.log('-'.repeat(cpuHead.length));
  for (const servers of serverCounts) {
    for (const subscribers of subscriberCounts) {
      for (const peer of PEERS) {
        const s = find(summaries, peer, servers, subscribers);
        if (!s) continue;
        const { cpu, usPerDelivery } = s.best;
        console.log(
          `${padEnd(PEER_NAMES[peer], 9)} ${pad(String(servers), 7)} ${pad(String(subscribers), 5)} | ${pad(int(s.best.sent / (s.best.elapsedMs / 1000)), 6)} | ` +
            `${pad(cores(cpu.servers), 7)} ${pad(cores(cpu.clients), 7)} ${pad(cores(cpu.other), 6)} ${pad(cores(cpu.machine), 7)} | ` +
            `${pad(pct(cpu.clients / cpu.machine), 12)} | ${pad(f1(usPerDelivery.servers), 12)} ${pad(f1(usPerDelivery.clients), 12)} | ` +
            `${pad(cpu.serverElu.map((e) => pct(e)).join(' / '), 18)}`,
        );
      }
    }
  }
}

export function printLatency(phases: PhaseResult[]): void {
  const rows = phases.filter((p) => p.latency);
  if (!rows.length) return;
  const first = rows[0]!.latency!;
  console.log(`\nB4: send-to-receive latency at ${first.subscribers} subscribers × ${first.rate} messages/s (ms, every delivery)`);
  const head =
    `${padEnd('peer', 9)} ${pad('servers', 7)} | ${pad('p50', 6)} ${pad('p90', 6)} ${pad('p99', 6)} ${pad('max', 7)} | ${pad('deliveries', 10)} | ` +
    `${pad('1st p50', 7)} ${pad('1st p99', 7)} ${pad('late', 8)} | ${pad('send answer p50', 15)} | ${pad('servers', 7)} ${pad('clients', 7)} ${pad('client share', 12)}`;
  console.log(head);
  console.log('-'.repeat(head.length));
  for (const phase of rows) {
    const r = phase.latency!;
    console.log(
      `${padEnd(PEER_NAMES[phase.peer], 9)} ${pad(String(phase.servers), 7)} | ${pad(f2(r.latency.p50), 6)} ${pad(f2(r.latency.p90), 6)} ${pad(f2(r.latency.p99), 6)} ${pad(f1(r.latency.max), 7)} | ` +
        `${pad(int(r.deliveries), 10)} | ${pad(f2(r.firstReceipts.p50), 7)} ${pad(f2(r.firstReceipts.p99), 7)} ${pad(`${r.firstReceipts.late}/${r.firstReceipts.count}`, 8)} | ${pad(f2(r.answerP50), 15)} | ${pad(cores(r.cpu.servers), 7)} ${pad(cores(r.cpu.clients), 7)} ${pad(pct(r.cpu.clients / r.cpu.machine), 12)}`,
    );
  }
  console.log(
    "  Latency runs from the moment the sender issues its HTTP request (Parley: sendMessage, which commits first) to the subscriber's receipt.",
  );
  console.log(
    '  1st: per message, its first receipt by any subscriber; late: messages whose first receipt was already over the p99 target.',
  );
  console.log(
    '  A message late at its first receipt is late for every subscriber: it was held up before fan-out (sender, server, database or',
  );
  console.log('  the machine stalling). When more than 1 % of the messages are, they alone set the p99.');
}

export function printSteps(phases: PhaseResult[]): void {
  console.log('\nEvery step (offered = messages/s × subscribers; achieved = deliveries / time from first send to last receipt)');
  const head =
    `${padEnd('peer', 9)} ${pad('srv', 3)} ${pad('subs', 5)} ${pad('msg/s', 6)} | ${pad('offered', 8)} ${pad('achieved', 8)} ${pad('sent', 6)} ${pad('late', 5)} | ` +
    `${pad('p50', 7)} ${pad('p99', 8)} | ${pad('servers', 7)} ${pad('clients', 7)} ${pad('idle', 5)} ${pad('other', 6)} | ${pad('µs srv', 6)} ${pad('µs cli', 6)} | ${pad('SQL/msg', 7)} | note`;
  console.log(head);
  console.log('-'.repeat(head.length));
  for (const phase of phases) {
    const all = [...new Set([...phase.steps, ...(phase.latency ? [phase.latency] : [])])].sort(
      (a, b) => a.subscribers - b.subscribers || a.offered - b.offered,
    );
    for (const s of all) {
      const note = [
        s === phase.latency ? 'latency row' : '',
        s.saturated ? `saturated (${s.bound})` : '',
        s.deliveries < s.expected ? `LOST ${s.expected - s.deliveries}` : '',
      ]
        .filter(Boolean)
        .join(', ');
      console.log(
        `${padEnd(PEER_NAMES[s.peer], 9)} ${pad(String(s.servers), 3)} ${pad(String(s.subscribers), 5)} ${pad(f1(s.rate), 6)} | ` +
          `${pad(int(s.offered), 8)} ${pad(int(s.achieved), 8)} ${pad(String(s.sent), 6)} ${pad(String(s.sendBehind), 5)} | ` +
          `${pad(f2(s.latency.p50), 7)} ${pad(f2(s.latency.p99), 8)} | ${pad(cores(s.cpu.servers), 7)} ${pad(cores(s.cpu.clients), 7)} ` +
          `${pad(cores(s.cpu.idleServers), 5)} ${pad(cores(s.cpu.other), 6)} | ${pad(f1(s.usPerDelivery.servers), 6)} ${pad(f1(s.usPerDelivery.clients), 6)} | ` +
          `${pad(serverKind(s.peer) === 'parley' ? f1(s.statements / s.sent) : '', 7)} | ${note}`,
      );
    }
  }
  console.log(
    '  late: sends that fell due but were not issued because every request slot was busy (the sender was held back by the server).',
  );
  console.log(
    '  idle: CPU of the server processes not in use (should be ~0); other: PostgreSQL, Redis, the kernel and anything else on the machine.',
  );
  console.log('  SQL/msg: statements Parley sent per message during the step, sendMessage included.');
}

export function printConnect(phases: PhaseResult[], subscriberCounts: number[]): void {
  console.log('\nTime to open and subscribe the sockets added for each subscriber count, until all are live (ms)');
  const head = `${padEnd('peer', 9)} ${pad('servers', 7)} | ${subscriberCounts.map((n) => pad(`+${n - (subscriberCounts[subscriberCounts.indexOf(n) - 1] ?? 0)}`, 7)).join(' ')}`;
  console.log(head);
  console.log('-'.repeat(head.length));
  for (const p of phases) {
    console.log(
      `${padEnd(PEER_NAMES[p.peer], 9)} ${pad(String(p.servers), 7)} | ${subscriberCounts.map((n) => pad(int(p.connectMs[n] ?? Number.NaN), 7)).join(' ')}`,
    );
  }
}

export function printIntegrity(phases: PhaseResult[]): boolean {
  const bad = phases.filter((p) => p.violations.count > 0);
  if (!bad.length) {
    console.log('\nDelivery check: every subscriber of every peer received consecutive seqs, none missing, none twice.');
    return true;
  }
  console.log('\n!!! DELIVERY CHECK FAILED: some subscribers saw gaps, duplicates, errors or lost messages !!!');
  for (const p of bad) {
    console.log(`  ${PEER_NAMES[p.peer]} with ${p.servers} server(s): ${p.violations.count} violation(s); first:`);
    for (const line of p.violations.first) console.log(`    ${line}`);
  }
  return false;
}

/**
 * The targets of issue 3 §7, judged for Parley as clients use it. The same
 * lines for the lean selection follow as information: they show what Parley
 * reaches once no field queries per subscriber.
 *
 * A second set judges Parley against the durable floor, which commits every
 * message before broadcasting it as Parley does: where that floor itself falls
 * short of the issue's targets (few subscribers, where deliveries/s are bound
 * by how fast one channel can commit; latency, which includes a commit), no
 * server that keeps its guarantees could meet them here. Against it Parley
 * must reach half its deliveries/s (the issue's ratio to the bare floor) and a
 * p99 no further above its p99 than the issue allows above the bare floor's
 * (15 ms minus the bare floor's p99 in the same run).
 */
export function judge(
  summaries: Summary[],
  phases: PhaseResult[],
  serverCounts: number[],
  subscriberCounts: number[],
  p99Target: number,
): Verdict {
  const lines: Verdict['lines'] = [];
  const info: Verdict['lines'] = [];
  const durableLines: Verdict['lines'] = [];
  for (const variant of ['parley', 'parley-lean'] as const) {
    const out = variant === 'parley' ? lines : info;
    for (const servers of serverCounts) {
      for (const subscribers of subscriberCounts) {
        const parley = find(summaries, variant, servers, subscribers);
        const sio = find(summaries, 'socketio', servers, subscribers);
        const bare = find(summaries, 'bare', servers, subscribers);
        const durable = find(summaries, 'durable', servers, subscribers);
        if (!parley) continue;
        const p = parley.best.achieved;
        if (sio && bare) {
          const vsSio = p >= sio.best.achieved;
          const vsBare = p >= 0.5 * bare.best.achieved;
          out.push({
            pass: vsSio && vsBare,
            text:
              `${servers} server(s), ${subscribers} subscribers: ${PEER_NAMES[variant]} ${int(p)}/s, ${pct(p / sio.best.achieved)} of Socket.IO (${vsSio ? 'ok' : 'below'}), ` +
              `${pct(p / bare.best.achieved)} of the bare floor (${vsBare ? 'ok' : 'below 50 %'})`,
          });
        }
        if (variant === 'parley' && durable) {
          const d = durable.best.achieved;
          durableLines.push({
            pass: p >= 0.5 * d,
            text:
              `${servers} server(s), ${subscribers} subscribers: Parley ${int(p)}/s, ${pct(p / d)} of the durable floor's ${int(d)}/s (target ≥ 50 %)` +
              (sio ? `; the durable floor reaches ${pct(d / sio.best.achieved)} of Socket.IO` : ''),
          });
        }
      }
    }
    for (const phase of phases) {
      if (phase.peer !== variant || !phase.latency) continue;
      const p99 = phase.latency.latency.p99;
      out.push({
        pass: p99 <= p99Target,
        text: `${phase.servers} server(s), ${phase.latency.subscribers} subscribers × ${phase.latency.rate} msg/s: ${PEER_NAMES[variant]} p99 ${f2(p99)} ms (target ≤ ${p99Target} ms)`,
      });
      const latencyOf = (peer: Peer) => phases.find((x) => x.peer === peer && x.servers === phase.servers)?.latency?.latency.p99;
      const durableP99 = latencyOf('durable');
      const bareP99 = latencyOf('bare');
      if (variant === 'parley' && durableP99 !== undefined && bareP99 !== undefined) {
        const allowance = Math.max(0, p99Target - bareP99);
        durableLines.push({
          pass: p99 <= durableP99 + allowance,
          text:
            `${phase.servers} server(s), ${phase.latency.subscribers} subscribers × ${phase.latency.rate} msg/s: Parley p99 ${f2(p99)} ms, durable floor ${f2(durableP99)} ms ` +
            `(target ≤ ${f2(durableP99 + allowance)} ms: the floor's p99 + the ${f2(allowance)} ms the issue allows above the bare floor's ${f2(bareP99)} ms)`,
        });
      }
    }
  }
  return {
    pass: lines.length > 0 && lines.every((l) => l.pass),
    lines,
    info,
    durable: { pass: durableLines.length > 0 && durableLines.every((l) => l.pass), lines: durableLines },
  };
}

export function printVerdict(verdict: Verdict): void {
  if (!verdict.lines.length) {
    console.log('\nVerdict B3/B4: not judged (it needs Parley, Socket.IO and the bare floor in the same run)');
  } else {
    console.log(
      `\nVerdict B3/B4: ${verdict.pass ? 'PASS' : 'FAIL'} (Parley ≥ Socket.IO and ≥ 50 % of the bare floor in deliveries/s; p99 ≤ 15 ms at 100 subscribers)`,
    );
    for (const line of verdict.lines) console.log(`  ${line.pass ? 'PASS' : 'FAIL'}  ${line.text}`);
  }
  if (verdict.info.length) {
    console.log('The same targets for Parley-l (diagnostic, not judged: a selection that no field queries for):');
    for (const line of verdict.info) console.log(`  ${line.pass ? 'met ' : 'not '}  ${line.text}`);
  }
  if (verdict.durable.lines.length) {
    console.log(
      `\nAgainst the durable floor (commits each message in one statement, then broadcasts it: what any server that persists first can reach here): ` +
        `${verdict.durable.pass ? 'PASS' : 'FAIL'}`,
    );
    for (const line of verdict.durable.lines) console.log(`  ${line.pass ? 'PASS' : 'FAIL'}  ${line.text}`);
  }
}

/** Writes bench/results/fanout-<timestamp>.json and returns its path. */
export function writeResults(
  info: RunInfo,
  data: { phases: PhaseResult[]; summaries: Summary[]; verdict: Verdict; deliveryCheck: boolean },
): string {
  const dir = new URL('../results/', import.meta.url);
  mkdirSync(dir, { recursive: true });
  const at = new Date().toISOString();
  const file = new URL(`fanout-${at.replace(/[:.]/g, '-')}.json`, dir);
  const json = {
    benchmark: 'B3/B4 fan-out',
    at,
    machine: { cores: cpus().length, model: cpus()[0]?.model.trim(), loadAverageAtEnd: loadavg()[0] },
    node: process.version,
    nodeEnv: process.env.NODE_ENV,
    ...info,
    summaries: data.summaries.map((s) => ({
      peer: s.peer,
      servers: s.servers,
      subscribers: s.subscribers,
      saturated: s.saturated,
      deliveriesPerSecond: s.best.achieved,
    })),
    verdict: data.verdict,
    deliveryCheck: data.deliveryCheck,
    phases: data.phases,
  };
  writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
  return file.pathname;
}
