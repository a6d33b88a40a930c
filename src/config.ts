import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { StartupError } from './startup-error.ts';

/**
 * Runtime configuration. Every value has an embedded default so `npm start`
 * needs no environment: PGlite in `dataDir`, in-process pub/sub.
 */
export interface Config {
  /** HTTP port; 0 picks a free one (tests). */
  port: number;
  host: string;
  /**
   * Which proxies in front may say who the client is (X-Forwarded-For): empty
   * trusts none; a hop count; or addresses, CIDR ranges, `loopback`,
   * `linklocal`, `uniquelocal` (see README, TRUST_PROXY).
   */
  trustProxy: string;
  /** PostgreSQL URL; null = embedded PGlite stored under `dataDir`. */
  databaseUrl: string | null;
  /** Connection pool size for a real PostgreSQL (PGlite always uses 1). */
  databasePoolSize: number;
  /** Prepare statements once per connection (off for poolers that cannot keep them, e.g. PgBouncer before 1.21 in transaction mode). */
  databasePreparedStatements: boolean;
  /** Redis URL; null = in-process pub/sub (single process only). */
  redisUrl: string | null;
  /** Prefix for every Redis key and channel, so several deployments or test runs share one Redis. */
  redisPrefix: string;
  /** Directory for embedded data (PGlite files, generated JWT secret). */
  dataDir: string;
  /** HMAC secret for access tokens. */
  jwtSecret: string;
  /** Access token lifetime in seconds (short: clients renew it with their refresh token). */
  accessTokenTtlSeconds: number;
  /** A session's idle expiry in days: each refresh moves it this far ahead. */
  refreshTokenTtlDays: number;
  /** A session's absolute lifetime in days: refreshes never move its expiry past createdAt + this. */
  sessionMaxDays: number;
  /** scrypt cost as log2(N) for new password hashes. */
  passwordHashCost: number;
  /** How long a process may reuse a loaded viewer; changes evict it at once through pub/sub. */
  viewerCacheMs: number;
  /** How long a process's claim that a user is online lasts without a heartbeat (a third of it). */
  presenceTtlMs: number;
  /** Days a channel log entry is kept for replays (0 = for ever), and how often each process prunes. */
  channelLogRetentionDays: number;
  channelLogPruneIntervalMs: number;
  /** Days a soft-deleted message is kept before it is deleted for good (0 = for ever), and how often the retention job runs. */
  deletedMessageRetentionDays: number;
  messageRetentionIntervalMs: number;
  /** Exports (channel and organization): hours a finished file stays downloadable, and exports one user may have pending or running at once. */
  exportTtlHours: number;
  exportMaxActivePerUser: number;
  limits: {
    /** Longest message body, in characters, after trimming. */
    messageBodyMax: number;
    /** Largest page any connection returns; larger requests are refused. */
    pageSizeMax: number;
  };
  /** Bounds on graphql-ws sockets (see README, WS_* variables). */
  websocket: WebSocketLimits;
  /** How long `stop()` lets in-flight requests and socket close handshakes finish before cutting connections. */
  shutdownGraceMs: number;
  /** Largest HTTP request body in bytes, by its Content-Length (larger: 413). */
  httpMaxBodyBytes: number;
  /**
   * How long an idle HTTP keep-alive connection stays open. Longer than the
   * idle timeout of a load balancer in front, so the balancer is the side
   * that closes idle connections and never reuses one this server just closed.
   */
  httpKeepAliveTimeoutMs: number;
  /** Log level for pino: fatal, error, warn, info, debug, trace, silent. */
  logLevel: string;
  /**
   * Production mode (PARLEY_PRODUCTION, or NODE_ENV=production): GraphiQL and
   * introspection off unless enabled, field suggestions blocked, HSTS.
   */
  production: boolean;
  /** Serve GraphiQL on GET /graphql (default: not in production). */
  graphiql: boolean;
  /** Answer introspection queries (default: not in production); field suggestions in errors go with it. */
  introspection: boolean;
  /** Trusted documents (see README, TRUSTED_DOCUMENTS): null = off, in every mode. */
  trustedDocuments: TrustedDocumentsConfig | null;
  /** GET /metrics in Prometheus' format (see README, METRICS). */
  metrics: MetricsConfig;
  /** The server's address as clients reach it, e.g. https://chat.example.com, for file URLs; empty: URLs are paths (`/files/...`). */
  publicUrl: string;
  /** File uploads (see README, UPLOAD_* and FILE_* variables). */
  uploads: UploadLimits;
  /** Where attachment files are kept (see README, FILE_STORAGE). */
  storage: StorageConfig;
  /** Rate limits (see README, RATE_LIMIT* variables). */
  rateLimits: RateLimitConfig;
}

