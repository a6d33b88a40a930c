import { Repeater } from 'graphql-yoga';
import type { Viewer } from '../viewer.ts';
import type { PrismaClient } from '../../generated/prisma/client.ts';
import type { ReadStateService } from '../read-state.ts';
import { readableChannelWhere } from '../access.ts';
import type { ChannelHub } from '../../bus/channel-hub.ts';
import type { ChannelEvent, MessageSnapshot } from '../../bus/events.ts';
import type { ParleyPubSub, UserSignal } from '../../bus/pubsub.ts';

/** One item of a viewer's own stream. */
export type ViewerEvent =
  | { type: 'CHANNEL_ACTIVITY'; channelId: string; lastSeq: number; unreadCount: number; message: MessageSnapshot | null }
  | { type: 'CHANNEL_ADDED'; channelId: string }
  | { type: 'CHANNEL_REMOVED'; channelId: string; reason: string | null }
  | Exclude<UserSignal, { type: 'CHANNEL_ADDED' | 'CHANNEL_REMOVED' }>;

interface Tracked {
  unread: number;
  lastReadSeq: number;
  lastSeq: number;
  stop: () => void;
}

/**
 * The viewer's own stream: activity in any of their channels (new last seq and
 * their unread count), channels they join or leave, their notifications, and
 * updates of the requests and tickets they take part in. It follows each of
 * their channels through the process's channel hub (in order, one
 * subscription per channel) and their user topic; unread counts are loaded once and then
 * follow the events, so a busy channel costs no query per message. This is a
 * summary, not a log: after a lost connection to Redis it reloads the counts.
 */
export class ViewerStreams {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly pubsub: ParleyPubSub,
    private readonly hub: ChannelHub,
    private readonly readState: ReadStateService,
  ) {}

  stream(viewer: Viewer): Promise<AsyncIterable<ViewerEvent>> {
    return viewerEventStream(this.prisma, this.pubsub, this.hub, this.readState, viewer);
  }
}

async function viewerEventStream(
  prisma: PrismaClient,
  pubsub: ParleyPubSub,
  hub: ChannelHub,
  readState: ReadStateService,
  viewer: Viewer,
): Promise<AsyncIterable<ViewerEvent>> {
  return new Repeater<ViewerEvent>(async (push, stop) => {
    const tracked = new Map<string, Tracked>();

    const onChannelEvent = (event: ChannelEvent) => {
      const t = tracked.get(event.channelId);
      if (!t || event.seq <= t.lastSeq) return;
      t.lastSeq = event.seq;
      let message: MessageSnapshot | null = null;
      if (event.type === 'MESSAGE_ADDED') {
        if (event.payload.senderId !== viewer.id) t.unread++;
        message = event.payload;
      } else if (event.type === 'MESSAGE_DELETED') {
        const { wasDeleted, senderId, seq } = event.payload;
        if (!wasDeleted && senderId !== viewer.id && seq > t.lastReadSeq) t.unread = Math.max(0, t.unread - 1);
      } else if (event.type === 'READ_RECEIPT' && event.payload.userId === viewer.id) {
        void refresh(event.channelId);
        return;
      } else {
        return;
      }
      void push({ type: 'CHANNEL_ACTIVITY', channelId: event.channelId, lastSeq: event.seq, unreadCount: t.unread, message });
    };

    /** Starts following a channel the viewer may read, with its counts from the database. */
    const track = async (channelId: string) => {
      if (tracked.has(channelId)) return;
      const entry: Tracked = { unread: 0, lastReadSeq: 0, lastSeq: 0, stop: () => {} };
      tracked.set(channelId, entry);
      entry.stop = (await hub.subscribe(channelId, onChannelEvent)).unsubscribe;
      await load([channelId]);
    };

    const untrack = (channelId: string) => {
      tracked.get(channelId)?.stop();
      tracked.delete(channelId);
    };

    /** Reloads read markers, last seqs and unread counts (one query each for any number of channels). */
    const load = async (channelIds: string[]) => {
      const ids = channelIds.filter((id) => tracked.has(id));
      if (!ids.length) return;
      const [members, counts] = await Promise.all([
        prisma.channelMember.findMany({
          where: { userId: viewer.id, channelId: { in: ids } },
          select: { channelId: true, lastReadSeq: true, channel: { select: { lastSeq: true } } },
        }),
        readState.unreadCounts(viewer, ids),
      ]);
      ids.forEach((id, i) => {
        const t = tracked.get(id);
        const m = members.find((row) => row.channelId === id);
        if (!t || !m) return;
        t.lastReadSeq = m.lastReadSeq;
        t.lastSeq = Math.max(t.lastSeq, m.channel.lastSeq);
        t.unread = counts[i] ?? 0;
      });
    };

    const refresh = async (channelId: string) => {
      await load([channelId]);
      const t = tracked.get(channelId);
      if (t) await push({ type: 'CHANNEL_ACTIVITY', channelId, lastSeq: t.lastSeq, unreadCount: t.unread, message: null });
    };

    const unlistenUser = await pubsub.listen(`user:${viewer.id}`, (signal) => {
      switch (signal.type) {
        case 'CHANNEL_ADDED':
          void track(signal.channelId).then(() => push({ type: 'CHANNEL_ADDED', channelId: signal.channelId }));
          return;
        case 'CHANNEL_REMOVED':
          untrack(signal.channelId);
          void push({ type: 'CHANNEL_REMOVED', channelId: signal.channelId, reason: signal.reason ?? null });
          return;
        default:
          // Notifications and request and ticket updates pass through as they are.
          void push(signal);
      }
    });
    const unwatch = pubsub.onReconnect(() => void load([...tracked.keys()]));
    stop.then(() => {
      unlistenUser();
      unwatch();
      for (const id of [...tracked.keys()]) untrack(id);
    });

    const readable = await prisma.channel.findMany({ where: readableChannelWhere(viewer), select: { id: true } });
    for (const { id } of readable) {
      tracked.set(id, { unread: 0, lastReadSeq: 0, lastSeq: 0, stop: () => {} });
    }
    await Promise.all(readable.map(async ({ id }) => (tracked.get(id)!.stop = (await hub.subscribe(id, onChannelEvent)).unsubscribe)));
    await load(readable.map((r) => r.id));
    await stop;
  });
}
