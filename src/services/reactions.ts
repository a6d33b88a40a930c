import type { Viewer } from './viewer.ts';
import type { Message, PrismaClient, User } from '../generated/prisma/client.ts';
import type { ReactionChange } from '../bus/events.ts';
import type { Tx } from '../db/tx.ts';
import { assertId, channelAccess, mayReactInChannel, writableChannel } from './access.ts';
import type { ChannelLog } from './channel-log.ts';
import { parseEmoji } from './emoji.ts';
import { conflict, forbidden, notFound } from './errors.ts';
import { columns } from '../db/columns.ts';

/** At most this many different emoji on one message. */
export const MAX_DISTINCT_REACTIONS = 20;
/** At most this many reactions (different emoji) by one user on one message. */
export const MAX_REACTIONS_PER_USER = 10;
/** At most this many reacting users are listed per emoji (`ReactionGroup.users(first)`). */
export const MAX_REACTION_USERS = 10;

/** One emoji's reactions on a message, as `Message.reactions` lists them. */
export interface ReactionGroup {
  messageId: string;
  emoji: string;
  count: number;
  /** The first MAX_REACTION_USERS users who reacted with it, earliest first. */
  users: User[];
}

/** A change that turned out to change nothing once the channel was locked: undoes the seq bump. */
class NoChange extends Error {}

type Target = Pick<Message, 'id' | 'channelId' | 'seq' | 'deletedAt'>;

/**
 * Reactions (issue 11 §3): one emoji per row, per user and message. Who may
 * react: whoever may post in the channel (`mayWriteChannel`: not observers,
 * not in an archived channel, external users only with a grant that allows
 * comments). A soft-deleted message takes no reaction changes (CONFLICT); a
 * hard delete removes its reactions by the foreign key's cascade.
 */
