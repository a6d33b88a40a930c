import type pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MESSAGE_RETENTION_LOCK_KEY, MessageRetention } from '../src/services/message-retention.ts';
import { onEmbedded, startServer, type TestServer } from './helpers/app.ts';
import { createChannel, createUser, errorCode, ok, registerOrg, send, type TestOrg } from './helpers/fixtures.ts';
import * as files from './helpers/files.ts';
import { channelSnapshot, openDb, rawId } from './helpers/messages.ts';
import { collect } from './helpers/subscription.ts';
import { uploadFile } from './helpers/upload.ts';
import { wsClient } from './helpers/ws.ts';
import { graphql } from './generated/index.ts';

// Retention (issue 14 §4): soft-deleted messages past DELETED_MESSAGE_RETENTION_DAYS
// and messages past their organization's policy are deleted for good, with what
// hangs on them, while channel logs keep every seq and lose the content.
// Test files share one database: every pass here is limited to this file's
// organizations, except where a test says why not.

const DAY_MS = 24 * 3600 * 1000;

const TRAIL = graphql(`
  query RetentionAuditTrail($filter: AuditEventFilter) {
    auditEvents(filter: $filter) {
      edges {
        node {
          action
          actorId
          data
        }
      }
    }
  }
`);
const REACT = graphql(`
  mutation RetentionReact($m: ID!, $e: String!) {
    addReaction(messageId: $m, emoji: $e) {
      id
    }
  }
`);
const PIN = graphql(`
  mutation RetentionPin($m: ID!) {
    pinMessage(messageId: $m) {
      id
    }
  }
`);
const EDIT = graphql(`
  mutation RetentionEdit($input: EditMessageInput!) {
    editMessage(input: $input) {
      id
    }
  }
`);
const DELETE = graphql(`
  mutation RetentionDelete($input: DeleteMessageInput!) {
    deleteMessage(input: $input) {
      hard
    }
  }
`);
const SETTINGS = graphql(`
  mutation RetentionSettings($input: UpdateOrganizationSettingsInput!) {
    updateOrganizationSettings(input: $input) {
      id
      messageRetentionDays
    }
  }
`);
const NOTIFICATIONS = graphql(`
  query RetentionNotifications {
    notifications(first: 20) {
      edges {
        node {
          messageId
          data
        }
      }
    }
  }
`);
const EVENTS = graphql(`
  subscription RetentionReplay($c: ID!, $after: Int) {
    channelEvents(channelId: $c, after: $after) {
      seq
      ... on MessageAddedEvent {
        message {
          id
          body
        }
      }
      ... on MessageEditedEvent {
        message {
          id
          body
        }
      }
    }
  }
`);

let s: TestServer;
let db: pg.Pool;
beforeAll(async () => {
  s = await startServer({ deletedMessageRetentionDays: 90 });
  db = openDb(s);
});
afterAll(async () => {
  await db?.end();
  await s?.stop();
});

const orgId = async (org: TestOrg) => (await s.app.services.prisma.organization.findUniqueOrThrow({ where: { slug: org.slug } })).id;

/** Moves the server's clock forward for `work`, and back after it. */
async function later<T>(days: number, work: () => Promise<T>): Promise<T> {
  s.app.services.clock.advance(days * DAY_MS);
  try {
    return await work();
  } finally {
    s.app.services.clock.advance(-days * DAY_MS);
  }
}

async function count(table: string, messageGlobalId: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${table}" WHERE "messageId" = $1`, [
    rawId(messageGlobalId),
  ]);
  return rows[0]!.n;
}

const exists = async (messageGlobalId: string) =>
  (await db.query(`SELECT 1 FROM "Message" WHERE id = $1`, [rawId(messageGlobalId)])).rowCount === 1;

/** Everything hanging on a message, table by table (one query at a time: the embedded database takes few connections). */
async function dependents(messageGlobalId: string) {
  const counts: Record<string, number> = {};
  for (const table of ['MessageMention', 'MessageLink', 'Reaction', 'Pin', 'MessageEdit'])
    counts[table] = await count(table, messageGlobalId);
  return counts;
}

