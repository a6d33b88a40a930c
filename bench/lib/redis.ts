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

/** The sum of the integer values of every key matching `pattern` (rate-limiter counters, for example). */
export async function sumOfKeys(url: string, pattern: string): Promise<number> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    let total = 0;
    for await (const keys of redis.scanStream({ match: pattern, count: 1000 }) as AsyncIterable<string[]>) {
      if (keys.length === 0) continue;
      for (const value of await redis.mget(keys)) total += Number(value ?? 0);
    }
    return total;
  } finally {
    redis.disconnect();
  }
}

/** CPU time the Redis server has used since it started, in ms (INFO cpu: every client's commands, not only this run's). */
export async function redisCpuMs(url: string): Promise<number> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    const info = await redis.info('cpu');
    const seconds = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? Number.NaN);
    return (seconds('used_cpu_user') + seconds('used_cpu_sys')) * 1000;
  } finally {
    redis.disconnect();
  }
}
