import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ParleyPubSub } from '../src/bus/pubsub.ts';
import { ExportService } from '../src/services/exports.ts';
import { eventually, startServer, type TestServer } from './helpers/app.ts';
import {
  createChannel,
  createProject,
  createUser,
  errorCode,
  ok,
  registerOrg,
  send,
  type TestOrg,
  type TestUser,
} from './helpers/fixtures.ts';
import { newRequest, openTicket } from './helpers/items.ts';
import { rawId } from './helpers/messages.ts';
import { collect, untilLive } from './helpers/subscription.ts';
import { wsClient } from './helpers/ws.ts';

// Exports (issue 14 §5): a channel as JSON or HTML for its readers, the
// organization as JSON lines for admins, produced in the background with
// progress on viewerEvents and delivered through a signed URL that checks the
// requester again on every download.

const HOUR_MS = 3600 * 1000;

const EXPORT_FIELDS = `id kind format status progress total error byteSize fileName expiresAt downloadUrl channel { id }`;
const EXPORT_CHANNEL = `mutation($c: ID!, $f: ChannelExportFormat!) { exportChannel(channelId: $c, format: $f) { ${EXPORT_FIELDS} } }`;
const EXPORT_ORG = `mutation { exportOrganization { ${EXPORT_FIELDS} } }`;
const EXPORT = `query($id: ID!) { export(id: $id) { ${EXPORT_FIELDS} } }`;
const EXPORTS = `{ exports(first: 20) { edges { node { id status } } } }`;
const DELETE = `mutation($id: ID!, $hard: Boolean) { deleteMessage(input: { id: $id, hard: $hard }) { hard } }`;
const OPEN_DIRECT = `mutation($u: [ID!]!) { openDirectChannel(userIds: $u) { id } }`;

interface ExportView {
  id: string;
  kind: string;
  format: string;
  status: string;
  progress: number;
  total: number | null;
  error: string | null;
  byteSize: number | null;
  fileName: string | null;
  expiresAt: string | null;
  downloadUrl: string | null;
  channel: { id: string } | null;
}

let s: TestServer;
let org: TestOrg;
let member: TestUser;
let admin: TestUser;
let outsider: TestUser;
let other: TestOrg;
let channel: string;
const ids = {} as Record<'first' | 'script' | 'reply' | 'soft' | 'hard' | 'last', string>;

beforeAll(async () => {
  s = await startServer();
  [org, other] = await Promise.all([registerOrg(s), registerOrg(s)]);
  [member, admin, outsider] = await Promise.all([createUser(s, org), createUser(s, org, 'ADMIN'), createUser(s, org)]);
  channel = await createChannel(s, org.owner.token, { name: 'general', memberIds: [member.id, admin.id] });
  ids.first = (await send(s, member.token, channel, 'First decision: we ship on Friday')).id;
  ids.script = (await send(s, member.token, channel, '<script>alert("x")</script> & <b>bold</b> 👋 ¿Qué tal?')).id;
  ids.reply = (await send(s, admin.token, channel, 'Agreed', { parentId: ids.first })).id;
  ids.soft = (await send(s, member.token, channel, 'secret soft-deleted words')).id;
  ids.hard = (await send(s, member.token, channel, 'secret hard-deleted words')).id;
  ids.last = (await send(s, member.token, channel, 'Last one')).id;
  ok(await s.gql(DELETE, { id: ids.soft }, member.token));
  expect(ok(await s.gql(DELETE, { id: ids.hard, hard: true }, org.owner.token)).deleteMessage.hard).toBe(true);
});
afterAll(async () => {
  await s?.stop();
});

async function requestChannel(token: string, format: 'JSON' | 'HTML', c = channel): Promise<ExportView> {
  return ok(await s.gql(EXPORT_CHANNEL, { c, f: format }, token)).exportChannel as ExportView;
}

/** Polls the export until it is done (READY or FAILED). */
async function finished(token: string, id: string): Promise<ExportView> {
  let view: ExportView | undefined;
  const done = await eventually(async () => {
    view = ok(await s.gql(EXPORT, { id }, token)).export as ExportView;
    return view.status === 'READY' || view.status === 'FAILED';
  }, 15_000);
  expect(done, JSON.stringify(view)).toBe(true);
  return view!;
}

