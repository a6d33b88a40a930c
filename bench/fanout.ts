// Benchmarks B3 and B4: one channel's live fan-out to 10, 100 and 1,000
// subscribers through one and two server processes, beside Socket.IO with the
// Redis adapter and a bare ws + ioredis broadcaster (see bench/README.md).
import { execSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createBenchDatabase, rows, scalar } from './lib/database.ts';
import { assertRedis, defaultRedisUrl } from './lib/redis.ts';
import { busyShare, cpuTimes, idleShare } from './lib/cpu.ts';
import { Child, wallNow, type Usage } from './lib/fanout-ipc.ts';
import { createGroupChannel, graphqlClient, rawId, registerOrganization } from './lib/graphql.ts';
import {
  judge,
  PEER_NAMES,
  PEERS,
  serverKind,
  printConnect,
  printHeader,
  printIntegrity,
  printLatency,
  printSaturation,
  printSteps,
  printVerdict,
  summarize,
  writeResults,
  type CpuSplit,
  type Peer,
  type PhaseResult,
  type RunInfo,
  type StepRow,
} from './lib/fanout-report.ts';
import type { RunResult, SenderSpec } from './lib/fanout-sender.ts';
import type { ServerKind, StartServer } from './lib/fanout-server.ts';
import type { ConnectSpec, ExpectResult, StepResult } from './lib/fanout-subscribers.ts';
import { firstReceipts, latencyStats, mergeHistograms, perSecond } from './lib/stats.ts';
import { cleanups, runBenchmark } from './lib/cleanup.ts';

const P99_TARGET_MS = 15;
const LATENCY_SUBSCRIBERS = 100;
const LATENCY_RATE = 50;
/** Deliveries/s offered by the ladder's steps (messages/s = this / subscribers). */
const LADDER = [5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 320_000, 640_000];
/** Above this the sender's own HTTP client, not the server, would be what is measured. */
const MAX_RATE = 5_000;
const SATURATED_BELOW = 0.9;
const USERS = 150;
const MAX_IN_FLIGHT = 64;
const DRAIN_TIMEOUT_MS = 30_000;
const WARMUP_MS = 500;
/**
 * The order lanes take their turns in (the tables keep PEERS' order). The
 * first lane at a subscriber count measures a worse p99 than it would in a
 * later turn, whichever peer it is, for a reason not found (bench/README.md, "The first lane"),
 * so the diagnostic Parley-l goes first.
 */
const LANE_ORDER: Peer[] = ['parley-lean', 'parley', 'socketio', 'bare', 'durable'];
/** Unmeasured seconds at the latency row's rate before it (see runLadder). */
const LATENCY_LEAD_IN_MS = 3000;

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    step: { type: 'string' },
    latency: { type: 'string' },
    subscribers: { type: 'string', default: '10,100,1000' },
    servers: { type: 'string', default: '1,2' },
    peers: { type: 'string', default: LANE_ORDER.join(',') },
    profile: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(`npm run bench:fanout -- [--quick] [--step 1] [--latency 10] [--subscribers 10,100,1000] [--servers 1,2] [--peers ${LANE_ORDER.join(',')}]

  --quick          shorter steps (0.5 s) and latency row (3 s)
  --step           seconds each step of a ladder sends for (default 1)
  --latency        seconds of the latency row, ${LATENCY_SUBSCRIBERS} subscribers × ${LATENCY_RATE} msg/s (default 10)
  --subscribers    subscriber counts, ascending (default 10,100,1000)
  --servers        server process counts (default 1,2)
  --peers          what to measure, in this order (default ${LANE_ORDER.join(',')})
  --profile        write V8 CPU profiles of the servers and subscriber processes during each measured step to bench/results/profiles/<run>/

Environment: BENCH_PG_ADMIN_URL (default postgresql://postgres@127.0.0.1:5432/postgres),
REDIS_URL (default redis://127.0.0.1:6379), DATABASE_POOL_SIZE (Parley's pool per process, default 10).`);
  process.exit(0);
}