export class ReactionService {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly channelLog: ChannelLog,
  ) {}

  /** Adds the viewer's `emoji` to a message; adding one they already have changes nothing and logs nothing. */
  async add(viewer: Viewer, messageId: string, rawEmoji: string): Promise<Message> {
    return this.change(viewer, messageId, parseEmoji(rawEmoji), true);
  }

  /** Removes the viewer's `emoji` from a message; removing one they do not have changes nothing and logs nothing. */
  async remove(viewer: Viewer, messageId: string, rawEmoji: string): Promise<Message> {
    return this.change(viewer, messageId, parseEmoji(rawEmoji), false);
  }

  private async change(viewer: Viewer, messageId: string, emoji: string, added: boolean): Promise<Message> {
    const { message, reacted } = await this.target(viewer, messageId, emoji);
    // The retry of a change already made costs no lock and no seq.
    if (reacted === added) return message;
    try {
      await this.channelLog.transaction(viewer.organizationId, viewer.id, async (tx, log) => {
        await log.append(message.channelId, 'REACTIONS_CHANGED', async () => {
          // The seq bump holds the channel row: concurrent changes (and deletes,
          // archiving, removals) of this channel are ordered, so the rights,
          // the bounds and the count below are those of this point in the log.
          await mayReact(tx, viewer, message.channelId);
          const count = added ? await insert(tx, viewer, message, emoji) : await remove(tx, viewer, message, emoji);
          return { messageId, messageSeq: message.seq, emoji, userId: viewer.id, added, count } satisfies ReactionChange;
        });
      });
    } catch (error) {
      if (!(error instanceof NoChange)) throw error;
    }
    return message;
  }

  /**
   * The message, if the viewer may react to it (NOT_FOUND when they cannot
   * read it, FORBIDDEN when they may not post, CONFLICT once deleted), and
   * whether they already reacted with `emoji`: one query besides the rights.
   */
  private async target(viewer: Viewer, messageId: string, emoji: string): Promise<{ message: Message; reacted: boolean }> {
    assertId(messageId, 'Message');
    const [row] = await this.prisma.$queryRaw<(Message & { reacted: boolean })[]>`
      SELECT ${columns('Message', 'm')}, EXISTS (
        SELECT 1 FROM "Reaction" r WHERE r."messageId" = m.id AND r."userId" = ${viewer.id}::uuid AND r.emoji = ${emoji}
      ) AS reacted
      FROM "Message" m WHERE m.id = ${messageId}::uuid AND m."organizationId" = ${viewer.organizationId}::uuid`;
    if (!row) throw notFound('Message');
    const { reacted, ...message } = row;
    await mayReact(this.prisma, viewer, message.channelId);
    if (message.deletedAt) throw conflict('A deleted message takes no reactions');
    return { message, reacted };
  }

  /**
   * `Message.reactions` for many messages in one query: per message, one
   * group per emoji in the order of its first reaction, with its count and
   * its first `MAX_REACTION_USERS` users (window functions keep the rows
   * bounded). A message with no reactions, or one that is gone, has none.
   */
  async groups(messageIds: readonly string[]): Promise<ReactionGroup[][]> {
    const rows = await this.prisma.$queryRaw<{ messageId: string; emoji: string; count: number; userIds: string[] }[]>`
      SELECT "messageId", emoji, count::int AS count, array_agg("userId" ORDER BY n) FILTER (WHERE n <= ${MAX_REACTION_USERS}) AS "userIds"
      FROM (
        SELECT "messageId", emoji, "userId",
          row_number() OVER w AS n,
          count(*) OVER (PARTITION BY "messageId", emoji) AS count,
          min("createdAt") OVER (PARTITION BY "messageId", emoji) AS first
        FROM "Reaction"
        WHERE "messageId" = ANY(${messageIds as string[]}::uuid[])
        WINDOW w AS (PARTITION BY "messageId", emoji ORDER BY "createdAt", "userId")
      ) r
      GROUP BY "messageId", emoji, count, first
      ORDER BY "messageId", first, emoji`;
    const userIds = [...new Set(rows.flatMap((r) => r.userIds))];
    const users = userIds.length ? await this.prisma.user.findMany({ where: { id: { in: userIds } } }) : [];
    const byId = new Map(users.map((u) => [u.id, u]));
    const byMessage = new Map<string, ReactionGroup[]>(messageIds.map((id) => [id, []]));
    for (const r of rows) {
      byMessage.get(r.messageId)?.push({
        messageId: r.messageId,
        emoji: r.emoji,
        count: r.count,
        users: r.userIds.map((id) => byId.get(id)).filter((u): u is User => u !== undefined),
      });
    }
    return messageIds.map((id) => byMessage.get(id) ?? []);
  }

  /** The emoji the user reacted with, per message, in one query. */
  async emojiOf(userId: string, messageIds: readonly string[]): Promise<string[][]> {
    const rows = await this.prisma.reaction.findMany({
      where: { userId, messageId: { in: [...messageIds] } },
      select: { messageId: true, emoji: true },
    });
    const byMessage = new Map<string, string[]>(messageIds.map((id) => [id, []]));
    for (const r of rows) byMessage.get(r.messageId)?.push(r.emoji);
    return messageIds.map((id) => byMessage.get(id) ?? []);
  }
}

/** NOT_FOUND (for the message) when the viewer cannot read the channel, FORBIDDEN with the reason when they may not react. */
async function mayReact(db: PrismaClient | Tx, viewer: Viewer, channelId: string): Promise<void> {
  const access = await channelAccess(db, viewer, channelId);
  if (!access.canRead) throw notFound('Message');
  if (mayReactInChannel(viewer, access)) return;
  await writableChannel(db, viewer, channelId); // names the reason
  throw forbidden('You cannot react in this channel');
}

