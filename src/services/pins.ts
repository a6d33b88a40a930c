import type { Viewer } from './viewer.ts';
import { Prisma, type Message, type Pin, type PrismaClient, type User } from '../generated/prisma/client.ts';
import type { Tx } from '../db/tx.ts';
import { assertId, channelAccess, mayPinInChannel, maySeeDeletedContent } from './access.ts';
import { audit, auditedBy } from './audit.ts';
import type { ChannelLog } from './channel-log.ts';
import { conflict, forbidden, notFound } from './errors.ts';
import { columns } from '../db/columns.ts';

/** At most this many pinned messages per channel. */
export const MAX_PINS_PER_CHANNEL = 50;

/** A pin with the user who pinned. */
export type PinWithUser = Pin & { pinnedBy: User };

/** A pinned message in `Channel.pinnedMessages`: the message and when it was pinned (the list's order). */
export interface PinnedMessage {
  message: Message;
  pinnedAt: Date;
}

/** Where a page of `pinnedMessages` continues: after this pin (newest first). */
export interface PinCursor {
  pinnedAt: Date;
  messageId: string;
}

/** A change that turned out to change nothing once the channel was locked: undoes the seq bump. */
class NoChange extends Error {}

/**
 * Pins (issue 11 §4): a message is pinned at most once; a channel has at most
 * MAX_PINS_PER_CHANNEL. Who may pin is `mayPinInChannel` (access.ts). A
 * soft-deleted message cannot be pinned (CONFLICT) but may be unpinned; its
 * pin stays, and `pinnedMessages` hides it from those who do not see deleted
 * content. A hard delete removes the pin by the foreign key's cascade.
 */