const stepMs = Number(args.step ?? (args.quick ? 0.5 : 1)) * 1000;
// p99 over 100 subscribers needs many messages: at 50 msg/s, 10 s make the 1 % tail 50 of them.
const latencyMs = Number(args.latency ?? (args.quick ? 3 : 10)) * 1000;
const subscriberCounts = args.subscribers.split(',').map(Number);
const serverCounts = args.servers.split(',').map(Number);
const peers = args.peers.split(',') as Peer[];
if (
  !(stepMs > 0) ||
  !(latencyMs > 0) ||
  subscriberCounts.some((n) => !Number.isInteger(n) || n < 2) ||
  subscriberCounts.some((n, i) => i > 0 && n <= subscriberCounts[i - 1]!) ||
  serverCounts.some((n) => n !== 1 && n !== 2) ||
  peers.some((p) => !PEERS.includes(p))
) {
  throw new Error(
    `--step and --latency must be positive, --subscribers ascending integers ≥ 2, --servers 1 and/or 2, --peers from ${PEERS.join(',')}`,
  );
}
const redisUrl = defaultRedisUrl;
const runId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
const redisPrefix = `parley-fanout:${runId}:`;
const profileDir = fileURLToPath(new URL(`./results/profiles/${runId}/`, import.meta.url));

/** The processes of one benchmark run; the servers of a peer are [first, second]. */
interface Processes {
  servers: Record<ServerKind, { child: Child; port: number }[]>;
  sender: Child;
  subscribers: [Child, Child];
}

interface Setup {
  ownerToken: string;
  memberTokens: string[];
  /** One channel per Parley variant, so subscribers of both can stay connected side by side. */
  channels: { parley: string; 'parley-lean': string };
  /** The durable floor's channel (its id is the floor's room), organization and sender. */
  durable: { channelId: string; organizationId: string; senderId: string };
}

async function main(): Promise<void> {
  await assertRedis(redisUrl, 'start it first');
  const db = await createBenchDatabase('fanout');
  const idleBefore = await idleShare(1000);

  process.stdout.write('Starting servers, sender and subscriber processes ...');
  const procs = await startProcesses(db.url);
  const setup = await prepare(procs.servers.parley[0]!.port, db.url);
  procs.servers.durable = await startDurable(db.url, setup);
  process.stdout.write(' done\n');

  const info: RunInfo = {
    pgVersion: await scalar<string>(db.url, 'SHOW server_version'),
    database: db.name,
    redisPrefix,
    stepMs,
    latencyMs,
    subscriberCounts,
    serverCounts,
    users: USERS,
    maxInFlight: MAX_IN_FLIGHT,
    openFilesLimit: openFilesLimit(),
    idleBefore,
    clockSkewMs: await clockSkew([procs.sender, ...procs.subscribers]),
    quick: args.quick,
  };
  printHeader(info);
  checkOpenFiles(Math.max(...subscriberCounts));

  // The peers take turns at each subscriber count, so that a change in the
  // machine's background load hits the numbers compared with each other alike.
  const phases: PhaseResult[] = [];
  for (const servers of serverCounts) {
    const lanes = await Promise.all(peers.map((peer) => openLane(procs, setup, peer, servers)));
    for (const subscribers of subscriberCounts) {
      process.stdout.write(`  ${servers} server process(es), ${subscribers} subscribers:`);
      for (const lane of lanes) {
        process.stdout.write(` ${PEER_NAMES[lane.peer]}`);
        await runLadder(procs, lane, subscribers, () => settle(db.url));
      }
      process.stdout.write('\n');
    }
    for (const lane of lanes) phases.push(await closeLane(procs, lane));
  }

  const summaries = summarize(phases);
  printSaturation(summaries, serverCounts, subscriberCounts);
  printLatency(phases);
  printSteps(phases);
  printConnect(phases, subscriberCounts);
  const deliveryCheck = printIntegrity(phases);
  const verdict = judge(summaries, phases, serverCounts, subscriberCounts, P99_TARGET_MS);
  printVerdict(verdict);
  if (!deliveryCheck) process.exitCode = 1;
  const file = writeResults(info, { phases, summaries, verdict, deliveryCheck });
  console.log(`\nResults written to ${file}`);
}

function stopLater(child: Child): Child {
  cleanups.push(() => child.stop());
  return child;
}

async function startServer(name: string, spec: StartServer): Promise<{ child: Child; port: number }> {
  const child = stopLater(await Child.start('./fanout-server.ts', name));
  return { child, port: await child.call<number>('start', spec) };
}