export interface UploadLimits {
  /** Largest file, in bytes; refused while streaming, before the rest is read. */
  maxFileBytes: number;
  /** Files one multipart request may carry. */
  maxFilesPerRequest: number;
  /** Largest non-file form field (the `operations` and `map` JSON), in bytes. */
  maxFieldBytes: number;
  /** Largest header block of one multipart part, in bytes. */
  maxPartHeaderBytes: number;
  /** Largest image, in pixels (width × height); larger ones are refused before decoding (decompression bombs). */
  maxImagePixels: number;
  /** Total bytes an organization's files may take in storage, all variants; 0 = no limit. */
  organizationQuotaBytes: number;
  /** Hours an upload may stay unattached before the cleanup job deletes it. */
  unattachedTtlHours: number;
  /** How long a download URL works, in seconds. */
  urlTtlSeconds: number;
  /** How often each process runs the cleanup job. */
  cleanupIntervalMs: number;
}

export type StorageConfig =
  | { driver: 'fs'; dir: string }
  | {
      driver: 's3';
      bucket: string;
      region: string;
      /** For S3-compatible servers (MinIO, Ceph, R2); null for AWS itself. */
      endpoint: string | null;
      forcePathStyle: boolean;
      /** Null: the SDK's default credential chain (environment, profile, instance role). */
      accessKeyId: string | null;
      secretAccessKey: string | null;
      /** Prefix for every object key, so several deployments share a bucket. */
      prefix: string;
    };

export interface TrustedDocumentsConfig {
  /** Path of the manifest (codegen's persisted-documents.json: document id → document text), read at start. */
  manifest: string;
  /** Refuse every document that is not in the manifest; off, clients may still send any document. */
  only: boolean;
}

export interface MetricsConfig {
  enabled: boolean;
  /** Serve /metrics on this port only (bound to `host`), instead of on the main port; null: the main port. */
  port: number | null;
}

export interface WebSocketLimits {
  /** Milliseconds a new socket has to send `connection_init`; then it is closed with 4408. 0 disables. */
  connectionInitTimeoutMs: number;
  /** Largest incoming WebSocket message in bytes; a larger one closes the socket with 1009. */
  maxPayloadBytes: number;
  /**
   * Operations one socket may run at once: subscriptions, and queries or
   * mutations still executing. One more is refused with RATE_LIMITED.
   */
  maxSubscriptionsPerSocket: number;
  /** Sockets one user may hold open on one process; one more is closed with 4429. */
  maxSocketsPerUser: number;
  /**
   * Milliseconds between WebSocket pings; a socket that has not answered a
   * ping by the next one is dropped (half-open). 0 disables.
   */
  pingIntervalMs: number;
  /**
   * Unsent bytes a socket may queue; past this a client that reads too slowly
   * is closed with 1013 and resumes from the log when it resubscribes.
   */
  maxBufferedBytes: number;
}

/** Used when the environment does not set a WS_* variable (exported so tests can change one limit). */
export const websocketDefaults: WebSocketLimits = {
  connectionInitTimeoutMs: 5000,
  maxPayloadBytes: 64 * 1024,
  maxSubscriptionsPerSocket: 100,
  maxSocketsPerUser: 20,
  // Well below the 60 s idle timeout common to load balancers and proxies.
  pingIntervalMs: 15_000,
  maxBufferedBytes: 4 * 1024 * 1024,
};

/** So many points per so many seconds; 0 points: no limit. */
export interface Rate {
  points: number;
  seconds: number;
}

/** The per-principal buckets of mutations (see WRITE_LIMIT_OF). */
export type WriteLimit = 'sendMessage' | 'reactions' | 'uploads' | 'edits' | 'signals' | 'mutations';

