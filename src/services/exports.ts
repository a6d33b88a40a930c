import { createHmac, timingSafeEqual } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import escapeHtml from 'escape-html';
import type { Logger } from 'pino';
import type { Export, ExportFormat, Prisma, PrismaClient } from '../generated/prisma/client.ts';
import type { ExportSnapshot, ParleyPubSub } from '../bus/pubsub.ts';
import { assertId, isAdmin, organizationExportChannelWhere, readableChannel, readableChannelWhere, readableExportWhere } from './access.ts';
import { audit, auditedBy } from './audit.ts';
import type { Clock } from './clock.ts';
import { DomainError, badInput, forbidden, notFound } from './errors.ts';
import type { BlobStore } from './files/storage.ts';
import type { Viewer } from './viewer.ts';

/** Rows read per query while an export is written. */
const BATCH = 500;
/** At most one progress event per export this often (plus every status change). */
const PROGRESS_EVERY_MS = 500;
/** How often each process looks for pending exports, stale ones and expired files. */
const TICK_MS = 60_000;
/**
 * A RUNNING export whose process has not finished it this long after it
 * started is taken for dead (the process crashed or was killed): it turns
 * FAILED, and the requester asks again. Not back to PENDING: an export that
 * brings its process down would then do so for ever. (A process that stops
 * cleanly hands its run back as PENDING itself.)
 */
export const EXPORT_STALE_MS = 30 * 60_000;
const HOUR_MS = 3600 * 1000;

export type ChannelExportFormat = Extract<ExportFormat, 'JSON' | 'HTML'>;

export interface ExportSettings {
  ttlHours: number;
  maxActivePerUser: number;
  /** How long a signed download URL works (the file URLs' TTL). */
  urlTtlSeconds: number;
  publicUrl: string;
  jwtSecret: string;
}

const CONTENT_TYPES: Record<ExportFormat, string> = {
  JSON: 'application/json; charset=utf-8',
  HTML: 'text/html; charset=utf-8',
  JSONL: 'application/x-ndjson; charset=utf-8',
};
const EXTENSIONS: Record<ExportFormat, string> = { JSON: 'json', HTML: 'html', JSONL: 'jsonl' };

/** Where an export's file lives: ids only (the fs store takes `[A-Za-z0-9_-]` segments, so no extension). */
export const exportStorageKey = (e: Pick<Export, 'organizationId' | 'id'>) => `exports/${e.organizationId}/${e.id}`;

export function exportSnapshot(e: Export): ExportSnapshot {
  return {
    ...e,
    createdAt: e.createdAt.toISOString(),
    startedAt: e.startedAt?.toISOString() ?? null,
    finishedAt: e.finishedAt?.toISOString() ?? null,
    expiresAt: e.expiresAt?.toISOString() ?? null,
  };
}

/** What a download URL grants: one export's file, to its requester, until `expires` (Unix seconds). */
export interface ExportGrant {
  exportId: string;
  userId: string;
  expires: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Signed download URLs for exports, `/exports/<id>?u=<user>&e=<expires>&s=<hmac>`,
 * made like the file URLs (services/files/urls.ts) with a key of their own
 * derived from the token secret, so no file or token signature is ever a
 * valid export signature. The download route checks the user again on every
 * request.
 */
export class ExportUrls {
  private readonly key: Buffer;

  constructor(
    secret: string,
    private readonly ttlSeconds: number,
    private readonly base: string,
    private readonly now: () => number,
  ) {
    this.key = createHmac('sha256', secret).update('parley export urls v1').digest();
  }

  /** A URL for the export's requester, working until the URL TTL or the export's expiry, whichever comes first. */
  url(e: Pick<Export, 'id' | 'requesterId' | 'expiresAt'>): string {
    const ttlEnd = Math.floor(this.now() / 1000) + this.ttlSeconds;
    const expires = e.expiresAt ? Math.min(ttlEnd, Math.floor(e.expiresAt.getTime() / 1000)) : ttlEnd;
    const grant: ExportGrant = { exportId: e.id, userId: e.requesterId, expires };
    const query = new URLSearchParams({ u: grant.userId, e: String(expires), s: this.sign(grant) });
    return `${this.base}/exports/${e.id}?${query.toString()}`;
  }

