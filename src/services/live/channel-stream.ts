import type { Viewer } from '../viewer.ts';
import type { PrismaClient } from '../../generated/prisma/client.ts';
import { readableChannel } from '../access.ts';
import { DomainError } from '../errors.ts';
import type { ChannelHub } from '../../bus/channel-hub.ts';
import { LiveStream } from '../../bus/live-stream.ts';
import { eventFromRow, type ChannelEvent } from '../../bus/events.ts';

/** Log rows read per query while replaying or filling a gap. */
const BATCH = 500;

/**
 * What a channel stream yields: a committed event, or an error that ends the
 * stream after everything before it was delivered (the field resolver throws
 * it, so the client gets it as a coded GraphQL error, then completion; an
 * unexpected one, such as the database failing mid-replay, is masked like any
 * resolver's).
 */
export type StreamItem = ChannelEvent | { error: unknown };

export const isStreamError = (item: StreamItem): item is { error: unknown } => 'error' in item;

const resyncRequired = (oldestSeq: number) =>
  new DomainError('RESYNC_REQUIRED', 'This cursor is older than the retained log: reload the channel and subscribe from its lastSeq', {
    oldestSeq,
  });

/**
 * The events of one channel after `after` (or from now), in seq order with no
 * gap and no duplicate (DESIGN §1.3). It joins the process's channel hub
 * first and reads the log second, so nothing committed in between is missed;
 * the hub already orders live events and fills lost ones from the log, and a
 * jump between the replay and the live part is filled here. A viewer removed
 * from the channel receives that event, then FORBIDDEN. A cursor older than
 * the retained log gets RESYNC_REQUIRED.
 *
 * Once caught up, a live event goes from the hub to the stream's consumer in
 * the same call: the hub's events are shared objects, so one execution and
 * one serialization can serve every subscriber (see socket-delivery.ts).
 */
export class ChannelStreams {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly hub: ChannelHub,
  ) {}

  stream(viewer: Viewer, channelId: string, after: number | null): Promise<LiveStream<StreamItem>> {
    return channelEventStream(this.prisma, this.hub, viewer, channelId, after);
  }
}

async function channelEventStream(
  prisma: PrismaClient,
  hub: ChannelHub,
  viewer: Viewer,
  channelId: string,
  after: number | null,
): Promise<LiveStream<StreamItem>> {
  const { channel } = await readableChannel(prisma, viewer, channelId);
  if (after !== null && after > channel.lastSeq) {
    throw new DomainError('BAD_USER_INPUT', `after is beyond the channel's last seq (${channel.lastSeq})`, { field: 'after' });
  }

  const stream = new LiveStream<StreamItem>();
  let last = after ?? 0;
  /** True while the log is being read: live events wait in `pending`. */
  let busy = true;
  const pending: ChannelEvent[] = [];

  const end = (error: unknown) => {
    stream.push({ error });
    stream.end();
  };

  const emit = (event: ChannelEvent) => {
    if (stream.done || event.seq <= last) return;
    stream.push(event);
    last = event.seq;
    if (event.type === 'MEMBER_REMOVED' && event.payload.userId === viewer.id) {
      end(new DomainError('FORBIDDEN', 'You were removed from this channel'));
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
        // At the consumer's pace: a long history must not pile up unsent.
        const room = stream.ready();
        if (room) await room;
        if (stream.done) return;
        // Entries pruned while this stream read (see LogRetention): never a silent gap.
        if (row.seq !== last + 1) return end(resyncRequired(row.seq));
        emit(eventFromRow(row));
      }
      if (rows.length < BATCH) return;
    }
  };

  /** Hands over what waited while the log was read, reading any jump from the log first. */
  const drain = async () => {
    if (busy) return;
    busy = true;
    try {
      while (pending.length && !stream.done) {
        const event = pending.shift()!;
        if (event.seq > last + 1) await replay(event.seq - 1);
        emit(event);
      }
    } finally {
      busy = false;
    }
  };

  // The hub hands over this process's events in order, gaps already filled.
  const live = await hub.subscribe(channel.id, (event) => {
    if (!busy && pending.length === 0 && event.seq === last + 1) return emit(event);
    pending.push(event);
    void drain().catch(end);
  });
  stream.onClose(live.unsubscribe);

  const start = async () => {
    if (after === null) {
      // From now: what the hub had handed over when this stream joined is history.
      last = live.from;
      return;
    }
    const oldest = await prisma.channelEvent.findFirst({
      where: { channelId: channel.id },
      orderBy: { seq: 'asc' },
      select: { seq: true },
    });
    // The log keeps events from `oldest` on (none at all once a quiet
    // channel's were all pruned); a cursor before that would skip what was pruned.
    const retainedFrom = oldest?.seq ?? channel.lastSeq + 1;
    if (after < retainedFrom - 1) return end(resyncRequired(retainedFrom));
    await replay(null);
  };
  start()
    .then(() => {
      busy = false;
      return drain();
    })
    .catch(end);
  return stream;
}
