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
  /** Access token lifetime in seconds. */
  tokenTtlSeconds: number;
  /** scrypt cost as log2(N) for new password hashes. */
  passwordHashCost: number;
  /** How long a process may reuse a loaded viewer; changes evict it at once through pub/sub. */
  viewerCacheMs: number;
  /** How long a process's claim that a user is online lasts without a heartbeat (a third of it). */
  presenceTtlMs: number;
  /** Days a channel log entry is kept for replays (0 = for ever), and how often each process prunes. */
  channelLogRetentionDays: number;
  channelLogPruneIntervalMs: number;
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
  /** GET /metrics in Prometheus' format (see README, METRICS). */
  metrics: MetricsConfig;
  /** The server's address as clients reach it, e.g. https://chat.example.com, for file URLs; empty: URLs are paths (`/files/...`). */
  publicUrl: string;
  /** File uploads (see README, UPLOAD_* and FILE_* variables). */
  uploads: UploadLimits;
  /** Where attachment files are kept (see README, FILE_STORAGE). */
  storage: StorageConfig;
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
    tokenTtlSeconds: int(env, 'TOKEN_TTL_SECONDS', 7 * 24 * 3600),
    passwordHashCost: int(env, 'PASSWORD_HASH_COST', 17),
    viewerCacheMs: int(env, 'VIEWER_CACHE_MS', 5000),
    presenceTtlMs: int(env, 'PRESENCE_TTL_MS', 30_000),
    channelLogRetentionDays: int(env, 'CHANNEL_LOG_RETENTION_DAYS', 30),
    channelLogPruneIntervalMs: int(env, 'CHANNEL_LOG_PRUNE_INTERVAL_MS', 3_600_000, 1000),
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
    ...overrides,
  };
}
