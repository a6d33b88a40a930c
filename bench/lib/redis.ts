import { Redis } from 'ioredis';

/** Redis for pub/sub; every run uses a key prefix of its own. */
export const defaultRedisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Fails before any setup when Redis does not answer; `hint` says what to do about it. */
export async function assertRedis(url: string, hint: string): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => {});
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    throw new Error(`Redis at ${url} is not reachable (${(error as Error).message}); ${hint}`);
  } finally {
    redis.disconnect();
  }
}