  verify(pathAndQuery: string): ExportGrant | 'invalid' | 'expired' {
    const url = new URL(pathAndQuery, 'http://localhost');
    const [, exports, exportId, ...rest] = url.pathname.split('/');
    if (exports !== 'exports' || rest.length || !exportId || !UUID.test(exportId)) return 'invalid';
    const userId = url.searchParams.get('u') ?? '';
    const expires = Number(url.searchParams.get('e'));
    if (!UUID.test(userId) || !Number.isSafeInteger(expires)) return 'invalid';
    const grant: ExportGrant = { exportId, userId, expires };
    const expected = Buffer.from(this.sign(grant));
    const given = Buffer.from(url.searchParams.get('s') ?? '');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'invalid';
    return expires * 1000 <= this.now() ? 'expired' : grant;
  }

  private sign(g: ExportGrant): string {
    return createHmac('sha256', this.key).update(`${g.exportId}\n${g.userId}\n${g.expires}`).digest('base64url');
  }
}

/** Thrown inside a run when the export is no longer this run's (failed as stale meanwhile). */
class LostClaim extends Error {}
/** Thrown inside a run when its process stops: the export goes back to PENDING for another process. */
class Stopping extends Error {}

/** A run's file: written line by line to a temp file, so memory holds one batch of rows at a time. */
class Sink {
  bytes = 0;
  private error: Error | null = null;
  constructor(private readonly out: Writable) {
    // A failed write (disk full) surfaces at the next write or at close, never as an uncaught error.
    out.on('error', (error) => (this.error ??= error));
  }
  async write(text: string): Promise<void> {
    if (this.error) throw this.error;
    this.bytes += Buffer.byteLength(text);
    // `once` rejects if the stream fails meanwhile.
    if (!this.out.write(text)) await once(this.out, 'drain');
  }
  /** Flushes and closes the file; throws what failed on the way. */
  async close(): Promise<void> {
    if (!this.out.closed) {
      this.out.end();
      await once(this.out, 'close');
    }
    if (this.error) throw this.error;
  }
  /** Drops the file (a failed or interrupted run). */
  destroy(): void {
    this.out.destroy();
  }
}

interface Progress {
  /** Adds `n` items written; saves progress and publishes it (throttled). */
  add(n: number): Promise<void>;
}

type MessageRow = Prisma.MessageGetPayload<{
  select: {
    id: true;
    seq: true;
    parentId: true;
    senderId: true;
    body: true;
    customFields: true;
    createdAt: true;
    editedAt: true;
    deletedAt: true;
    sender: { select: { username: true; displayName: true } };
    parent: { select: { seq: true } };
    attachments: { select: { id: true; name: true; contentType: true; size: true } };
  };
}>;

/** A message as an export carries it: a soft-deleted one is a tombstone (no body, sender, files or fields). */
function messageRecord(m: MessageRow) {
  const base = { id: m.id, seq: m.seq, parentId: m.parentId, createdAt: m.createdAt.toISOString() };
  if (m.deletedAt) return { ...base, deleted: true as const, deletedAt: m.deletedAt.toISOString() };
  return {
    ...base,
    deleted: false as const,
    sender: { id: m.senderId, username: m.sender.username, displayName: m.sender.displayName },
    body: m.body,
    editedAt: m.editedAt?.toISOString() ?? null,
    customFields: m.customFields ?? null,
    attachments: m.attachments.map((a) => ({ id: a.id, name: a.name, contentType: a.contentType, size: a.size })),
  };
}

const HTML_STYLE = `
:root{color-scheme:light dark;--fg:#1d1d1f;--muted:#6e6e73;--line:#d2d2d7;--bg:#fff}
@media (prefers-color-scheme:dark){:root{--fg:#f5f5f7;--muted:#a1a1a6;--line:#424245;--bg:#1d1d1f}}
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Noto Color Emoji",sans-serif;color:var(--fg);background:var(--bg);max-width:48rem;margin:2rem auto;padding:0 1rem}
header{border-bottom:1px solid var(--line);margin-bottom:1rem}h1{font-size:1.4rem;margin:0 0 .25rem}
.meta,header p{color:var(--muted);font-size:.85rem}ol{list-style:none;padding:0;margin:0}
li{padding:.5rem 0;border-bottom:1px solid var(--line);break-inside:avoid}li.reply{margin-left:2rem}
.sender{font-weight:600;color:var(--fg)}.body{white-space:pre-wrap;overflow-wrap:anywhere}.deleted .body{font-style:italic;color:var(--muted)}
.files{font-size:.85rem;color:var(--muted);margin:.25rem 0 0;padding-left:1rem}a{color:inherit}
@media print{body{margin:0;max-width:none}li{border-color:#ccc}}`;

function htmlMessage(record: ReturnType<typeof messageRecord>, parentSeq: number | null): string {
  const classes = [record.parentId ? 'reply' : '', record.deleted ? 'deleted' : ''].filter(Boolean).join(' ');
  const attrs = `id="m-${escapeHtml(record.id)}"${classes ? ` class="${classes}"` : ''}`;
  const inReply = record.parentId ? ` · reply to <a href="#m-${escapeHtml(record.parentId)}">#${parentSeq ?? 'earlier'}</a>` : '';
  const time = `<time datetime="${record.createdAt}">${escapeHtml(record.createdAt.replace('T', ' ').slice(0, 16))} UTC</time>`;
  if (record.deleted) {
    return `<li ${attrs}><div class="meta">#${record.seq} · ${time}${inReply}</div><div class="body">This message was deleted.</div></li>\n`;
  }
  const files = record.attachments.length
    ? `<ul class="files">${record.attachments.map((a) => `<li>${escapeHtml(a.name)} (${escapeHtml(a.contentType)}, ${a.size} bytes)</li>`).join('')}</ul>`
    : '';
  const edited = record.editedAt ? ' · edited' : '';
  return (
    `<li ${attrs}><div class="meta">#${record.seq} · <span class="sender">${escapeHtml(record.sender.displayName)}</span> ` +
    `@${escapeHtml(record.sender.username)} · ${time}${edited}${inReply}</div><div class="body">${escapeHtml(record.body)}</div>${files}</li>\n`
  );
}

/**
 * Channel and organization exports (issue 14 §5), produced in the background
 * and delivered as signed downloads.
 *
 * A request inserts a PENDING row (at most `maxActivePerUser` pending or
 * running per user, checked under a lock on the user's row) and kicks this
 * process's runner. Runners of every process claim exports one at a time with
 * `FOR UPDATE SKIP LOCKED`, so no export runs twice; each run reads in keyset
 * batches, writes a temp file, saves its progress after each batch and
 * publishes it to the requester (`EXPORT_UPDATED` on their user topic,
 * throttled), then stores the file under a key made of ids and turns READY,
 * or FAILED with a message fit for the requester. Every write of a run is
 * fenced by its claim (`status = RUNNING` and its `startedAt`), so a run that
 * was taken for dead stops at its next batch instead of overwriting anything.
 *
 * What the requester may not read is never in a file: a channel export is
 * checked against the channel read rule when requested and again when it runs;
 * an organization export carries the channels its admin reads (not others'
 * direct conversations), every project, request and ticket (admins read them
 * all) and the users' public profiles with emails (which staff see). A soft-
 * deleted message is a tombstone (id, seq, thread, times), a hard-deleted one
 * is gone from the rows and so from the file.
 */
export class ExportService {
  readonly urls: ExportUrls;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = false;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly pubsub: ParleyPubSub,
    private readonly store: BlobStore,
    private readonly log: Logger,
    private readonly clock: Pick<Clock, 'now'>,
    private readonly settings: ExportSettings,
  ) {
    this.urls = new ExportUrls(settings.jwtSecret, settings.urlTtlSeconds, settings.publicUrl, () => clock.now().getTime());
  }

