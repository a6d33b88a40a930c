import {
  Prisma,
  type ChannelMember,
  type Message,
  type MentionKind,
  type NotificationLevel,
  type PrismaClient,
} from '../generated/prisma/client.ts';
import type { NotificationSnapshot, UserSignal } from '../bus/pubsub.ts';
import type { Tx } from '../db/tx.ts';
import { CHANNEL_MANAGER_ROLES, assertId, isStaff, readableChannel, userMayReadChannelSql, writableChannel } from './access.ts';
import { badInput, forbidden } from './errors.ts';
import { BROADCAST_NAMES, hasRefs, parseMessageRefs, type MessageRefs, type Range } from './message-refs.ts';
import type { Viewer } from './viewer.ts';

/**
 * Above this many members, only the channel's owners and admins and the
 * organization's staff may mention everyone (@channel, @all, @everyone) or
 * everyone online (@here): others get FORBIDDEN.
 */
export const BROADCAST_MEMBER_LIMIT = 20;

/** How much of a body a MENTION or MESSAGE notification carries (`data.excerpt`). */
export const EXCERPT_LENGTH = 140;

/** Who is online, for @here (best effort: presence may be unavailable). */
export interface OnlineUsers {
  states(userIds: string[]): Promise<{ userId: string; status: string }[]>;
}

/** What one send or edit refers to, resolved as far as it can be before the statement. */
export interface RefPlan {
  refs: MessageRefs;
  /** Members online now, when the body says @here. */
  online: string[];
}

/** A mention as Message.mentions shows it: one per range, user null for @channel / @here. */
export interface MentionView {
  kind: MentionKind;
  userId: string | null;
  start: number;
  end: number;
}

/** One user mentioned by name in a message (the rows Message.mentions is checked against). */
interface NamedMention {
  messageId: string;
  userId: string;
  username: string;
  ranges: Range[];
}

/** Refuses a username that is a broadcast word (@channel, @here, @all, @everyone), whatever its case. */
export function assertUsernameAllowed(username: string): void {
  if (BROADCAST_NAMES.has(username.toLowerCase())) {
    throw badInput('username', `"${username}" is reserved: @${username.toLowerCase()} mentions a whole channel`);
  }
}

/** The start of a body as a notification shows it. */
export function excerpt(body: string): string {
  const flat = body.replace(/\s+/g, ' ').trim();
  return flat.length <= EXCERPT_LENGTH ? flat : `${flat.slice(0, EXCERPT_LENGTH - 1)}\u2026`;
}

/** A UUIDv7 made by the database, for rows a statement creates in numbers only it knows. */
const UUIDV7 = Prisma.sql`encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
  placing substring(int8send(floor(extract(epoch from clock_timestamp()) * 1000)::bigint) from 3) from 1 for 6), 52, 1), 53, 1), 'hex')::uuid`;

/** The notification rows a statement created, as it returns them. */
interface CreatedNotification {
  id: string;
  userId: string;
  type: 'MENTION' | 'MESSAGE';
  data: Record<string, unknown>;
}

/** What a send or edit needs to publish after its commit: each new notification on its user's stream. */
export function notificationSignals(
  created: CreatedNotification[] | null | undefined,
  common: { organizationId: string; actorId: string; messageId: string; channelId: string; createdAt: Date },
): { userId: string; signal: UserSignal }[] {
  return (created ?? []).map((n) => {
    const notification: NotificationSnapshot = {
      id: n.id,
      organizationId: common.organizationId,
      userId: n.userId,
      type: n.type,
      actorId: common.actorId,
      requestId: null,
      ticketId: null,
      messageId: common.messageId,
      channelId: common.channelId,
      data: n.data as NotificationSnapshot['data'],
      readAt: null,
      createdAt: common.createdAt.toISOString(),
    };
    return { userId: n.userId, signal: { type: 'NOTIFICATION', notification } };
  });
}

