import { PubSub, type PubSubEngine } from 'graphql-subscriptions';
import { RedisPubSub } from 'graphql-redis-subscriptions';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Export, Notification, SessionEndReason } from '../generated/prisma/client.ts';
import type { ChannelEvent, ItemStatus } from './events.ts';

/**
 * Topic map: topic name -> payload. Topics are per channel or per user
 * (DESIGN §3.7); the full payload travels so fan-out needs no queries.
 */
export interface Topics {
  /** A committed channel log entry; `seq` orders it. */
  [topic: `channel:${string}`]: ChannelEvent;
  /**
   * A user started or stopped typing in a channel: ephemeral, never logged
   * (DESIGN §1.7). It carries the display name so subscribers need no query.
   */
  [topic: `typing:${string}`]: {
    channelId: string;
    userId: string;
    displayName: string;
    typing: boolean;
    /** ISO time a `typing: true` lapses unless refreshed; null for a stop. */
    expiresAt: string | null;
  };
  /** Signals for one user's own stream (viewerEvents): channels they joined or left. */
  [topic: `user:${string}`]: UserSignal;
  /** A user's presence changed (ephemeral). */
  [topic: `presence:${string}`]: PresenceState;
  /** A user's role or active state changed: every process drops its cached viewer. */
  'users:changed': { userId: string };
  /**
   * Sessions of one user ended (logout, revocation, password change, refresh
   * token reuse, deactivation): every process drops them from its session
   * cache and closes their sockets.
   */
  'sessions:ended': { userId: string; sessionIds: string[]; reason: SessionEndReason };
  /** An organization's custom field definitions of an entity changed: every process drops its cached copy. */
  'customFields:changed': { organizationId: string; entity: string };
}

export type PresenceStatus = 'ONLINE' | 'AWAY' | 'BUSY' | 'OFFLINE';

/** A user's presence as it travels and as the API shows it. */
export interface PresenceState {
  userId: string;
  status: PresenceStatus;
  /** When the user's last socket closed; null while online or never seen. */
  lastSeenAt: string | null;
}

/** What a user's own topic carries: membership changes, notifications, and updates of their requests and tickets. */
export type UserSignal =
  | { type: 'CHANNEL_ADDED' | 'CHANNEL_REMOVED'; channelId: string; reason?: string }
  | { type: 'NOTIFICATION'; notification: NotificationSnapshot }
  | { type: 'CLIENT_REQUEST_UPDATED'; requestId: string; status: ItemStatus<'CLIENT_REQUEST'> }
  | { type: 'SUPPORT_TICKET_UPDATED'; ticketId: string; status: ItemStatus<'SUPPORT_TICKET'> }
  | { type: 'EXPORT_UPDATED'; export: ExportSnapshot };

/** An export as it travels to its requester (status and progress): the row with dates as ISO strings. */
export type ExportSnapshot = Omit<Export, 'createdAt' | 'startedAt' | 'finishedAt' | 'expiresAt'> & {
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  expiresAt: string | null;
};

/** A notification as it travels: the row with dates as ISO strings, so no query is needed to show it. */
export type NotificationSnapshot = Omit<Notification, 'readAt' | 'createdAt'> & { readAt: string | null; createdAt: string };