/** Fetches a download URL as a browser would (relative to the server without PUBLIC_URL). */
async function download(url: string) {
  const response = await fetch(new URL(url, s.url));
  return { status: response.status, headers: response.headers, bytes: Buffer.from(await response.arrayBuffer()) };
}

describe('channel exports', () => {
  it('a member exports a channel as JSON: messages in order, replies, a tombstone without content, nothing hard-deleted', async () => {
    const requested = await requestChannel(member.token, 'JSON');
    expect(requested).toMatchObject({ kind: 'CHANNEL', format: 'JSON', status: 'PENDING', downloadUrl: null, channel: { id: channel } });
    const view = await finished(member.token, requested.id);
    expect(view).toMatchObject({ status: 'READY', error: null, progress: 5, total: 5 });
    expect(view.fileName).toMatch(/\.json$/);
    expect(new Date(view.expiresAt!).getTime() - Date.now()).toBeGreaterThan(23 * HOUR_MS);

    const file = await download(view.downloadUrl!);
    expect(file.status).toBe(200);
    expect(file.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(file.headers.get('content-disposition')).toMatch(/^attachment; filename="parley-.*\.json"/);
    expect(file.bytes.length).toBe(view.byteSize);
    const text = file.bytes.toString('utf8');
    expect(text).not.toContain('secret');
    expect(text).not.toContain(rawId(ids.hard));
    expect(text).not.toContain('passwordHash');

    const doc = JSON.parse(text);
    expect(doc.channel).toMatchObject({ id: rawId(channel), name: 'general' });
    expect(doc.members.map((m: { id: string }) => m.id).sort()).toEqual([org.owner.id, member.id, admin.id].map(rawId).sort());
    const messages = doc.messages as Record<string, unknown>[];
    expect(messages.map((m) => m.id)).toEqual([ids.first, ids.script, ids.reply, ids.soft, ids.last].map(rawId));
    const seqs = messages.map((m) => m.seq as number);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect(messages[0]).toMatchObject({ body: 'First decision: we ship on Friday', deleted: false, sender: { username: member.username } });
    expect(messages[1]!.body).toBe('<script>alert("x")</script> & <b>bold</b> 👋 ¿Qué tal?');
    expect(messages[2]).toMatchObject({ body: 'Agreed', parentId: rawId(ids.first), sender: { id: rawId(admin.id) } });
    expect(messages[3]).toMatchObject({ id: rawId(ids.soft), deleted: true });
    expect(messages[3]).not.toHaveProperty('body');
    expect(messages[3]).not.toHaveProperty('sender');
    expect(typeof messages[3]!.deletedAt).toBe('string');
  });

  it('HTML: the same history as a self-contained page with every piece of user text escaped', async () => {
    const view = await finished(member.token, (await requestChannel(member.token, 'HTML')).id);
    expect(view).toMatchObject({ status: 'READY', format: 'HTML' });
    expect(view.fileName).toMatch(/\.html$/);
    const file = await download(view.downloadUrl!);
    expect(file.status).toBe(200);
    expect(file.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(file.headers.get('content-disposition')).toMatch(/^attachment;/);
    expect(file.headers.get('content-security-policy')).toContain('sandbox');
    const html = file.bytes.toString('utf8');
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).not.toContain('<script>');
    expect(html).not.toContain('<b>bold');
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt; 👋 ¿Qué tal?');
    expect(html).toContain("default-src 'none'");
    expect(html).not.toContain('secret');
    expect(html).toContain('This message was deleted.');
    // Messages in order; the reply points at its thread root.
    const order = ['First decision', '&lt;script&gt;', 'Agreed', 'This message was deleted.', 'Last one'].map((t) => html.indexOf(t));
    expect(order.every((at) => at > 0)).toBe(true);
    expect(order).toEqual([...order].sort((x, y) => x - y));
    expect(html).toContain(`<li id="m-${rawId(ids.reply)}" class="reply">`);
    // The link names the root by its seq (not "earlier", which is for a root that is gone).
    expect(html).toMatch(new RegExp(`href="#m-${rawId(ids.first)}">#\\d+</a>`));
  });

  it('a channel the viewer does not read, or of another organization, is NOT_FOUND; someone else\u2019s export too', async () => {
    expect(errorCode(await s.gql(EXPORT_CHANNEL, { c: channel, f: 'JSON' }, outsider.token))).toBe('NOT_FOUND');
    expect(errorCode(await s.gql(EXPORT_CHANNEL, { c: channel, f: 'JSON' }, other.owner.token))).toBe('NOT_FOUND');
    const mine = await requestChannel(member.token, 'JSON');
    await finished(member.token, mine.id);
    for (const token of [outsider.token, admin.token, other.owner.token]) {
      expect(errorCode(await s.gql(EXPORT, { id: mine.id }, token))).toBe('NOT_FOUND');
      const listed = ok(await s.gql(EXPORTS, {}, token)).exports.edges.map((e: { node: { id: string } }) => e.node.id);
      expect(listed).not.toContain(mine.id);
      expect(ok(await s.gql(`query($id: ID!) { node(id: $id) { id } }`, { id: mine.id }, token)).node).toBeNull();
    }
    expect(ok(await s.gql(EXPORTS, {}, member.token)).exports.edges.map((e: { node: { id: string } }) => e.node.id)).toContain(mine.id);
  });

  it('progress arrives on viewerEvents over graphql-ws, ending with READY and a download URL', async () => {
    const client = wsClient(s.url, member.token, { keepOpen: true });
    try {
      const stream = collect(
        client,
        `subscription { viewerEvents { __typename ... on ExportUpdatedEvent { export { id status progress total downloadUrl } } } }`,
        {},
        (d) => d.viewerEvents,
      );
      await untilLive(stream, () => send(s, member.token, channel, 'probe'));
      const requested = await requestChannel(member.token, 'JSON');
      const exportEvents = () =>
        stream.items.filter((e) => e.__typename === 'ExportUpdatedEvent' && e.export.id === requested.id).map((e) => e.export);
      expect(await eventually(async () => exportEvents().some((e) => e.status === 'READY'), 15_000)).toBe(true);
      const events = exportEvents();
      expect(events[0]!.status).toBe('RUNNING');
      const last = events.at(-1)!;
      // Every message of the channel (five, the probes, and none hard-deleted).
      const count = await s.app.services.prisma.message.count({ where: { channelId: rawId(channel) } });
      expect(count).toBeGreaterThanOrEqual(6);
      expect(last).toMatchObject({ status: 'READY', progress: count, total: count });
      expect(last.downloadUrl).toMatch(/\/exports\//);
      expect((await download(last.downloadUrl)).status).toBe(200);
      stream.unsubscribe();
    } finally {
      await client.dispose();
    }
  });

  it('the signed URL serves the requester alone: another user, a tampered or an expired URL are refused', async () => {
    const view = await finished(member.token, (await requestChannel(member.token, 'JSON')).id);
    const url = new URL(view.downloadUrl!, s.url);
    const good = await download(url.toString());
    expect(good.status).toBe(200);
    expect(good.bytes.length).toBe(view.byteSize);

    // Another user's id in the URL breaks the signature.
    const swapped = new URL(url);
    swapped.searchParams.set('u', rawId(outsider.id));
    expect((await download(swapped.toString())).status).toBe(404);
    // Even a genuine signature for another user opens nothing: the export is not theirs.
    const signedForOther = s.app.services.exports.urls.url({
      id: rawId(view.id),
      requesterId: rawId(outsider.id),
      expiresAt: new Date(view.expiresAt!),
    });
    expect((await download(signedForOther)).status).toBe(404);
    const tampered = new URL(url);
    tampered.searchParams.set('s', `${url.searchParams.get('s')!.slice(0, -2)}AA`);
    expect((await download(tampered.toString())).status).toBe(404);
    const longer = new URL(url);
    longer.searchParams.set('e', String(Number(url.searchParams.get('e')) + 3600));
    expect((await download(longer.toString())).status).toBe(404);

    // Past the URL's lifetime: 410, so the client asks for a fresh one.
    s.app.services.clock.advance(2 * HOUR_MS);
    try {
      expect((await download(url.toString())).status).toBe(410);
    } finally {
      s.app.services.clock.advance(-2 * HOUR_MS);
    }
  });

  it('the download checks the requester again: after leaving the channel, the file is theirs no more', async () => {
    const reader = await createUser(s, org);
    const room = await createChannel(s, org.owner.token, { name: 'leaving', memberIds: [reader.id] });
    await send(s, org.owner.token, room, 'hello');
    const view = await finished(reader.token, (await requestChannel(reader.token, 'JSON', room)).id);
    expect((await download(view.downloadUrl!)).status).toBe(200);
    ok(
      await s.gql(
        `mutation($c: ID!, $u: ID!) { removeChannelMember(channelId: $c, userId: $u) { id } }`,
        { c: room, u: reader.id },
        org.owner.token,
      ),
    );
    expect((await download(view.downloadUrl!)).status).toBe(404);
  });

  it('at most EXPORT_MAX_ACTIVE_PER_USER pending or running exports per user: one more is RATE_LIMITED', async () => {
    const busy = await createUser(s, org);
    const prisma = s.app.services.prisma;
    const organizationId = (await prisma.organization.findUniqueOrThrow({ where: { slug: org.slug } })).id;
    // Three runs that look in progress (started now), so none finishes while the limit is checked.
    await prisma.export.createMany({
      data: [1, 2, 3].map(() => ({
        organizationId,
        requesterId: rawId(busy.id),
        kind: 'CHANNEL' as const,
        format: 'JSON' as const,
        channelId: rawId(channel),
        status: 'RUNNING' as const,
        startedAt: new Date(),
      })),
    });
    ok(
      await s.gql(
        `mutation($c: ID!, $u: [ID!]!) { addChannelMembers(channelId: $c, userIds: $u) { id } }`,
        { c: channel, u: [busy.id] },
        org.owner.token,
      ),
    );
    const refused = await s.gql(EXPORT_CHANNEL, { c: channel, f: 'JSON' }, busy.token);
    expect(errorCode(refused)).toBe('RATE_LIMITED');
    expect(refused.errors![0]!.message).toMatch(/at most 3/);
    // A run whose process died (started long ago) fails, which frees a place.
    await prisma.export.updateMany({
      where: { requesterId: rawId(busy.id) },
      data: { startedAt: new Date(Date.now() - 2 * HOUR_MS) },
    });
    // (Any process's housekeeping may be the one that fails them; this one runs it now.)
    await s.app.services.exports.failStale();
    const failed = await prisma.export.findMany({ where: { requesterId: rawId(busy.id) } });
    expect(failed.map((e) => [e.status, e.error])).toEqual(failed.map(() => ['FAILED', 'The export was interrupted; request it again']));
    const view = await finished(busy.token, (await requestChannel(busy.token, 'JSON')).id);
    expect(view.status).toBe('READY');
  });

  it('is audited: export.channel with the export and its format', async () => {
    const requested = await requestChannel(member.token, 'HTML');
    await finished(member.token, requested.id);
    const entries = ok(
      await s.gql(
        `query($t: ID) { auditEvents(filter: { action: "export.channel", targetId: $t }) { edges { node { action actorId targetType data } } } }`,
        { t: channel },
        org.owner.token,
      ),
    ).auditEvents.edges.map((e: { node: unknown }) => e.node);
    expect(entries).toContainEqual({
      action: 'export.channel',
      actorId: member.id,
      targetType: 'Channel',
      data: { exportId: rawId(requested.id), format: 'HTML' },
    });
  });
});

describe('organization exports', () => {
  it('an admin gets JSON lines of what they may read: users, projects, their channels with messages, requests and tickets; not others\u2019 DMs', async () => {
    const [dmA, dmB, requester] = await Promise.all([createUser(s, org), createUser(s, org), createUser(s, org)]);
    const dm = ok(await s.gql(OPEN_DIRECT, { u: [dmB.id] }, dmA.token)).openDirectChannel.id as string;
    await send(s, dmA.token, dm, 'private words between two people');
    const hidden = await createChannel(s, org.owner.token, { name: 'owners-only' });
    await send(s, org.owner.token, hidden, 'owners only words');
    const project = await createProject(s, org.owner.token, 'Tower');
    const request = await newRequest(s, org.owner.token, project, 'Steel beams');
    const ticket = await openTicket(s, requester.token, { subject: 'Printer on fire', message: 'Help' });

    const requested = ok(await s.gql(EXPORT_ORG, {}, admin.token)).exportOrganization as ExportView;
    expect(requested).toMatchObject({ kind: 'ORGANIZATION', format: 'JSONL', status: 'PENDING', channel: null });
    const view = await finished(admin.token, requested.id);
    expect(view.status).toBe('READY');
    expect(view.fileName).toMatch(/\.jsonl$/);
    expect(view.progress).toBe(view.total);
    const file = await download(view.downloadUrl!);
    expect(file.status).toBe(200);
    expect(file.headers.get('content-type')).toBe('application/x-ndjson; charset=utf-8');
    const text = file.bytes.toString('utf8');
    const lines = text
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown> & { type: string });
    const of = (type: string) => lines.filter((l) => l.type === type);

    expect(lines[0]).toMatchObject({ type: 'organization', slug: org.slug });
    expect(of('user').map((u) => u.id)).toEqual(expect.arrayContaining([member.id, admin.id, dmA.id, dmB.id].map(rawId)));
    for (const u of of('user'))
      expect(Object.keys(u).sort()).toEqual(['createdAt', 'deactivatedAt', 'displayName', 'email', 'id', 'role', 'type', 'username']);
    expect(of('project').map((p) => p.name)).toContain('Tower');
    expect(of('channel').map((c) => c.id)).toContain(rawId(channel));
    expect(
      of('member')
        .filter((m) => m.channelId === rawId(channel))
        .map((m) => m.userId),
    ).toContain(rawId(admin.id));
    const messages = of('message').filter((m) => m.channelId === rawId(channel));
    expect(messages.map((m) => m.id)).toEqual(expect.arrayContaining([ids.first, ids.reply, ids.soft].map(rawId)));
    expect(messages.find((m) => m.id === rawId(ids.reply))).toMatchObject({ parentId: rawId(ids.first), body: 'Agreed' });
    expect(messages.find((m) => m.id === rawId(ids.soft))).toEqual(expect.not.objectContaining({ body: expect.anything() }));
    expect(of('clientRequest').map((r) => r.id)).toContain(rawId(request.id));
    expect(of('supportTicket')).toContainEqual(expect.objectContaining({ id: rawId(ticket.id), subject: 'Printer on fire' }));

    // Never what the admin may not read: others' direct conversation, a channel they are not in, deleted content.
    expect(of('channel').map((c) => c.id)).not.toContain(rawId(dm));
    expect(of('channel').map((c) => c.id)).not.toContain(rawId(hidden));
    expect(text).not.toContain('private words');
    expect(text).not.toContain('owners only words');
    expect(text).not.toContain('secret');
    expect(text).not.toContain(rawId(ids.hard));
    expect(text).not.toContain('passwordHash');
  });

  it('members cannot export the organization (FORBIDDEN); the export is audited', async () => {
    expect(errorCode(await s.gql(EXPORT_ORG, {}, member.token))).toBe('FORBIDDEN');
    const entries = ok(
      await s.gql(
        `{ auditEvents(filter: { action: "export.organization" }) { edges { node { actorId targetType } } } }`,
        {},
        org.owner.token,
      ),
    ).auditEvents.edges.map((e: { node: unknown }) => e.node);
    expect(entries).toContainEqual({ actorId: admin.id, targetType: 'Organization' });
  });
});

describe('runners', () => {
  it('runners working at once never run one export twice (claims with SKIP LOCKED)', async () => {
    const prisma = s.app.services.prisma;
    const organizationId = (await prisma.organization.findUniqueOrThrow({ where: { slug: org.slug } })).id;
    const claims: string[] = [];
    // Two more runners over the same database and storage, as other processes would be.
    const runners = [1, 2].map(
      () =>
        new ExportService(
          prisma,
          {
            publish: async (_topic: string, signal: { export: { id: string; status: string; total: number | null } }) => {
              // A claim is announced RUNNING before its total is counted.
              if (signal.export.status === 'RUNNING' && signal.export.total === null) claims.push(signal.export.id);
            },
          } as unknown as ParleyPubSub,
          s.app.services.attachments.store,
          pino({ level: 'silent' }),
          s.app.services.clock,
          { ttlHours: 24, maxActivePerUser: 3, urlTtlSeconds: 300, publicUrl: '', jwtSecret: 'test-secret-0123456789abcdef' },
        ),
    );
    const created = await Promise.all(
      Array.from({ length: 8 }, () =>
        prisma.export.create({
          data: { organizationId, requesterId: rawId(member.id), kind: 'CHANNEL', format: 'JSON', channelId: rawId(channel) },
        }),
      ),
    );
    for (const runner of runners) runner.kick();
    s.app.services.exports.kick();
    await Promise.all([...runners.map((r) => r.idle()), s.app.services.exports.idle()]);
    const rows = await prisma.export.findMany({ where: { id: { in: created.map((e) => e.id) } } });
    expect(rows.map((e) => e.status)).toEqual(rows.map(() => 'READY'));
    // Each claim by these runners is of a different export (the app's own runner took the rest).
    expect(claims.length).toBeGreaterThan(0);
    expect(new Set(claims).size).toBe(claims.length);
    await Promise.all(runners.map((r) => r.stop()));
  });
});

describe('stopping', () => {
  it('a runner that stops mid-export hands it back as PENDING, and another runner produces it', async () => {
    const prisma = s.app.services.prisma;
    const organizationId = (await prisma.organization.findUniqueOrThrow({ where: { slug: org.slug } })).id;
    const published: { id: string; status: string; startedAt: string | null }[] = [];
    const runner = new ExportService(
      prisma,
      {
        publish: async (_topic: string, signal: { export: { id: string; status: string; startedAt: string | null } }) => {
          published.push(signal.export);
        },
      } as unknown as ParleyPubSub,
      s.app.services.attachments.store,
      pino({ level: 'silent' }),
      s.app.services.clock,
      { ttlHours: 24, maxActivePerUser: 3, urlTtlSeconds: 300, publicUrl: '', jwtSecret: 'test-secret-0123456789abcdef' },
    );
    const created = await prisma.export.create({
      data: { organizationId, requesterId: rawId(member.id), kind: 'CHANNEL', format: 'HTML', channelId: rawId(channel) },
    });
    runner.kick();
    await runner.stop();
    // Whatever it had claimed (this export, unless another process took it first) went back to PENDING.
    const claimed = [...new Set(published.map((e) => e.id))];
    expect(claimed.length).toBeGreaterThan(0);
    for (const id of claimed) {
      expect(published.filter((e) => e.id === id).at(-1)).toMatchObject({ status: 'PENDING', startedAt: null });
    }
    s.app.services.exports.kick();
    expect((await finished(member.token, Buffer.from(`Export:${created.id}`).toString('base64'))).status).toBe('READY');
  });
});

describe('expiry', () => {
  it('past EXPORT_TTL_HOURS the sweep deletes the file and marks the export EXPIRED; its URL then fails', async () => {
    const view = await finished(member.token, (await requestChannel(member.token, 'JSON')).id);
    const prisma = s.app.services.prisma;
    const row = await prisma.export.findUniqueOrThrow({ where: { id: rawId(view.id) } });
    expect(row.storageKey).toBe(`exports/${row.organizationId}/${row.id}`);
    const store = s.app.services.attachments.store;
    expect(await store.get(row.storageKey!)).not.toBeNull();

    // Within the TTL the sweep leaves it alone.
    await s.app.services.exports.sweep({ organizationId: row.organizationId });
    expect((await finished(member.token, view.id)).status).toBe('READY');

    s.app.services.clock.advance(25 * HOUR_MS);
    try {
      expect(await s.app.services.exports.sweep({ organizationId: row.organizationId })).toBeGreaterThanOrEqual(1);
    } finally {
      s.app.services.clock.advance(-25 * HOUR_MS);
    }
    const expired = ok(await s.gql(EXPORT, { id: view.id }, member.token)).export as ExportView;
    expect(expired).toMatchObject({ status: 'EXPIRED', downloadUrl: null });
    expect((await prisma.export.findUniqueOrThrow({ where: { id: row.id } })).storageKey).toBeNull();
    const stored = await store.get(row.storageKey!);
    stored?.body.destroy();
    expect(stored).toBeNull();
    // The URL handed out before is still signed and unexpired, but opens nothing.
    expect((await download(view.downloadUrl!)).status).toBe(404);
  });
});