export interface RateLimitConfig {
  /** RATE_LIMITS=off turns every limit below off (slow mode, a channel's own setting, stays). */
  enabled: boolean;
  /** Mutations per user (per API key for integrations, per client address when signed out). */
  writes: Record<WriteLimit, Rate>;
  signIn: {
    /** Failed sign-ins for one account from one address before the back-off starts. */
    freeFailures: number;
    /** Failed sign-ins for one account from all addresses together before its back-off starts. */
    accountFreeFailures: number;
    /** Failed sign-ins from one address, any accounts (password spraying); over it the address waits out the window. */
    ipFailures: Rate;
    /** The back-off doubles from 1 s with each further failure, up to this. */
    maxBackoffSeconds: number;
  };
  websocket: {
    /** WebSocket connection attempts per client address. */
    connections: Rate;
    /** Refused `connection_init`s (bad or missing token) per client address; over it, the address's connections are refused. */
    initFailures: Rate;
    /** Operations started per socket. */
    subscribes: Rate;
  };
}

/** Used where the environment sets no RATE_LIMIT_* variable (exported for tests). */
export const rateLimitDefaults: RateLimitConfig = {
  enabled: true,
  writes: {
    sendMessage: { points: 30, seconds: 10 },
    reactions: { points: 60, seconds: 10 },
    uploads: { points: 30, seconds: 60 },
    edits: { points: 30, seconds: 60 },
    // Typing, presence and receipts: a client sends these on its own as the user reads and types.
    signals: { points: 300, seconds: 60 },
    mutations: { points: 120, seconds: 60 },
  },
  signIn: { freeFailures: 5, accountFreeFailures: 20, ipFailures: { points: 100, seconds: 3600 }, maxBackoffSeconds: 900 },
  websocket: {
    connections: { points: 30, seconds: 10 },
    initFailures: { points: 10, seconds: 60 },
    subscribes: { points: 20, seconds: 1 },
  },
};

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, fallback: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) throw new StartupError(`${name} must be an integer ≥ ${min}, got "${raw}"`);
  return value;
}

/** A `true`/`false` variable; unset or empty: `fallback`. */
function flag(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (raw !== 'true' && raw !== 'false') throw new StartupError(`${name} must be "true" or "false", got "${raw}"`);
  return raw === 'true';
}

/** The embedded JWT secret is created once and kept beside the data so tokens survive restarts. */
function embeddedSecret(dataDir: string): string {
  const file = join(dataDir, 'jwt-secret');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(dataDir, { recursive: true });
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(file, secret, { mode: 0o600 });
  return secret;
}

/** `METRICS` (on, off) and `METRICS_PORT`. */
function metricsConfig(env: Env): MetricsConfig {
  const raw = (env.METRICS ?? 'on').toLowerCase();
  if (raw !== 'on' && raw !== 'off') throw new StartupError(`METRICS must be "on" or "off", got "${env.METRICS}"`);
  const port = env.METRICS_PORT === undefined || env.METRICS_PORT === '' ? null : int(env, 'METRICS_PORT', 0, 1);
  return { enabled: raw === 'on', port };
}

/** `RATE_LIMIT_…=<points>/<n><s|m|h>`, e.g. `30/10s`; `0` turns that limit off. */
function rate(env: Env, name: string, fallback: Rate): Rate {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (raw.trim() === '0') return { points: 0, seconds: fallback.seconds };
  const match = /^\s*(\d+)\s*\/\s*(\d*)\s*([smh])\s*$/.exec(raw);
  const points = Number(match?.[1]);
  const seconds = Number(match?.[2] || 1) * { s: 1, m: 60, h: 3600 }[(match?.[3] ?? 's') as 's' | 'm' | 'h'];
  if (!match || !(points > 0) || !(seconds > 0)) {
    throw new StartupError(`${name} must be like "30/10s", "5/m" or "100/1h" (or 0 for no limit), got "${raw}"`);
  }
  return { points, seconds };
}

