import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { DomainError } from './errors.ts';
import type { Viewer } from './viewer.ts';
import type { Rate, RateLimitConfig, WriteLimit } from '../config.ts';

export type { WriteLimit };

/**
 * The bucket of each mutation that has one of its own; every other mutation
 * counts against `mutations`. `login` has none: sign-in has its own limits,
 * counted by failures (see signIn), so a busy office behind one address can
 * still sign in.
 */
export const WRITE_LIMIT_OF: Readonly<Record<string, WriteLimit | null>> = {
  sendMessage: 'sendMessage',
  addReaction: 'reactions',
  removeReaction: 'reactions',
  uploadFile: 'uploads',
  addClientRequestAttachments: 'uploads',
  editMessage: 'edits',
  setTyping: 'signals',
  setPresence: 'signals',
  markChannelRead: 'signals',
  markChannelDelivered: 'signals',
  markChannelUnread: 'signals',
  markNotificationsRead: 'signals',
  login: null,
};

/** Every limit that refuses, as metrics label refusals and errors name them (`extensions.limit`). */
export type LimitName = WriteLimit | 'signIn' | 'slowMode' | 'wsConnections' | 'wsInitFailures' | 'wsSubscribes';

/** Who a write counts against. */
export interface Principal {
  viewer: Pick<Viewer, 'id'> | null;
  integration: { apiKeyId: string } | null;
  client: { ip: string };
}

/** RATE_LIMITED, with when to retry (`extensions.retryAfterMs`); HTTP answers it with 429 and Retry-After. */
export function rateLimited(limit: LimitName, retryAfterMs: number, message: string): DomainError {
  const ms = Math.max(1, Math.ceil(retryAfterMs));
  return new DomainError('RATE_LIMITED', `${message}; retry in ${Math.ceil(ms / 1000)} s`, { limit, retryAfterMs: ms });
}

const WRITE_MESSAGES: Record<WriteLimit, string> = {
  sendMessage: 'Too many messages',
  reactions: 'Too many reactions',
  uploads: 'Too many uploads',
  edits: 'Too many edits',
  signals: 'Too many typing, presence or receipt updates',
  mutations: 'Too many requests',
};

/**
 * Every rate limit, on rate-limiter-flexible: in Redis when REDIS_URL is set,
 * so a limit holds across processes; in memory otherwise.
 *
 * Redis down: each limiter falls back to an in-memory limiter of the same
 * settings (the library's insurance limiter) at once, without waiting for
 * Redis (no offline queue, a short command timeout). Limits then hold per
 * process instead of across processes: neither open (a Redis outage must not
 * lift sign-in back-off) nor closed (it must not stop every write). Counts
 * made in memory meanwhile are not carried back to Redis.
 */
export class RateLimits {
  /** Told of every refusal (metrics). */
  onRefused: ((limit: LimitName) => void) | null = null;
  private readonly redis: Redis | null;
  private readonly writes: Record<WriteLimit, RateLimiterAbstract | null>;
  private readonly signIn: {
    accountIpFailures: RateLimiterAbstract;
    accountFailures: RateLimiterAbstract;
    ipFailures: RateLimiterAbstract | null;
    lock: RateLimiterAbstract;
  };
  private readonly ws: {
    connections: RateLimiterAbstract | null;
    initFailures: RateLimiterAbstract | null;
    subscribes: RateLimiterAbstract | null;
  };
  private readonly slow: RateLimiterAbstract;

