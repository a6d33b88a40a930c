import type { Viewer } from './viewer.ts';
import type { Channel, Prisma, PrismaClient } from '../generated/prisma/client.ts';
import { browsableChannelWhere, channelAccess, mayBrowseChannel } from './access.ts';
import { audit, auditedBy } from './audit.ts';
import type { ChannelLog } from './channel-log.ts';
import { badInput, notFound } from './errors.ts';

/** Longest `browseChannels(query)`. */
export const BROWSE_QUERY_MAX = 100;

type Query = { select?: Prisma.ChannelSelect; include?: Prisma.ChannelInclude };

/**
 * `text` for Prisma's `contains`, which becomes a LIKE that passes `%` and `_`
 * on as wildcards (prisma/prisma#19506): escaped with PostgreSQL's default
 * LIKE escape, `\\`, they match only themselves.
 */
export const escapeLike = (text: string): string => text.replace(/[\\%_]/g, (c) => `\\${c}`);

/**
 * Open channels: live PUBLIC GROUP channels people find with `browse` and
 * join themselves (`mayBrowseChannel` in access.ts says for whom). A channel
 * someone may not browse is NOT_FOUND to `join`, exactly like a missing one,
 * so private channels stay unseen.
 */
export class OpenChannelService {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly channelLog: ChannelLog,
  ) {}

  /** The open channels the viewer may join, by name then id; `query` matches name or topic, case-insensitively. */
  browse(
    viewer: Viewer,
    text: string | null | undefined,
    query: Query & { take?: number; skip?: number; cursor?: Prisma.ChannelWhereUniqueInput } = {},
  ): Promise<Channel[]> {
    const trimmed = text?.trim() ?? '';
    if (trimmed.length > BROWSE_QUERY_MAX) throw badInput('query', `query must be at most ${BROWSE_QUERY_MAX} characters`);
    if (trimmed.includes('\u0000')) throw badInput('query', 'query must not contain NUL (U+0000) characters');
    const match = { contains: escapeLike(trimmed), mode: 'insensitive' as const };
    return this.prisma.channel.findMany({
      ...query,
      where: { ...browsableChannelWhere(viewer), ...(trimmed ? { AND: [{ OR: [{ name: match }, { topic: match }] }] } : {}) },
      orderBy: [{ name: 'asc' }, { id: 'asc' }],
    }) as Promise<Channel[]>;
  }

  /**
   * The viewer joins an open channel as a MEMBER (one MEMBER_ADDED). A member
   * already gets the channel back and nothing is logged, also when two joins
   * race: the insert itself says whether the viewer was new.
   */
  async join(viewer: Viewer, channelId: string): Promise<Channel> {
    const access = await channelAccess(this.prisma, viewer, channelId);
    if (access.canRead) return access.channel;
    if (!mayBrowseChannel(viewer, access)) throw notFound('Channel');
    return this.channelLog.transaction(viewer.organizationId, viewer.id, async (tx, log) => {
      // Under the channel's row lock, the channel is still open (not archived or made private since).
      await tx.$queryRaw`SELECT 1 FROM "Channel" WHERE id = ${channelId}::uuid FOR UPDATE`;
      const open = await tx.channel.count({ where: { id: channelId, ...browsableChannelWhere(viewer) } });
      if (!open) throw notFound('Channel');
      const inserted = await tx.channelMember.createManyAndReturn({
        data: [{ channelId, userId: viewer.id, role: 'MEMBER' as const }],
        skipDuplicates: true,
        select: { userId: true },
      });
      if (inserted.length > 0) {
        await log.append(channelId, 'MEMBER_ADDED', { userIds: [viewer.id], role: 'MEMBER' });
        await audit(tx, {
          ...auditedBy(viewer),
          action: 'channel.join',
          targetType: 'Channel',
          targetId: channelId,
          data: { userId: viewer.id },
        });
      }
      return tx.channel.findUniqueOrThrow({ where: { id: channelId } });
    });
  }
}
