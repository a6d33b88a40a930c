import type { Logger } from 'pino';
import {
  Prisma,
  type ClientRequest,
  type Message,
  type PrismaClient,
  type SearchLanguage,
  type SupportTicket,
} from '../generated/prisma/client.ts';
import { columns } from '../db/columns.ts';
import {
  assertId,
  isAdmin,
  readableChannelIdsSql,
  readableClientRequestSql,
  readableMessageWhere,
  readableSupportTicketSql,
  readableUserWhere,
} from './access.ts';
import { badInput, forbidden, notFound } from './errors.ts';
import type { Viewer } from './viewer.ts';

/** Longest query accepted, in characters: room for a sentence, not a document. */
export const SEARCH_QUERY_MAX = 256;
/** Recency: a match's relevance is divided by 1 + its age in these units (30 days), so last month's exact hit still beats last year's. */
const RECENCY_SECONDS = 30 * 24 * 3600;
/** Messages re-indexed per transaction after a language change. */
const REINDEX_BATCH = 2000;
const NO_ID = '00000000-0000-0000-0000-000000000000';
// Marks ts_headline puts around a match; a body that holds either gets its highlights from the prefix rule alone.
const START = '\u0001';
const STOP = '\u0002';

/** [start, end) offsets, in UTF-16 code units (as JavaScript indexes strings), of a match in a field's text. */
export interface Highlight {
  field: string;
  start: number;
  end: number;
}

export interface Hit<T> {
  node: T;
  score: number;
  highlights: Highlight[];
  cursor: string;
}

export interface Hits<T> {
  hits: Hit<T>[];
  hasNextPage: boolean;
}

export interface MessageSearchFilter {
  channelIds?: string[] | null;
  senderId?: string | null;
  from?: Date | null;
  to?: Date | null;
  /** A thread: its root and the replies to it. */
  threadId?: string | null;
  /** True: replies only; false: no replies. */
  inThread?: boolean | null;
  hasAttachments?: boolean | null;
  mentionsMe?: boolean | null;
  linksEntity?: { type: string; externalId: string } | null;
}

export interface Page {
  first: number;
  after?: string | null;
}

/**
 * A query as typed, split for search-as-you-type: web-search syntax
 * (`"exact phrase"`, `-word`, `or`) through websearch_to_tsquery in the
 * organization's language, and the last word, while it is a plain word being
 * typed, also matched as a prefix of the unstemmed words (parley_simple), so
 * "decisi" finds "decision" although its stem is "decis".
 */
interface ParsedQuery {
  head: string;
  /** The last word, when it may be a prefix: letters and digits only, not quoted, not negated. */
  prefix: string | null;
  /** The head ended in `or`: the last word is an alternative, not another condition. */
  orPrefix: boolean;
}

