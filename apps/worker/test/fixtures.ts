import { randomUUID } from 'node:crypto';
import type { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { StoredEvent } from '@tally/contracts';
import { createLogger } from '@tally/logger';
import { encodeEventRowBytes } from '@tally/db';
import { addIngestBatch, closeQueues, createQueues, createRedis, type TallyQueues } from '@tally/queue';
import { createTestDatabase, createTestQueuePrefix, waitFor, type TestDatabase, type TestQueuePrefix } from '@tally/testing';
import { startWorker, type RunningWorker, type StartWorkerOptions } from '../src/app.js';

/** A database, a queue prefix and producer queues of this test file's own, and the workers it started. */
export interface Fixture {
  database: TestDatabase;
  prefix: TestQueuePrefix;
  /** Producer side, as the ingest API holds it. */
  queues: TallyQueues;
  producer: Redis;
  /** Queues a batch as the ingest API does: its rows beside the job. */
  queueBatch: (projectId: string, events: StoredEvent[], receivedAt?: number) => Promise<Job>;
  start: (options?: Partial<StartWorkerOptions>) => Promise<RunningWorker>;
  /** Closes every worker started so far (each waits for its active jobs). */
  stopAll: () => Promise<void>;
  cleanup: () => Promise<void>;
}

export async function createFixture(): Promise<Fixture> {
  const database = await createTestDatabase();
  const prefix = createTestQueuePrefix();
  const producer = createRedis(prefix.redisUrl, 'producer');
  const queues = createQueues(producer, prefix.prefix);
  const started: { worker: RunningWorker; connection: Redis }[] = [];
  return {
    database,
    prefix,
    queues,
    producer,
    queueBatch: async (projectId, events, receivedAt = Date.now()) => {
      const rows = encodeEventRowBytes(projectId, receivedAt, events);
      return addIngestBatch(queues, producer, { projectId, receivedAt, count: events.length, rows });
    },
    start: async (options = {}) => {
      const connection = createRedis(prefix.redisUrl, 'worker');
      const worker = await startWorker({
        config: { QUEUE_PREFIX: prefix.prefix, WORKER_CONCURRENCY: 2, PARTITION_PREMAKE_DAYS: 7 },
        db: database.db,
        logger: createLogger('worker-test'),
        connection,
        ...options,
      });
      started.push({ worker, connection });
      return worker;
    },
    stopAll: async () => {
      for (const { worker, connection } of started.splice(0)) {
        await worker.close();
        connection.disconnect();
      }
    },
    cleanup: async () => {
      for (const { worker, connection } of started) {
        await worker.close();
        connection.disconnect();
      }
      await closeQueues(queues);
      producer.disconnect();
      await prefix.remove();
      await database.drop();
    },
  };
}

/** Waits until the job is completed or failed for good, and returns it as stored then. */
export async function settled(queue: Queue, id: string | undefined): Promise<Job> {
  return waitFor(
    async () => {
      // The state first: a job read before it finished would carry no result.
      const state = await queue.getJobState(id!);
      return state === 'completed' || state === 'failed' ? queue.getJob(id!) : undefined;
    },
    { what: `job ${id} to complete or fail` },
  );
}

export const DAY = 86_400_000;

/** `n` valid events of one session, `clientTimestamp` from `at` on, one per second. */
export function makeEvents(n: number, at = Date.now() - 60_000): StoredEvent[] {
  const sessionId = `s-${randomUUID()}`;
  return Array.from({ length: n }, (_, i): StoredEvent => {
    const clientTimestamp = at + i * 1_000;
    const base = { eventId: randomUUID(), sessionId, viewId: null, experimentId: null, variantKey: null, goal: null };
    const times = { timestamp: clientTimestamp + 250, clientTimestamp };
    switch (i % 3) {
      case 0:
        return { ...base, eventType: 'EXPOSURE', experimentId: 'checkout-button', variantKey: 'treatment', properties: null, ...times };
      case 1:
        return { ...base, eventType: 'PAGEVIEW', viewId: `v-${i}`, properties: { path: '/cart', tab: 'a\tb\\c\n"d"' }, ...times };
      default:
        return { ...base, eventType: 'CONVERSION', goal: 'purchase', properties: { value: 12.5, nested: { ok: true } }, ...times };
    }
  });
}

/** Rows of analytics_events read back in the StoredEvent shape, ordered by event id. */
export async function storedEvents(database: TestDatabase, projectId: string): Promise<StoredEvent[]> {
  const { rows } = await database.pool.query<{
    event_id: string;
    event_type: StoredEvent['eventType'];
    session_id: string;
    view_id: string | null;
    experiment_id: string | null;
    variant_key: string | null;
    goal: string | null;
    properties: Record<string, unknown> | null;
    event_time: Date;
    client_time: Date;
  }>('SELECT * FROM analytics_events WHERE project_id = $1 ORDER BY event_id COLLATE "C"', [projectId]);
  return rows.map((row) => ({
    eventId: row.event_id,
    eventType: row.event_type,
    sessionId: row.session_id,
    viewId: row.view_id,
    experimentId: row.experiment_id,
    variantKey: row.variant_key,
    goal: row.goal,
    properties: row.properties,
    timestamp: row.event_time.getTime(),
    clientTimestamp: row.client_time.getTime(),
  }));
}

export const byEventId = (events: StoredEvent[]) => [...events].sort((a, b) => (a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0));