  // -------------------------------------------------------------------------
  // Requests and reads

  /** Exports a channel the viewer reads, as JSON or HTML. Another organization's channel, or one they do not read, is NOT_FOUND. */
  async exportChannel(viewer: Viewer, channelId: string, format: ChannelExportFormat): Promise<Export> {
    if (format !== 'JSON' && format !== 'HTML') throw badInput('format', 'A channel export is JSON or HTML');
    assertId(channelId, 'Channel');
    await readableChannel(this.prisma, viewer, channelId);
    return this.request(viewer, { kind: 'CHANNEL', format, channelId }, 'export.channel', { targetType: 'Channel', targetId: channelId });
  }

  /** Exports the organization as JSON lines (owners and admins). */
  async exportOrganization(viewer: Viewer): Promise<Export> {
    if (!isAdmin(viewer)) throw forbidden('Only organization owners and admins export the organization');
    return this.request(viewer, { kind: 'ORGANIZATION', format: 'JSONL', channelId: null }, 'export.organization', {
      targetType: 'Organization',
      targetId: viewer.organizationId,
    });
  }

  private async request(
    viewer: Viewer,
    data: Pick<Export, 'kind' | 'format' | 'channelId'>,
    action: string,
    target: { targetType: string; targetId: string },
  ): Promise<Export> {
    const row = await this.prisma.$transaction(async (tx) => {
      // Requests of one user queue on their row (a no-key lock: sends and other
      // writes that reference the user are not held up), so the cap holds when
      // two arrive at once.
      await tx.$queryRaw`SELECT 1 FROM "User" WHERE id = ${viewer.id}::uuid FOR NO KEY UPDATE`;
      const active = await tx.export.count({ where: { requesterId: viewer.id, status: { in: ['PENDING', 'RUNNING'] } } });
      if (active >= this.settings.maxActivePerUser) {
        throw new DomainError(
          'RATE_LIMITED',
          `You have ${active} exports pending or running (at most ${this.settings.maxActivePerUser}); wait for one to finish`,
          { limit: 'exports' },
        );
      }
      const created = await tx.export.create({
        data: { ...data, organizationId: viewer.organizationId, requesterId: viewer.id, createdAt: this.clock.now() },
      });
      await audit(tx, { ...auditedBy(viewer), action, ...target, data: { exportId: created.id, format: data.format } });
      return created;
    });
    this.kick();
    return row;
  }