export function parseQuery(raw: string): ParsedQuery {
  const text = raw.normalize('NFC').trim();
  const match = /(^|\s)([\p{L}\p{N}]+)$/u.exec(text);
  const quotes = (text.match(/"/g) ?? []).length;
  if (!match || quotes % 2 === 1 || /^or$/i.test(match[2]!)) return { head: text, prefix: null, orPrefix: false };
  let head = text.slice(0, match.index).trim();
  const orPrefix = /(^|\s)or$/i.test(head);
  if (orPrefix) head = head.slice(0, -2).trim();
  return { head, prefix: match[2]!, orPrefix };
}

function tsquerySql(parsed: ParsedQuery, config: Prisma.Sql): Prisma.Sql {
  if (parsed.prefix === null) return Prisma.sql`websearch_to_tsquery(${config}, ${parsed.head})`;
  const last = Prisma.sql`(websearch_to_tsquery(${config}, ${parsed.prefix}) || to_tsquery('parley_simple', ${parsed.prefix + ':*'}))`;
  const head = Prisma.sql`websearch_to_tsquery(${config}, ${parsed.head})`;
  // An empty head (nothing before the last word, or stop words only) leaves `last` alone: && and || skip an empty operand.
  return parsed.orPrefix ? Prisma.sql`(${head} || ${last})` : Prisma.sql`(${head} && ${last})`;
}

const fold = (s: string) => s.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();

/**
 * Highlights of one field: what ts_headline marked (words whose lexemes the
 * query holds, stemmed as indexed) and the words the prefix starts. Offsets,
 * never markup: a client renders them with its own escaping.
 */
export function highlightsOf(field: string, text: string, marked: string | null, prefix: string | null): Highlight[] {
  const ranges: [number, number][] = [];
  if (marked !== null && !text.includes(START) && !text.includes(STOP)) {
    let offset = 0;
    let open = -1;
    for (const ch of marked) {
      if (ch === START) open = offset;
      else if (ch === STOP) {
        if (open >= 0) ranges.push([open, offset]);
        open = -1;
      } else offset += ch.length;
    }
  }
  if (prefix !== null) {
    const p = fold(prefix);
    for (const word of text.matchAll(/[\p{L}\p{N}]+/gu)) {
      if (fold(word[0]).startsWith(p)) ranges.push([word.index, word.index + word[0].length]);
    }
  }
  ranges.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
  const merged: Highlight[] = [];
  for (const [start, end] of ranges) {
    const last = merged.at(-1);
    if (last && start <= last.end) last.end = Math.max(last.end, end);
    else merged.push({ field, start, end });
  }
  return merged;
}

interface Cursor {
  asOf: number;
  score: number;
  id: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify(['s', c.asOf, c.score, c.id])).toString('base64url');
}

/**
 * A search cursor carries the time its first page was ranked at, so the
 * recency part of every score stays the same from page to page, and the last
 * hit's score and id: pages are a keyset on (score, id), with no hole or
 * repeat while the ranking holds still.
 */
function decodeCursor(after: string | null | undefined): Cursor | null {
  if (after == null) return null;
  try {
    const value: unknown = JSON.parse(Buffer.from(after, 'base64url').toString());
    if (Array.isArray(value) && value.length === 4 && value[0] === 's') {
      const [, asOf, score, id] = value as unknown[];
      if (Number.isSafeInteger(asOf) && typeof score === 'number' && Number.isFinite(score) && typeof id === 'string' && UUID.test(id))
        return { asOf: asOf as number, score, id };
    }
  } catch {
    // fall through
  }
  throw badInput('after', 'after is not a cursor of this search');
}

function checkQuery(query: string): ParsedQuery {
  if (query.length > SEARCH_QUERY_MAX) throw badInput('query', `query must be at most ${SEARCH_QUERY_MAX} characters`);
  const parsed = parseQuery(query);
  if (parsed.head === '' && parsed.prefix === null) throw badInput('query', 'query must not be empty');
  return parsed;
}

const configOf = (organizationId: string) =>
  Prisma.sql`(SELECT parley_search_config("searchLanguage") FROM "Organization" WHERE id = ${organizationId}::uuid)`;

/** The score: relevance (ts_rank_cd, scaled to [0, 1)) divided by 1 + age in months as of the first page. */
const scoreSql = (alias: string, createdAt: string, asOf: number) =>
  Prisma.sql`(ts_rank_cd(${Prisma.raw(alias)}."searchVector", q.q, 32)::float8
    / (1 + greatest(0, ${asOf / 1000}::float8 - extract(epoch FROM ${Prisma.raw(alias)}.${Prisma.raw(`"${createdAt}"`)}))::float8 / ${RECENCY_SECONDS}))`;

const afterSql = (cursor: Cursor | null) =>
  cursor
    ? Prisma.sql`AND (s.score < ${cursor.score}::float8 OR (s.score = ${cursor.score}::float8 AND s.id < ${cursor.id}::uuid))`
    : Prisma.empty;

const HEADLINE = `HighlightAll=true, StartSel=${START}, StopSel=${STOP}`;

type Row<T> = T & { _score: number; _marks: (string | null)[] };

/**
 * The statement a message search runs: exported so `bench/search.ts` runs the
 * very same SQL with `pg` beside the GraphQL field. One round trip: the query,
 * the viewer's readable channels, the filters, ranking, the page and the
 * highlights of the page's rows only.
 */
export function messageSearchStatement(viewer: Viewer, query: string, filter: MessageSearchFilter, page: Page) {
  return searchStatement(viewer, query, page, {
    table: 'Message',
    alias: 'm',
    where: Prisma.sql`m."organizationId" = ${viewer.organizationId}::uuid
      AND m."channelId" = ANY(ARRAY(${channelScopeSql(viewer, filter.channelIds ?? null)}))
      AND m."deletedAt" IS NULL ${messageFilterSql(viewer, filter)}`,
    fields: ['body'],
  });
}

interface Searched {
  table: 'Message' | 'ClientRequest' | 'SupportTicket';
  alias: string;
  /** Who may read what, and the filters: everything but the match itself. */
  where: Prisma.Sql;
  /** The text columns the highlights are of, in order. */
  fields: string[];
}

/**
 * One search, one statement: the query, the candidates (`where`) that match
 * it scored, the page after the cursor, then the page's rows with the
 * highlights of their `fields` (ts_headline runs for the page only).
 */
function searchStatement(viewer: Viewer, query: string, page: Page, searched: Searched) {
  const parsed = checkQuery(query);
  const cursor = decodeCursor(page.after);
  const asOf = cursor?.asOf ?? Date.now();
  const config = configOf(viewer.organizationId);
  const [alias, table] = [Prisma.raw(searched.alias), Prisma.raw(`"${searched.table}"`)];
  const marks = searched.fields.map((field) => Prisma.sql`ts_headline(${config}, ${alias}.${Prisma.raw(`"${field}"`)}, q.q, ${HEADLINE})`);
  const sql = Prisma.sql`
      WITH q AS (SELECT ${tsquerySql(parsed, config)} AS q),
      ranked AS (
        SELECT s.id, s.score FROM (
          SELECT ${alias}.id, ${scoreSql(searched.alias, 'createdAt', asOf)} AS score
          FROM ${table} ${alias}, q
          WHERE ${searched.where} AND ${alias}."searchVector" @@ q.q
        ) s
        WHERE true ${afterSql(cursor)}
        ORDER BY s.score DESC, s.id DESC
        LIMIT ${page.first + 1})
      SELECT ${columns(searched.table, searched.alias)}, ranked.score AS "_score", ARRAY[${Prisma.join(marks)}] AS "_marks"
      FROM ranked JOIN ${table} ${alias} ON ${alias}.id = ranked.id, q
      ORDER BY ranked.score DESC, ranked.id DESC`;
  return { sql, asOf, parsed, fields: searched.fields };
}

/**
 * Full-text search (issue 14 §1) over messages, client requests and support
 * tickets: PostgreSQL full-text search on the `searchVector` columns that
 * triggers keep in the organization's language (see the search migration),
 * GIN-indexed. Access is the reading rules' SQL forms (access.ts), applied in
 * the same statement, so what a search returns is what the viewer may read at
 * that moment: channels they are a member of (clients: of projects they still
 * have access to), never a deleted message, never another organization.
 *
 * This class is the seam for a dedicated search engine: its three methods
 * take the viewer, the query and the filters and return ids with scores and
 * highlights; an engine-backed version would answer the same from its own
 * index (filtered by the same readable channel ids) and load the rows here.
 */
export class SearchService {
  private reindexing: Promise<void> | null = null;
  private stopped = false;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly log: Logger,
  ) {}

  async messages(viewer: Viewer, query: string, filter: MessageSearchFilter, page: Page): Promise<Hits<Message>> {
    await this.checkFilter(viewer, filter);
    return this.run<Message>(messageSearchStatement(viewer, query, filter, page), page.first);
  }

  /**
   * The ids a filter names must be ones the viewer may read, as everywhere
   * else: an unreadable channel, user or thread is NOT_FOUND (the same for
   * another organization's and for one that never existed), not a silent empty result.
   */
  private async checkFilter(viewer: Viewer, filter: MessageSearchFilter): Promise<void> {
    for (const id of filter.channelIds ?? []) assertId(id, 'Channel');
    if (filter.senderId) assertId(filter.senderId, 'User');
    if (filter.threadId) assertId(filter.threadId, 'Message');
    const checks: Promise<void>[] = [];
    if (filter.channelIds?.length) {
      const wanted = [...new Set(filter.channelIds)];
      checks.push(
        this.prisma.$queryRaw<{ n: number }[]>`
          SELECT count(*)::int AS n FROM (${readableChannelIdsSql(viewer)}) r WHERE r."channelId" = ANY(${wanted}::uuid[])`.then(
          ([row]) => {
            if (row!.n !== wanted.length) throw notFound('Channel');
          },
        ),
      );
    }
    if (filter.senderId) {
      checks.push(
        this.prisma.user.count({ where: { id: filter.senderId, ...readableUserWhere(viewer) } }).then((n) => {
          if (n === 0) throw notFound('User');
        }),
      );
    }
    if (filter.threadId) {
      checks.push(
        this.prisma.message.count({ where: { id: filter.threadId, ...readableMessageWhere(viewer) } }).then((n) => {
          if (n === 0) throw notFound('Message');
        }),
      );
    }
    await Promise.all(checks);
  }

  async clientRequests(viewer: Viewer, query: string, page: Page): Promise<Hits<ClientRequest>> {
    const where = readableClientRequestSql(viewer, 'r');
    return this.run<ClientRequest>(
      searchStatement(viewer, query, page, { table: 'ClientRequest', alias: 'r', where, fields: ['title', 'description'] }),
      page.first,
    );
  }

  async supportTickets(viewer: Viewer, query: string, page: Page): Promise<Hits<SupportTicket>> {
    const where = readableSupportTicketSql(viewer, 't');
    return this.run<SupportTicket>(
      searchStatement(viewer, query, page, { table: 'SupportTicket', alias: 't', where, fields: ['subject'] }),
      page.first,
    );
  }

  private async run<T extends { id: string }>(statement: ReturnType<typeof searchStatement>, first: number): Promise<Hits<T>> {
    const rows = await this.prisma.$queryRaw<Row<T>[]>(statement.sql);
    const hits = rows.slice(0, first).map(({ _score, _marks, ...rest }) => {
      const node = rest as unknown as T;
      const text = node as unknown as Record<string, string | null>;
      const highlights = statement.fields.flatMap((field, i) =>
        highlightsOf(field, text[field] ?? '', _marks[i] ?? null, statement.parsed.prefix),
      );
      return { node, score: _score, highlights, cursor: encodeCursor({ asOf: statement.asOf, score: _score, id: node.id }) };
    });
    return { hits, hasNextPage: rows.length > first };
  }

  /**
   * Sets the language the organization's content is stemmed in (admins).
   * Content written from now on is indexed in it at once; what exists is
   * indexed again in the background, in batches (reindex), during which
   * older messages still match by their old stems.
   */
  async setLanguage(viewer: Viewer, language: SearchLanguage): Promise<void> {
    if (!isAdmin(viewer)) throw forbidden('Only organization owners and admins change the search language');
    const changed = await this.prisma.$executeRaw`
      UPDATE "Organization" SET "searchLanguage" = ${language}::"SearchLanguage", "searchReindexAfter" = ${NO_ID}::uuid
      WHERE id = ${viewer.organizationId}::uuid AND "searchLanguage" <> ${language}::"SearchLanguage"`;
    if (changed > 0) {
      await this.prisma.auditLog.create({
        data: {
          organizationId: viewer.organizationId,
          actorId: viewer.id,
          action: 'organization.searchLanguage',
          targetType: 'Organization',
          targetId: viewer.organizationId,
          data: { searchLanguage: language },
        },
      });
      this.reindex();
    }
  }

  /** At start: goes on with a re-indexing a stopped process left half done, if any (in the background). */
  async start(): Promise<void> {
    const pending = await this.prisma.organization.count({ where: { searchReindexAfter: { not: null } } }).catch((error: unknown) => {
      this.log.warn({ err: error }, 'could not look for a pending search re-indexing; it resumes at the next language change');
      return 0;
    });
    if (pending > 0) void this.reindex();
  }

  /** Starts re-indexing whatever organizations have pending (at start, after a language change); resolves when none is left. */
  reindex(): Promise<void> {
    this.reindexing ??= this.reindexAll()
      .catch((error: unknown) =>
        this.log.error({ err: error }, 'search re-indexing failed; it resumes at the next start or language change'),
      )
      .finally(() => {
        this.reindexing = null;
      });
    return this.reindexing;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.reindexing;
  }

  private async reindexAll(): Promise<void> {
    while (!this.stopped) {
      const pending = await this.prisma.organization.findMany({ where: { searchReindexAfter: { not: null } }, select: { id: true } });
      if (pending.length === 0) return;
      let progressed = false;
      for (const { id } of pending) {
        if (this.stopped) return;
        progressed = (await this.reindexBatch(id)) || progressed;
      }
      // Every pending organization is locked by another process's batch: let that process finish them.
      if (!progressed) return;
    }
  }

  /**
   * One batch of an organization's re-indexing, in one transaction: the
   * organization row is locked (another process's batch skips it), the next
   * REINDEX_BATCH messages in id order are written again (the trigger indexes
   * them), and the cursor moves on; the last batch also re-indexes requests
   * and tickets and clears the cursor. Returns false when another process
   * held the organization.
   */
  private async reindexBatch(organizationId: string): Promise<boolean> {
    return this.prisma.$transaction(
      async (tx) => {
        const [org] = await tx.$queryRaw<{ after: string | null }[]>`
          SELECT "searchReindexAfter" AS after FROM "Organization" WHERE id = ${organizationId}::uuid FOR UPDATE SKIP LOCKED`;
        if (!org) return false;
        if (org.after === null) return true;
        const done = await tx.$queryRaw<{ id: string }[]>`
          UPDATE "Message" SET body = body WHERE id IN (
            SELECT id FROM "Message" WHERE "organizationId" = ${organizationId}::uuid AND id > ${org.after}::uuid
            ORDER BY id LIMIT ${REINDEX_BATCH})
          RETURNING id`;
        if (done.length === REINDEX_BATCH) {
          const last = done.reduce((max, row) => (row.id > max ? row.id : max), org.after);
          await tx.$executeRaw`UPDATE "Organization" SET "searchReindexAfter" = ${last}::uuid WHERE id = ${organizationId}::uuid`;
        } else {
          await tx.$executeRaw`UPDATE "ClientRequest" SET title = title WHERE "organizationId" = ${organizationId}::uuid`;
          await tx.$executeRaw`UPDATE "SupportTicket" SET subject = subject WHERE "organizationId" = ${organizationId}::uuid`;
          await tx.$executeRaw`UPDATE "Organization" SET "searchReindexAfter" = NULL WHERE id = ${organizationId}::uuid`;
          this.log.info({ organizationId }, 'search re-indexing finished');
        }
        return true;
      },
      { timeout: 60_000 },
    );
  }
}

