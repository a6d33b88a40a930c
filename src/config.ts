import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * Runtime configuration. Every value has an embedded default so `npm start`
 * needs no environment: PGlite in `dataDir`, in-process pub/sub.
 */
export interface Config {
  /** HTTP port; 0 picks a free one (tests). */
  port: number;
  host: string;
  /** PostgreSQL URL; null = embedded PGlite stored under `dataDir`. */
  databaseUrl: string | null;
  /** Connection pool size for a real PostgreSQL (PGlite always uses 1). */
  databasePoolSize: number;
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
  limits: {
    /** Longest message body, in characters, after trimming. */
    messageBodyMax: number;
    /** Largest page any connection returns; larger requests are refused. */
    pageSizeMax: number;
  };
  /** Log level for pino: fatal, error, warn, info, debug, trace, silent. */
  logLevel: string;
  /** Serve GraphiQL on GET /graphql. */
  graphiql: boolean;
}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
  return value;
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

/** Reads configuration from the environment (see README for each variable). */
export function loadConfig(env: Env = process.env, overrides: Partial<Config> = {}): Config {
  const dataDir = resolve(overrides.dataDir ?? env.PARLEY_DATA_DIR ?? '.parley');
  const databaseUrl = overrides.databaseUrl !== undefined ? overrides.databaseUrl : env.DATABASE_URL || null;
  const jwtSecret = overrides.jwtSecret ?? env.JWT_SECRET ?? embeddedSecret(dataDir);
  if (jwtSecret.length < 16) throw new Error('JWT_SECRET must be at least 16 characters');
  return {
    port: int(env, 'PORT', 4000),
    host: env.HOST ?? '0.0.0.0',
    databaseUrl,
    databasePoolSize: int(env, 'DATABASE_POOL_SIZE', 10),
    redisUrl: overrides.redisUrl !== undefined ? overrides.redisUrl : env.REDIS_URL || null,
    redisPrefix: env.REDIS_PREFIX ?? 'parley:',
    dataDir,
    jwtSecret,
    tokenTtlSeconds: int(env, 'TOKEN_TTL_SECONDS', 7 * 24 * 3600),
    passwordHashCost: int(env, 'PASSWORD_HASH_COST', 17),
    viewerCacheMs: int(env, 'VIEWER_CACHE_MS', 5000),
    limits: {
      messageBodyMax: int(env, 'MESSAGE_BODY_MAX', 5000),
      pageSizeMax: int(env, 'PAGE_SIZE_MAX', 100),
    },
    logLevel: env.LOG_LEVEL ?? 'info',
    graphiql: env.GRAPHIQL !== 'false',
    ...overrides,
  };
}
