import type { AddressInfo } from 'node:net';
import type { Job } from 'bullmq';
import type { IngestBatchRows } from '@tally/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp as buildIngestApi } from '@tally/ingest-api/app';
import { loadIngestApiConfig } from '@tally/ingest-api/config';
import { createProject, type ProjectKeys } from '@tally/db';
import { createLogger } from '@tally/logger';
import { closeQueues, createQueues, createRedis, type TallyQueues } from '@tally/queue';
import {
  createTestDatabase,
  createTestQueuePrefix,
  startApp,
  waitFor,
  type RunningApp,
  type TestDatabase,
  type TestQueuePrefix,
} from '@tally/testing';
import { RetryingClient } from '../src/client.js';
import { expectExactResults, rowsInsertedByJobs, settle, summaryResults } from '../src/exactness.js';
import { killHard } from '../src/processes.js';
import { countEvents, makeTraffic } from '../src/traffic.js';

/**
 * A worker process killed with SIGKILL while it inserts: no shutdown hook runs,
 * its jobs stay "active" in Redis under locks nobody renews. BullMQ hands them
 * to another worker once the lock has expired and a stall check has seen them
 * twice, a stall interval apart. The test shortens both (JOB_LOCK_DURATION_MS,
 * STALLED_INTERVAL_MS; 30 s each by default) to keep its run short. Meanwhile the
 * ingest API keeps accepting and the queue buffers; at the end every event is
 * stored once.
 */

const STALL_INTERVAL_MS = 3_000;
const LOCK_DURATION_MS = 5_000;

describe('a worker killed with SIGKILL in the middle of a stream', () => {
  let database: TestDatabase;
  let prefix: TestQueuePrefix;
  let keys: ProjectKeys;
  let producer: ReturnType<typeof createRedis>;
  let queues: TallyQueues;
  let ingest: Awaited<ReturnType<typeof buildIngestApi>>;
  const workers: RunningApp[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
    prefix = createTestQueuePrefix();
    keys = await createProject(database.db, 'faults-worker-kill');
    producer = createRedis(prefix.redisUrl, 'producer');
    queues = createQueues(producer, prefix.prefix);
    ingest = await buildIngestApi({
      config: loadIngestApiConfig({}),
      db: database.db,
      queues,
      redis: producer,
      logger: createLogger('faults-ingest', 'silent'),
    });
    await ingest.listen({ host: '127.0.0.1', port: 0 });
  });

  afterAll(async () => {
    await Promise.all(workers.map((worker) => worker.stop()));
    await ingest?.close();
    if (queues) await closeQueues(queues);
    producer?.disconnect();
    await prefix?.remove();
    await database?.drop();
  });

  it('hands the killed worker’s jobs to another worker after the stall interval: nothing lost, nothing doubled', async () => {
    const env = {
      DATABASE_URL: database.url,
      REDIS_URL: prefix.redisUrl,
      QUEUE_PREFIX: prefix.prefix,
      WORKER_CONCURRENCY: '4',
      JOB_LOCK_DURATION_MS: String(LOCK_DURATION_MS),
      STALLED_INTERVAL_MS: String(STALL_INTERVAL_MS),
    };
    const url = `http://127.0.0.1:${(ingest.server.address() as AddressInfo).port}`;
    const client = new RetryingClient(url, keys.writeKey);
    // Small batches before and after, large ones around the kill so that the worker is surely busy.
    const before = makeTraffic({ batches: 20, eventsPerBatch: 200, idPrefix: 'before', seed: 1 });
    const burst = makeTraffic({ batches: 10, eventsPerBatch: 2_500, idPrefix: 'burst', seed: 2 });
    const after = makeTraffic({ batches: 20, eventsPerBatch: 200, idPrefix: 'after', seed: 3 });

    const first = await startApp('worker', env);
    workers.push(first);
    await client.stream(before);
    await waitFor(async () => ((await queues.ingest.getJobCounts('completed')).completed! >= 5 ? true : undefined), {
      what: 'the first worker to insert batches',
    });

    await Promise.all(burst.map((batch, i) => client.deliver(batch, before.length + i)));
    await waitFor(async () => ((await queues.ingest.getJobCounts('active')).active! > 0 ? true : undefined), {
      intervalMs: 10,
      what: 'the worker to be inserting',
    });
    await killHard(first);
    const killedAt = Date.now();
    const orphans = await queues.ingest.getActive();
    // Jobs the dead worker had taken: still "active" in Redis, and nobody works on them.
    expect(orphans.length).toBeGreaterThan(0);

    // The API does not depend on the worker: the stream goes on into the queue.
    await client.stream(after);
    expect(client.attempts.filter((attempt) => attempt.status !== 202)).toEqual([]);

    // Each worker runs a stall check when it starts, unless one ran in the last stall
    // interval; starting the next worker once the dead one's check has lapsed lets
    // that first check mark the orphans, and the next one, an interval later, hand them back.
    await waitFor(
      async () => ((await producer.pttl(`${prefix.prefix}:ingest:stalled-check`)) < 0 ? true : undefined),
      { timeoutMs: STALL_INTERVAL_MS + 5_000, intervalMs: 100, what: "the dead worker's last stall check to lapse" },
    );
    workers.push(await startApp('worker', env));

    const recovered = await waitFor(
      async () => {
        const jobs = await Promise.all(orphans.map((job) => queues.ingest.getJob(job.id!)));
        return jobs.every((job) => job?.finishedOn !== undefined) ? (jobs as Job[]) : undefined;
      },
      { timeoutMs: 2 * STALL_INTERVAL_MS + 15_000, intervalMs: 250, what: "the dead worker's jobs to be done by the other one" },
    );
    for (const job of recovered) {
      expect(await job.getState()).toBe('completed');
      // Handed back by the stall check, once, not failed: the insert is idempotent, so running it again is safe.
      expect(job.stalledCounter).toBe(1);
      // Not before the dead worker's lock (30 s) had expired.
      expect(job.finishedOn! - killedAt).toBeGreaterThan(STALL_INTERVAL_MS - 5_000);
    }

    await settle(queues.ingest, database.db);
    expect((await queues.ingest.getJobCounts('failed')).failed).toBe(0);
    const accepted = countEvents(before) + countEvents(burst) + countEvents(after);
    await expectExactResults({
      db: database.db,
      projectId: keys.projectId,
      acceptedEvents: accepted,
      read: summaryResults(database.db, keys.projectId),
    });
    // Every completed job accounts for each of its events as new or already stored, and
    // the only events found already stored are the orphans' own, which the dead worker
    // had committed before it died: running those jobs again added no row.
    const jobs = await rowsInsertedByJobs(queues.ingest);
    expect(jobs.jobs).toBe(before.length + burst.length + after.length);
    expect(jobs.inserted + jobs.duplicates).toBe(accepted);
    expect(jobs.duplicates).toBeLessThanOrEqual(orphans.reduce((n, job) => n + (job.data as IngestBatchRows).count, 0));
  }, 150_000);
});
