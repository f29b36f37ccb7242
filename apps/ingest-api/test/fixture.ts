import { randomUUID } from 'node:crypto';
import { Queue, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { IngestBatchRowsRef, type StoredEvent } from '@tally/contracts';
import { createProject, eventsOfRows, type Database, type ProjectKeys } from '@tally/db';
import { createLogger } from '@tally/logger';
import { closeQueues, createQueues, createRedis, loadBatchRows, QUEUES, type TallyQueues } from '@tally/queue';
import { createTestDatabase, createTestQueuePrefix, type TestDatabase, type TestQueuePrefix } from '@tally/testing';
import { buildApp } from '../src/app.js';
import { loadIngestApiConfig, type IngestApiConfig } from '../src/config.js';

export type IngestApp = Awaited<ReturnType<typeof buildApp>>;

/** What a test may swap: a database or a Redis behind a proxy it can cut. */
export interface Dependencies {
  db?: Database;
  redis?: Redis;
}

/** A database with one project, a queue prefix, and the apps built over them; all removed by `cleanup`. */
export interface Fixture {
  database: TestDatabase;
  prefix: TestQueuePrefix;
  keys: ProjectKeys;
  build: (config?: Partial<IngestApiConfig>, dependencies?: Dependencies) => Promise<IngestApp>;
  /** Every ingest job stored under this file's prefix, whatever its state, oldest first. */
  jobs: () => Promise<Job[]>;
  /**
   * An ingest job's batch, its rows read from beside the job and decoded back into
   * events. Throws unless the job is in the form the worker stores as it is, with
   * rows that agree with the payload.
   */
  batchOf: (job: Job) => Promise<QueuedBatch>;
  /** Removes every job, so a test starts from an empty queue. */
  clearJobs: () => Promise<void>;
  cleanup: () => Promise<void>;
}

export async function createFixture(): Promise<Fixture> {
  const database = await createTestDatabase();
  const prefix = createTestQueuePrefix();
  const keys = await createProject(database.db, 'ingest-test');
  // Inspects the queue over a connection of its own, which no outage test touches.
  const inspection = createRedis(prefix.redisUrl, 'worker');
  const inspector = new Queue(QUEUES.ingest, { connection: inspection, prefix: prefix.prefix });
  const built: { app: IngestApp; queues: TallyQueues; redis: Redis }[] = [];

  return {
    database,
    prefix,
    keys,
    build: async (config = {}, dependencies = {}) => {
      const redis = dependencies.redis ?? createRedis(prefix.redisUrl, 'producer');
      redis.on('error', () => {});
      // A producer connection refuses commands until it is up; tests of a healthy app start once it is.
      if (!dependencies.redis && redis.status !== 'ready') await new Promise((resolve) => redis.once('ready', resolve));
      const queues = createQueues(redis, prefix.prefix);
      const app = await buildApp({
        config: { ...loadIngestApiConfig({}), ...config },
        db: dependencies.db ?? database.db,
        queues,
        redis,
        logger: createLogger('ingest-test'),
      });
      built.push({ app, queues, redis });
      return app;
    },
    jobs: async () => {
      const jobs = await inspector.getJobs(['waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed', 'paused']);
      return jobs.sort((a, b) => a.timestamp - b.timestamp);
    },
    batchOf: (job) => batchOf(inspection, prefix.prefix, job),
    clearJobs: () => inspector.obliterate({ force: true }),
    cleanup: async () => {
      for (const { app, queues, redis } of built) {
        await app.close();
        await closeQueues(queues).catch(() => {});
        redis.disconnect();
      }
      await inspector.close();
      inspection.disconnect();
      await prefix.remove();
      await database.drop();
    },
  };
}

/** One valid event of each type, in one session. */
export function validEvents(at = Date.now() - 60_000) {
  const sessionId = `s-${randomUUID()}`;
  return [
    {
      eventId: randomUUID(),
      eventType: 'EXPOSURE',
      sessionId,
      viewId: 'v-1',
      experimentId: 'checkout-button',
      variantKey: 'treatment',
      properties: { path: '/cart' },
      timestamp: at,
    },
    { eventId: randomUUID(), eventType: 'PAGEVIEW', sessionId, viewId: 'v-1', timestamp: new Date(at + 500).toISOString() },
    { eventId: randomUUID(), eventType: 'CONVERSION', sessionId, goal: 'purchase', timestamp: at + 1_000 },
  ];
}

export interface PostOptions {
  key?: string | null;
  headers?: Record<string, string>;
}

/** POST /v1/batch with the project's write key, a JSON body (objects are serialized) and extra headers. */
export function post(app: IngestApp, fixture: Fixture, body: unknown, { key, headers = {} }: PostOptions = {}) {
  const authorization = key === null ? {} : { authorization: `Bearer ${key ?? fixture.keys.writeKey}` };
  return app.inject({
    method: 'POST',
    url: '/v1/batch',
    headers: { 'content-type': 'application/json', ...authorization, ...headers },
    payload: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body),
  });
}

/** The value of one series on `/metrics`, as `name{label="value",app="ingest-api"}` or a bare name; undefined if absent. */
export async function metricValue(app: IngestApp, series: string): Promise<number | undefined> {
  const { body } = await app.inject({ url: '/metrics' });
  const line = body.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.split(' ').at(-1));
}

const rowsPayload = TypeCompiler.Compile(IngestBatchRowsRef);

export type QueuedBatch = IngestBatchRowsRef & { rows: Buffer; events: StoredEvent[] };

async function batchOf(redis: Redis, prefix: string, job: Job): Promise<QueuedBatch> {
  if (!rowsPayload.Check(job.data)) throw new Error(`job ${job.id} is not a batch with its rows beside it: ${JSON.stringify(job.data).slice(0, 200)}`);
  const rows = await loadBatchRows(redis, prefix, job.data.rowsId);
  if (rows === null) throw new Error(`job ${job.id}: its rows are not in Redis`);
  const decoded = eventsOfRows(rows.toString());
  if (decoded.projectId !== job.data.projectId || decoded.receivedAt !== job.data.receivedAt || decoded.events.length !== job.data.count) {
    throw new Error(`job ${job.id}: its rows disagree with its payload`);
  }
  return { ...job.data, rows, events: decoded.events };
}
