import { randomUUID } from 'node:crypto';
import { Repeater } from 'graphql-yoga';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { PrismaClient } from '../../generated/prisma/client.ts';
import { ServiceUnavailableError } from '../errors.ts';
import type { ParleyPubSub, PresenceState, PresenceStatus } from '../../bus/pubsub.ts';

export type { PresenceState, PresenceStatus };
/** What a user may choose while connected. */
export type ChosenStatus = Exclude<PresenceStatus, 'OFFLINE'>;

/**
 * Presence is best effort: with Redis down its commands would wait for the
 * reconnect, and a mutation or socket close must not wait with them.
 */
const REDIS_WAIT_MS = 1000;
function bounded<T>(work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new ServiceUnavailableError('redis', `presence store did not answer within ${REDIS_WAIT_MS} ms`)),
      REDIS_WAIT_MS,
    );
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/** Where "which processes hold a socket of this user" lives. */
interface PresenceStore {
  /** Marks the user as connected through this process until `until` (ms). */
  hold(userId: string, until: number): Promise<void>;
  release(userId: string): Promise<void>;
  setStatus(userId: string, status: ChosenStatus): Promise<void>;
  /** For each user: the latest expiry among the processes holding them (0: none), and their chosen status. */
  read(userIds: string[]): Promise<{ until: number; status: ChosenStatus }[]>;
}

/**
 * Redis: one hash per user, a field per server process holding a socket of
 * theirs whose value is when that claim lapses (refreshed by a heartbeat), and
 * the chosen status. A crashed process stops refreshing, so its claim lapses
 * on its own; the key's TTL removes what nobody refreshes.
 */
function redisStore(redis: Redis, prefix: string, processId: string, ttlMs: number): PresenceStore {
  const key = (userId: string) => `${prefix}presence:${userId}`;
  return {
    async hold(userId, until) {
      await bounded(
        redis
          .multi()
          .hset(key(userId), `p:${processId}`, String(until))
          .pexpire(key(userId), ttlMs * 2)
          .exec(),
      );
    },
    async release(userId) {
      await bounded(redis.hdel(key(userId), `p:${processId}`));
    },
    async setStatus(userId, status) {
      await bounded(
        redis
          .multi()
          .hset(key(userId), 'status', status)
          .pexpire(key(userId), ttlMs * 2)
          .exec(),
      );
    },
    async read(userIds) {
      const pipeline = redis.pipeline();
      for (const id of userIds) pipeline.hgetall(key(id));
      const results = (await bounded(pipeline.exec())) ?? [];
      return results.map(([, fields]) => {
        const hash = (fields ?? {}) as Record<string, string>;
        const until = Math.max(
          0,
          ...Object.entries(hash)
            .filter(([f]) => f.startsWith('p:'))
            .map(([, v]) => Number(v)),
        );
        return { until, status: (hash.status as ChosenStatus | undefined) ?? 'ONLINE' };
      });
    },
  };
}

/** One process, no Redis: the same claims in a Map. */
function memoryStore(): PresenceStore {
  const users = new Map<string, { until: number; status: ChosenStatus }>();
  const entry = (id: string) => users.get(id) ?? users.set(id, { until: 0, status: 'ONLINE' }).get(id)!;
  return {
    async hold(userId, until) {
      entry(userId).until = until;
    },
    async release(userId) {
      entry(userId).until = 0;
    },
    async setStatus(userId, status) {
      entry(userId).status = status;
    },
    async read(userIds) {
      return userIds.map((id) => ({ ...(users.get(id) ?? { until: 0, status: 'ONLINE' as const }) }));
    },
  };
}

/**
 * Presence (DESIGN §1.7: ephemeral, best effort). A user is online while at
 * least one of their sockets is open on any server process; the process says
 * so in the store and keeps saying it with a heartbeat. Changes are published
 * on the user's presence topic; subscribers re-read a user whose claim is
 * about to lapse, which is how a crashed process's users go offline.
 */
export class Presence {
  private readonly processId = randomUUID();
  private readonly local = new Map<string, number>(); // userId -> open sockets here
  private readonly store: PresenceStore;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(
    private readonly prisma: PrismaClient,
    private readonly pubsub: ParleyPubSub,
    private readonly log: Logger,
    /** How long a claim lasts without a heartbeat; heartbeats come at a third of it. */
    private readonly ttlMs = 30_000,
  ) {
    this.store = pubsub.redis ? redisStore(pubsub.redis, pubsub.prefix, this.processId, ttlMs) : memoryStore();
    this.heartbeat = setInterval(() => void this.refresh(), Math.max(1000, Math.floor(ttlMs / 3)));
    this.heartbeat.unref();
  }

