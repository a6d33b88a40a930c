import { Prisma, type ChannelMember, type PrismaClient } from '../generated/prisma/client.ts';
import { columns } from '../db/columns.ts';
import { readableChannel } from './access.ts';
import type { ChannelEventOf } from '../bus/events.ts';
import { bumpSeq, type ChannelLog } from './channel-log.ts';
import { badInput } from './errors.ts';
import type { Viewer } from './viewer.ts';

/** A read marker's move, as the statement that made it returns it. */
interface MarkerMove {
  marker: number;
  before: number;
  deliveredBefore: number;
  passedMessage: boolean;
}

/**
 * A member's own view of a channel: muted, hidden, how far they have read,
 * their unread counts, and the read receipts of messages.
 */
export class ReadStateService {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly channelLog: ChannelLog,
  ) {}

  /** Mutes the channel for the viewer until `until`, or forever when it is absent; `muted: false` unmutes. */
  async mute(viewer: Viewer, channelId: string, muted: boolean, until: Date | null): Promise<ChannelMember> {
    const { member } = await readableChannel(this.prisma, viewer, channelId);
    if (until && until.getTime() <= Date.now()) throw badInput('until', 'until must be in the future');
    const forever = new Date('9999-12-31T00:00:00Z');
    return this.prisma.channelMember.update({
      where: { id: member!.id },
      data: { mutedUntil: muted ? (until ?? forever) : null },
    });
  }

  /** Hides or archives the channel for the viewer only. */
  async setHidden(viewer: Viewer, channelId: string, hidden: boolean): Promise<ChannelMember> {
    const { member } = await readableChannel(this.prisma, viewer, channelId);
    return this.prisma.channelMember.update({ where: { id: member!.id }, data: { hiddenAt: hidden ? new Date() : null } });
  }

  /**
   * Moves the viewer's read marker forward to `seq` (clamped to the channel's
   * last seq); it never moves backwards, also when two calls race (the member
   * row is locked and re-read). Reading implies delivery: the delivery marker
   * moves up with it, without a DELIVERY_RECEIPT of its own (the READ_RECEIPT
   * says it). A receipt is logged only when the marker passes a message:
   * receipts are log entries too, and a client that marks its channel read on
   * every event would otherwise answer each other member's receipt with one
   * of its own, forever.
   */
  async markRead(viewer: Viewer, channelId: string, seq: number): Promise<ChannelMember> {
    if (seq < 0) throw badInput('seq', 'seq must not be negative');
    const { member } = await readableChannel(this.prisma, viewer, channelId);
    return this.moveReadMarker(viewer, channelId, member!.id, Prisma.sql`LEAST(${seq}::int, c."lastSeq")`, 'forward');
  }

  /**
   * Marks the message at `seq` and everything after it unread for the viewer:
   * the read marker becomes `seq - 1`, which may move it back (and, like any
   * read marker, forward: everything before `seq` then counts as read). The
   * delivery marker never moves back. Logged as a READ_RECEIPT when the
   * marker passes a message, as for markRead: others' read receipts change.
   */
  async markUnread(viewer: Viewer, channelId: string, seq: number): Promise<ChannelMember> {
    const { member, channel } = await readableChannel(this.prisma, viewer, channelId);
    // lastSeq only grows, so a seq within it now stays within it.
    if (seq < 1 || seq > channel.lastSeq) throw badInput('seq', `seq must be between 1 and the channel's last seq (${channel.lastSeq})`);
    return this.moveReadMarker(viewer, channelId, member!.id, Prisma.sql`${seq - 1}::int`, 'either');
  }

  /**
   * Sets a member's read marker to `target` (an expression that may read the
   * channel row `c`) under the member row's lock, raising the delivery marker
   * with it (it never moves back), and logs a READ_RECEIPT when the move passed
   * a message. `forward`: a target behind the marker changes nothing.
   */
  private moveReadMarker(
    viewer: Viewer,
    channelId: string,
    memberId: string,
    target: Prisma.Sql,
    direction: 'forward' | 'either',
  ): Promise<ChannelMember> {
    return this.channelLog.transaction(viewer.organizationId, viewer.id, async (tx, log) => {
      const [moved] = await tx.$queryRaw<MarkerMove[]>`
        WITH target AS (
          SELECT m.id, m."lastReadSeq" AS before, GREATEST(m."lastDeliveredSeq", m."lastReadSeq") AS "deliveredBefore", ${target} AS after
          FROM "ChannelMember" m JOIN "Channel" c ON c.id = m."channelId"
          WHERE m.id = ${memberId}::uuid
          FOR UPDATE OF m
        )
        UPDATE "ChannelMember" m SET "lastReadSeq" = t.after, "lastDeliveredSeq" = GREATEST(t."deliveredBefore", t.after)
        FROM target t
        WHERE m.id = t.id AND ${direction === 'forward' ? Prisma.sql`t.after > t.before` : Prisma.sql`t.after <> t.before`}
        RETURNING m."lastReadSeq" AS marker, t.before, t."deliveredBefore", EXISTS (
          SELECT 1 FROM "Message" msg
          WHERE msg."channelId" = m."channelId" AND msg.seq > LEAST(t.before, t.after) AND msg.seq <= GREATEST(t.before, t.after)
        ) AS "passedMessage"`;
      if (moved?.passedMessage) {
        await log.append(channelId, 'READ_RECEIPT', {
          userId: viewer.id,
          lastReadSeq: moved.marker,
          previousReadSeq: moved.before,
          previousDeliveredSeq: moved.deliveredBefore,
        });
      }
      return tx.channelMember.findUniqueOrThrow({ where: { id: memberId } });
    });
  }

  /**
   * The viewer's clients received the channel up to `seq` (clamped to its last
   * seq). Monotonic, also under races (the member row is locked in the one
   * statement that moves it), and cheap enough to call for every batch a
   * client receives: when the marker is already there (reading counts as
   * delivery), the access check is the only query; otherwise one statement
   * moves the marker and, when it passed a message someone else sent, appends
   * the DELIVERY_RECEIPT. Passing only the viewer's own messages or other
   * events (receipts among them) logs nothing, so clients that acknowledge
   * every event they receive do not answer each other's receipts forever.
   */
  async markDelivered(viewer: Viewer, channelId: string, seq: number): Promise<ChannelMember> {
    if (seq < 0) throw badInput('seq', 'seq must not be negative');
    const { member, channel } = await readableChannel(this.prisma, viewer, channelId);
    // The marker never moves back, so one already at the target stays there.
    if (Math.min(seq, channel.lastSeq) <= Math.max(member!.lastDeliveredSeq, member!.lastReadSeq)) return member!;
    const moved = await this.channelLog.statement(async (db) => {
      const [row] = await db.$queryRaw<(ChannelMember & { previousDeliveredSeq: number; eventSeq: number | null; eventAt: Date | null })[]>`
        WITH target AS (
          SELECT m.id, GREATEST(m."lastDeliveredSeq", m."lastReadSeq") AS before, LEAST(${seq}::int, c."lastSeq") AS after
          FROM "ChannelMember" m JOIN "Channel" c ON c.id = m."channelId"
          WHERE m.id = ${member!.id}::uuid
          FOR UPDATE OF m
        ),
        moved AS (
          UPDATE "ChannelMember" m SET "lastDeliveredSeq" = t.after
          FROM target t
          WHERE m.id = t.id AND t.after > t.before
          RETURNING ${columns('ChannelMember', 'm')}, t.before AS "previousDeliveredSeq", EXISTS (
            SELECT 1 FROM "Message" msg
            WHERE msg."channelId" = m."channelId" AND msg.seq > t.before AND msg.seq <= t.after
              AND msg."senderId" <> m."userId" AND msg."deletedAt" IS NULL
          ) AS passed
        ),
        ${bumpSeq(channelId, false, Prisma.sql`EXISTS (SELECT 1 FROM moved WHERE passed)`)},
        ev AS (
          INSERT INTO "ChannelEvent" ("channelId", seq, "organizationId", type, payload, "actorId")
          SELECT ${channelId}::uuid, bump."lastSeq", ${viewer.organizationId}::uuid, 'DELIVERY_RECEIPT'::"ChannelEventType",
            jsonb_build_object('userId', ${viewer.id}::text, 'lastDeliveredSeq', moved."lastDeliveredSeq",
              'previousDeliveredSeq', moved."previousDeliveredSeq"),
            ${viewer.id}::uuid
          FROM bump, moved
          RETURNING seq, "createdAt"
        )
        SELECT ${columns('ChannelMember', 'moved')}, moved."previousDeliveredSeq", ev.seq AS "eventSeq", ev."createdAt" AS "eventAt"
        FROM moved LEFT JOIN ev ON true`;
      if (!row) return { result: null, event: null };
      const { previousDeliveredSeq, eventSeq, eventAt, ...updated } = row;
      const event: ChannelEventOf<'DELIVERY_RECEIPT'> | null =
        eventSeq !== null && eventAt !== null
          ? {
              channelId,
              seq: eventSeq,
              type: 'DELIVERY_RECEIPT',
              actorId: viewer.id,
              createdAt: eventAt.toISOString(),
              payload: { userId: viewer.id, lastDeliveredSeq: updated.lastDeliveredSeq, previousDeliveredSeq },
            }
          : null;
      return { result: updated, event };
    });
    // Null: a concurrent call moved the marker at least as far in between.
    return moved ?? this.prisma.channelMember.findUniqueOrThrow({ where: { id: member!.id } });
  }

  /** Unread messages per channel for the viewer: others' live messages after the read marker. One query for any number of channels. */
  async unreadCounts(viewer: Viewer, channelIds: readonly string[]): Promise<number[]> {
    const rows = await this.prisma.$queryRaw<{ channelId: string; count: number }[]>`
      SELECT m."channelId", count(*)::int AS count
      FROM "ChannelMember" cm
      JOIN "Message" m ON m."channelId" = cm."channelId" AND m.seq > cm."lastReadSeq"
      WHERE cm."userId" = ${viewer.id}::uuid AND cm."channelId" = ANY(${channelIds as string[]}::uuid[])
        AND m."senderId" <> ${viewer.id}::uuid AND m."deletedAt" IS NULL
      GROUP BY m."channelId"`;
    const byId = new Map(rows.map((r) => [r.channelId, r.count]));
    return channelIds.map((id) => byId.get(id) ?? 0);
  }

  /**
   * Read receipts per message: the members whose read marker is at or past
   * its seq, the sender excepted, ordered by member id. Answers one page per
   * message (up to `take` rows after the member id `after`) in one query for
   * any number of messages.
   */
  async readers(messageIds: readonly string[], take: number, after: string | null): Promise<ChannelMember[][]> {
    const rows = await this.prisma.$queryRaw<(ChannelMember & { messageId: string; n: number })[]>`
      SELECT "messageId", ${columns('ChannelMember')}, n FROM (
        SELECT msg.id AS "messageId", ${columns('ChannelMember', 'cm')}, (row_number() OVER (PARTITION BY msg.id ORDER BY cm.id))::int AS n
        FROM "Message" msg
        JOIN "ChannelMember" cm ON cm."channelId" = msg."channelId" AND cm."lastReadSeq" >= msg.seq AND cm."userId" <> msg."senderId"
        WHERE msg.id = ANY(${messageIds as string[]}::uuid[]) ${after === null ? Prisma.empty : Prisma.sql`AND cm.id > ${after}::uuid`}
      ) r
      WHERE r.n <= ${take}
      ORDER BY r."messageId", r.n`;
    const byMessage = new Map<string, ChannelMember[]>(messageIds.map((id) => [id, []]));
    for (const { messageId, n: _n, ...member } of rows) byMessage.get(messageId)?.push(member);
    return messageIds.map((id) => byMessage.get(id) ?? []);
  }

  /** How many members have read each message (see `readers`), in one query for any number of messages. */
  async readCounts(messageIds: readonly string[]): Promise<number[]> {
    const rows = await this.prisma.$queryRaw<{ id: string; count: number }[]>`
      SELECT msg.id, count(*)::int AS count
      FROM "Message" msg
      JOIN "ChannelMember" cm ON cm."channelId" = msg."channelId" AND cm."lastReadSeq" >= msg.seq AND cm."userId" <> msg."senderId"
      WHERE msg.id = ANY(${messageIds as string[]}::uuid[])
      GROUP BY msg.id`;
    const byId = new Map(rows.map((r) => [r.id, r.count]));
    return messageIds.map((id) => byId.get(id) ?? 0);
  }

  /**
   * Delivery status of each message for its sender: null when the viewer did
   * not send it, or it is deleted or gone. The recipients are the channel's
   * other current members; one has it delivered when their delivery or read
   * marker is at or past its seq. Per-recipient detail only when there are at
   * most DELIVERY_DETAIL_MAX of them. One query for any number of messages.
   */
  async deliveryStatuses(viewer: Viewer, messageIds: readonly string[]): Promise<(DeliveryStatus | null)[]> {
    const rows = await this.prisma.$queryRaw<
      {
        id: string;
        seq: number;
        recipientCount: number;
        deliveredCount: number;
        readCount: number;
        recipients: RecipientMarkers[] | null;
      }[]
    >`
      WITH counts AS (
        SELECT msg.id, msg."channelId", msg."senderId", msg.seq,
          count(cm.id)::int AS "recipientCount",
          (count(cm.id) FILTER (WHERE GREATEST(cm."lastDeliveredSeq", cm."lastReadSeq") >= msg.seq))::int AS "deliveredCount",
          (count(cm.id) FILTER (WHERE cm."lastReadSeq" >= msg.seq))::int AS "readCount"
        FROM "Message" msg
        LEFT JOIN "ChannelMember" cm ON cm."channelId" = msg."channelId" AND cm."userId" <> msg."senderId"
        WHERE msg.id = ANY(${messageIds as string[]}::uuid[]) AND msg."senderId" = ${viewer.id}::uuid
          AND msg."organizationId" = ${viewer.organizationId}::uuid AND msg."deletedAt" IS NULL
        GROUP BY msg.id
      )
      SELECT id, seq, "recipientCount", "deliveredCount", "readCount",
        CASE WHEN "recipientCount" <= ${DELIVERY_DETAIL_MAX} THEN (
          SELECT coalesce(json_agg(json_build_object('userId', cm."userId", 'lastReadSeq', cm."lastReadSeq",
            'lastDeliveredSeq', cm."lastDeliveredSeq") ORDER BY cm.id), '[]'::json)
          FROM "ChannelMember" cm WHERE cm."channelId" = counts."channelId" AND cm."userId" <> counts."senderId"
        ) END AS recipients
      FROM counts`;
    const byId = new Map(
      rows.map((r): [string, DeliveryStatus] => [
        r.id,
        {
          status: overall(r.recipientCount, r.deliveredCount, r.readCount),
          recipientCount: r.recipientCount,
          deliveredCount: r.deliveredCount,
          readCount: r.readCount,
          recipients:
            r.recipients?.map((m) => ({
              userId: m.userId,
              status: m.lastReadSeq >= r.seq ? 'READ' : Math.max(m.lastDeliveredSeq, m.lastReadSeq) >= r.seq ? 'DELIVERED' : 'SENT',
            })) ?? null,
        },
      ]),
    );
    return messageIds.map((id) => byId.get(id) ?? null);
  }
}

/** Other members beyond this many: a message's delivery status gives counts only, no per-recipient detail. */
export const DELIVERY_DETAIL_MAX = 32;

export type DeliveryState = 'SENT' | 'DELIVERED' | 'READ';

export interface DeliveryStatus {
  status: DeliveryState;
  recipientCount: number;
  deliveredCount: number;
  readCount: number;
  /** Null above DELIVERY_DETAIL_MAX recipients. */
  recipients: { userId: string; status: DeliveryState }[] | null;
}

interface RecipientMarkers {
  userId: string;
  lastReadSeq: number;
  lastDeliveredSeq: number;
}

/** READ once every recipient read it, DELIVERED once it reached every one; SENT otherwise, and in a channel with no one else. */
function overall(recipients: number, delivered: number, read: number): DeliveryState {
  if (recipients === 0) return 'SENT';
  if (read === recipients) return 'READ';
  return delivered === recipients ? 'DELIVERED' : 'SENT';
}