async function startProcesses(databaseUrl: string): Promise<Processes> {
  const parley = (name: string) =>
    startServer(name, {
      kind: 'parley',
      options: {
        databaseUrl,
        redisUrl,
        redisPrefix,
        jwtSecret: `fanout-secret-${runId}-0123456789`,
        dataDir: join(tmpdir(), `parley-fanout-${runId}`),
      },
    });
  const peer = (kind: 'socketio' | 'bare', name: string) => startServer(name, { kind, options: { redisUrl, prefix: redisPrefix } });
  // The database is migrated already (createBenchDatabase); the first Parley process starts alone all the same.
  const parleyA = await parley('parley-1');
  const [parleyB, socketioA, socketioB, bareA, bareB, sender, subsA, subsB] = await Promise.all([
    parley('parley-2'),
    peer('socketio', 'socketio-1'),
    peer('socketio', 'socketio-2'),
    peer('bare', 'bare-1'),
    peer('bare', 'bare-2'),
    Child.start('./fanout-sender.ts', 'sender').then(stopLater),
    Child.start('./fanout-subscribers.ts', 'subscribers-1').then(stopLater),
    Child.start('./fanout-subscribers.ts', 'subscribers-2').then(stopLater),
  ]);
  return {
    // The durable floor writes as the organization prepare() makes: startDurable() adds it then.
    servers: { parley: [parleyA, parleyB], socketio: [socketioA, socketioB], bare: [bareA, bareB], durable: [] },
    sender,
    subscribers: [subsA, subsB],
  };
}

/** The durable floor's two processes, committing to Parley's database as its owner. */
function startDurable(databaseUrl: string, setup: Setup): Promise<{ child: Child; port: number }[]> {
  const durable = { databaseUrl, poolSize: Number(process.env.DATABASE_POOL_SIZE ?? 10), ...setup.durable };
  const start = (name: string) => startServer(name, { kind: 'durable', options: { redisUrl, prefix: `${redisPrefix}durable:`, durable } });
  return Promise.all([start('durable-1'), start('durable-2')]);
}

/**
 * One organization, its owner (the sender), two GROUP channels and USERS members
 * who hold the subscriber sockets, all made through the API. Parley allows a
 * user 20 sockets per process, and both Parley variants keep up to 1,000
 * subscribers each on one process: with 150 users each holds at most 14, like
 * a user with a few devices and tabs.
 */
async function prepare(port: number, databaseUrl: string): Promise<Setup> {
  const gql = graphqlClient(`http://127.0.0.1:${port}/graphql`);
  const slug = `fanout-${runId}`;
  const password = 'benchmark-password';
  const owner = await registerOrganization(gql, 'Fan-out benchmark', slug, password);
  const createChannel = (name: string) => createGroupChannel(gql, owner.token, name);
  const channels = { parley: await createChannel('fanout'), 'parley-lean': await createChannel('fanout-lean') };
  const durableChannel = await createChannel('fanout-durable-floor');
  const members: { id: string; token: string }[] = [];
  const names = Array.from({ length: USERS }, (_, i) => `member-${i}`);
  for (let i = 0; i < names.length; i += 10) {
    members.push(
      ...(await Promise.all(
        names.slice(i, i + 10).map(async (username) => {
          const { createUser } = await gql<{ createUser: { id: string } }>(
            `mutation($input: CreateUserInput!) { createUser(input: $input) { id } }`,
            { input: { username, displayName: username, role: 'MEMBER', password } },
            owner.token,
          );
          const { login } = await gql<{ login: { token: string } }>(
            `mutation($o: String!, $u: String!, $p: String!) { login(organization: $o, username: $u, password: $p) { token } }`,
            { o: slug, u: username, p: password },
          );
          return { id: createUser.id, token: login.token };
        }),
      )),
    );
  }
  // addChannelMembers takes at most 100 users at a time.
  for (const channelId of Object.values(channels)) {
    for (let i = 0; i < members.length; i += 100) {
      await gql(
        `mutation($channelId: ID!, $userIds: [ID!]!) { addChannelMembers(channelId: $channelId, userIds: $userIds) { id } }`,
        { channelId, userIds: members.slice(i, i + 100).map((m) => m.id) },
        owner.token,
      );
    }
  }
  // The durable floor writes rows as Parley's owner, into its own channel.
  const organizationId = await scalar<string>(databaseUrl, 'SELECT "organizationId" FROM "User" WHERE id = $1', [owner.userId]);
  const durable = { channelId: rawId(durableChannel), organizationId, senderId: owner.userId };
  return { ownerToken: owner.token, memberTokens: members.map((m) => m.token), channels, durable };
}

/** One peer with one or two server processes, its subscriber group and what was measured so far. */
interface Lane {
  peer: Peer;
  servers: number;
  kind: ServerKind;
  used: { child: Child; port: number }[];
  /** Subscribers' group name in the subscriber processes, and the sender's target name. */
  group: string;
  channel: string;
  /** Parley: the members' tokens the subscribers use. */
  tokens: string[];
  connected: number;
  result: PhaseResult;
}