  /** A socket of this user opened on this process. */
  connected(userId: string): Promise<void> {
    return this.track(this.opened(userId));
  }

  /** A socket of this user closed on this process. */
  disconnected(userId: string): Promise<void> {
    return this.track(this.closed(userId));
  }

  private track<T>(work: Promise<T>): Promise<T> {
    this.inFlight.add(work);
    return work.finally(() => this.inFlight.delete(work));
  }

  private async opened(userId: string): Promise<void> {
    const count = (this.local.get(userId) ?? 0) + 1;
    this.local.set(userId, count);
    if (count > 1) return;
    await this.store.hold(userId, Date.now() + this.ttlMs);
    await this.announce(userId);
  }

  private async closed(userId: string): Promise<void> {
    const count = (this.local.get(userId) ?? 1) - 1;
    if (count > 0) {
      this.local.set(userId, count);
      return;
    }
    this.local.delete(userId);
    await this.store.release(userId);
    const [state] = await this.states([userId]);
    if (state?.status === 'OFFLINE') {
      await this.prisma.user.update({ where: { id: userId }, data: { lastSeenAt: new Date() } }).catch(() => {});
    }
    await this.announce(userId);
  }

  async setStatus(userId: string, status: ChosenStatus): Promise<PresenceState> {
    await this.store.setStatus(userId, status);
    return this.announce(userId);
  }

  /** Current states, in the order of `userIds`. */
  async states(userIds: string[]): Promise<PresenceState[]> {
    const now = Date.now();
    const claims = await this.store.read(userIds);
    const offline = userIds.filter((_, i) => claims[i]!.until <= now);
    const seen = offline.length
      ? await this.prisma.user.findMany({ where: { id: { in: offline } }, select: { id: true, lastSeenAt: true } })
      : [];
    return userIds.map((userId, i) => {
      const online = claims[i]!.until > now;
      const lastSeenAt = seen.find((u) => u.id === userId)?.lastSeenAt ?? null;
      return { userId, status: online ? claims[i]!.status : 'OFFLINE', lastSeenAt: online ? null : (lastSeenAt?.toISOString() ?? null) };
    });
  }

  /**
   * The users' states now, then every change: announced changes, and users
   * whose claim lapsed without an announcement (their process died).
   */
  stream(userIds: string[]): AsyncIterable<PresenceState> {
    return new Repeater<PresenceState>(async (push, stop) => {
      const current = new Map<string, PresenceStatus>();
      const timers = new Map<string, NodeJS.Timeout>();
      const check = async (userId: string) => {
        const [state] = await this.states([userId]);
        if (state) await deliver(state);
      };
      const deliver = async (state: PresenceState) => {
        clearTimeout(timers.get(state.userId));
        if (state.status !== 'OFFLINE') {
          // Re-read when the claim could lapse; a live process will have renewed it.
          const [claim] = await this.store.read([state.userId]);
          const wait = Math.max(0, (claim?.until ?? 0) - Date.now()) + 100;
          timers.set(
            state.userId,
            setTimeout(() => void check(state.userId), wait),
          );
        }
        if (current.get(state.userId) === state.status) return;
        current.set(state.userId, state.status);
        await push(state);
      };
      const unlisten = await Promise.all(userIds.map((id) => this.pubsub.listen(`presence:${id}`, (state) => void deliver(state))));
      stop.then(() => {
        unlisten.forEach((u) => u());
        timers.forEach((t) => clearTimeout(t));
      });
      for (const state of await this.states(userIds)) await deliver(state);
      await stop;
    });
  }

  /** Lets updates in flight finish, then withdraws this process's claims (its users reconnect elsewhere). */
  async close(): Promise<void> {
    clearInterval(this.heartbeat);
    await Promise.allSettled([...this.inFlight]);
    await Promise.all([...this.local.keys()].map((id) => this.store.release(id).catch(() => {})));
    this.local.clear();
  }

  private async announce(userId: string): Promise<PresenceState> {
    const [state] = await this.states([userId]);
    await bounded(this.pubsub.publish(`presence:${userId}`, state!)).catch((error: unknown) => {
      this.log.warn({ err: error, userId }, 'presence publish failed');
    });
    return state!;
  }

  private async refresh(): Promise<void> {
    const until = Date.now() + this.ttlMs;
    for (const userId of this.local.keys()) {
      await this.store.hold(userId, until).catch((error: unknown) => this.log.warn({ err: error }, 'presence heartbeat failed'));
    }
  }
}