/** `RATE_LIMITS` (on, off) and each limit's own variable. */
function rateLimitConfig(env: Env): RateLimitConfig {
  const d = rateLimitDefaults;
  const raw = (env.RATE_LIMITS ?? 'on').toLowerCase();
  if (raw !== 'on' && raw !== 'off') throw new StartupError(`RATE_LIMITS must be "on" or "off", got "${env.RATE_LIMITS}"`);
  return {
    enabled: raw === 'on',
    writes: {
      sendMessage: rate(env, 'RATE_LIMIT_SEND_MESSAGE', d.writes.sendMessage),
      reactions: rate(env, 'RATE_LIMIT_REACTIONS', d.writes.reactions),
      uploads: rate(env, 'RATE_LIMIT_UPLOADS', d.writes.uploads),
      edits: rate(env, 'RATE_LIMIT_EDITS', d.writes.edits),
      signals: rate(env, 'RATE_LIMIT_SIGNALS', d.writes.signals),
      mutations: rate(env, 'RATE_LIMIT_MUTATIONS', d.writes.mutations),
    },
    signIn: {
      freeFailures: int(env, 'RATE_LIMIT_SIGN_IN_FREE_FAILURES', d.signIn.freeFailures, 1),
      accountFreeFailures: int(env, 'RATE_LIMIT_SIGN_IN_ACCOUNT_FREE_FAILURES', d.signIn.accountFreeFailures, 1),
      ipFailures: rate(env, 'RATE_LIMIT_SIGN_IN_IP_FAILURES', d.signIn.ipFailures),
      maxBackoffSeconds: int(env, 'RATE_LIMIT_SIGN_IN_MAX_BACKOFF_SECONDS', d.signIn.maxBackoffSeconds, 1),
    },
    websocket: {
      connections: rate(env, 'RATE_LIMIT_WS_CONNECTIONS', d.websocket.connections),
      initFailures: rate(env, 'RATE_LIMIT_WS_INIT_FAILURES', d.websocket.initFailures),
      subscribes: rate(env, 'RATE_LIMIT_WS_SUBSCRIBES', d.websocket.subscribes),
    },
  };
}

/**
 * `TRUSTED_DOCUMENTS` and `TRUSTED_DOCUMENTS_ONLY`. Off unless set, also in
 * production: GraphiQL and third-party integrations send documents of their own.
 */
function trustedDocumentsConfig(env: Env): TrustedDocumentsConfig | null {
  const manifest = env.TRUSTED_DOCUMENTS || null;
  const only = flag(env, 'TRUSTED_DOCUMENTS_ONLY', false);
  if (only && !manifest) throw new StartupError('TRUSTED_DOCUMENTS_ONLY=true needs TRUSTED_DOCUMENTS, the path of the manifest');
  return manifest ? { manifest: resolve(manifest), only } : null;
}

/** `FILE_STORAGE` (fs, s3) and the variables of the chosen driver. */
function storageConfig(env: Env, dataDir: string): StorageConfig {
  const driver = (env.FILE_STORAGE ?? 'fs').toLowerCase();
  if (driver === 'fs') return { driver, dir: resolve(env.FILE_STORAGE_DIR || join(dataDir, 'files')) };
  if (driver !== 's3') throw new StartupError(`FILE_STORAGE must be "fs" or "s3", got "${env.FILE_STORAGE}"`);
  const bucket = env.S3_BUCKET;
  if (!bucket) throw new StartupError('FILE_STORAGE=s3 needs S3_BUCKET');
  return {
    driver,
    bucket,
    region: env.S3_REGION || 'us-east-1',
    endpoint: env.S3_ENDPOINT || null,
    forcePathStyle: env.S3_FORCE_PATH_STYLE === 'true',
    accessKeyId: env.S3_ACCESS_KEY_ID || null,
    secretAccessKey: env.S3_SECRET_ACCESS_KEY || null,
    prefix: env.S3_PREFIX ?? '',
  };
}