/** A typed pub/sub facade over Redis or an in-process emitter. */
export interface ParleyPubSub {
  publish<T extends keyof Topics>(topic: T, payload: Topics[T]): Promise<void>;
  subscribe<T extends keyof Topics>(topic: T): AsyncIterableIterator<Topics[T]>;
  /**
   * Calls `handler` for every message on `topic`. Resolves once the
   * subscription is active (with Redis: acknowledged by the server), so a
   * caller can then read state knowing nothing published later is missed.
   * Returns the function that ends the subscription.
   */
  listen<T extends keyof Topics>(topic: T, handler: (payload: Topics[T]) => void): Promise<() => void>;
  /**
   * Calls `handler` each time the subscriber connection is back after a loss
   * (never for in-process pub/sub): whatever was published meanwhile is gone,
   * so listeners catch up from the log. Returns the function that stops it.
   */
  onReconnect(handler: () => void): () => void;
  /**
   * A Redis connection for plain commands (ephemeral state: typing throttles,
   * presence), or null for in-process pub/sub. Keys must start with `prefix`.
   */
  readonly redis: Redis | null;
  /** The deployment's key prefix (`REDIS_PREFIX`), '' in-process. */
  readonly prefix: string;
  /** 'ready' when every Redis connection is, else what each is doing ('ready' in-process). */
  connectionStatus(): string;
  close(): Promise<void>;
  /**
   * Drops the Redis connections at once, failing the commands still queued
   * on them: what ends a `close()` that an unreachable Redis never answers
   * (ioredis queues QUIT behind them while it reconnects). Absent in-process.
   */
  disconnect?(): void;
}

/** Told of each reconnection attempt of a Redis connection (metrics). */
export interface PubSubCounters {
  redisReconnects: number;
}

// Topic names carry the prefix themselves: ioredis' keyPrefix does not apply
// to pub/sub channels.
function wrap(
  engine: PubSubEngine,
  prefix: string,
  close: () => Promise<void>,
  onReconnect: ParleyPubSub['onReconnect'] = () => () => {},
  redis: Redis | null = null,
  connectionStatus: ParleyPubSub['connectionStatus'] = () => 'ready',
): ParleyPubSub {
  return {
    onReconnect,
    redis,
    prefix,
    connectionStatus,
    publish: (topic, payload) => engine.publish(prefix + topic, payload),
    subscribe: (topic) => engine.asyncIterableIterator(prefix + topic),
    listen: async (topic, handler) => {
      const id = await engine.subscribe(prefix + topic, handler, {});
      return () => engine.unsubscribe(id);
    },
    close,
  };
}

/** Redis when a URL is given (many processes share it), otherwise in-process. */
export function createPubSub(redisUrl: string | null, prefix: string, log?: Logger, counters?: PubSubCounters): ParleyPubSub {
  if (!redisUrl) return wrap(new PubSub(), '', async () => {});
  const options = { maxRetriesPerRequest: null };
  const publisher = new Redis(redisUrl, options);
  const subscriber = new Redis(redisUrl, options);
  // ioredis reconnects by itself; without a listener its errors would be
  // reported as unhandled 'error' events.
  for (const client of [publisher, subscriber]) {
    client.on('error', (error: Error) => log?.warn({ err: error }, 'redis connection error; reconnecting'));
    if (counters) client.on('reconnecting', () => void counters.redisReconnects++);
  }
  const engine = new RedisPubSub({ publisher, subscriber });
  // 'ready' after the first one means the subscriber reconnected (ioredis has
  // resubscribed by then): messages published while it was away are lost.
  const reconnectHandlers = new Set<() => void>();
  let connectedBefore = false;
  subscriber.on('ready', () => {
    if (connectedBefore) {
      log?.info('redis subscriber reconnected; live streams catch up from the log');
      for (const handler of reconnectHandlers) handler();
    }
    connectedBefore = true;
  });
  const onReconnect = (handler: () => void) => {
    reconnectHandlers.add(handler);
    return () => void reconnectHandlers.delete(handler);
  };
  const pubsub = wrap(
    engine,
    prefix,
    async () => {
      // Sends still in flight may find the connection closing; they are
      // repaired by catch-up like any failed publish.
      await engine.close().catch(() => {});
    },
    onReconnect,
    publisher, // not in subscriber mode, so it takes commands
    () =>
      publisher.status === 'ready' && subscriber.status === 'ready'
        ? 'ready'
        : `publisher ${publisher.status}, subscriber ${subscriber.status}`,
  );
  pubsub.disconnect = () => {
    publisher.disconnect();
    subscriber.disconnect();
  };
  return pubsub;
}
