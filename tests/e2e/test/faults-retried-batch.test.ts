import type { AddressInfo } from 'node:net';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp as buildIngestApi } from '@tally/ingest-api/app';
import { loadIngestApiConfig } from '@tally/ingest-api/config';
import { startWorker, type RunningWorker } from '@tally/worker/app';
import { createProject, experimentResults, type ProjectKeys } from '@tally/db';
import { createLogger } from '@tally/logger';
import { closeQueues, createQueues, createRedis, type TallyQueues } from '@tally/queue';
import { createTestDatabase, createTestQueuePrefix, type TestDatabase, type TestQueuePrefix } from '@tally/testing';
import { RetryingClient } from '../src/client.js';
import { expectExactResults, rowsInsertedByJobs, settle, summaryResults } from '../src/exactness.js';
import { makeTraffic, TRAFFIC_EXPERIMENTS, TRAFFIC_GOALS } from '../src/traffic.js';

/**
 * A client that never heard back (a timeout, a dropped connection) sends the same
 * batch again and again, here 20 times at once: 20 jobs that two workers insert
 * concurrently, racing on the same keys. Half the copies come with a clock 90 s
 * ahead, so their skew-corrected times differ from the others' (the idempotency
 * key is the client's own timestamp, not the corrected one). Then, long after, a
 * few more copies. The batch is stored and counted once.
 */

const COPIES = 20;

async function counterValue(worker: RunningWorker, name: string): Promise<number> {
  const metric = await worker.registry.getSingleMetric(name)?.get();
  return metric?.values.reduce((sum, value) => sum + value.value, 0) ?? 0;
}

describe('the same batch sent many times by a retrying client', () => {
  let database: TestDatabase;
  let prefix: TestQueuePrefix;
  let keys: ProjectKeys;
  let producer: Redis;
  let queues: TallyQueues;
  let ingest: Awaited<ReturnType<typeof buildIngestApi>>;
  const workers: { worker: RunningWorker; connection: Redis }[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
    prefix = createTestQueuePrefix();
    keys = await createProject(database.db, 'faults-retried-batch');
    producer = createRedis(prefix.redisUrl, 'producer');
    queues = createQueues(producer, prefix.prefix);
    const logger = createLogger('faults-retried-batch', 'silent');
    ingest = await buildIngestApi({ config: loadIngestApiConfig({}), db: database.db, queues, redis: producer, logger });
    await ingest.listen({ host: '127.0.0.1', port: 0 });
    // Two workers of four lanes each: copies of the batch are inserted at the same moment.
    for (let i = 0; i < 2; i++) {
      const connection = createRedis(prefix.redisUrl, 'worker');
      const worker = await startWorker({
        config: { QUEUE_PREFIX: prefix.prefix, WORKER_CONCURRENCY: 4, PARTITION_PREMAKE_DAYS: 7, ROLLUP_INTERVAL_MS: 200 },
        db: database.db,
        logger,
        connection,
      });
      workers.push({ worker, connection });
    }
  });

  afterAll(async () => {
    await ingest?.close();
    for (const { worker, connection } of workers) {
      await worker.close();
      connection.disconnect();
    }
    if (queues) await closeQueues(queues);
    producer?.disconnect();
    await prefix?.remove();
    await database?.drop();
  });

  it(`stores and counts a batch sent ${COPIES} times at once, and again later, once`, async () => {
    const [batch] = makeTraffic({ batches: 1, eventsPerBatch: 500, sessions: 60, idPrefix: 'retried', seed: 31 });
    const url = `http://127.0.0.1:${(ingest.server.address() as AddressInfo).port}`;
    const client = new RetryingClient(url, keys.writeKey);
    const clockAhead = new RetryingClient(url, keys.writeKey, { clockOffsetMs: 90_000 });

    await Promise.all(Array.from({ length: COPIES }, (_, i) => (i % 2 === 0 ? client : clockAhead).deliver(batch!, i)));
    expect([...client.attempts, ...clockAhead.attempts].map((attempt) => attempt.status)).toEqual(Array(COPIES).fill(202));
    await settle(queues.ingest, database.db);

    const jobs = await rowsInsertedByJobs(queues.ingest);
    expect(jobs).toEqual({ jobs: COPIES, inserted: 500, duplicates: (COPIES - 1) * 500 });
    const inserted = await Promise.all(workers.map(({ worker }) => counterValue(worker, 'tally_worker_events_inserted_total')));
    const skipped = await Promise.all(workers.map(({ worker }) => counterValue(worker, 'tally_worker_events_duplicate_total')));
    expect(inserted.reduce((a, b) => a + b)).toBe(500);
    expect(skipped.reduce((a, b) => a + b)).toBe((COPIES - 1) * 500);
    const check = {
      db: database.db,
      projectId: keys.projectId,
      acceptedEvents: 500,
      read: summaryResults(database.db, keys.projectId),
    };
    await expectExactResults(check);

    // Late retries, after the batch was stored and rolled up: nothing moves.
    const summaries = async () =>
      Promise.all(
        TRAFFIC_EXPERIMENTS.flatMap((experiment) =>
          [null, ...TRAFFIC_GOALS].map((goal) => experimentResults(database.db, keys.projectId, experiment, goal)),
        ),
      );
    const before = await summaries();
    for (let i = 0; i < 5; i++) await client.deliver(batch!, COPIES + i);
    await settle(queues.ingest, database.db);
    expect(await rowsInsertedByJobs(queues.ingest)).toEqual({ jobs: COPIES + 5, inserted: 500, duplicates: (COPIES + 4) * 500 });
    await expectExactResults(check);
    expect(await summaries()).toEqual(before);
  }, 60_000);
});