async function openLane(procs: Processes, setup: Setup, peer: Peer, servers: number): Promise<Lane> {
  const kind = serverKind(peer);
  const used = procs.servers[kind].slice(0, servers);
  const group = `${peer}-${servers}`;
  const channel =
    kind === 'parley'
      ? setup.channels[peer as 'parley' | 'parley-lean']
      : kind === 'durable'
        ? setup.durable.channelId
        : `room-${runId}-${peer}`;
  const senderSpec: SenderSpec = {
    name: group,
    kind,
    port: used[0]!.port,
    token: kind === 'parley' ? setup.ownerToken : null,
    channel,
    maxInFlight: MAX_IN_FLIGHT,
    tag: `${runId}-${group}`,
  };
  await procs.sender.call('configure', senderSpec);
  return {
    peer,
    servers,
    kind,
    used,
    group,
    channel,
    tokens: kind === 'parley' ? setup.memberTokens : [],
    connected: 0,
    result: { peer, servers, steps: [], latency: null, connectMs: {}, violations: { count: 0, first: [] } },
  };
}

/**
 * Brings the lane to `subscribers` (opening the sockets that are missing and
 * making sure every subscriber is live), warms up, measures the latency row
 * at its subscriber count, then climbs the ladder until a step cannot keep up.
 */
async function runLadder(procs: Processes, lane: Lane, subscribers: number, beforeLatencyRow: () => Promise<void>): Promise<void> {
  const started = wallNow();
  // Parley subscribers start after the channel's current seq, so every later
  // one must reach them; the probe tells that seq.
  const after = lane.kind === 'parley' ? await procs.sender.call<number>('probe', lane.group) : null;
  // Subscriber process k uses server k: with one server both use the first,
  // with two the subscribers are split between the processes evenly.
  await Promise.all(
    procs.subscribers.map((child, k) => {
      const share = (n: number) => Math.floor(n / 2) + (k === 0 ? n % 2 : 0);
      const spec: ConnectSpec = {
        group: lane.group,
        kind: lane.peer,
        url: `http://127.0.0.1:${lane.used[k % lane.used.length]!.port}`,
        channel: lane.channel,
        tokens: lane.tokens,
        count: share(subscribers) - share(lane.connected),
        after,
        parallel: 50,
      };
      return child.call('connect', spec);
    }),
  );
  lane.connected = subscribers;
  await untilLive(procs, lane.group);
  lane.result.connectMs[subscribers] = wallNow() - started;

  const measure = (rate: number, ms: number) => step(procs, lane, subscribers, rate, ms);
  // The latency row, after the machine settled, starts with an unmeasured
  // lead-in at its rate: a saturated step before it leaves a server with
  // backlogs drained but a heap still to collect, which would land in the
  // row's p99 (run alone, 100 subscribers see no saturated step first).
  const latencyRow = async () => {
    await beforeLatencyRow();
    await measure(LATENCY_RATE, LATENCY_LEAD_IN_MS);
    return measure(LATENCY_RATE, latencyMs);
  };
  // JIT, pools and buffers settle before anything counts (later subscriber
  // counts find the lane's processes warm).
  if (lane.result.steps.length === 0) await measure(Math.min(MAX_RATE, LADDER[0]! / subscribers), WARMUP_MS);

  // The ladder starts at half the best this lane reached with fewer
  // subscribers: the steps below that would only confirm what is known.
  const previous = lane.result.steps.reduce((best, s) => Math.max(best, s.achieved), 0);
  const ladder = LADDER.filter((offered) => offered >= previous / 2 && offered / subscribers <= MAX_RATE);
  for (const offered of ladder) {
    const rate = offered / subscribers;
    // The latency row's rate is a step of the ladder too, measured longer.
    const isLatencyRow = subscribers === LATENCY_SUBSCRIBERS && rate === LATENCY_RATE;
    const row = isLatencyRow ? await latencyRow() : await measure(rate, stepMs);
    if (isLatencyRow) lane.result.latency = row;
    lane.result.steps.push(row);
    if (row.saturated) break;
  }
  if (subscribers === LATENCY_SUBSCRIBERS && !lane.result.latency) lane.result.latency = await latencyRow();
}