  /** One of the viewer's own exports; anyone else's is NOT_FOUND. */
  async get(viewer: Viewer, id: string, query: object = {}): Promise<Export> {
    assertId(id, 'Export');
    const row = await this.prisma.export.findFirst({ ...query, where: { id, ...readableExportWhere(viewer) } });
    if (!row) throw notFound('Export');
    return row;
  }

  /** The `where` of the viewer's exports list. */
  listWhere(viewer: Viewer): Prisma.ExportWhereInput {
    return readableExportWhere(viewer);
  }

  /** A signed download URL for the viewer's own READY, unexpired export; null otherwise. */
  downloadUrl(viewer: Pick<Viewer, 'id' | 'organizationId'>, e: Export): string | null {
    if (e.status !== 'READY' || e.requesterId !== viewer.id || e.organizationId !== viewer.organizationId) return null;
    if (!e.expiresAt || e.expiresAt <= this.clock.now()) return null;
    return this.urls.url(e);
  }

  /**
   * The file behind a verified download grant, or null for anything the
   * requester may no longer have: the export is theirs, READY and unexpired;
   * they are still an active member of its organization; for a channel export
   * they still read the channel, for an organization export they are still an
   * admin.
   */
  async openDownload(grant: ExportGrant): Promise<{ row: Export; body: Readable; size: number } | null> {
    const row = await this.prisma.export.findFirst({ where: { id: grant.exportId, requesterId: grant.userId, status: 'READY' } });
    if (!row?.storageKey || !row.expiresAt || row.expiresAt <= this.clock.now()) return null;
    const viewer = await this.requester(row);
    if (!viewer) return null;
    if (row.kind === 'ORGANIZATION' && !isAdmin(viewer)) return null;
    if (row.kind === 'CHANNEL') {
      const readable = await this.prisma.channel.count({ where: { id: row.channelId!, ...readableChannelWhere(viewer) } });
      if (!readable) return null;
    }
    const stored = await this.store.get(row.storageKey);
    return stored ? { row, ...stored } : null;
  }

  /** The requester as a viewer, or null when they are gone, deactivated or erased. */
  private async requester(row: Pick<Export, 'requesterId' | 'organizationId'>): Promise<Viewer | null> {
    const user = await this.prisma.user.findFirst({
      where: { id: row.requesterId, organizationId: row.organizationId, deactivatedAt: null, erasedAt: null },
      select: { id: true, organizationId: true, role: true, username: true, displayName: true },
    });
    return user;
  }

  // -------------------------------------------------------------------------
  // The runner

