import type { Viewer } from './viewer.ts';
import type { Notification, NotificationType, Prisma, PrismaClient } from '../generated/prisma/client.ts';
import type { NotificationSnapshot } from '../bus/pubsub.ts';
import { assertId, readableNotificationWhere } from './access.ts';
import { notFound } from './errors.ts';
import type { LogWriter } from './channel-log.ts';
import type { Tx } from '../db/tx.ts';

export interface NotificationDraft {
  userId: string;
  type: NotificationType;
  requestId?: string;
  ticketId?: string;
  data: Record<string, unknown>;
}

export function notificationSnapshot(n: Notification): NotificationSnapshot {
  return { ...n, readAt: n.readAt?.toISOString() ?? null, createdAt: n.createdAt.toISOString() };
}

type Query = { select?: Prisma.NotificationSelect; include?: Prisma.NotificationInclude };

/** What users are told about changes others made to their requests and tickets. */
export class NotificationService {
  constructor(private readonly prisma: PrismaClient) {}

  /**
   * Records notifications in the caller's transaction and has each one reach
   * its user's live stream after the commit. Nobody is told about their own
   * action, and nobody twice about one change.
   */
  async notify(tx: Tx, log: LogWriter, actor: Viewer, drafts: NotificationDraft[]): Promise<void> {
    const seen = new Set<string>([actor.id]);
    const rows = drafts.filter((d) => !seen.has(d.userId) && seen.add(d.userId));
    if (!rows.length) return;
    const created = await tx.notification.createManyAndReturn({
      data: rows.map((d) => ({
        organizationId: actor.organizationId,
        userId: d.userId,
        type: d.type,
        actorId: actor.id,
        requestId: d.requestId ?? null,
        ticketId: d.ticketId ?? null,
        data: d.data as Prisma.InputJsonValue,
      })),
    });
    for (const n of created) log.signal(n.userId, { type: 'NOTIFICATION', notification: notificationSnapshot(n) });
  }

  listWhere(viewer: Viewer, unreadOnly: boolean): Prisma.NotificationWhereInput {
    return { ...readableNotificationWhere(viewer), ...(unreadOnly ? { readAt: null } : {}) };
  }

  list(viewer: Viewer, unreadOnly: boolean, query: Query & { take?: number; skip?: number; cursor?: Prisma.NotificationWhereUniqueInput }) {
    return this.prisma.notification.findMany({
      ...query,
      where: this.listWhere(viewer, unreadOnly),
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
    });
  }

  unreadCount(viewer: Viewer): Promise<number> {
    return this.prisma.notification.count({ where: this.listWhere(viewer, true) });
  }

  /** Marks the given notifications of the viewer's (or, without ids, all of them) read; returns how many changed. */
  async markRead(viewer: Viewer, ids: string[] | null, now: Date): Promise<number> {
    if (ids) {
      for (const id of ids) assertId(id, 'Notification');
      // Another user's notification is NOT_FOUND, exactly like a missing one.
      const own = await this.prisma.notification.count({
        where: { id: { in: ids }, userId: viewer.id, organizationId: viewer.organizationId },
      });
      if (own !== new Set(ids).size) throw notFound('Notification');
    }
    const { count } = await this.prisma.notification.updateMany({
      where: { ...this.listWhere(viewer, true), ...(ids ? { id: { in: ids } } : {}) },
      data: { readAt: now },
    });
    return count;
  }
}