/** The channel's whole log replayed over graphql-ws from after=0, as a reconnecting client gets it. */
async function replay(token: string, channelId: string, expected: number) {
  const client = wsClient(s.url, token, { keepOpen: true });
  try {
    const stream = collect(client, EVENTS, { c: channelId, after: 0 }, (d) => d.channelEvents);
    return await stream.waitFor(expected);
  } finally {
    await client.dispose();
  }
}

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${s.port}/metrics`)).text();
  const wanted = `${name}{${Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(',')}}`;
  const line = text.split('\n').find((l) => l.startsWith(`${wanted} `));
  return line ? Number(line.slice(wanted.length + 1)) : 0;
}

describe('deleted messages', () => {
  it('purges a soft-deleted message past the period with what hangs on it; a newer one stays; the log keeps every seq and no body', async () => {
    const org = await registerOrg(s);
    const member = await createUser(s, org);
    const channelId = await createChannel(s, org.owner.token, { memberIds: [member.id] });
    const upload = ok(await uploadFile(s.url, org.owner.token, { name: 'photo.png', bytes: await files.png(40, 30) })).uploadFile;
    const old = await send(s, org.owner.token, channelId, `old secret for @${member.username} about @task#45`, {
      attachmentIds: [upload.id],
    });
    ok(await s.gql(REACT, { m: old.id, e: '👍' }, member.token));
    ok(await s.gql(PIN, { m: old.id }, org.owner.token));
    ok(await s.gql(EDIT, { input: { id: old.id, body: `old edited secret for @${member.username} about @task#45` } }, org.owner.token));
    ok(await s.gql(DELETE, { input: { id: old.id } }, org.owner.token));
    const recent = await send(s, org.owner.token, channelId, 'recent, deleted');
    ok(await s.gql(REACT, { m: recent.id, e: '👍' }, member.token));
    ok(await s.gql(DELETE, { input: { id: recent.id } }, org.owner.token));
    const kept = await send(s, org.owner.token, channelId, 'kept');
    const before = await dependents(old.id);
    expect(before).toEqual({ MessageMention: 1, MessageLink: 1, Reaction: 1, Pin: 1, MessageEdit: 1 });
    const attachment = () => s.app.services.prisma.attachment.findUnique({ where: { id: rawId(upload.id) } });
    expect((await attachment())?.state).toBe('ATTACHED');
    const { lastSeq } = await channelSnapshot(s, org.owner.token, channelId);

    // Deleted 60 days ago, purged 31 days later (the clock's), 91 days after its deletion; the
    // recent one is 31 days past its deletion.
    await db.query(`UPDATE "Message" SET "deletedAt" = "deletedAt" - interval '60 days' WHERE id = $1`, [rawId(old.id)]);
    const purgedBefore = await metric('parley_message_retention_purged_total', { reason: 'deleted' });
    const organizationId = await orgId(org);
    const run = await later(31, () => s.app.services.messageRetention.run({ organizationId }));
    expect(run).toEqual({ ran: true, deleted: 1, policy: 0 });
    expect(await metric('parley_message_retention_purged_total', { reason: 'deleted' })).toBe(purgedBefore + 1);

    expect(await exists(old.id)).toBe(false);
    expect(await dependents(old.id)).toEqual({ MessageMention: 0, MessageLink: 0, Reaction: 0, Pin: 0, MessageEdit: 0 });
    // Marked for the file cleanup (which the purge scheduled, and may have run already), then freed by it.
    expect([undefined, 'DELETED']).toContain((await attachment())?.state);
    await s.app.services.fileCleanup.runOnce({ organizationId: await orgId(org) });
    expect(await attachment()).toBeNull();
    // The member's mention notification stays, pointing at the message id like after a hard delete, without its quote.
    const notes = ok(await s.gql(NOTIFICATIONS, {}, member.token))
      .notifications.edges.map((e) => e.node)
      .filter((n) => n.messageId === old.id);
    expect(notes).toHaveLength(1);
    expect((notes[0]!.data as { excerpt: unknown }).excerpt).toBeNull();

    expect(await exists(recent.id)).toBe(true);
    expect(await count('Reaction', recent.id)).toBe(1);
    expect(await exists(kept.id)).toBe(true);

    // The purge appended nothing and removed nothing from the log: every seq is replayed, and the
    // purged message's snapshots (added, edited) come without a body, even for the owner.
    const history = await channelSnapshot(s, org.owner.token, channelId);
    expect(history.lastSeq).toBe(lastSeq);
    expect(history.messages.map((m) => m.body)).toEqual(['recent, deleted', 'kept']);
    const events = await replay(org.owner.token, channelId, lastSeq);
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: lastSeq }, (_, i) => i + 1));
    const snapshots = events.flatMap((e) => ('message' in e && e.message?.id === old.id ? [e.message] : []));
    expect(snapshots).toHaveLength(2);
    expect(snapshots.map((m) => m.body)).toEqual([null, null]);
    const { rows } = await db.query(`SELECT seq FROM "ChannelEvent" WHERE "channelId" = $1 AND payload::text LIKE '%secret%'`, [
      rawId(channelId),
    ]);
    expect(rows).toEqual([]);

    // Who deleted it and when: the owner's soft delete, then retention's purge (newest first), no body in any entry.
    const trail = ok(await s.gql(TRAIL, { filter: { targetId: old.id } }, org.owner.token)).auditEvents.edges.map((e) => e.node);
    expect(trail.map((e) => [e.action, e.actorId])).toEqual([
      ['message.purge', null],
      ['message.delete', org.owner.id],
      ['message.pin', org.owner.id],
    ]);
    expect(trail[0]!.data).toEqual({ reason: 'deleted', channelId: rawId(channelId), senderId: rawId(org.owner.id) });
    expect(JSON.stringify(trail)).not.toContain('secret');
  });

  it('keeps soft-deleted messages for ever with a retention of 0 days', async () => {
    const org = await registerOrg(s);
    const channelId = await createChannel(s, org.owner.token);
    const old = await send(s, org.owner.token, channelId, 'old');
    ok(await s.gql(DELETE, { input: { id: old.id } }, org.owner.token));
    await db.query(`UPDATE "Message" SET "deletedAt" = "deletedAt" - interval '1000 days' WHERE id = $1`, [rawId(old.id)]);
    const keeper = new MessageRetention(
      s.app.services.prisma,
      pino({ level: 'silent' }),
      s.app.services.clock,
      0,
      60_000,
      s.app.services.config.databaseUrl,
    );
    expect(await keeper.run({ organizationId: await orgId(org) })).toEqual({ ran: true, deleted: 0, policy: 0 });
    expect(await exists(old.id)).toBe(true);
    // The server's own job (90 days) takes it.
    expect((await s.app.services.messageRetention.run({ organizationId: await orgId(org) })).deleted).toBe(1);
    expect(await exists(old.id)).toBe(false);
  });
});

