import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProject, type ProjectKeys } from '@tally/db';
import { closeQueues, createQueues, createRedis, type TallyQueues } from '@tally/queue';
import {
  createTestDatabase,
  startApps,
  startThrowawayRedis,
  uniqueName,
  waitFor,
  type RunningApp,
  type TestDatabase,
  type ThrowawayRedis,
} from '@tally/testing';
import { RetryingClient } from '../src/client.js';
import { expectExactResults, settle, summaryResults } from '../src/exactness.js';
import { countEvents, makeTraffic } from '../src/traffic.js';

/**
 * Redis (AOF, fsync every second, no RDB) shut down in the middle of a stream,
 * with jobs still waiting in it, and started again on the same directory. While
 * it is down the ingest API refuses batches at once with 503 (its Redis
 * connection keeps no offline queue, so nothing piles up in memory and nothing
 * refused is sent later behind the client's back); the client sends them again;
 * the AOF brings back every job that was acknowledged with a 202.
 */

const QUICK_MS = 2_000;

describe('Redis restarted in the middle of a stream', () => {
  let redis: ThrowawayRedis;
  let database: TestDatabase;
  let keys: ProjectKeys;
  let monitor: ReturnType<typeof createRedis>;
  let queues: TallyQueues;
  let apps: RunningApp[] = [];

  beforeAll(async () => {
    redis = await startThrowawayRedis();
    database = await createTestDatabase();
    keys = await createProject(database.db, 'faults-redis-restart');
    const prefix = uniqueName('q');
    monitor = createRedis(redis.url, 'producer');
    // The test's own view of the queue goes down with Redis too; its errors are expected.
    monitor.on('error', () => {});
    queues = createQueues(monitor, prefix);
    for (const queue of Object.values(queues)) queue.on('error', () => {});
    const env = { DATABASE_URL: database.url, REDIS_URL: redis.url, QUEUE_PREFIX: prefix };
    apps = await startApps(['ingest-api', 'worker'], env);
  }, 90_000);

  afterAll(async () => {
    await Promise.all(apps.map((app) => app.stop()));
    if (queues) await closeQueues(queues).catch(() => {});
    monitor?.disconnect();
    await redis?.remove();
    await database?.drop();
  });

  it('answers 503 at once while Redis is down; a client that retries loses nothing; results exact', async () => {
    const [ingest, worker] = apps as [RunningApp, RunningApp];
    const traffic = makeTraffic({ batches: 60, eventsPerBatch: 100, idPrefix: 'stream', seed: 21 });
    const burst = makeTraffic({ batches: 6, eventsPerBatch: 2_500, idPrefix: 'burst', seed: 22 });
    const probes = makeTraffic({ batches: 3, eventsPerBatch: 20, idPrefix: 'probe', seed: 23 });
    const client = new RetryingClient(ingest.url, keys.writeKey, { retryDelayMs: 100 });
    const streaming = client.stream(traffic, { concurrency: 2, paceMs: 50 });
    streaming.catch(() => {});

    await waitFor(
      async () => (client.delivered >= 15 && (await queues.ingest.getJobCounts('completed')).completed! >= 3 ? true : undefined),
      { what: 'the stream to be flowing into Postgres' },
    );
    // Large batches just before the shutdown: acknowledged, and not inserted yet when Redis stops.
    await Promise.all(burst.map((batch, i) => client.deliver(batch, traffic.length + i)));
    const pending = await queues.ingest.getJobCounts('waiting', 'active');
    expect(pending.waiting! + pending.active!, 'jobs only the AOF can bring back').toBeGreaterThan(0);

    await redis.stop();
    const stoppedAt = Date.now();

    // A client that gives up after a 503: what it sent must never be stored, even once Redis is back.
    const refused = [];
    for (const [i, probe] of probes.entries()) refused.push(await client.sendOnce(probe, -1 - i));
    expect(refused.map((attempt) => attempt.status)).toEqual([503, 503, 503]);
    // Down for a couple of seconds, long enough for every app's reconnection attempts to back off.
    await waitFor(
      async () => {
        const refusals = client.attempts.filter((a) => a.status === 503 && a.at >= stoppedAt).length;
        return refusals >= 20 && Date.now() - stoppedAt >= 2_500 ? true : undefined;
      },
      { timeoutMs: 30_000, what: 'the stream to be refused for a while' },
    );
    expect((await fetch(`${ingest.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${ingest.url}/readyz`)).status).toBe(503);
    expect((await fetch(`${worker.url}/healthz`)).status).toBe(200);

    await redis.start();
    await streaming;

    const unavailable = client.attempts.filter((attempt) => attempt.status === 503);
    expect(new Set(client.attempts.map((attempt) => attempt.status))).toEqual(new Set([202, 503]));
    expect(Math.max(...unavailable.map((attempt) => attempt.ms)), '503s came at once').toBeLessThan(QUICK_MS);

    await settle(queues.ingest, database.db, { timeoutMs: 90_000 });
    expect((await queues.ingest.getJobCounts('failed')).failed).toBe(0);
    await expectExactResults({
      db: database.db,
      projectId: keys.projectId,
      acceptedEvents: countEvents(traffic) + countEvents(burst),
      read: summaryResults(database.db, keys.projectId),
    });
    // The refused probes were not queued offline and sent once Redis was back.
    const { rows } = await database.db.$client.query(`SELECT 1 FROM analytics_events WHERE event_id LIKE 'probe-%'`);
    expect(rows).toEqual([]);

    const metrics = await (await fetch(`${ingest.url}/metrics`)).text();
    const refusedCount = metrics.match(/^tally_ingest_batches_total\{[^}]*outcome="unavailable"[^}]*\} (\d+)$/m)?.[1];
    expect(Number(refusedCount)).toBe(unavailable.length);
  }, 150_000);
});