/** Reads configuration from the environment (see README for each variable). */
export function loadConfig(env: Env = process.env, overrides: Partial<Config> = {}): Config {
  const dataDir = resolve(overrides.dataDir ?? env.PARLEY_DATA_DIR ?? '.parley');
  const databaseUrl = overrides.databaseUrl !== undefined ? overrides.databaseUrl : env.DATABASE_URL || null;
  const jwtSecret = overrides.jwtSecret ?? env.JWT_SECRET ?? embeddedSecret(dataDir);
  const production = flag(env, 'PARLEY_PRODUCTION', env.NODE_ENV === 'production');
  if (jwtSecret.length < 16) throw new StartupError('JWT_SECRET must be at least 16 characters');
  return {
    port: int(env, 'PORT', 4000),
    host: env.HOST ?? '0.0.0.0',
    trustProxy: env.TRUST_PROXY ?? '',
    databaseUrl,
    databasePoolSize: int(env, 'DATABASE_POOL_SIZE', 10),
    databasePreparedStatements: env.DATABASE_PREPARED_STATEMENTS !== 'false',
    redisUrl: overrides.redisUrl !== undefined ? overrides.redisUrl : env.REDIS_URL || null,
    redisPrefix: env.REDIS_PREFIX ?? 'parley:',
    dataDir,
    jwtSecret,
    accessTokenTtlSeconds: int(env, 'ACCESS_TOKEN_TTL_SECONDS', 900, 1),
    refreshTokenTtlDays: int(env, 'REFRESH_TOKEN_TTL_DAYS', 30, 1),
    sessionMaxDays: int(env, 'SESSION_MAX_DAYS', 90, 1),
    passwordHashCost: int(env, 'PASSWORD_HASH_COST', 17),
    viewerCacheMs: int(env, 'VIEWER_CACHE_MS', 5000),
    presenceTtlMs: int(env, 'PRESENCE_TTL_MS', 30_000),
    channelLogRetentionDays: int(env, 'CHANNEL_LOG_RETENTION_DAYS', 30),
    channelLogPruneIntervalMs: int(env, 'CHANNEL_LOG_PRUNE_INTERVAL_MS', 3_600_000, 1000),
    deletedMessageRetentionDays: int(env, 'DELETED_MESSAGE_RETENTION_DAYS', 90),
    messageRetentionIntervalMs: int(env, 'MESSAGE_RETENTION_INTERVAL_MS', 3_600_000, 1000),
    exportTtlHours: int(env, 'EXPORT_TTL_HOURS', 24, 1),
    exportMaxActivePerUser: int(env, 'EXPORT_MAX_ACTIVE_PER_USER', 3, 1),
    limits: {
      messageBodyMax: int(env, 'MESSAGE_BODY_MAX', 5000),
      pageSizeMax: int(env, 'PAGE_SIZE_MAX', 100),
    },
    websocket: {
      connectionInitTimeoutMs: int(env, 'WS_CONNECTION_INIT_TIMEOUT_MS', websocketDefaults.connectionInitTimeoutMs),
      maxPayloadBytes: int(env, 'WS_MAX_PAYLOAD_BYTES', websocketDefaults.maxPayloadBytes, 1),
      maxSubscriptionsPerSocket: int(env, 'WS_MAX_SUBSCRIPTIONS_PER_SOCKET', websocketDefaults.maxSubscriptionsPerSocket, 1),
      maxSocketsPerUser: int(env, 'WS_MAX_SOCKETS_PER_USER', websocketDefaults.maxSocketsPerUser, 1),
      pingIntervalMs: int(env, 'WS_PING_INTERVAL_MS', websocketDefaults.pingIntervalMs),
      maxBufferedBytes: int(env, 'WS_MAX_BUFFERED_BYTES', websocketDefaults.maxBufferedBytes, 1),
    },
    shutdownGraceMs: int(env, 'SHUTDOWN_GRACE_MS', 10_000),
    httpMaxBodyBytes: int(env, 'HTTP_MAX_BODY_BYTES', 1024 * 1024, 1),
    httpKeepAliveTimeoutMs: int(env, 'HTTP_KEEP_ALIVE_TIMEOUT_MS', 65_000, 1),
    logLevel: env.LOG_LEVEL ?? 'info',
    production,
    graphiql: flag(env, 'GRAPHIQL', !production),
    introspection: flag(env, 'INTROSPECTION', !production),
    trustedDocuments: trustedDocumentsConfig(env),
    metrics: metricsConfig(env),
    publicUrl: (env.PUBLIC_URL ?? '').replace(/\/+$/, ''),
    uploads: {
      maxFileBytes: int(env, 'UPLOAD_MAX_FILE_BYTES', 10 * 1024 * 1024, 1),
      maxFilesPerRequest: int(env, 'UPLOAD_MAX_FILES', 5, 1),
      maxFieldBytes: int(env, 'UPLOAD_MAX_FIELD_BYTES', 64 * 1024, 1),
      maxPartHeaderBytes: int(env, 'UPLOAD_MAX_PART_HEADER_BYTES', 16 * 1024, 1),
      maxImagePixels: int(env, 'IMAGE_MAX_PIXELS', 50_000_000, 1),
      organizationQuotaBytes: int(env, 'ORG_STORAGE_QUOTA_BYTES', 10 * 1024 ** 3),
      unattachedTtlHours: int(env, 'UPLOAD_UNATTACHED_TTL_HOURS', 24, 1),
      urlTtlSeconds: int(env, 'FILE_URL_TTL_SECONDS', 300, 10),
      cleanupIntervalMs: int(env, 'FILE_CLEANUP_INTERVAL_MS', 600_000, 1000),
    },
    storage: storageConfig(env, dataDir),
    rateLimits: rateLimitConfig(env),
    ...overrides,
  };
}
