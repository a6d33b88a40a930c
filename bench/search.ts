// Benchmark: full-text search (issue 14 §1). An organization with 1,000,000
// messages in 2,000 channels, written straight into a throwaway PostgreSQL
// database (the search triggers index them as the app's sends would), then
// typical queries through the GraphQL field `search` beside the bare SQL: the
// very statement the field runs (`messageSearchStatement`), sent with `pg`
// on a connection of its own, in the same run, in alternating slices. Then a
// concurrency sweep of both finds the highest queries/s each sustains while
// its p99 stays within the bound (--bound-ms, 50 ms).
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { cleanups, runBenchmark } from './lib/cleanup.ts';
import { createBenchDatabase, scalar, withClient } from './lib/database.ts';
import { graphqlClient, postJson, rawId, registerOrganization, replyFailure } from './lib/graphql.ts';
import { inSlices, perSecond, summarize, type LatencySummary } from './lib/stats.ts';

const { values: args } = parseArgs({
  options: {
    messages: { type: 'string', default: '1000000' },
    channels: { type: 'string', default: '2000' },
    'member-of': { type: 'string', default: '50' },
    'heavy-of': { type: 'string', default: '500' },
    iterations: { type: 'string', default: '200' },
    slices: { type: 'string', default: '4' },
    'bound-ms': { type: 'string', default: '50' },
    concurrency: { type: 'string', default: '1,2,4,8' },
    duration: { type: 'string', default: '5' },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(`npm run bench:search [-- --messages 1000000 --channels 2000 --member-of 50 --heavy-of 500
    --iterations 200 --slices 4 --bound-ms 50 --concurrency 1,2,4,8 --duration 5]

  --messages     messages in the organization (default 1,000,000), spread evenly over --channels (2,000)
  --member-of    channels the searcher is a member of (default 50): what it may read, so what it searches
  --heavy-of     channels of a second, heavy searcher (default 500)
  --iterations   queries per query type, searcher and side (default 200), cut into --slices alternating slices
  --bound-ms     the latency bound of the sweep (default 50): sustained queries/s is the best step whose p99 is within it
  --concurrency  the sweep's concurrent clients (default 1,2,4,8), each step --duration seconds per side
  --keep         keep the database at the end (to EXPLAIN queries on it); the command to drop it is printed

Needs a local PostgreSQL (BENCH_PG_ADMIN_URL, default postgresql://postgres@127.0.0.1:5432/postgres) where the
user may create databases. The database parley_bench_search_<id> is dropped at the end, also after Ctrl-C.
Generating 1,000,000 messages takes a few minutes; --messages 100000 gives a quick run.`);
  process.exit(0);
}
const messageCount = Number(args.messages);
const channelCount = Number(args.channels);
const memberOf = Number(args['member-of']);
const heavyOf = Number(args['heavy-of']);
const iterations = Number(args.iterations);
const slices = Number(args.slices);
const boundMs = Number(args['bound-ms']);
const sweep = args.concurrency.split(',').map(Number);
const durationMs = Number(args.duration) * 1000;
process.env.NODE_ENV ??= 'production';

const { buildApp } = await import('../src/app.ts');
const { loadConfig } = await import('../src/config.ts');
const { messageSearchStatement } = await import('../src/services/search.ts');

/**
 * The vocabulary: made-up words (syllables from a fixed seed), with real
 * words planted at chosen ranks; a message's words are drawn with a skew
 * towards low ranks (rank = floor(u^2.5 * n)), so rank 0 is in about 4 % of
 * words and rank 100 in 0.1 %, like the long tail of a real chat.
 */
const PLANTED: Record<number, string> = { 3: 'project', 40: 'concrete', 90: 'schedule', 150: 'delivery', 400: 'inspection' };
/** mulberry32: numbers in [0, 1) from a fixed seed, so every run builds the same corpus. */
function seeded(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function vocabulary(size: number): string[] {
  const next = seeded(42);
  const onsets = ['b', 'c', 'd', 'f', 'g', 'l', 'm', 'n', 'p', 'r', 's', 't', 'v', 'tr', 'st', 'pl', 'gr'];
  const vowels = ['a', 'e', 'i', 'o', 'u', 'ai', 'ou'];
  const words = new Set<string>();
  while (words.size < size) {
    let word = '';
    const syllables = 2 + Math.floor(next() * 3);
    for (let i = 0; i < syllables; i++) word += onsets[Math.floor(next() * onsets.length)]! + vowels[Math.floor(next() * vowels.length)]!;
    words.add(word + (next() < 0.3 ? 'n' : ''));
  }
  const list = [...words];
  for (const [rank, word] of Object.entries(PLANTED)) list[Number(rank)] = word;
  return list;
}
/** In one message of every 100,000: the rare word. */
const RARE = 'zyxquartz';

interface QueryType {
  name: string;
  query: string;
}
const QUERIES: QueryType[] = [
  { name: 'one word', query: 'delivery' },
  { name: 'one word, frequent', query: 'concrete' },
  { name: 'two words', query: 'concrete schedule' },
  { name: 'phrase', query: '"concrete delivery"' },
  { name: 'prefix (typing)', query: 'inspec' },
  { name: 'rare word', query: RARE },
  { name: 'very common word', query: 'project' },
];

/**
 * Two selections: `lean` asks for what the bare statement returns (the hits, their scores and
 * highlights, the messages' own columns), the like-for-like comparison; `full` adds each hit's
 * channel and sender, as a result list shows them (two more queries, one per relation).
 */
const SELECTIONS = {
  lean: `query($query: String!) { search(query: $query, first: 20) {
  edges { cursor node { score highlights { field start end } message { id body createdAt editedAt } } } } }`,
  full: `query($query: String!) { search(query: $query, first: 20) {
  edges { cursor node { score highlights { field start end } message { id body createdAt editedAt channel { id name } sender { id displayName } } } } } }`,
};
type Selection = keyof typeof SELECTIONS;
const SIDES = ['sql', 'lean', 'full'] as const;
type SideName = (typeof SIDES)[number];

interface Side {
  latency: LatencySummary;
  samples: number;
}

await runBenchmark(async () => {
  const runId = randomBytes(4).toString('hex');
  const db = await createBenchDatabase('search', { keep: args.keep });
  if (args.keep) console.log(`--keep: the database stays for EXPLAIN; drop it with: psql -c 'DROP DATABASE "${db.name}"'`);
  const config = loadConfig(
    { LOG_LEVEL: 'silent', PASSWORD_HASH_COST: '10', RATE_LIMITS: 'off' },
    {
      databaseUrl: db.url,
      redisUrl: null,
      host: '127.0.0.1',
      dataDir: join(tmpdir(), `parley-bench-${runId}`),
      jwtSecret: `bench-secret-${runId}-0123456789`,
      accessTokenTtlSeconds: 24 * 3600,
      graphiql: false,
    },
  );
  const app = await buildApp(config);
  cleanups.push(() => app.stop());
  const port = await app.start(0);
  const url = `http://127.0.0.1:${port}/graphql`;
  const gql = graphqlClient(url);
  console.log(`server on port ${port}, database ${db.name}`);
  const owner = await registerOrganization(gql, 'Search bench', `search-${runId}`, 'password123');
  const organizationId = await scalar<string>(db.url, `SELECT "organizationId" FROM "User" WHERE id = $1`, [owner.userId]);
  await gql(
    `mutation($input: CreateUserInput!) { createUser(input: $input) { id } }`,
    { input: { username: 'heavy', displayName: 'Heavy', password: 'password123', role: 'MEMBER' } },
    owner.token,
  );
  const heavy = await gql<{ login: { token: string; user: { id: string } } }>(
    `mutation { login(organization: "search-${runId}", username: "heavy", password: "password123") { token user { id } } }`,
  );
  const searchers = [
    { name: `member of ${memberOf} channels`, token: owner.token, id: owner.userId, role: 'OWNER' as const },
    { name: `member of ${heavyOf} channels`, token: heavy.login.token, id: rawId(heavy.login.user.id), role: 'MEMBER' as const },
  ];

  console.log('organization and searchers ready');
  const started = performance.now();
  await generate(db.url, organizationId, searchers[0]!.id, searchers[1]!.id);
  const generateSeconds = (performance.now() - started) / 1000;
  const sizes = await withClient(db.url, async (c) => ({
    messages: Number((await c.query(`SELECT count(*) FROM "Message"`)).rows[0].count),
    table: (await c.query(`SELECT pg_size_pretty(pg_table_size('"Message"')) AS s`)).rows[0].s as string,
    searchIndex: (await c.query(`SELECT pg_size_pretty(pg_relation_size('"Message_searchVector_idx"')) AS s`)).rows[0].s as string,
  }));
  console.log(
    `generated ${sizes.messages} messages in ${generateSeconds.toFixed(0)} s; table ${sizes.table}, search index ${sizes.searchIndex}`,
  );

  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const bare = new pg.Pool({ connectionString: db.url, max: config.databasePoolSize });
  cleanups.push(() => bare.end());

  async function viaGraphql(token: string, query: string, selection: Selection = 'lean'): Promise<number> {
    const t0 = performance.now();
    const reply = await postJson(
      agent,
      port,
      '/graphql',
      { authorization: `Bearer ${token}` },
      JSON.stringify({ query: SELECTIONS[selection], variables: { query } }),
    );
    const ms = performance.now() - t0;
    const problem = replyFailure(reply);
    if (problem) throw new Error(problem);
    return ms;
  }
  async function viaSql(searcher: (typeof searchers)[number], query: string): Promise<number> {
    const t0 = performance.now();
    const { sql } = messageSearchStatement({ id: searcher.id, organizationId, role: searcher.role } as never, query, {}, { first: 20 });
    await bare.query(sql.text, sql.values as unknown[]);
    return performance.now() - t0;
  }

  // Hits per query and searcher, as both sides agree on.
  const rows: Record<string, unknown>[] = [];
  for (const searcher of searchers) {
    for (const q of QUERIES) {
      const { sql } = messageSearchStatement({ id: searcher.id, organizationId, role: searcher.role } as never, q.query, {}, { first: 20 });
      const countSql = `SELECT count(*) FROM "Message" m WHERE m."organizationId" = $1 AND m."channelId" IN (
        SELECT "channelId" FROM "ChannelMember" WHERE "userId" = $2) AND m."deletedAt" IS NULL AND m."searchVector" @@ (${tsqueryText(q.query)})`;
      const matches = Number(await scalar<string>(db.url, countSql, [organizationId, searcher.id]));
      const hits = (await bare.query(sql.text, sql.values as unknown[])).rowCount;
      const run = (side: SideName) => (side === 'sql' ? viaSql(searcher, q.query) : viaGraphql(searcher.token, q.query, side));
      for (let i = 0; i < 20; i++) for (const side of SIDES) await run(side);
      const perSlice = Math.ceil(iterations / slices);
      const measured = await inSlices(SIDES, slices, async (side) => {
        const samples: number[] = [];
        for (let i = 0; i < perSlice; i++) samples.push(await run(side));
        return samples;
      });
      const [sqlSide, lean, full] = measured.map((m): Side => ({ latency: summarize(m.flat()), samples: m.flat().length }));
      rows.push({ searcher: searcher.name, query: q.name, text: q.query, matches, page: hits, sql: sqlSide, lean, full });
      const fmt = (x: Side) => `p50 ${x.latency.p50.toFixed(1)} p99 ${x.latency.p99.toFixed(1)}`;
      console.log(
        `${searcher.name.padEnd(24)} ${q.name.padEnd(18)} ${String(matches).padStart(6)} matches | SQL ${fmt(sqlSide!)} | ` +
          `GraphQL ${fmt(lean!)} (p99 ${(lean!.latency.p99 / sqlSide!.latency.p99).toFixed(2)}x) | +channel,sender ${fmt(full!)} ms`,
      );
    }
  }

  // Sustained throughput: the typical queries in turn, N clients each with one in flight.
  const typical = QUERIES.filter((q) => q.name !== 'very common word').map((q) => q.query);
  const sweepRows: Record<string, unknown>[] = [];
  for (const side of ['lean', 'sql'] as const) {
    for (const clients of sweep) {
      const samples: number[] = [];
      const end = performance.now() + durationMs;
      await Promise.all(
        Array.from({ length: clients }, async (_, c) => {
          for (let i = c; performance.now() < end; i++) {
            const query = typical[i % typical.length]!;
            samples.push(side === 'lean' ? await viaGraphql(owner.token, query) : await viaSql(searchers[0]!, query));
          }
        }),
      );
      const latency = summarize(samples);
      const qps = perSecond(samples.length, durationMs);
      sweepRows.push({ side, clients, qps, latency });
      console.log(
        `sweep ${side.padEnd(7)} ${String(clients).padStart(2)} clients: ${qps.toFixed(0)} queries/s, p50 ${latency.p50.toFixed(1)} p99 ${latency.p99.toFixed(1)} ms`,
      );
    }
  }
  for (const side of ['lean', 'sql']) {
    const within = sweepRows.filter((r) => r.side === side && (r.latency as LatencySummary).p99 <= boundMs);
    const best = within.sort((a, b) => (b.qps as number) - (a.qps as number))[0];
    console.log(
      `sustained ${side}: ${best ? `${(best.qps as number).toFixed(0)} queries/s at ${best.clients} clients` : 'none'} with p99 <= ${boundMs} ms`,
    );
  }

  mkdirSync('bench/results', { recursive: true });
  const file = `bench/results/search-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
  writeFileSync(
    file,
    JSON.stringify({ messageCount, channelCount, memberOf, heavyOf, generateSeconds, sizes, rows, sweep: sweepRows }, null, 2),
  );
  console.log(`results: ${file}`);
});

/** The tsquery the service builds for a query without a prefix part, for counting matches (the count is for the report only). */
function tsqueryText(query: string): string {
  const quoted = `'${query.replace(/'/g, "''")}'`;
  const prefix = /^[\p{L}\p{N}]+$/u.test(query) && !query.startsWith('"');
  return prefix
    ? `websearch_to_tsquery('parley_english', ${quoted}) || to_tsquery('parley_simple', ${`'${query}:*'`})`
    : `websearch_to_tsquery('parley_english', ${quoted})`;
}

/**
 * Channels, memberships and messages, in SQL: every channel has the 20
 * senders as members; the searchers are members of the first channels.
 * The search index is dropped while the rows go in and built again after
 * (the same definition as the migration's), as a bulk load would.
 */
async function generate(url: string, organizationId: string, searcherId: string, heavyId: string): Promise<void> {
  const words = vocabulary(3000);
  await withClient(url, async (c) => {
    await c.query(`CREATE TEMP TABLE vocab AS SELECT array_agg(w ORDER BY i) AS words FROM unnest($1::text[]) WITH ORDINALITY AS t(w, i)`, [
      words,
    ]);
    await c.query(
      `INSERT INTO "User" (id, "organizationId", username, "displayName", "passwordHash")
       SELECT gen_random_uuid(), $1, 'sender' || i, 'Sender ' || i, 'x' FROM generate_series(1, 20) i`,
      [organizationId],
    );
    await c.query(`CREATE TEMP TABLE chans AS SELECT gen_random_uuid() AS id, i FROM generate_series(1, $1::int) i`, [channelCount]);
    await c.query(`INSERT INTO "Channel" (id, "organizationId", kind, name) SELECT id, $1, 'GROUP', 'channel-' || i FROM chans`, [
      organizationId,
    ]);
    await c.query(
      `INSERT INTO "ChannelMember" (id, "channelId", "userId")
       SELECT gen_random_uuid(), ch.id, u.id FROM chans ch, "User" u WHERE u."organizationId" = $1 AND u.username LIKE 'sender%'`,
      [organizationId],
    );
    await c.query(`INSERT INTO "ChannelMember" (id, "channelId", "userId") SELECT gen_random_uuid(), id, $1 FROM chans WHERE i <= $2`, [
      searcherId,
      memberOf,
    ]);
    await c.query(`INSERT INTO "ChannelMember" (id, "channelId", "userId") SELECT gen_random_uuid(), id, $1 FROM chans WHERE i <= $2`, [
      heavyId,
      heavyOf,
    ]);
    await c.query(
      `CREATE TEMP TABLE senders AS SELECT array_agg(id) AS ids FROM "User" WHERE "organizationId" = $1 AND username LIKE 'sender%'`,
      [organizationId],
    );
    // Dropped for the load and built again after, from its own definition (the migration's).
    const indexDef = (await c.query<{ def: string }>(`SELECT pg_get_indexdef('"Message_searchVector_idx"'::regclass) AS def`)).rows[0]!.def;
    await c.query(`DROP INDEX "Message_searchVector_idx"`);
    const channels = (await c.query<{ id: string }>(`SELECT id FROM chans ORDER BY i`)).rows.map((r) => r.id);
    const senders = (
      await c.query<{ id: string }>(`SELECT id FROM "User" WHERE "organizationId" = $1 AND username LIKE 'sender%' ORDER BY username`, [
        organizationId,
      ])
    ).rows.map((r) => r.id);
    // Bodies are drawn here (a seeded generator: the same corpus every run) and sent 20,000 rows a statement.
    const random = seeded(7);
    const batch = 20_000;
    const now = Date.now();
    for (let from = 0; from < messageCount; from += batch) {
      const n = Math.min(batch, messageCount - from);
      const cols = { channel: [] as string[], seq: [] as number[], sender: [] as string[], body: [] as string[], at: [] as string[] };
      for (let k = 0; k < n; k++) {
        const i = from + k;
        const length = 6 + (i % 14);
        const picked: string[] = [];
        for (let w = 0; w < length; w++) picked.push(words[Math.floor(random() ** 2.5 * words.length)]!);
        if (i % 100_000 === 7) picked.push(RARE);
        cols.channel.push(channels[i % channels.length]!);
        cols.seq.push(Math.floor(i / channels.length) + 1);
        cols.sender.push(senders[i % senders.length]!);
        cols.body.push(picked.join(' '));
        cols.at.push(new Date(now - random() * 365 * 24 * 3600 * 1000).toISOString());
      }
      await c.query(
        `INSERT INTO "Message" (id, "organizationId", "channelId", seq, "senderId", body, "createdAt")
         SELECT gen_random_uuid(), $1, ch, seq, sender, body, at
         FROM unnest($2::uuid[], $3::int[], $4::uuid[], $5::text[], $6::timestamp[]) AS t(ch, seq, sender, body, at)`,
        [organizationId, cols.channel, cols.seq, cols.sender, cols.body, cols.at],
      );
      process.stdout.write(`\rgenerating messages: ${from + n} / ${messageCount}`);
    }
    process.stdout.write('\n');
    await c.query(
      `UPDATE "Channel" ch SET "lastSeq" = m.seq FROM (SELECT "channelId", max(seq) AS seq FROM "Message" GROUP BY 1) m WHERE m."channelId" = ch.id`,
    );
    await c.query(`SET maintenance_work_mem = '256MB'`);
    await c.query(indexDef);
    await c.query(`VACUUM ANALYZE "Message"`);
    await c.query(`ANALYZE`);
  });
}
