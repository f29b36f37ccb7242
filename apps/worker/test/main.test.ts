import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createQueues, createRedis, closeQueues } from '@tally/queue';
import {
  createTestQueuePrefix,
  dropDatabase,
  freePort,
  spawnApp,
  TEST_POSTGRES_URL,
  uniqueName,
  waitFor,
  type TestQueuePrefix,
} from '@tally/testing';
import pg from 'pg';

describe('the worker process', () => {
  // A database that does not exist yet: starting the worker creates and migrates it.
  const databaseName = uniqueName('db');
  const databaseUrl = Object.assign(new URL(TEST_POSTGRES_URL), { pathname: `/${databaseName}` }).toString();
  let prefix: TestQueuePrefix;

  beforeAll(() => {
    prefix = createTestQueuePrefix();
  });
  afterAll(async () => {
    await prefix?.remove();
    await dropDatabase(databaseName);
  });

  it('creates and migrates its database, becomes ready, and exits cleanly on SIGTERM', async () => {
    const port = await freePort();
    const { child, exited, output } = spawnApp('worker', {
      DATABASE_URL: databaseUrl,
      REDIS_URL: prefix.redisUrl,
      QUEUE_PREFIX: prefix.prefix,
      HOST: '127.0.0.1',
      PORT: String(port),
    });

    try {
      await waitFor(
        async () => {
          if (child.exitCode !== null) throw new Error(`worker exited with ${child.exitCode}: ${output()}`);
          const response = await fetch(`http://127.0.0.1:${port}/readyz`);
          return response.status === 200 ? true : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 200, what: 'the worker to be ready' },
      );

      const admin = new pg.Client({ connectionString: databaseUrl });
      await admin.connect();
      try {
        const { rows } = await admin.query(`SELECT to_regclass('analytics_events') IS NOT NULL AS migrated`);
        expect(rows[0]).toEqual({ migrated: true });
      } finally {
        await admin.end();
      }
      const producer = createRedis(prefix.redisUrl, 'producer');
      const queues = createQueues(producer, prefix.prefix);
      try {
        expect(await queues.maintenance.getJobSchedulersCount()).toBe(1);
      } finally {
        await closeQueues(queues);
        producer.disconnect();
      }
    } finally {
      if (child.exitCode === null) child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(output()).not.toMatch(/"level":(50|60)/);
  });

  it('refuses to start with a bad setting, and says which', async () => {
    const { exited, output } = spawnApp('worker', { WORKER_CONCURRENCY: 'lots' });
    expect(await exited).toBe(1);
    expect(output()).toMatch(/Invalid configuration/);
    expect(output()).toMatch(/WORKER_CONCURRENCY/);
  });
});