/**
 * The channels a message search looks in: the viewer's readable ones (and of
 * those, the filter's), as an array computed once before the scan (an
 * InitPlan). As `channelId = ANY(array)` it is an index condition, so the
 * planner ANDs the search index's matches with these channels' rows
 * ("Message_channelId_seq_key") and reads only rows in both; as `IN
 * (subquery)` it was a join that read every match in the organization first.
 * (Tried and dropped: a GIN index on (channelId, searchVector) through
 * btree_gin, entered once per channel: 3x faster for a word in 10 messages,
 * 25-65x slower for common words, which it reads again for each channel.)
 */
function channelScopeSql(viewer: Viewer, only: string[] | null): Prisma.Sql {
  return only
    ? Prisma.sql`SELECT r."channelId" FROM (${readableChannelIdsSql(viewer)}) r WHERE r."channelId" = ANY(${only}::uuid[])`
    : readableChannelIdsSql(viewer);
}

function messageFilterSql(viewer: Viewer, f: MessageSearchFilter): Prisma.Sql {
  const parts: Prisma.Sql[] = [];
  if (f.senderId) parts.push(Prisma.sql`AND m."senderId" = ${f.senderId}::uuid`);
  if (f.from) parts.push(Prisma.sql`AND m."createdAt" >= ${f.from}`);
  if (f.to) parts.push(Prisma.sql`AND m."createdAt" < ${f.to}`);
  if (f.threadId) parts.push(Prisma.sql`AND (m.id = ${f.threadId}::uuid OR m."parentId" = ${f.threadId}::uuid)`);
  if (f.inThread === true) parts.push(Prisma.sql`AND m."parentId" IS NOT NULL`);
  if (f.inThread === false) parts.push(Prisma.sql`AND m."parentId" IS NULL`);
  if (f.hasAttachments != null)
    parts.push(
      Prisma.sql`AND ${f.hasAttachments ? Prisma.empty : Prisma.sql`NOT`} EXISTS (SELECT 1 FROM "Attachment" a WHERE a."messageId" = m.id AND a.state = 'ATTACHED')`,
    );
  if (f.mentionsMe != null)
    parts.push(
      Prisma.sql`AND ${f.mentionsMe ? Prisma.empty : Prisma.sql`NOT`} EXISTS (SELECT 1 FROM "MessageMention" mm WHERE mm."messageId" = m.id AND mm."userId" = ${viewer.id}::uuid)`,
    );
  if (f.linksEntity)
    parts.push(
      Prisma.sql`AND EXISTS (SELECT 1 FROM "MessageLink" ml WHERE ml."messageId" = m.id AND ml."typeKey" = ${f.linksEntity.type} AND ml."externalId" = ${f.linksEntity.externalId})`,
    );
  return parts.length ? Prisma.join(parts, ' ') : Prisma.empty;
}