describe('organization retention policy', () => {
  it('is set by owners and admins only, within bounds', async () => {
    const org = await registerOrg(s);
    const member = await createUser(s, org);
    const admin = await createUser(s, org, 'ADMIN');
    expect(errorCode(await s.gql(SETTINGS, { input: { messageRetentionDays: 30 } }, member.token))).toBe('FORBIDDEN');
    const negative = await s.gql(SETTINGS, { input: { messageRetentionDays: -1 } }, org.owner.token);
    expect(errorCode(negative)).toBe('BAD_USER_INPUT');
    expect(negative.errors?.[0]?.extensions?.field).toBe('messageRetentionDays');
    expect(
      ok(await s.gql(SETTINGS, { input: { messageRetentionDays: 730 } }, admin.token)).updateOrganizationSettings.messageRetentionDays,
    ).toBe(730);
    // Leaving the field out keeps it; 0 turns the policy off.
    expect(ok(await s.gql(SETTINGS, { input: {} }, org.owner.token)).updateOrganizationSettings.messageRetentionDays).toBe(730);
    expect(
      ok(await s.gql(SETTINGS, { input: { messageRetentionDays: 0 } }, org.owner.token)).updateOrganizationSettings.messageRetentionDays,
    ).toBeNull();
  });

  it('purges the messages older than the policy, only in that organization, keeping the log gap-free', async () => {
    const [withPolicy, without] = [await registerOrg(s), await registerOrg(s)];
    ok(await s.gql(SETTINGS, { input: { messageRetentionDays: 365 } }, withPolicy.owner.token));
    const channelId = await createChannel(s, withPolicy.owner.token);
    const otherChannel = await createChannel(s, without.owner.token);
    const old = await send(s, withPolicy.owner.token, channelId, 'two years old');
    const reply = await send(s, withPolicy.owner.token, channelId, 'a newer reply', { parentId: old.id });
    const otherOld = await send(s, without.owner.token, otherChannel, 'old elsewhere');
    for (const id of [old.id, otherOld.id]) {
      await db.query(`UPDATE "Message" SET "createdAt" = "createdAt" - interval '730 days' WHERE id = $1`, [rawId(id)]);
    }
    const { lastSeq } = await channelSnapshot(s, withPolicy.owner.token, channelId);

    // Both organizations' (and no other): the one without a policy must keep its old message.
    const scoped = [];
    for (const org of [withPolicy, without]) scoped.push(await s.app.services.messageRetention.run({ organizationId: await orgId(org) }));
    expect(scoped).toEqual([
      { ran: true, deleted: 0, policy: 1 },
      { ran: true, deleted: 0, policy: 0 },
    ]);
    expect(await exists(old.id)).toBe(false);
    expect(await exists(otherOld.id)).toBe(true);
    // The reply is newer than the policy and stays; its parent is gone, as after a hard delete.
    const history = await channelSnapshot(s, withPolicy.owner.token, channelId);
    expect(history.messages.map((m) => m.id)).toEqual([reply.id]);
    expect(history.lastSeq).toBe(lastSeq);
    const events = await replay(withPolicy.owner.token, channelId, lastSeq);
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: lastSeq }, (_, i) => i + 1));
    const added = events.flatMap((e) => ('message' in e && e.message ? [e.message] : []));
    expect(added).toEqual([
      { id: old.id, body: null },
      { id: reply.id, body: 'a newer reply' },
    ]);
    const trail = ok(await s.gql(TRAIL, { filter: { targetId: old.id } }, withPolicy.owner.token)).auditEvents.edges.map((e) => e.node);
    expect(trail.map((e) => [e.action, e.actorId, (e.data as { reason: string }).reason])).toEqual([['message.purge', null, 'policy']]);
  });
});