  constructor(
    readonly config: RateLimitConfig,
    redis: { url: string; prefix: string } | null,
    private readonly log: Logger,
  ) {
    this.redis = redis
      ? new Redis(redis.url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 500, connectionName: 'parley-limits' })
      : null;
    // Logged by pub/sub's own connections already; here only kept from being unhandled.
    this.redis?.on('error', (error: Error) => log.debug({ err: error }, 'rate-limit Redis connection error'));
    const prefix = redis ? `${redis.prefix}rl:` : 'rl:';
    const make = (name: string, rate: Rate): RateLimiterAbstract | null =>
      rate.points > 0 ? this.limiter(`${prefix}${name}`, rate.points, rate.seconds) : null;
    const { writes, signIn, websocket } = config;
    this.writes = {
      sendMessage: make('send', writes.sendMessage),
      reactions: make('react', writes.reactions),
      uploads: make('upload', writes.uploads),
      edits: make('edit', writes.edits),
      signals: make('signal', writes.signals),
      mutations: make('mutate', writes.mutations),
    };
    // Failure counts live a day: the back-off keeps growing while an attack goes on.
    const counter = (name: string) => this.limiter(`${prefix}${name}`, Number.MAX_SAFE_INTEGER, 86_400);
    this.signIn = {
      accountIpFailures: counter('signin:fail:acct-ip'),
      accountFailures: counter('signin:fail:acct'),
      ipFailures: make('signin:fail:ip', signIn.ipFailures),
      lock: this.limiter(`${prefix}signin:lock`, 1, 1),
    };
    this.ws = {
      connections: make('ws:conn', websocket.connections),
      initFailures: make('ws:initfail', websocket.initFailures),
      // Per socket, and a socket lives on one process: memory is enough.
      subscribes:
        websocket.subscribes.points > 0
          ? new RateLimiterMemory({ points: websocket.subscribes.points, duration: websocket.subscribes.seconds })
          : null,
    };
    // One point per member and channel, kept for the channel's slow-mode interval (customDuration).
    this.slow = this.limiter(`${prefix}slow`, 1, 1);
  }

  /**
   * Counts a request's mutations against their buckets; throws RATE_LIMITED
   * for the first bucket over its limit. `counts`: how many root fields of
   * each bucket the operation has (aliases count each).
   */
  async write(who: Principal, counts: ReadonlyMap<WriteLimit, number>): Promise<void> {
    if (!this.config.enabled) return;
    const key = who.viewer ? `u:${who.viewer.id}` : who.integration ? `k:${who.integration.apiKeyId}` : `ip:${who.client.ip}`;
    for (const [bucket, points] of counts) {
      const limiter = this.writes[bucket];
      if (!limiter) continue;
      const refused = await refusal(limiter.consume(key, points));
      if (refused) throw this.refuse(bucket, refused.msBeforeNext, WRITE_MESSAGES[bucket]);
    }
  }

  /**
   * Milliseconds until the user may upload again, without counting anything
   * (0: now): asked from a multipart request's headers, so a user out of
   * uploads is refused before the files are read. The upload itself is
   * counted by `write`, like every mutation.
   */
  async uploadWait(userId: string): Promise<number> {
    const limiter = this.writes.uploads;
    if (!this.config.enabled || !limiter) return 0;
    const res = await limiter.get(`u:${userId}`);
    if (!res || res.consumedPoints < limiter.points) return 0;
    this.onRefused?.('uploads');
    return Math.max(res.msBeforeNext, 1);
  }

  /**
   * Throws RATE_LIMITED while an account (or the client's address) must wait
   * before its next sign-in attempt. Asked before the password is checked, and
   * the same for accounts that do not exist, so the answer reveals nothing.
   */
  async assertMaySignIn(account: SignInAccount, ip: string): Promise<void> {
    if (!this.config.enabled) return;
    const keys = signInKeys(account, ip);
    const [accountIp, accountWide, address] = await Promise.all([
      this.signIn.lock.get(keys.accountIp),
      this.signIn.lock.get(keys.account),
      this.signIn.ipFailures?.get(ip) ?? null,
    ]);
    let waitMs = Math.max(lockedFor(accountIp), lockedFor(accountWide));
    if (address && this.signIn.ipFailures && address.consumedPoints >= this.signIn.ipFailures.points) {
      waitMs = Math.max(waitMs, address.msBeforeNext);
    }
    if (waitMs > 0) throw this.refuse('signIn', waitMs, 'Too many failed sign-ins');
  }

  /** Counts a failed sign-in; past the free failures, locks the account (from this address, or everywhere) for a growing time. */
  async signInFailed(account: SignInAccount, ip: string): Promise<void> {
    if (!this.config.enabled) return;
    const keys = signInKeys(account, ip);
    const { freeFailures, accountFreeFailures } = this.config.signIn;
    const [accountIp, accountWide] = await Promise.all([
      this.signIn.accountIpFailures.consume(keys.accountIp),
      this.signIn.accountFailures.consume(keys.account),
      this.signIn.ipFailures ? refusal(this.signIn.ipFailures.consume(ip)) : null,
    ]);
    await Promise.all([
      this.lockAfter(keys.accountIp, accountIp.consumedPoints - freeFailures),
      this.lockAfter(keys.account, accountWide.consumedPoints - accountFreeFailures),
    ]);
  }

  /** A successful sign-in forgets the account's failures (the address's count stays: spraying goes on across accounts). */
  async signInSucceeded(account: SignInAccount, ip: string): Promise<void> {
    if (!this.config.enabled) return;
    const keys = signInKeys(account, ip);
    await Promise.all([
      this.signIn.accountIpFailures.delete(keys.accountIp),
      this.signIn.accountFailures.delete(keys.account),
      this.signIn.lock.delete(keys.accountIp),
    ]);
  }

  /** Milliseconds a new WebSocket from `ip` must wait (counting this attempt), or 0 to accept it. */
  async wsConnection(ip: string): Promise<number> {
    if (!this.config.enabled) return 0;
    const { connections, initFailures } = this.ws;
    const failures = initFailures ? await initFailures.get(ip) : null;
    if (failures && initFailures && failures.consumedPoints >= initFailures.points) {
      this.onRefused?.('wsInitFailures');
      return failures.msBeforeNext;
    }
    const refused = connections ? await refusal(connections.consume(ip)) : null;
    if (!refused) return 0;
    this.onRefused?.('wsConnections');
    return refused.msBeforeNext;
  }

  /** Counts a refused `connection_init` from `ip`. */
  async wsInitFailed(ip: string): Promise<void> {
    if (this.config.enabled && this.ws.initFailures) await refusal(this.ws.initFailures.consume(ip));
  }

  /** Throws RATE_LIMITED when `socketId` starts operations faster than allowed. */
  async wsSubscribe(socketId: string): Promise<void> {
    if (!this.config.enabled || !this.ws.subscribes) return;
    const refused = await refusal(this.ws.subscribes.consume(socketId));
    if (refused) throw this.refuse('wsSubscribes', refused.msBeforeNext, 'Too many operations started on this socket');
  }

  /**
   * Takes the member's turn in a slow-mode channel: throws RATE_LIMITED until
   * `seconds` have passed since their last message there. Returns what gives
   * the turn back, for a send that then fails.
   */
  async slowModeTurn(userId: string, channelId: string, seconds: number): Promise<() => Promise<void>> {
    const key = `${channelId}:${userId}`;
    const refused = await refusal(this.slow.consume(key, 1, { customDuration: seconds }));
    if (refused) throw this.refuse('slowMode', refused.msBeforeNext, `Slow mode: one message every ${seconds} s in this channel`);
    return async () => {
      await this.slow.delete(key).catch(() => {});
    };
  }

  /**
   * Resolves once the Redis connection is up, or after `ms` if it does not
   * come: before it is, every limiter counts in memory, apart from the others.
   */
  async ready(ms = 3000): Promise<void> {
    const redis = this.redis;
    if (!redis || redis.status === 'ready') return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        redis!.off('ready', done);
        resolve();
      }
      redis.once('ready', done);
    });
  }

  async close(): Promise<void> {
    this.redis?.disconnect();
  }

  private refuse(limit: LimitName, retryAfterMs: number, message: string): DomainError {
    this.onRefused?.(limit);
    return rateLimited(limit, retryAfterMs, message);
  }

  /** Locks `key` when it is `over` failures past its free ones: 1 s, 2 s, 4 s, … up to the maximum. */
  private async lockAfter(key: string, over: number): Promise<void> {
    if (over <= 0) return;
    const seconds = Math.min(2 ** Math.min(over - 1, 30), this.config.signIn.maxBackoffSeconds);
    await this.signIn.lock.block(key, seconds);
  }

  private limiter(keyPrefix: string, points: number, duration: number): RateLimiterAbstract {
    if (!this.redis) return new RateLimiterMemory({ keyPrefix, points, duration });
    return new RateLimiterRedis({
      storeClient: this.redis,
      keyPrefix,
      points,
      duration,
      rejectIfRedisNotReady: true,
      insuranceLimiter: new RateLimiterMemory({ keyPrefix, points, duration }),
    });
  }
}

/** The account a sign-in names: found or not, it is counted the same. */
export interface SignInAccount {
  organization: string;
  username: string;
}

/** Keys of fixed size whatever the client typed (hashed), case-folded as people retype names. */
function signInKeys(account: SignInAccount, ip: string) {
  const name = `${account.organization.toLowerCase()}\u0000${account.username.toLowerCase()}`;
  const hashed = createHash('sha256').update(name).digest('base64url').slice(0, 22);
  return { account: `a:${hashed}`, accountIp: `ai:${hashed}:${ip}` };
}

/** A lock set by `block` holds more points than the lock limiter's one. */
function lockedFor(res: RateLimiterRes | null): number {
  return res && res.consumedPoints > 1 ? Math.max(res.msBeforeNext, 0) : 0;
}

/** rate-limiter-flexible rejects with a RateLimiterRes when over the limit, with an Error when the store failed. */
async function refusal(consumed: Promise<RateLimiterRes>): Promise<RateLimiterRes | null> {
  try {
    await consumed;
    return null;
  } catch (error) {
    if (error instanceof RateLimiterRes) return error;
    throw error;
  }
}
