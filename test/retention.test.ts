import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, onEmbedded, startServer, type TestServer } from './helpers/app.ts';
import { createChannel, ok, registerOrg, send } from './helpers/fixtures.ts';
import { channelSnapshot, rawId } from './helpers/messages.ts';
import { collect, expectExactly } from './helpers/subscription.ts';
import { wsClient } from './helpers/ws.ts';
import { graphql } from './generated/index.ts';

let s: TestServer;
let db: pg.Pool;
beforeAll(async () => {
  s = await startServer({ channelLogRetentionDays: 30 });
  db = new pg.Pool({ connectionString: s.app.databaseUrl, max: 2 });
});
afterAll(async () => {
  await db?.end();
  await s?.stop();
});

const EVENTS = graphql(`
  subscription RetentionChannelEvents($c: ID!, $after: Int) {
    channelEvents(channelId: $c, after: $after) {
      seq
    }
  }
`);

/** Moves a channel's log entries up to `seq` back in time by `days`. */
async function age(channelId: string, seq: number, days: number): Promise<void> {
  await db.query(`UPDATE "ChannelEvent" SET "createdAt" = now() - make_interval(days => $3) WHERE "channelId" = $1 AND seq <= $2`, [
    rawId(channelId),
    seq,
    days,
  ]);
}

async function retainedSeqs(channelId: string): Promise<number[]> {
  const { rows } = await db.query<{ seq: number }>(`SELECT seq FROM "ChannelEvent" WHERE "channelId" = $1 ORDER BY seq`, [
    rawId(channelId),
  ]);
  return rows.map((r) => r.seq);
}

/** What a stream resuming after `after` gets: its seqs, and the code it ended with (if it ended). */
async function resume(token: string, channelId: string, after: number, expected: number) {
  const client = wsClient(s.url, token, { keepOpen: true });
  try {
    const stream = collect(client, EVENTS, { c: channelId, after }, (d) => d.channelEvents.seq as number);
    if (expected > 0) await stream.waitFor(expected);
    else await stream.done;
    return { seqs: stream.items, code: stream.errors[0]?.extensions?.code as string | undefined, errors: stream.errors };
  } finally {
    await client.dispose();
  }
}

describe('channel log retention', () => {
  it('prunes entries past the retention period; older cursors get RESYNC_REQUIRED, newer ones replay, history stays', async () => {
    const org = await registerOrg(s);
    const channelId = await createChannel(s, org.owner.token);
    for (let i = 0; i < 6; i++) await send(s, org.owner.token, channelId, `m${i}`);
    const { lastSeq } = await channelSnapshot(s, org.owner.token, channelId);
    const cut = lastSeq - 3;
    await age(channelId, cut, 31);
    expect(await s.app.services.logRetention.prune()).toBeGreaterThanOrEqual(cut);
    expect(await retainedSeqs(channelId)).toEqual([cut + 1, cut + 2, cut + 3]);

    const stale = await resume(org.owner.token, channelId, cut - 1, 0);
    expect(stale.seqs).toEqual([]);
    expect(stale.code).toBe('RESYNC_REQUIRED');
    expect(stale.errors[0]?.extensions?.oldestSeq).toBe(cut + 1);
    // From the entry before the oldest retained one on, nothing is missing.
    expectExactly((await resume(org.owner.token, channelId, cut, 3)).seqs, cut + 1, lastSeq);
    // The messages themselves are history, not log: all still listed.
    const history = await channelSnapshot(s, org.owner.token, channelId);
    expect(history.messages.map((m) => m.body)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5']);
  });

  it('sends a quiet channel whose whole log was pruned to a resync, not into a silent gap', async () => {
    const org = await registerOrg(s);
    const channelId = await createChannel(s, org.owner.token);
    for (let i = 0; i < 3; i++) await send(s, org.owner.token, channelId, `m${i}`);
    const { lastSeq } = await channelSnapshot(s, org.owner.token, channelId);
    await age(channelId, lastSeq, 40);
    await s.app.services.logRetention.prune();
    expect(await retainedSeqs(channelId)).toEqual([]);
    const stale = await resume(org.owner.token, channelId, lastSeq - 2, 0);
    expect(stale.code).toBe('RESYNC_REQUIRED');
    expect(stale.errors[0]?.extensions?.oldestSeq).toBe(lastSeq + 1);
    // Caught up already: nothing to replay, and the stream goes live.
    const client = wsClient(s.url, org.owner.token, { keepOpen: true });
    try {
      const live = collect(client, EVENTS, { c: channelId, after: lastSeq }, (d) => d.channelEvents.seq as number);
      const next = (await send(s, org.owner.token, channelId, 'new')).seq;
      expect(await live.waitFor(1)).toEqual([next]);
    } finally {
      await client.dispose();
    }
  });

  // Two servers with different retention on one database: a deployment, not the embedded mode.
  it.skipIf(onEmbedded)('prunes on its own schedule, and keeps everything with a retention of 0 days', async () => {
    const org = await registerOrg(s);
    const channelId = await createChannel(s, org.owner.token);
    await send(s, org.owner.token, channelId, 'old');
    const { lastSeq } = await channelSnapshot(s, org.owner.token, channelId);
    await age(channelId, lastSeq, 400);

    const keeper = await startServer({ channelLogRetentionDays: 0, channelLogPruneIntervalMs: 1000 });
    try {
      expect(await keeper.app.services.logRetention.prune()).toBe(0);
      await new Promise((r) => setTimeout(r, 1500));
      expect(await retainedSeqs(channelId)).toHaveLength(lastSeq);
    } finally {
      await keeper.stop();
    }
    const pruner = await startServer({ channelLogRetentionDays: 30, channelLogPruneIntervalMs: 1000 });
    try {
      expect(await eventually(async () => (await retainedSeqs(channelId)).length === 0, 5000)).toBe(true);
      ok(
        await s.gql(
          graphql(`
            query RetentionChannel($c: ID!) {
              channel(id: $c) {
                lastSeq
              }
            }
          `),
          { c: channelId },
          org.owner.token,
        ),
      );
    } finally {
      await pruner.stop();
    }
  });
});