/** Inserts the reaction within the bounds; returns the emoji's count after it. */
async function insert(tx: Tx, viewer: Viewer, message: Target, emoji: string): Promise<number> {
  const stats = await lockedState(tx, viewer, message, emoji);
  if (stats.exists) throw new NoChange();
  if (!stats.present && stats.distinct >= MAX_DISTINCT_REACTIONS) {
    throw conflict(`A message takes at most ${MAX_DISTINCT_REACTIONS} different emoji`, { limit: MAX_DISTINCT_REACTIONS });
  }
  if (stats.mine >= MAX_REACTIONS_PER_USER) {
    throw conflict(`You may add at most ${MAX_REACTIONS_PER_USER} reactions to one message`, { limit: MAX_REACTIONS_PER_USER });
  }
  // clock_timestamp(), not the transaction's start: under the channel lock it orders first reactions as the log does.
  const [row] = await tx.$queryRaw<{ count: number }[]>`
    WITH ins AS (
      INSERT INTO "Reaction" ("messageId", "userId", emoji, "organizationId", "channelId", "createdAt")
      VALUES (${message.id}::uuid, ${viewer.id}::uuid, ${emoji}, ${viewer.organizationId}::uuid, ${message.channelId}::uuid, clock_timestamp() AT TIME ZONE 'UTC')
      RETURNING 1
    )
    SELECT ((SELECT count(*) FROM "Reaction" WHERE "messageId" = ${message.id}::uuid AND emoji = ${emoji}) + (SELECT count(*) FROM ins))::int AS count`;
  return row!.count;
}

/** Deletes the reaction; returns the emoji's count after it. */
async function remove(tx: Tx, viewer: Viewer, message: Target, emoji: string): Promise<number> {
  const [row] = await tx.$queryRaw<{ state: 'GONE' | 'DELETED' | 'LIVE'; removed: number; count: number }[]>`
    WITH m AS (SELECT "deletedAt" FROM "Message" WHERE id = ${message.id}::uuid),
    del AS (
      DELETE FROM "Reaction" WHERE "messageId" = ${message.id}::uuid AND "userId" = ${viewer.id}::uuid AND emoji = ${emoji}
        AND EXISTS (SELECT 1 FROM m WHERE "deletedAt" IS NULL)
      RETURNING 1
    )
    SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM m) THEN 'GONE' WHEN EXISTS (SELECT 1 FROM m WHERE "deletedAt" IS NOT NULL) THEN 'DELETED' ELSE 'LIVE' END AS state,
      (SELECT count(*) FROM del)::int AS removed,
      ((SELECT count(*) FROM "Reaction" WHERE "messageId" = ${message.id}::uuid AND emoji = ${emoji}) - (SELECT count(*) FROM del))::int AS count`;
  checkState(row!.state);
  if (row!.removed === 0) throw new NoChange();
  return row!.count;
}

/** A message deleted since the checks before the lock: gone (NOT_FOUND) or soft-deleted (CONFLICT). */
function checkState(state: 'GONE' | 'DELETED' | 'LIVE'): void {
  if (state === 'GONE') throw notFound('Message');
  if (state === 'DELETED') throw conflict('A deleted message takes no reactions');
}

/** Under the lock: the message's state and the reactions on it that the bounds look at. */
async function lockedState(tx: Tx, viewer: Viewer, message: Target, emoji: string) {
  const [row] = await tx.$queryRaw<
    { state: 'GONE' | 'DELETED' | 'LIVE'; distinct: number; mine: number; present: boolean; exists: boolean }[]
  >`
    SELECT CASE WHEN m.id IS NULL THEN 'GONE' WHEN m."deletedAt" IS NOT NULL THEN 'DELETED' ELSE 'LIVE' END AS state, s.*
    FROM (SELECT count(DISTINCT emoji)::int AS "distinct",
        (count(*) FILTER (WHERE "userId" = ${viewer.id}::uuid))::int AS mine,
        coalesce(bool_or(emoji = ${emoji}), false) AS present,
        coalesce(bool_or(emoji = ${emoji} AND "userId" = ${viewer.id}::uuid), false) AS "exists"
      FROM "Reaction" WHERE "messageId" = ${message.id}::uuid) s
    LEFT JOIN "Message" m ON m.id = ${message.id}::uuid`;
  checkState(row!.state);
  return row!;
}
