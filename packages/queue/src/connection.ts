import { Redis, type RedisOptions } from 'ioredis';

/**
 * Producers (the ingest API) must fail fast when Redis is away so that the client
 * gets a 503 and retries, instead of requests piling up in an offline queue in memory.
 * Workers, on the other hand, must wait for Redis forever: BullMQ requires
 * `maxRetriesPerRequest: null` for the blocking commands a worker uses.
 */
export function createRedis(url: string, role: 'producer' | 'worker'): Redis {
  const options: RedisOptions =
    role === 'producer'
      ? { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2_000, commandTimeout: 5_000 }
      : { maxRetriesPerRequest: null };
  return new Redis(url, { ...options, lazyConnect: false });
}
