import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import { createDb, migrateDatabase, type DbHandle } from '@tally/db';

/**
 * Fixtures for tests against the real servers. Each test file gets a database and
 * a queue prefix of its own and removes them afterwards; nothing else on the
 * shared servers is touched.
 */

export const TEST_POSTGRES_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export function uniqueName(kind: string): string {
  return `tally_test_${kind}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
}

export interface TestDatabase extends DbHandle {
  url: string;
  name: string;
  drop: () => Promise<void>;
}

/** A fresh, migrated database. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = uniqueName('db');
  const url = new URL(TEST_POSTGRES_URL);
  url.pathname = `/${name}`;
  await migrateDatabase(url.toString());
  const handle = createDb(url.toString(), { max: 5, applicationName: 'tally-test' });
  return {
    ...handle,
    url: url.toString(),
    name,
    drop: async () => {
      // A failed test may leave clients checked out (an export never read to its end),
      // and closing the pool waits for them: drop anyway after a while (FORCE ends them).
      await Promise.race([handle.close().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 5_000).unref())]);
      await dropDatabase(name);
    },
  };
}

export async function dropDatabase(name: string): Promise<void> {
  const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

export interface TestQueuePrefix {
  prefix: string;
  redisUrl: string;
  /** Deletes every key under the prefix (and only those). */
  remove: () => Promise<void>;
}

export function createTestQueuePrefix(): TestQueuePrefix {
  const prefix = uniqueName('q');
  return {
    prefix,
    redisUrl: TEST_REDIS_URL,
    remove: () => deleteKeys(TEST_REDIS_URL, `${prefix}:*`),
  };
}

export async function deleteKeys(redisUrl: string, pattern: string): Promise<void> {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 3 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

export { waitFor } from './wait.js';
export { freePort, spawnApp, startApp, startApps, type RunningApp, type SpawnedApp, type SpawnOptions } from './processes.js';
export { startTcpProxy, type TcpProxy } from './tcp-proxy.js';
export * from './histories.js';
export * from './throwaway-servers.js';
export { seededRandom } from './seeded-random.js';