describe('one pass at a time', () => {
  it('skips a pass asked for while one runs in this process', async () => {
    const org = await registerOrg(s);
    const [ranBefore, skippedBefore] = await Promise.all([
      metric('parley_message_retention_runs_total', { outcome: 'ran' }),
      metric('parley_message_retention_runs_total', { outcome: 'skipped' }),
    ]);
    const job = s.app.services.messageRetention;
    const id = await orgId(org);
    const runs = await Promise.all([job.run({ organizationId: id }), job.run({ organizationId: id })]);
    expect(runs.map((r) => r.ran)).toEqual([true, false]);
    expect(await metric('parley_message_retention_runs_total', { outcome: 'ran' })).toBe(ranBefore + 1);
    expect(await metric('parley_message_retention_runs_total', { outcome: 'skipped' })).toBe(skippedBefore + 1);
  });

  // Another process is another database session; the embedded database has one session, used by its one process.
  it.skipIf(onEmbedded)('skips while another process holds the advisory lock, and runs once it is released', async () => {
    const org = await registerOrg(s);
    const channelId = await createChannel(s, org.owner.token);
    const old = await send(s, org.owner.token, channelId, 'old');
    ok(await s.gql(DELETE, { input: { id: old.id } }, org.owner.token));
    await db.query(`UPDATE "Message" SET "deletedAt" = "deletedAt" - interval '100 days' WHERE id = $1`, [rawId(old.id)]);
    const other = await db.connect();
    try {
      await other.query('SELECT pg_advisory_lock($1::bigint)', [MESSAGE_RETENTION_LOCK_KEY]);
      expect(await s.app.services.messageRetention.run({ organizationId: await orgId(org) })).toEqual({
        ran: false,
        deleted: 0,
        policy: 0,
      });
      expect(await exists(old.id)).toBe(true);
      await other.query('SELECT pg_advisory_unlock($1::bigint)', [MESSAGE_RETENTION_LOCK_KEY]);
    } finally {
      other.release();
    }
    expect(await s.app.services.messageRetention.run({ organizationId: await orgId(org) })).toEqual({ ran: true, deleted: 1, policy: 0 });
    expect(await exists(old.id)).toBe(false);
  });
});
