import type { Logger } from 'pino';
import type { PrismaClient } from '../generated/prisma/client.ts';
import { eventFromRow, type ChannelEvent } from './events.ts';
import type { ParleyPubSub } from './pubsub.ts';

/** How long an event that skipped a seq waits for the missing one before the log is read. */
const GAP_WAIT_MS = 50;
/** Log rows read per query when the hub catches a channel up. */
const LOG_BATCH = 1000;

type Listener = (event: ChannelEvent) => void;

/** What the hub counts for metrics: log reads it had to make. */
export interface HubCounters {
  gapFills: number;
  resyncs: number;
}

interface ChannelState {
  listeners: Set<Listener>;
  /** Highest seq handed to the listeners; null until known. */
  last: number | null;
  /** Events ahead of `last + 1`, by seq. */
  ahead: Map<number, ChannelEvent>;
  gapTimer: NodeJS.Timeout | null;
  reading: boolean;
  ready: Promise<void>;
  unlisten: () => void;
}

/**
 * One pub/sub subscription per channel per process, shared by every stream
 * of that channel here. It hands events to its listeners in seq order with no
 * gap: concurrent sends publish out of order, so an event ahead of the next
 * seq waits briefly for it, and what is really missing (a lost publish, a
 * Redis reconnect) is read from the log once for the whole process instead of
 * once per subscriber.
 */
export class ChannelHub {
  private readonly channels = new Map<string, ChannelState>();
  private readonly unwatch: () => void;
  /** Set by the app when it keeps metrics. */
  counters: HubCounters | null = null;
  private readonly deliveredHooks: (() => void)[] = [];

  constructor(
    private readonly prisma: PrismaClient,
    private readonly pubsub: ParleyPubSub,
    private readonly log: Logger,
  ) {
    this.unwatch = pubsub.onReconnect(() => {
      for (const [channelId, state] of this.channels) {
        if (this.counters) this.counters.resyncs++;
        void this.readLog(channelId, state, null);
      }
    });
  }

  /**
   * Calls `listener` with every event of the channel committed after the
   * returned seq, in order. Resolves once the subscription is active.
   */
  async subscribe(channelId: string, listener: Listener): Promise<{ from: number; unsubscribe: () => void }> {
    let state = this.channels.get(channelId);
    if (!state) {
      const created: ChannelState = {
        listeners: new Set(),
        last: null,
        ahead: new Map(),
        gapTimer: null,
        reading: false,
        ready: Promise.resolve(),
        unlisten: () => {},
      };
      created.ready = (async () => {
        created.unlisten = await this.pubsub.listen(`channel:${channelId}`, (event) => this.receive(channelId, created, event));
        // Listening first, reading second: nothing committed in between is missed.
        const row = await this.prisma.channel.findUnique({ where: { id: channelId }, select: { lastSeq: true } });
        created.last = Math.max(created.last ?? 0, row?.lastSeq ?? 0);
        this.flush(channelId, created);
      })();
      // A setup that failed (the database or Redis out of reach) must not stay
      // behind for the next subscriber to await: it starts afresh.
      created.ready.catch(() => {
        if (this.channels.get(channelId) === created) this.channels.delete(channelId);
        created.unlisten();
      });
      this.channels.set(channelId, created);
      state = created;
    }
    const current = state;
    await current.ready;
    current.listeners.add(listener);
    return {
      from: current.last ?? 0,
      unsubscribe: () => {
        current.listeners.delete(listener);
        if (current.listeners.size === 0 && this.channels.get(channelId) === current) {
          this.channels.delete(channelId);
          if (current.gapTimer) clearTimeout(current.gapTimer);
          current.unlisten();
        }
      },
    };
  }

  /**
   * Calls `hook` each time the hub has handed a batch of events to its
   * listeners (the events next in line when one arrives, or a batch read from
   * the log), after the last listener returned. The transport sends the
   * frames those listeners wrote from here.
   */
  onDelivered(hook: () => void): void {
    this.deliveredHooks.push(hook);
  }

  /**
   * An event committed by this process, handed over before its publish has
   * made the round trip through pub/sub (whichever copy comes second is
   * dropped by its seq). Ignored when nobody here follows the channel.
   */
  offer(event: ChannelEvent): void {
    const state = this.channels.get(event.channelId);
    if (state) this.receive(event.channelId, state, event);
  }

  close(): void {
    this.unwatch();
    for (const state of this.channels.values()) {
      if (state.gapTimer) clearTimeout(state.gapTimer);
      state.unlisten();
    }
    this.channels.clear();
  }

  private receive(channelId: string, state: ChannelState, event: ChannelEvent) {
    if (state.last !== null && event.seq <= state.last) return;
    state.ahead.set(event.seq, event);
    if (state.last !== null) this.flush(channelId, state);
  }

  /** Hands over every buffered event that is next in line; waits, then reads the log, for a gap. */
  private flush(channelId: string, state: ChannelState) {
    if (state.last === null) return;
    for (const seq of [...state.ahead.keys()]) if (seq <= state.last) state.ahead.delete(seq);
    let next = state.ahead.get(state.last + 1);
    if (next) {
      while (next) {
        state.ahead.delete(next.seq);
        this.deliver(state, next);
        next = state.ahead.get(state.last + 1);
      }
      this.delivered();
    }
    if (state.ahead.size === 0) {
      if (state.gapTimer) clearTimeout(state.gapTimer);
      state.gapTimer = null;
    } else if (!state.gapTimer) {
      state.gapTimer = setTimeout(() => {
        state.gapTimer = null;
        if (this.counters) this.counters.gapFills++;
        void this.readLog(channelId, state, Math.min(...state.ahead.keys()) - 1);
      }, GAP_WAIT_MS);
    }
  }

  private deliver(state: ChannelState, event: ChannelEvent) {
    state.last = event.seq;
    for (const listener of state.listeners) listener(event);
  }

  private delivered() {
    for (const hook of this.deliveredHooks) {
      try {
        hook();
      } catch (error) {
        this.log.error({ err: error }, 'a channel hub delivery hook failed');
      }
    }
  }

  /** Reads what the log has after `last` (up to `upTo`), once for every listener. */
  private async readLog(channelId: string, state: ChannelState, upTo: number | null) {
    if (state.reading || state.last === null) return;
    state.reading = true;
    try {
      // In batches until the log has nothing more after `last`: after a long
      // Redis outage a quiet channel may have missed more than one batch, and
      // no later event would come to fetch the rest.
      for (let contiguous = true; contiguous;) {
        const rows = await this.prisma.channelEvent.findMany({
          where: { channelId, seq: { gt: state.last, ...(upTo !== null ? { lte: upTo } : {}) } },
          orderBy: { seq: 'asc' },
          take: LOG_BATCH,
        });
        const before: number | null = state.last;
        for (const row of rows) {
          // A pruned stretch: the streams that need it end with RESYNC_REQUIRED.
          if (row.seq !== state.last + 1) {
            contiguous = false;
            break;
          }
          this.deliver(state, eventFromRow(row));
        }
        if (state.last !== before) this.delivered();
        if (rows.length < LOG_BATCH) break;
      }
    } catch (error) {
      this.log.warn({ err: error, channelId }, 'reading the channel log for a gap failed; retrying on the next event');
    } finally {
      state.reading = false;
    }
    this.flush(channelId, state);
  }
}