/**
 * Before a latency row: the lanes before this one may have left PostgreSQL
 * busy with what their saturated steps wrote (checkpoint, WAL, vacuum), and
 * whichever lane came next would pay for it in its p99: autovacuum, woken by
 * thousands of new rows, could start in the middle of the row. A vacuum and a
 * checkpoint now, then a wait for the machine to be mostly idle (at most
 * 10 s), give every lane's latency row the same start.
 */
async function settle(databaseUrl: string): Promise<void> {
  await rows(databaseUrl, 'VACUUM (ANALYZE)');
  await rows(databaseUrl, 'CHECKPOINT');
  for (const started = Date.now(); Date.now() - started < 10_000;) {
    if ((await idleShare(500)) >= 0.8) return;
  }
}

/** A last message every subscriber must receive, the delivery violations, and the sockets closed. */
async function closeLane(procs: Processes, lane: Lane): Promise<PhaseResult> {
  const result = lane.result;
  const finalSeq = await procs.sender.call<number>('probe', lane.group);
  const reached = await Promise.all(
    procs.subscribers.map((c) => c.call<ExpectResult>('expect', { group: lane.group, seq: finalSeq, timeoutMs: DRAIN_TIMEOUT_MS })),
  );
  const lastSeqs = (await Promise.all(procs.subscribers.map((c) => c.call<(number | null)[]>('lastSeqs', lane.group)))).flat();
  const parts = await Promise.all(procs.subscribers.map((c) => c.call<{ count: number; first: string[] }>('violations', lane.group)));
  result.violations = { count: parts.reduce((n, p) => n + p.count, 0), first: parts.flatMap((p) => p.first) };
  const behind = reached.reduce((n, r) => n + r.behind, 0);
  if (behind > 0) {
    result.violations.count += behind;
    result.violations.first.push(
      `${behind} subscriber(s) never received the final seq ${finalSeq} (last seqs seen: ${summarizeSeqs(lastSeqs)})`,
    );
  }
  await Promise.all(procs.subscribers.map((c) => c.call('closeGroup', lane.group)));
  return result;
}

function summarizeSeqs(seqs: (number | null)[]): string {
  const counts = new Map<string, number>();
  for (const s of seqs) counts.set(String(s), (counts.get(String(s)) ?? 0) + 1);
  return [...counts].map(([seq, n]) => `${seq}×${n}`).join(', ');
}

/** Sends probes until every subscriber has received one: then each is live (peers have no replay). */
async function untilLive(procs: Processes, group: string): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const seq = await procs.sender.call<number>('probe', group);
    const results = await Promise.all(procs.subscribers.map((c) => c.call<ExpectResult>('expect', { group, seq, timeoutMs: 2000 })));
    if (results.every((r) => r.reached)) return;
  }
  throw new Error('subscribers did not all go live within 50 probes');
}

/**
 * One measured step: the sender sends at `rate` for `ms`; the step ends when
 * every subscriber has the last message. CPU is sampled from every process
 * around it.
 */
