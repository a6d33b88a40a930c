import { Repeater } from 'graphql-yoga';
import type { Viewer } from '../context.ts';
import type { PrismaClient } from '../generated/prisma/client.ts';
import { readableChannel } from '../services/access.ts';
import { DomainError } from '../services/errors.ts';
import type { ChannelHub } from './channel-hub.ts';
import { eventFromRow, type ChannelEventPayload } from './pubsub.ts';

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
 * gap and no duplicate (DESIGN §1.3). It joins the process's channel hub
 * first and reads the log second, so nothing committed in between is missed;
 * the hub already orders live events and fills lost ones from the log, and a
 * jump between the replay and the live part is filled here. A viewer removed from the channel receives that event, then
 * FORBIDDEN. A cursor older than the retained log gets RESYNC_REQUIRED.
 */
export async function channelEventStream(
  prisma: PrismaClient,
  hub: ChannelHub,
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
          await emit(eventFromRow(row));
          if (ended) return;
        }
        if (rows.length < BATCH) return;
      }
    };

    const drain = async () => {
      if (busy) return;
      busy = true;
      try {
        while (pending.length && !ended) {
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

    // The hub hands over this process's events in order, gaps already filled.
    const live = await hub.subscribe(channel.id, (event) => {
      pending.push(event);
      void drain();
    });
    stop.then(live.unsubscribe);

    try {
      if (after === null) {
        // From now: what the hub had handed over when this stream joined is history.
        last = live.from;
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