/**
 * @mentions (issue 11 §1): which users a body mentions, the rows that record
 * them and the links it makes, the notifications they create, each member's
 * notification level, and the viewer's own mentions. Sends write all of it
 * inside their one statement (`sendSql`); edits in their transaction.
 */
export class MentionService {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly presence: OnlineUsers,
  ) {}

  /**
   * Parses a body for a send or an edit and does what must happen before the
   * statement: a broadcast in a big channel is checked against the sender's
   * standing, and @here learns who is online. Null when the body refers to
   * nothing, which costs a send nothing. `previous` is the body an edit
   * replaces: a broadcast it already had is not checked again.
   */
  async plan(viewer: Viewer, channelId: string, body: string, previous: string | null = null): Promise<RefPlan | null> {
    if (!body.includes('@')) return null;
    const refs = parseMessageRefs(body);
    if (!hasRefs(refs)) return null;
    const broadcast = refs.channel.length > 0 || refs.here.length > 0;
    if (!broadcast) return { refs, online: [] };
    // Rights first: a channel the viewer may not post in is NOT_FOUND or FORBIDDEN as for any send.
    const access = await writableChannel(this.prisma, viewer, channelId);
    // @here needs the members (to ask presence about); @channel only their number.
    const members = refs.here.length ? await this.prisma.channelMember.findMany({ where: { channelId }, select: { userId: true } }) : null;
    const size = members?.length ?? (await this.prisma.channelMember.count({ where: { channelId } }));
    const before = previous?.includes('@') ? parseMessageRefs(previous) : null;
    const added = (refs.channel.length > 0 && !before?.channel.length) || (refs.here.length > 0 && !before?.here.length);
    if (added && size > BROADCAST_MEMBER_LIMIT && !isStaff(viewer) && !CHANNEL_MANAGER_ROLES.includes(access.member?.role ?? 'MEMBER')) {
      throw forbidden(
        `Only channel owners and admins and organization staff may use @channel or @here in a channel of more than ${BROADCAST_MEMBER_LIMIT} members`,
      );
    }
    let online: string[] = [];
    if (members) {
      const others = members.map((m) => m.userId).filter((id) => id !== viewer.id);
      // Presence is best effort: when it cannot answer, @here reaches nobody.
      const states = others.length ? await this.presence.states(others).catch(() => []) : [];
      online = states.filter((s) => s.status !== 'OFFLINE').map((s) => s.userId);
    }
    return { refs, online };
  }

  /**
   * The users a body mentions, as a CTE `mentioned` ("userId", kind, ranges):
   * each named user of the organization who may read the channel, every other
   * member who may for @channel, the online ones for @here. A user both named
   * and reached by a broadcast counts as named. Unknown names and users who
   * may not read the channel are simply not there.
   */
  private mentionedSql(viewer: Viewer, channelId: string, plan: RefPlan, keepHere: string | null): Prisma.Sql {
    const { refs, online } = plan;
    const users = JSON.stringify([...refs.users].map(([name, ranges]) => ({ name, ranges })));
    const channelRanges = refs.channel.length ? JSON.stringify(refs.channel) : null;
    const hereRanges = refs.here.length ? JSON.stringify(refs.here) : null;
    // An edit keeps the @here mentions it made, whoever is online now.
    const kept = keepHere
      ? Prisma.sql`OR EXISTS (SELECT 1 FROM "MessageMention" k WHERE k."messageId" = ${keepHere}::uuid AND k."userId" = u.id AND k.kind = 'HERE')`
      : Prisma.empty;
    return Prisma.sql`mentioned AS (
      SELECT DISTINCT ON (x."userId") x."userId", x.kind, x.ranges FROM (
        SELECT u.id AS "userId", 'USER'::"MentionKind" AS kind, r.ranges, 0 AS rank
          FROM jsonb_to_recordset(${users}::jsonb) AS r(name text, ranges jsonb)
          JOIN "User" u ON u."organizationId" = ${viewer.organizationId}::uuid AND u.username = r.name
          JOIN "Channel" c ON c.id = ${channelId}::uuid
          WHERE ${userMayReadChannelSql('u', 'c')}
        UNION ALL
        SELECT u.id, 'CHANNEL'::"MentionKind", ${channelRanges}::jsonb, 1
          FROM "ChannelMember" cm JOIN "User" u ON u.id = cm."userId" JOIN "Channel" c ON c.id = cm."channelId"
          WHERE ${channelRanges}::jsonb IS NOT NULL AND cm."channelId" = ${channelId}::uuid AND u.id <> ${viewer.id}::uuid
            AND ${userMayReadChannelSql('u', 'c')}
        UNION ALL
        SELECT u.id, 'HERE'::"MentionKind", ${hereRanges}::jsonb, 2
          FROM "ChannelMember" cm JOIN "User" u ON u.id = cm."userId" JOIN "Channel" c ON c.id = cm."channelId"
          WHERE ${hereRanges}::jsonb IS NOT NULL AND cm."channelId" = ${channelId}::uuid AND u.id <> ${viewer.id}::uuid
            AND (u.id = ANY(${online}::uuid[]) ${kept}) AND ${userMayReadChannelSql('u', 'c')}
      ) x ORDER BY x."userId", x.rank
    )`;
  }

  /** Each `@type#id` of the body as a row set (typeKey, externalId, ranges). */
  private linksJson(plan: RefPlan | null): string {
    return JSON.stringify(plan ? [...plan.refs.links.values()] : []);
  }

  /**
   * The CTEs a send adds after `msg` (the inserted message; none when the
   * write guard refused): its mentions and links, and the notifications of
   * the members it concerns, returned by the statement's final SELECT through
   * `notifiedColumn`. Members at level ALL hear of every message from others,
   * those at MENTIONS (the default) of mentions and broadcasts that reach
   * them, those at NONE or who muted the channel of nothing.
   */
  sendSql(viewer: Viewer, channelId: string, plan: RefPlan | null, body: string): Prisma.Sql {
    // Members at level ALL who may read the channel and are not mentioned: a MESSAGE each.
    const everything = Prisma.sql`
      SELECT cm."userId", 'MESSAGE'::"NotificationType" AS type, NULL::text AS kind
      FROM "ChannelMember" cm JOIN "User" u ON u.id = cm."userId" JOIN "Channel" c ON c.id = cm."channelId"
      WHERE cm."channelId" = ${channelId}::uuid AND cm."notificationLevel" = 'ALL'
        AND (cm."mutedUntil" IS NULL OR cm."mutedUntil" <= now()) AND ${userMayReadChannelSql('u', 'c')}
        ${plan ? Prisma.sql`AND NOT EXISTS (SELECT 1 FROM mentioned m WHERE m."userId" = cm."userId")` : Prisma.empty}`;
    // Mentioned members (who may read the channel, as `mentioned` found) unless at level NONE or muted: a MENTION each.
    const mentionedMembers = Prisma.sql`
      SELECT m."userId", 'MENTION'::"NotificationType" AS type, m.kind::text AS kind
      FROM mentioned m JOIN "ChannelMember" cm ON cm."channelId" = ${channelId}::uuid AND cm."userId" = m."userId"
      WHERE cm."notificationLevel" <> 'NONE' AND (cm."mutedUntil" IS NULL OR cm."mutedUntil" <= now())
      UNION ALL`;
    const notified = Prisma.sql`
      notified AS (
        INSERT INTO "Notification" (id, "organizationId", "userId", type, "actorId", "messageId", "channelId", data, "createdAt")
        SELECT ${UUIDV7}, msg."organizationId", t."userId", t.type, msg."senderId", msg.id, msg."channelId",
          jsonb_build_object('channelName', ch.name, 'actorName', ${viewer.displayName}::text, 'excerpt', ${excerpt(body)}::text, 'mention', t.kind),
          msg."createdAt"
        FROM msg JOIN "Channel" ch ON ch.id = msg."channelId"
        CROSS JOIN (${plan ? mentionedMembers : Prisma.empty} ${everything}) t
        WHERE t."userId" <> msg."senderId"
        RETURNING id, "userId", type, data
      )`;
    if (!plan) return Prisma.sql`, ${notified}`;
    return Prisma.sql`,
      ${this.mentionedSql(viewer, channelId, plan, null)},
      mention_rows AS (
        INSERT INTO "MessageMention" ("messageId", "userId", "organizationId", "channelId", seq, kind, ranges, "createdAt")
        SELECT msg.id, m."userId", msg."organizationId", msg."channelId", msg.seq, m.kind, m.ranges, msg."createdAt"
        FROM msg CROSS JOIN mentioned m
      ),
      link_rows AS (
        INSERT INTO "MessageLink" ("messageId", "organizationId", "channelId", seq, "typeKey", "externalId", ranges, "createdAt")
        SELECT msg.id, msg."organizationId", msg."channelId", msg.seq, l."typeKey", l."externalId", l.ranges, msg."createdAt"
        FROM msg CROSS JOIN jsonb_to_recordset(${this.linksJson(plan)}::jsonb) AS l("typeKey" text, "externalId" text, ranges jsonb)
      ),
      ${notified}`;
  }

  /** The column of a send's final SELECT that carries the notifications `sendSql` created. */
  readonly notifiedColumn = Prisma.sql`(SELECT coalesce(json_agg(json_build_object('id', n.id, 'userId', n."userId", 'type', n.type, 'data', n.data)), '[]'::json) FROM notified n) AS "notified"`;

  /**
   * After an edit changed a message's body (in the edit's transaction):
   * mentions and links follow the new body. A user the edit newly mentions is
   * notified, once per message ever (the unique user/message pair); one it no
   * longer mentions loses the mention, and nobody is told.
   */
  async afterEdit(
    tx: Tx,
    viewer: Viewer,
    message: Pick<Message, 'id' | 'organizationId' | 'channelId' | 'seq' | 'senderId' | 'createdAt'>,
    body: string,
    plan: RefPlan | null,
    signal: (userId: string, signal: UserSignal) => void,
  ): Promise<void> {
    const id = message.id;
    const mentioned = plan
      ? this.mentionedSql(viewer, message.channelId, plan, id)
      : Prisma.sql`mentioned AS (SELECT NULL::uuid AS "userId", NULL::"MentionKind" AS kind, NULL::jsonb AS ranges WHERE false)`;
    const [row] = await tx.$queryRaw<{ notified: CreatedNotification[] }[]>`
      WITH ${mentioned},
      prev AS (SELECT "userId" FROM "MessageMention" WHERE "messageId" = ${id}::uuid),
      gone AS (
        DELETE FROM "MessageMention" WHERE "messageId" = ${id}::uuid AND "userId" NOT IN (SELECT "userId" FROM mentioned)
      ),
      kept AS (
        INSERT INTO "MessageMention" ("messageId", "userId", "organizationId", "channelId", seq, kind, ranges, "createdAt")
        SELECT ${id}::uuid, m."userId", ${message.organizationId}::uuid, ${message.channelId}::uuid, ${message.seq}, m.kind, m.ranges, ${message.createdAt}
        FROM mentioned m
        ON CONFLICT ("messageId", "userId") DO UPDATE SET kind = EXCLUDED.kind, ranges = EXCLUDED.ranges
      ),
      new_links AS (
        SELECT * FROM jsonb_to_recordset(${this.linksJson(plan)}::jsonb) AS l("typeKey" text, "externalId" text, ranges jsonb)
      ),
      links_gone AS (
        DELETE FROM "MessageLink" ml WHERE ml."messageId" = ${id}::uuid
          AND NOT EXISTS (SELECT 1 FROM new_links l WHERE l."typeKey" = ml."typeKey" AND l."externalId" = ml."externalId")
      ),
      links_kept AS (
        INSERT INTO "MessageLink" ("messageId", "organizationId", "channelId", seq, "typeKey", "externalId", ranges, "createdAt")
        SELECT ${id}::uuid, ${message.organizationId}::uuid, ${message.channelId}::uuid, ${message.seq}, l."typeKey", l."externalId", l.ranges, ${message.createdAt}
        FROM new_links l
        ON CONFLICT ("messageId", "typeKey", "externalId") DO UPDATE SET ranges = EXCLUDED.ranges
      ),
      notified AS (
        INSERT INTO "Notification" (id, "organizationId", "userId", type, "actorId", "messageId", "channelId", data, "createdAt")
        SELECT ${UUIDV7}, ${message.organizationId}::uuid, m."userId", 'MENTION'::"NotificationType", ${viewer.id}::uuid, ${id}::uuid, ${message.channelId}::uuid,
          jsonb_build_object('channelName', ch.name, 'actorName', ${viewer.displayName}::text, 'excerpt', ${excerpt(body)}::text, 'mention', m.kind),
          ${message.createdAt}
        FROM mentioned m
        JOIN "ChannelMember" cm ON cm."channelId" = ${message.channelId}::uuid AND cm."userId" = m."userId"
        JOIN "Channel" ch ON ch.id = cm."channelId"
        WHERE m."userId" <> ${message.senderId}::uuid AND m."userId" NOT IN (SELECT "userId" FROM prev)
          AND cm."notificationLevel" <> 'NONE' AND (cm."mutedUntil" IS NULL OR cm."mutedUntil" <= now())
        ON CONFLICT ("userId", "messageId") DO NOTHING
        RETURNING id, "userId", type, data
      )
      SELECT ${this.notifiedColumn}`;
    const common = {
      organizationId: message.organizationId,
      actorId: viewer.id,
      messageId: id,
      channelId: message.channelId,
      createdAt: message.createdAt,
    };
    for (const s of notificationSignals(row?.notified, common)) signal(s.userId, s.signal);
  }

  /**
   * Blanks the excerpt of the notifications about a message that is being
   * deleted (they quote its body), for everyone the message could have told.
   */
  async scrubNotifications(tx: Tx, message: Pick<Message, 'id' | 'channelId'>): Promise<void> {
    await tx.$executeRaw`
      UPDATE "Notification" SET data = data || '{"excerpt": null}'::jsonb
      WHERE "messageId" = ${message.id}::uuid AND "userId" IN (
        SELECT "userId" FROM "ChannelMember" WHERE "channelId" = ${message.channelId}::uuid
        UNION SELECT "userId" FROM "MessageMention" WHERE "messageId" = ${message.id}::uuid)`;
  }

  /** Sets the viewer's notification level in a channel they read; another's channel is NOT_FOUND. */
  async setLevel(viewer: Viewer, channelId: string, level: NotificationLevel): Promise<ChannelMember> {
    assertId(channelId, 'Channel');
    const { member } = await readableChannel(this.prisma, viewer, channelId);
    return this.prisma.channelMember.update({ where: { id: member!.id }, data: { notificationLevel: level } });
  }

  /** The users mentioned by name in each message (rows of kind USER), in one query for any number of messages. */
  async named(messageIds: readonly string[]): Promise<NamedMention[][]> {
    const rows = await this.prisma.$queryRaw<NamedMention[]>`
      SELECT mm."messageId", mm."userId", u.username, mm.ranges
      FROM "MessageMention" mm JOIN "User" u ON u.id = mm."userId"
      WHERE mm."messageId" = ANY(${messageIds as string[]}::uuid[]) AND mm.kind = 'USER'`;
    return messageIds.map((id) => rows.filter((r) => r.messageId === id));
  }

  /**
   * A message's mentions as a reader sees them, from the body shown to that
   * reader (null when deleted for them: no mentions) and the users the message
   * was found to mention by name. The ranges come from the body itself, so a
   * replayed older version of a message gets ranges that fit it.
   */
  static view(body: string | null, named: NamedMention[]): MentionView[] {
    if (!body || !body.includes('@')) return [];
    const refs = parseMessageRefs(body);
    const out: MentionView[] = [];
    for (const [name, ranges] of refs.users) {
      const row = named.find((n) => n.username === name || sameRanges(n.ranges, ranges));
      if (row) for (const [start, end] of ranges) out.push({ kind: 'USER', userId: row.userId, start, end });
    }
    for (const [start, end] of refs.channel) out.push({ kind: 'CHANNEL', userId: null, start, end });
    for (const [start, end] of refs.here) out.push({ kind: 'HERE', userId: null, start, end });
    return out.sort((a, b) => a.start - b.start);
  }

  /**
   * The viewer's mentions, newest message first: messages of others that
   * mention them (by name, @channel or @here), not deleted, in channels they
   * may still read; with `unreadOnly`, past their read marker. Keyset paged
   * after the message `after` (exclusive); returns message ids.
   */
  async mentionedMessageIds(viewer: Viewer, page: { take: number; after: string | null; unreadOnly: boolean }): Promise<string[]> {
    if (page.after !== null) assertId(page.after, 'Message');
    const backwards = page.take < 0;
    const cursor =
      page.after === null
        ? Prisma.empty
        : Prisma.sql`AND (mm."createdAt", mm."messageId") ${Prisma.raw(backwards ? '>' : '<')} (
            SELECT a."createdAt", a."messageId" FROM "MessageMention" a WHERE a."messageId" = ${page.after}::uuid AND a."userId" = ${viewer.id}::uuid)`;
    const rows = await this.prisma.$queryRaw<{ messageId: string }[]>`
      SELECT mm."messageId"
      FROM "MessageMention" mm
      JOIN "Message" m ON m.id = mm."messageId"
      JOIN "Channel" c ON c.id = mm."channelId"
      JOIN "ChannelMember" cm ON cm."channelId" = mm."channelId" AND cm."userId" = mm."userId"
      JOIN "User" u ON u.id = mm."userId"
      WHERE mm."userId" = ${viewer.id}::uuid AND m."deletedAt" IS NULL AND m."senderId" <> ${viewer.id}::uuid
        AND ${userMayReadChannelSql('u', 'c')}
        ${page.unreadOnly ? Prisma.sql`AND mm.seq > cm."lastReadSeq"` : Prisma.empty}
        ${cursor}
      ORDER BY mm."createdAt" ${Prisma.raw(backwards ? 'ASC' : 'DESC')}, mm."messageId" ${Prisma.raw(backwards ? 'ASC' : 'DESC')}
      LIMIT ${Math.abs(page.take)}`;
    const ids = rows.map((r) => r.messageId);
    return backwards ? ids.reverse() : ids;
  }

  /** Mentions of the viewer past their read marker per channel (messages of others, not deleted), in one query. */
  async unreadCounts(viewer: Viewer, channelIds: readonly string[]): Promise<number[]> {
    const rows = await this.prisma.$queryRaw<{ channelId: string; count: number }[]>`
      SELECT mm."channelId", count(*)::int AS count
      FROM "ChannelMember" cm
      JOIN "MessageMention" mm ON mm."userId" = cm."userId" AND mm."channelId" = cm."channelId" AND mm.seq > cm."lastReadSeq"
      JOIN "Message" m ON m.id = mm."messageId"
      WHERE cm."userId" = ${viewer.id}::uuid AND cm."channelId" = ANY(${channelIds as string[]}::uuid[])
        AND m."deletedAt" IS NULL AND m."senderId" <> ${viewer.id}::uuid
      GROUP BY mm."channelId"`;
    const byId = new Map(rows.map((r) => [r.channelId, r.count]));
    return channelIds.map((id) => byId.get(id) ?? 0);
  }
}

function sameRanges(a: Range[], b: Range[]): boolean {
  return a.length === b.length && a.every(([s, e], i) => s === b[i]![0] && e === b[i]![1]);
}