  /**
   * Stale runs failed and expired files swept, then a tick every minute
   * (pending exports, stale runs, expired files) until `stop()`. Resolves
   * once the first housekeeping is done; the runner starts only if an export
   * is pending, so a server that has none runs no query after its start.
   */
  async start(): Promise<void> {
    if (this.timer || this.stopped) return;
    this.timer = setInterval(() => void this.tick(), TICK_MS);
    this.timer.unref();
    await this.housekeeping();
    const pending = await this.prisma.export.count({ where: { status: 'PENDING' } }).catch(() => 0);
    if (pending > 0) this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running?.catch(() => {});
  }

  private async tick(): Promise<void> {
    await this.housekeeping();
    this.kick();
  }

  private async housekeeping(): Promise<void> {
    try {
      await this.failStale();
      await this.sweep();
    } catch (error) {
      this.log.warn({ err: error }, 'export housekeeping failed; retrying at the next interval');
    }
  }

  /** Runs pending exports until none is left; a kick while running makes the runner look once more. */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.drain()
      .catch((error: unknown) => this.log.warn({ err: error }, 'export runner failed; retrying at the next interval'))
      .finally(() => {
        this.running = null;
        if (this.again && !this.stopped) {
          this.again = false;
          this.kick();
        }
      });
  }

  /** Waits until this process's runner is idle (tests). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    this.again = false;
    while (!this.stopped) {
      const claimed = await this.claim();
      if (!claimed) return;
      await this.run(claimed);
    }
  }

  /** Takes the oldest pending export for this process; no two processes take the same one. */
  private async claim(): Promise<Export | null> {
    const startedAt = this.clock.now();
    const rows = await this.prisma.$queryRaw<{ id: string }[]>`
      UPDATE "Export" SET status = 'RUNNING', "startedAt" = ${startedAt}, progress = 0
      WHERE id = (SELECT id FROM "Export" WHERE status = 'PENDING' ORDER BY "createdAt", id LIMIT 1 FOR UPDATE SKIP LOCKED)
        AND status = 'PENDING'
      RETURNING id`;
    if (!rows[0]) return null;
    const row = await this.prisma.export.findUniqueOrThrow({ where: { id: rows[0].id } });
    await this.publish(row);
    return row;
  }

  /** Fails RUNNING exports started more than EXPORT_STALE_MS ago (their process died): their requesters ask again. */
  async failStale(): Promise<number> {
    const cutoff = new Date(this.clock.now().getTime() - EXPORT_STALE_MS);
    const stale = await this.prisma.export.findMany({ where: { status: 'RUNNING', startedAt: { lt: cutoff } }, take: 100 });
    let failed = 0;
    for (const row of stale) {
      const done = await this.finish(row, {
        status: 'FAILED',
        error: 'The export was interrupted; request it again',
        finishedAt: this.clock.now(),
      });
      if (done) failed++;
    }
    return failed;
  }

  /**
   * Expires READY exports past their `expiresAt` (no download serves them
   * from then on), then deletes the files of expired and failed exports and
   * forgets their keys. A storage failure leaves the keys for the next pass.
   */
  async sweep(scope: { organizationId?: string } = {}): Promise<number> {
    const now = this.clock.now();
    const org = scope.organizationId ? { organizationId: scope.organizationId } : {};
    const expiring = await this.prisma.export.findMany({ where: { ...org, status: 'READY', expiresAt: { lte: now } }, take: 500 });
    let expired = 0;
    for (const row of expiring) {
      const { count } = await this.prisma.export.updateMany({
        where: { id: row.id, status: 'READY' },
        data: { status: 'EXPIRED' },
      });
      if (!count) continue;
      expired++;
      await this.publish({ ...row, status: 'EXPIRED' });
    }
    for (;;) {
      const gone = await this.prisma.export.findMany({
        where: { ...org, status: { in: ['EXPIRED', 'FAILED'] }, storageKey: { not: null } },
        select: { id: true, storageKey: true },
        take: 100,
      });
      if (!gone.length) break;
      try {
        await this.store.delete(gone.map((g) => g.storageKey!));
      } catch (error) {
        this.log.warn({ err: error, files: gone.length }, 'export cleanup: the file storage failed; retried at the next pass');
        break;
      }
      await this.prisma.export.updateMany({
        where: { id: { in: gone.map((g) => g.id) }, status: { in: ['EXPIRED', 'FAILED'] } },
        data: { storageKey: null },
      });
      if (gone.length < 100) break;
    }
    return expired;
  }

  /** Writes a fenced change of a run's row (only while it is still this run's); the row after it, or null. */
  private async finish(row: Export, data: Prisma.ExportUpdateManyMutationInput): Promise<Export | null> {
    const { count } = await this.prisma.export.updateMany({
      where: { id: row.id, status: 'RUNNING', startedAt: row.startedAt },
      data,
    });
    if (!count) return null;
    const updated = await this.prisma.export.findUniqueOrThrow({ where: { id: row.id } });
    await this.publish(updated);
    return updated;
  }

  private async publish(row: Export): Promise<void> {
    await this.pubsub
      .publish(`user:${row.requesterId}`, { type: 'EXPORT_UPDATED', export: exportSnapshot(row) })
      .catch((error: unknown) => this.log.warn({ err: error, exportId: row.id }, 'export progress could not be published'));
  }

  private async run(row: Export): Promise<void> {
    const dir = await mkdtemp(join(tmpdir(), 'parley-export-'));
    const path = join(dir, 'file');
    const sink = new Sink(createWriteStream(path));
    let progress = 0;
    let lastPublished = Date.now();
    const tracker: Progress = {
      add: async (n) => {
        progress += n;
        const publish = Date.now() - lastPublished >= PROGRESS_EVERY_MS;
        const { count } = await this.prisma.export.updateMany({
          where: { id: row.id, status: 'RUNNING', startedAt: row.startedAt },
          data: { progress },
        });
        if (!count) throw new LostClaim();
        if (this.stopped) throw new Stopping();
        if (publish) {
          lastPublished = Date.now();
          await this.publish({ ...row, progress });
        }
      },
    };
    try {
      const viewer = await this.requester(row);
      if (!viewer) throw new DomainError('FORBIDDEN', 'The requester can no longer export');
      const total = row.kind === 'CHANNEL' ? await this.channelTotal(row) : await this.organizationTotal(viewer);
      const started = await this.finish(row, { total });
      if (!started) throw new LostClaim();
      const fileName =
        row.kind === 'CHANNEL'
          ? await this.writeChannel(viewer, row, sink, tracker)
          : await this.writeOrganization(viewer, row, sink, tracker);
      await sink.close();
      const { size } = await stat(path);
      const key = exportStorageKey(row);
      await this.store.putFile(key, path, CONTENT_TYPES[row.format]);
      const now = this.clock.now();
      const done = await this.finish(row, {
        status: 'READY',
        progress,
        storageKey: key,
        byteSize: size,
        contentType: CONTENT_TYPES[row.format],
        fileName: `${fileName}.${EXTENSIONS[row.format]}`,
        finishedAt: now,
        expiresAt: new Date(now.getTime() + this.settings.ttlHours * HOUR_MS),
      });
      if (!done) {
        // Taken for dead meanwhile: the row is FAILED and no one downloads this file.
        await this.store.delete([key]).catch(() => {});
      }
    } catch (error) {
      sink.destroy();
      if (error instanceof Stopping) {
        // A clean stop hands the export back at once rather than leaving it RUNNING until it is taken for stale.
        await this.finish(row, { status: 'PENDING', startedAt: null, progress: 0, total: null }).catch(() => {});
      } else if (error instanceof LostClaim) {
        this.log.warn({ exportId: row.id }, 'export: the run lost its claim (taken for stale); stopped');
      } else {
        const message = error instanceof DomainError ? error.message : 'The export could not be produced; request it again';
        if (!(error instanceof DomainError)) this.log.error({ err: error, exportId: row.id }, 'export failed');
        await this.finish(row, { status: 'FAILED', error: message, finishedAt: this.clock.now() }).catch((e: unknown) =>
          this.log.warn({ err: e, exportId: row.id }, 'export: the failure could not be saved'),
        );
      }
    } finally {
      await rm(dir, { recursive: true, force: true }).catch(() => {});
    }
  }

  // -------------------------------------------------------------------------
  // Writers

  private channelTotal(row: Export): Promise<number> {
    return this.prisma.message.count({ where: { channelId: row.channelId! } });
  }

  private messageBatch(channelId: string, afterSeq: number): Promise<MessageRow[]> {
    return this.prisma.message.findMany({
      where: { channelId, seq: { gt: afterSeq } },
      orderBy: { seq: 'asc' },
      take: BATCH,
      select: {
        id: true,
        seq: true,
        parentId: true,
        senderId: true,
        body: true,
        customFields: true,
        createdAt: true,
        editedAt: true,
        deletedAt: true,
        sender: { select: { username: true, displayName: true } },
        // The HTML links a reply to its thread's root by the root's seq.
        parent: { select: { seq: true } },
        attachments: {
          where: { state: 'ATTACHED' },
          orderBy: { position: 'asc' },
          select: { id: true, name: true, contentType: true, size: true },
        },
      },
    });
  }

  /** Writes one channel's file; returns the file's name without extension. */
  private async writeChannel(viewer: Viewer, row: Export, sink: Sink, progress: Progress): Promise<string> {
    // Read again as the run starts: a member who left meanwhile gets no file.
    const access = await readableChannel(this.prisma, viewer, row.channelId!).catch(() => null);
    if (!access) throw new DomainError('NOT_FOUND', 'Channel not found');
    const channel = await this.prisma.channel.findUniqueOrThrow({
      where: { id: row.channelId! },
      include: {
        organization: { select: { id: true, name: true, slug: true } },
        project: { select: { id: true, name: true } },
        members: {
          orderBy: { joinedAt: 'asc' },
          select: { role: true, joinedAt: true, user: { select: { id: true, username: true, displayName: true } } },
        },
      },
    });
    const title = channel.name ?? (channel.kind === 'DIRECT' ? 'Direct conversation' : channel.kind.toLowerCase());
    const header = {
      exportedAt: this.clock.now().toISOString(),
      exportedBy: { id: viewer.id, username: viewer.username },
      organization: channel.organization,
      channel: {
        id: channel.id,
        kind: channel.kind,
        name: channel.name,
        topic: channel.topic,
        description: channel.description,
        visibility: channel.visibility,
        project: channel.project,
        customFields: channel.customFields ?? null,
        archivedAt: channel.archivedAt?.toISOString() ?? null,
        createdAt: channel.createdAt.toISOString(),
      },
      members: channel.members.map((m) => ({ ...m.user, role: m.role, joinedAt: m.joinedAt.toISOString() })),
    };
    const html = row.format === 'HTML';
    if (html) {
      await sink.write(
        `<!doctype html>\n<html lang="en"><head><meta charset="utf-8">` +
          `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">` +
          `<meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(title)} · ${escapeHtml(channel.organization.name)}</title>` +
          `<style>${HTML_STYLE}</style></head><body><header><h1>${escapeHtml(title)}</h1>` +
          (channel.topic ? `<p>${escapeHtml(channel.topic)}</p>` : '') +
          `<p>${escapeHtml(channel.organization.name)} · exported ${escapeHtml(header.exportedAt)} by @${escapeHtml(viewer.username)} · ` +
          `members: ${channel.members.map((m) => escapeHtml(m.user.displayName)).join(', ')}</p></header>\n<main><ol>\n`,
      );
    } else {
      const head = JSON.stringify({ format: 'parley.channel-export.v1', ...header });
      await sink.write(`${head.slice(0, -1)},"messages":[\n`);
    }
    let after = 0;
    let first = true;
    for (;;) {
      const batch = await this.messageBatch(channel.id, after);
      if (!batch.length) break;
      let chunk = '';
      for (const m of batch) {
        const record = messageRecord(m);
        if (html) {
          chunk += htmlMessage(record, m.parent?.seq ?? null);
        } else {
          chunk += `${first ? '' : ',\n'}${JSON.stringify(record)}`;
          first = false;
        }
      }
      await sink.write(chunk);
      await progress.add(batch.length);
      after = batch.at(-1)!.seq;
      if (batch.length < BATCH) break;
    }
    await sink.write(html ? `</ol></main></body></html>\n` : `\n]}\n`);
    return `parley-${channel.organization.slug}-${channel.id}`;
  }

  private async organizationTotal(viewer: Viewer): Promise<number> {
    const where = organizationExportChannelWhere(viewer);
    const [channels, messages, requests, tickets] = await Promise.all([
      this.prisma.channel.count({ where }),
      this.prisma.message.count({ where: { organizationId: viewer.organizationId, channel: where } }),
      this.prisma.clientRequest.count({ where: { organizationId: viewer.organizationId } }),
      this.prisma.supportTicket.count({ where: { organizationId: viewer.organizationId } }),
    ]);
    return channels + messages + requests + tickets;
  }

  /** Writes the organization's JSON lines; returns the file's name without extension. */
  private async writeOrganization(viewer: Viewer, row: Export, sink: Sink, progress: Progress): Promise<string> {
    const organizationId = viewer.organizationId;
    const line = (type: string, record: object) => `${JSON.stringify({ type, ...record })}\n`;
    const org = await this.prisma.organization.findUniqueOrThrow({
      where: { id: organizationId },
      select: { id: true, name: true, slug: true, createdAt: true },
    });
    await sink.write(line('organization', { ...org, exportedAt: this.clock.now().toISOString(), exportedBy: viewer.id }));

    /** Streams one table in id order, a batch per query. */
    const each = async <T extends { id: string }>(
      load: (after: string | undefined) => Promise<T[]>,
      write: (rows: T[]) => Promise<void>,
    ): Promise<void> => {
      let after: string | undefined;
      for (;;) {
        const rows = await load(after);
        if (!rows.length) return;
        await write(rows);
        after = rows.at(-1)!.id;
        if (rows.length < BATCH) return;
      }
    };
    const page = (after: string | undefined) => ({
      take: BATCH,
      orderBy: { id: 'asc' as const },
      ...(after ? { cursor: { id: after }, skip: 1 } : {}),
    });

    // Public profiles; emails because staff see them (mayReadEmail). Never password hashes.
    await each(
      (after) =>
        this.prisma.user.findMany({
          ...page(after),
          where: { organizationId },
          select: { id: true, username: true, displayName: true, email: true, role: true, deactivatedAt: true, createdAt: true },
        }),
      (rows) => sink.write(rows.map((u) => line('user', u)).join('')),
    );
    await each(
      (after) =>
        this.prisma.project.findMany({
          ...page(after),
          where: { organizationId },
          select: { id: true, name: true, description: true, archivedAt: true, createdAt: true },
        }),
      (rows) => sink.write(rows.map((p) => line('project', p)).join('')),
    );
    await each(
      (after) => this.prisma.channel.findMany({ ...page(after), where: organizationExportChannelWhere(viewer) }),
      async (channels) => {
        // The page's members in one query, not one per channel.
        const members = new Map<string, { channelId: string; userId: string; role: string; joinedAt: Date }[]>();
        const rows = await this.prisma.channelMember.findMany({
          where: { channelId: { in: channels.map((c) => c.id) } },
          orderBy: [{ channelId: 'asc' }, { joinedAt: 'asc' }],
          select: { channelId: true, userId: true, role: true, joinedAt: true },
        });
        for (const m of rows) {
          const list = members.get(m.channelId);
          if (list) list.push(m);
          else members.set(m.channelId, [m]);
        }
        for (const c of channels) {
          await sink.write(
            line('channel', {
              id: c.id,
              kind: c.kind,
              name: c.name,
              topic: c.topic,
              description: c.description,
              visibility: c.visibility,
              projectId: c.projectId,
              customFields: c.customFields ?? null,
              archivedAt: c.archivedAt,
              createdAt: c.createdAt,
            }),
          );
          await sink.write((members.get(c.id) ?? []).map((m) => line('member', m)).join(''));
          await progress.add(1);
          let after = 0;
          for (;;) {
            const batch = await this.messageBatch(c.id, after);
            if (!batch.length) break;
            await sink.write(batch.map((m) => line('message', { channelId: c.id, ...messageRecord(m) })).join(''));
            await progress.add(batch.length);
            after = batch.at(-1)!.seq;
            if (batch.length < BATCH) break;
          }
        }
      },
    );
    // Admins read every request and ticket (readableClientRequestWhere, readableSupportTicketWhere).
    await each(
      (after) =>
        this.prisma.clientRequest.findMany({
          ...page(after),
          where: { organizationId },
        }),
      async (rows) => {
        // A request's own `type` (MATERIAL, …) is `requestType`: `type` names the line's record.
        await sink.write(rows.map(({ type: requestType, ...r }) => line('clientRequest', { ...r, requestType })).join(''));
        await progress.add(rows.length);
      },
    );
    await each(
      (after) =>
        this.prisma.supportTicket.findMany({
          ...page(after),
          where: { organizationId },
        }),
      async (rows) => {
        await sink.write(rows.map((t) => line('supportTicket', t)).join(''));
        await progress.add(rows.length);
      },
    );
    return `parley-${org.slug}-${row.id}`;
  }
}