async function step(procs: Processes, lane: Lane, subscribers: number, rate: number, ms: number): Promise<StepRow> {
  const { peer, servers, group } = lane;
  const serverChildren = lane.used.map((u) => u.child);
  // The servers not in this phase are sampled too: work left over from an
  // earlier phase would otherwise hide in "other".
  const idleChildren = Object.values(procs.servers)
    .flat()
    .map((s) => s.child)
    .filter((c) => !serverChildren.includes(c));
  const clientChildren = [procs.sender, ...procs.subscribers];
  const everyone = [...serverChildren, ...clientChildren, ...idleChildren];
  const sample = () => Promise.all(everyone.map((c) => c.call<Usage>('usage')));
  const queries = () =>
    serverKind(peer) === 'parley' ? Promise.all(serverChildren.map((c) => c.call<number>('queries'))) : Promise.resolve([0]);
  await Promise.all(procs.subscribers.map((c) => c.call('begin')));
  const queriesBefore = await queries();
  const machineBefore = cpuTimes();
  const before = await sample();
  const profiled = [
    ...serverChildren.map((c, i) => ({ c, name: `server${i + 1}` })),
    ...procs.subscribers.map((c, i) => ({ c, name: `subscribers${i + 1}` })),
  ];
  if (args.profile) await Promise.all(profiled.map(({ c }) => c.call('profileStart')));
  const wallBefore = wallNow();
  const run = await procs.sender.call<RunResult>('run', { target: group, rate, durationMs: ms });
  if (run.errors > 0) throw new Error(`${PEER_NAMES[peer]}: ${run.errors} failed sends; first: ${run.firstError}`);
  const reached = await Promise.all(
    procs.subscribers.map((c) => c.call<ExpectResult>('expect', { group, seq: run.lastSeq, timeoutMs: DRAIN_TIMEOUT_MS })),
  );
  const after = await sample();
  const wall = wallNow() - wallBefore;
  if (args.profile) {
    mkdirSync(profileDir, { recursive: true });
    await Promise.all(
      profiled.map(({ c, name }) => c.call('profileStop', join(profileDir, `${group}-${subscribers}subs-${rate}mps-${name}.cpuprofile`))),
    );
  }
  const machineAfter = cpuTimes();
  const queriesAfter = await queries();
  const ends = await Promise.all(procs.subscribers.map((c) => c.call<StepResult>('end')));

  const deliveries = ends.reduce((n, e) => n + e.deliveries, 0);
  const elapsedMs = Math.max(...reached.map((r) => r.at)) - run.startedAt;
  const achieved = perSecond(deliveries, elapsedMs);
  const offered = rate * subscribers;
  const sendRate = perSecond(run.sent, ms);

  const coresOf = (i: number) => (after[i]!.cpuMs - before[i]!.cpuMs) / wall;
  const eluOf = (i: number) => {
    const active = after[i]!.activeMs - before[i]!.activeMs;
    const idle = after[i]!.idleMs - before[i]!.idleMs;
    return active / (active + idle);
  };
  const sum = (from: number, count: number) => Array.from({ length: count }, (_, i) => coresOf(from + i)).reduce((a, b) => a + b, 0);
  const serverCores = sum(0, serverChildren.length);
  const senderCores = coresOf(serverChildren.length);
  const subscriberCores = sum(serverChildren.length + 1, 2);
  const idleServerCores = sum(serverChildren.length + clientChildren.length, idleChildren.length);
  const machine = busyShare(machineBefore, machineAfter) * cpus().length;
  const cpu: CpuSplit = {
    servers: serverCores,
    serverElu: serverChildren.map((_, i) => eluOf(i)),
    clients: senderCores + subscriberCores,
    sender: senderCores,
    subscribers: subscriberCores,
    idleServers: idleServerCores,
    other: Math.max(0, machine - serverCores - senderCores - subscriberCores - idleServerCores),
    machine,
  };
  const statements = queriesAfter.reduce((a, b) => a + b, 0) - queriesBefore.reduce((a, b) => a + b, 0);
  const perDelivery = (coresUsed: number) => (deliveries ? (coresUsed * wall * 1000) / deliveries : Number.NaN);
  return {
    peer,
    servers,
    subscribers,
    rate,
    offered,
    sent: run.sent,
    sendBehind: run.behind,
    deliveries,
    expected: run.sent * subscribers,
    elapsedMs,
    achieved,
    saturated: achieved < SATURATED_BELOW * offered,
    bound: sendRate < SATURATED_BELOW * rate ? 'send' : 'fan-out',
    latency: latencyStats(mergeHistograms(ends.map((e) => e.histogram))),
    firstReceipts: firstReceipts(
      ends.map((e) => e.firstBySeq),
      P99_TARGET_MS,
    ),
    answerP50: run.answerP50,
    answerP99: run.answerP99,
    cpu,
    usPerDelivery: { servers: perDelivery(serverCores), clients: perDelivery(cpu.clients) },
    statements,
  };
}

/** Largest offset between this process's clock and a child's, from the round trip with the smallest delay. */
async function clockSkew(children: Child[]): Promise<number> {
  let worst = 0;
  for (const child of children) {
    let best = { rtt: Infinity, offset: 0 };
    for (let i = 0; i < 20; i++) {
      const t0 = wallNow();
      const theirs = await child.call<number>('clock');
      const t1 = wallNow();
      if (t1 - t0 < best.rtt) best = { rtt: t1 - t0, offset: theirs - (t0 + t1) / 2 };
    }
    worst = Math.max(worst, Math.abs(best.offset));
  }
  return worst;
}

function openFilesLimit(): string {
  try {
    return execSync('ulimit -n', { shell: '/bin/sh', encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

/** The subscriber processes and the servers each hold up to every socket, plus some files of their own. */
function checkOpenFiles(maxSubscribers: number): void {
  const limit = Number(openFilesLimit());
  if (Number.isFinite(limit) && limit < maxSubscribers + 200) {
    throw new Error(
      `The open-files limit (ulimit -n = ${limit}) is too low for ${maxSubscribers} sockets per process; raise it for this shell (ulimit -n 4096)`,
    );
  }
}

await runBenchmark(main);
