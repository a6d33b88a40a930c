import { Repeater } from 'graphql-yoga';
import type { Viewer } from '../context.ts';
import type { PrismaClient } from '../generated/prisma/client.ts';
import { readableChannel } from '../services/access.ts';
import { DomainError } from '../services/errors.ts';
import type { ChannelEventPayload, ParleyPubSub } from './pubsub.ts';

/** Log rows read per query while replaying or filling a gap. */
const BATCH = 500;

/**
 * What a channel stream yields: a committed event, or an error that ends the
 * stream after everything before it was delivered (the field resolver throws
 * it, so the client gets it as a coded GraphQL error, then completion).
 */
export type StreamItem = ChannelEventPayload | { error: DomainError };

export const isStreamError = (item: StreamItem): item is { error: DomainError } => 'error' in item;

/**
 * The events of one channel after `after` (or from now), in seq order with no
 * gap and no duplicate (DESIGN §1.3). It listens first and reads the log
 * second, so nothing committed in between is missed; live events that skip a
 * seq (publishes can arrive out of order, or be lost) are filled from the log
 * before delivery. A viewer removed from the channel receives that event, then
 * FORBIDDEN. A cursor older than the retained log gets RESYNC_REQUIRED.
 */
export async function channelEventStream(
  prisma: PrismaClient,
  pubsub: ParleyPubSub,
  viewer: Viewer,
  channelId: string,
  after: number | null,
): Promise<AsyncIterable<StreamItem>> {
  const { channel } = await readableChannel(prisma, viewer, channelId);
  if (after !== null && after > channel.lastSeq) {
    throw new DomainError('BAD_USER_INPUT', `after is beyond the channel's last seq (${channel.lastSeq})`, { field: 'after' });
  }

  return new Repeater<StreamItem>(async (push, stop) => {
    let last = after ?? 0;
    let busy = true; // replaying: live events wait in `pending`
    let ended = false;
    let catchUp = false; // pub/sub reconnected: read the log for what it dropped
    const pending: ChannelEventPayload[] = [];

    const end = async (error: DomainError) => {
      ended = true;
      await push({ error });
      stop();
    };

    const emit = async (event: ChannelEventPayload) => {
      if (ended || event.seq <= last) return;
      await push(event);
      last = event.seq;
      if (event.type === 'MEMBER_REMOVED' && (event.payload as { userId?: string }).userId === viewer.id) {
        await end(new DomainError('FORBIDDEN', 'You were removed from this channel'));
      }
    };

    /** Delivers log events with last < seq <= upTo (all of them when upTo is null). */
    const replay = async (upTo: number | null) => {
      for (;;) {
        const rows = await prisma.channelEvent.findMany({
          where: { channelId: channel.id, seq: { gt: last, ...(upTo !== null ? { lte: upTo } : {}) } },
          orderBy: { seq: 'asc' },
          take: BATCH,
        });
        for (const row of rows) {
          await emit({
            channelId: row.channelId,
            seq: row.seq,
            type: row.type,
            actorId: row.actorId,
            createdAt: row.createdAt.toISOString(),
            payload: row.payload,
          });
          if (ended) return;
        }
        if (rows.length < BATCH) return;
      }
    };

    const drain = async () => {
      if (busy) return;
      busy = true;
      try {
        while ((pending.length || catchUp) && !ended) {
          if (catchUp) {
            catchUp = false;
            await replay(null);
            continue;
          }
          const event = pending.shift()!;
          if (event.seq > last + 1) await replay(event.seq - 1);
          await emit(event);
        }
      } catch (error) {
        stop(error);
      } finally {
        busy = false;
      }
    };

    const unlisten = await pubsub.listen(`channel:${channel.id}`, (event) => {
      pending.push(event);
      void drain();
    });
    const unwatch = pubsub.onReconnect(() => {
      catchUp = true;
      void drain();
    });
    stop.then(() => {
      unlisten();
      unwatch();
    });

    try {
      if (after === null) {
        // From now: whatever committed before the listener was active is history.
        const current = await prisma.channel.findUnique({ where: { id: channel.id }, select: { lastSeq: true } });
        last = current?.lastSeq ?? channel.lastSeq;
      } else {
        const oldest = await prisma.channelEvent.findFirst({
          where: { channelId: channel.id },
          orderBy: { seq: 'asc' },
          select: { seq: true },
        });
        // The log keeps events from `oldest` on; a cursor before that would skip what was pruned.
        if (oldest && after < oldest.seq - 1) {
          await end(new DomainError('RESYNC_REQUIRED', 'This cursor is older than the retained log: reload the channel and subscribe from its lastSeq', { oldestSeq: oldest.seq }));
          return;
        }
        await replay(null);
      }
    } catch (error) {
      stop(error);
      return;
    } finally {
      busy = false;
    }
    await drain();
    await stop;
  });
}