export class PinService {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly channelLog: ChannelLog,
  ) {}

  /** Pins a message; pinning a pinned message changes nothing and logs nothing. */
  async pin(viewer: Viewer, messageId: string): Promise<Message> {
    const { message, pinned } = await this.target(viewer, messageId);
    if (message.deletedAt) throw conflict('A deleted message cannot be pinned');
    if (pinned) return message;
    await this.locked(viewer, message, 'MESSAGE_PINNED', async (tx) => {
      const [stats] = await tx.$queryRaw<{ pinned: boolean; count: number }[]>`
        SELECT count(*)::int AS count, coalesce(bool_or("messageId" = ${messageId}::uuid), false) AS pinned
        FROM "Pin" WHERE "channelId" = ${message.channelId}::uuid`;
      if (stats!.pinned) throw new NoChange();
      if (stats!.count >= MAX_PINS_PER_CHANNEL) {
        throw conflict(`A channel has at most ${MAX_PINS_PER_CHANNEL} pinned messages; unpin one first`, { limit: MAX_PINS_PER_CHANNEL });
      }
      // clock_timestamp(): pins made under the channel lock are ordered as the log orders them.
      await tx.$executeRaw`
        INSERT INTO "Pin" ("messageId", "channelId", "organizationId", "pinnedById", "createdAt")
        VALUES (${messageId}::uuid, ${message.channelId}::uuid, ${viewer.organizationId}::uuid, ${viewer.id}::uuid, clock_timestamp() AT TIME ZONE 'UTC')`;
    });
    return message;
  }

  /** Unpins a message (also a soft-deleted one); unpinning a message that is not pinned changes nothing and logs nothing. */
  async unpin(viewer: Viewer, messageId: string): Promise<Message> {
    const { message, pinned } = await this.target(viewer, messageId);
    if (!pinned) return message;
    await this.locked(viewer, message, 'MESSAGE_UNPINNED', async (tx) => {
      const removed = await tx.$executeRaw`DELETE FROM "Pin" WHERE "messageId" = ${messageId}::uuid`;
      if (removed === 0) throw new NoChange();
    });
    return message;
  }

  /**
   * Runs `change` with the channel row locked by the seq bump of the event it
   * logs, after checking the rights and the message again at that point of
   * the log. `change` throws NoChange when there is nothing to do.
   */
  private async locked(viewer: Viewer, message: Message, type: 'MESSAGE_PINNED' | 'MESSAGE_UNPINNED', change: (tx: Tx) => Promise<void>) {
    try {
      await this.channelLog.transaction(viewer.organizationId, viewer.id, async (tx, log) => {
        await log.append(message.channelId, type, async () => {
          await mayPin(tx, viewer, message.channelId);
          const row = await tx.message.findFirst({ where: { id: message.id }, select: { deletedAt: true } });
          if (!row) throw notFound('Message');
          if (type === 'MESSAGE_PINNED' && row.deletedAt) throw conflict('A deleted message cannot be pinned');
          await change(tx);
          await audit(tx, {
            ...auditedBy(viewer),
            action: type === 'MESSAGE_PINNED' ? 'message.pin' : 'message.unpin',
            targetType: 'Message',
            targetId: message.id,
            data: { channelId: message.channelId },
          });
          const event = { messageId: message.id, messageSeq: message.seq };
          return type === 'MESSAGE_PINNED' ? { ...event, pinnedById: viewer.id } : event;
        });
      });
    } catch (error) {
      if (!(error instanceof NoChange)) throw error;
    }
  }

  /**
   * The message, if the viewer may pin in its channel (NOT_FOUND when they
   * cannot read it, FORBIDDEN when they may not pin), and whether it is
   * pinned now: one query besides the rights.
   */
  private async target(viewer: Viewer, messageId: string): Promise<{ message: Message; pinned: boolean }> {
    assertId(messageId, 'Message');
    const row = await this.prisma.message.findFirst({
      where: { id: messageId, organizationId: viewer.organizationId },
      include: { pin: { select: { messageId: true } } },
    });
    if (!row) throw notFound('Message');
    const { pin, ...message } = row;
    await mayPin(this.prisma, viewer, message.channelId);
    return { message, pinned: pin !== null };
  }

  /** Pins of many messages in one query (null: not pinned), with who pinned them. */
  async pinsOf(messageIds: readonly string[]): Promise<(PinWithUser | null)[]> {
    const pins = await this.prisma.pin.findMany({ where: { messageId: { in: [...messageIds] } }, include: { pinnedBy: true } });
    const byId = new Map(pins.map((p) => [p.messageId, p]));
    return messageIds.map((id) => byId.get(id) ?? null);
  }

  /**
   * `Channel.pinnedMessages` for many channels in one query: per channel, up
   * to `take` pinned messages after `after`, newest pin first. Soft-deleted
   * messages only for viewers who see deleted content. The caller has
   * checked that the viewer reads each channel (the field is on Channel).
   */
  async pages(viewer: Viewer, channelIds: readonly string[], take: number, after: PinCursor | null): Promise<PinnedMessage[][]> {
    const rows = await this.prisma.$queryRaw<(Message & { pinnedAt: Date })[]>`
      SELECT "pinnedAt", ${columns('Message')} FROM (
        SELECT p."createdAt" AS "pinnedAt", ${columns('Message', 'm')},
          row_number() OVER (PARTITION BY p."channelId" ORDER BY p."createdAt" DESC, p."messageId" DESC) AS n
        FROM "Pin" p JOIN "Message" m ON m.id = p."messageId"
        WHERE p."channelId" = ANY(${channelIds as string[]}::uuid[]) AND p."organizationId" = ${viewer.organizationId}::uuid
          ${maySeeDeletedContent(viewer) ? Prisma.empty : Prisma.sql`AND m."deletedAt" IS NULL`}
          ${after ? Prisma.sql`AND (p."createdAt", p."messageId") < (${after.pinnedAt}, ${after.messageId}::uuid)` : Prisma.empty}
      ) r
      WHERE r.n <= ${take}
      ORDER BY "channelId", n`;
    const byChannel = new Map<string, PinnedMessage[]>(channelIds.map((id) => [id, []]));
    for (const { pinnedAt, ...message } of rows) byChannel.get(message.channelId)?.push({ message: message as Message, pinnedAt });
    return channelIds.map((id) => byChannel.get(id) ?? []);
  }
}

/** NOT_FOUND (for the message) when the viewer cannot read the channel, FORBIDDEN with the reason when they may not pin. */
async function mayPin(db: PrismaClient | Tx, viewer: Viewer, channelId: string): Promise<void> {
  const access = await channelAccess(db, viewer, channelId);
  if (!access.canRead) throw notFound('Message');
  if (mayPinInChannel(viewer, access)) return;
  if (access.channel.archivedAt) throw forbidden('This channel is archived and read-only');
  throw forbidden(
    access.channel.membersMayPin
      ? 'You may not pin messages in this channel'
      : 'Only organization staff and channel owners or admins pin messages in this channel',
  );
}
