import { Repeater, SlidingBuffer } from 'graphql-yoga';
import type { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import type { Viewer } from '../viewer.ts';
import type { PrismaClient } from '../../generated/prisma/client.ts';
import { readableChannel, writableChannel } from '../access.ts';
import { DomainError } from '../errors.ts';
import type { ParleyPubSub, Topics } from '../../bus/pubsub.ts';

/** One user's typing state in one channel, as published on `typing:<channelId>`. */
export type TypingPayload = Topics[`typing:${string}`];

/** What a typing stream yields: a state change, or the error that ends the stream. */
export type TypingItem = TypingPayload | { error: DomainError };

export const isTypingError = (item: TypingItem): item is { error: DomainError } => 'error' in item;

/**
 * Who may broadcast now. A claim holds a user's slot in a channel for the
 * throttle window; a claim made while one holds is refused.
 */
export interface TypingThrottle {
  claim(key: string, ms: number): Promise<boolean>;
  release(key: string): Promise<void>;
}

/** This process only: enough when there is one process (no Redis). */
export function memoryThrottle(): TypingThrottle {
  const held = new LRUCache<string, true>({ max: 100_000 });
  return {
    claim: async (key, ms) => {
      if (held.has(key)) return false;
      held.set(key, true, { ttl: ms });
      return true;
    },
    release: async (key) => void held.delete(key),
  };
}

/**
 * States a slow subscriber may have pending; beyond that the oldest are
 * dropped, as an ephemeral signal may be (the newest state is what counts).
 */
const STREAM_BUFFER = 64;

/** Longest a claim waits for Redis before this process decides alone. */
const REDIS_WAIT_MS = 250;

/**
 * Shared by every process through `SET key NX PX`, so a user typing into two
 * processes (two tabs behind a load balancer) is still throttled once. Typing
 * is best-effort (DESIGN §1.7): while Redis is slow or away, each process
 * throttles on its own rather than holding the mutation.
 */
export function redisThrottle(redis: Redis, prefix: string, log?: Logger): TypingThrottle {
  const local = memoryThrottle();
  const withinWait = async <T>(command: Promise<T>): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`redis did not answer within ${REDIS_WAIT_MS} ms`)), REDIS_WAIT_MS);
    });
    try {
      return await Promise.race([command, late]);
    } finally {
      clearTimeout(timer);
    }
  };
  return {
    claim: async (key, ms) => {
      try {
        return (await withinWait(redis.set(prefix + key, '1', 'PX', ms, 'NX'))) === 'OK';
      } catch (error) {
        log?.debug({ err: error }, 'typing throttle: redis unavailable, throttling in this process');
        return local.claim(key, ms);
      }
    },
    release: async (key) => {
      await local.release(key);
      await withinWait(redis.del(prefix + key)).catch(() => {});
    },
  };
}

export interface TypingOptions {
  /** At most one broadcast per user and channel in this window. */
  throttleMs?: number;
  /** A typing state ends this long after its last broadcast. */
  ttlMs?: number;
  log?: Logger;
}

/**
 * Typing indicators: ephemeral, never in PostgreSQL nor in the channel log
 * (DESIGN §1.7). A state travels once through pub/sub with everything a
 * subscriber shows (the display name included), so N subscribers cost no query.
 */
export class TypingService {
  readonly throttleMs: number;
  readonly ttlMs: number;
  private readonly throttle: TypingThrottle;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly pubsub: ParleyPubSub,
    private readonly options: TypingOptions = {},
  ) {
    this.throttleMs = options.throttleMs ?? 2000;
    this.ttlMs = options.ttlMs ?? 6000;
    // With Redis the throttle is shared by every process, through the facade's command connection.
    this.throttle = pubsub.redis ? redisThrottle(pubsub.redis, `${pubsub.prefix}typing:`, options.log) : memoryThrottle();
  }

  /**
   * Announces that the viewer started (or goes on) typing, or stopped. Only
   * users who may post do. `typing: true` is broadcast at most once per
   * throttle window; a stop always is, and frees the window so typing again
   * right after shows at once. Returns whether this call was broadcast.
   */
  async set(viewer: Viewer, channelId: string, typing: boolean): Promise<boolean> {
    const { channel } = await writableChannel(this.prisma, viewer, channelId);
    const key = `${channel.id}:${viewer.id}`;
    if (typing) {
      if (!(await this.throttle.claim(key, this.throttleMs))) return false;
    } else {
      await this.throttle.release(key);
    }
    const payload: TypingPayload = {
      channelId: channel.id,
      userId: viewer.id,
      displayName: viewer.displayName,
      typing,
      expiresAt: typing ? new Date(Date.now() + this.ttlMs).toISOString() : null,
    };
    // Not awaited: with Redis away the publish waits for it, and a typing
    // signal is worth nothing by then.
    this.pubsub.publish(`typing:${channel.id}`, payload).catch((error: unknown) => {
      this.options.log?.warn({ err: error, channelId: channel.id }, 'typing publish failed');
    });
    return true;
  }

  /**
   * Other members' typing states in a channel the viewer may read. A state
   * not refreshed before its `expiresAt` ends here with `typing: false`, so a
   * sender whose process died stops showing as typing. The viewer's own
   * states are left out. A viewer removed from the channel gets FORBIDDEN.
   */
  async stream(viewer: Viewer, channelId: string): Promise<AsyncIterable<TypingItem>> {
    const { channel } = await readableChannel(this.prisma, viewer, channelId);
    return new Repeater<TypingItem>(async (push, stop) => {
      const active = new Map<string, { state: TypingPayload; timer: NodeJS.Timeout }>();

      const stopped = (userId: string) => {
        const entry = active.get(userId);
        if (!entry) return;
        clearTimeout(entry.timer);
        active.delete(userId);
        void push({ ...entry.state, typing: false, expiresAt: null });
      };

      const onTyping = (state: TypingPayload) => {
        if (state.userId === viewer.id) return;
        if (!state.typing) {
          // A stop for someone this stream never showed typing says nothing new.
          stopped(state.userId);
          return;
        }
        clearTimeout(active.get(state.userId)?.timer);
        // Another process's clock decides `expiresAt`; bounded by our TTL so a
        // skewed clock cannot keep someone typing for long.
        const remaining = Date.parse(state.expiresAt ?? '') - Date.now();
        const delay = Number.isFinite(remaining) ? Math.min(Math.max(remaining, 0), this.ttlMs) : this.ttlMs;
        active.set(state.userId, { state, timer: setTimeout(() => stopped(state.userId), delay) });
        void push(state);
      };

      const unlistenTyping = await this.pubsub.listen(`typing:${channel.id}`, onTyping);
      const unlistenChannel = await this.pubsub.listen(`channel:${channel.id}`, (event) => {
        if (event.type === 'MEMBER_REMOVED' && event.payload.userId === viewer.id) {
          void push({ error: new DomainError('FORBIDDEN', 'You were removed from this channel') }).then(() => stop());
        }
      });
      await stop;
      unlistenTyping();
      unlistenChannel();
      for (const { timer } of active.values()) clearTimeout(timer);
    }, new SlidingBuffer(STREAM_BUFFER));
  }
}
