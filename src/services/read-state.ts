import { Prisma, type ChannelMember, type PrismaClient } from '../generated/prisma/client.ts';
import { columns } from '../db/columns.ts';
import { readableChannel } from './access.ts';
import type { ChannelLog } from './channel-log.ts';
import { badInput } from './errors.ts';
import type { Viewer } from './viewer.ts';

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
   * row is locked and re-read). A receipt is logged only when the marker passes
   * a message: receipts are log entries too, and a client that marks its
   * channel read on every event would otherwise answer each other member's
   * receipt with one of its own, forever.
   */
  async markRead(viewer: Viewer, channelId: string, seq: number): Promise<ChannelMember> {
    if (seq < 0) throw badInput('seq', 'seq must not be negative');
    const { member } = await readableChannel(this.prisma, viewer, channelId);
    return this.channelLog.transaction(viewer.organizationId, viewer.id, async (tx, log) => {
      const rows = await tx.$queryRaw<{ lastReadSeq: number; passedMessage: boolean }[]>`
        WITH target AS (
          SELECT m.id, m."lastReadSeq" AS before, LEAST(${seq}::int, c."lastSeq") AS after
          FROM "ChannelMember" m JOIN "Channel" c ON c.id = m."channelId"
          WHERE m.id = ${member!.id}::uuid
          FOR UPDATE OF m
        )
        UPDATE "ChannelMember" m SET "lastReadSeq" = t.after
        FROM target t
        WHERE m.id = t.id AND t.after > t.before
        RETURNING m."lastReadSeq", EXISTS (
          SELECT 1 FROM "Message" msg WHERE msg."channelId" = m."channelId" AND msg.seq > t.before AND msg.seq <= t.after
        ) AS "passedMessage"`;
      const moved = rows[0];
      if (moved?.passedMessage) await log.append(channelId, 'READ_RECEIPT', { userId: viewer.id, lastReadSeq: moved.lastReadSeq });
      return tx.channelMember.findUniqueOrThrow({ where: { id: member!.id } });
    });
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
}
