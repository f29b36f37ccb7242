import { Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import type { Database } from '@tally/db';
import type { Logger } from '@tally/logger';
import { closeQueues, createQueues, JOBS, QUEUES, type QueueName, type TallyQueues } from '@tally/queue';
import type { WorkerConfig } from './config.js';
import { createHandlers } from './handlers.js';
import { createWorkerMetrics, type WorkerMetrics } from './metrics.js';
import { OutagePause } from './outage.js';
import { createProcessor, isJobName } from './processor.js';

export interface StartWorkerOptions {
  config: Pick<WorkerConfig, 'QUEUE_PREFIX' | 'WORKER_CONCURRENCY' | 'PARTITION_PREMAKE_DAYS'> &
    Partial<Pick<WorkerConfig, 'ROLLUP_INTERVAL_MS' | 'ROLLUP_WINDOW_EVENTS' | 'PARTITION_INTERVAL' | 'RETENTION_DAYS'>>;
  db: Database;
  logger: Logger;
  /** A connection made with `createRedis(url, 'worker')`; the caller closes it. */
  connection: Redis;
  /** The registry `/metrics` serves; a private one when omitted. */
  registry?: Registry;
  /** First pause after Postgres is found unreachable (it then doubles, up to 30 s). */
  outagePauseMs?: number;
}

export interface RunningWorker {
  workers: Record<QueueName, Worker>;
  queues: TallyQueues;
  registry: Registry;
  /** Stops taking jobs and waits for the active ones to finish. */
  close: () => Promise<void>;
}

export const PARTITIONS_SCHEDULER_ID = 'maintain-partitions';
export const ROLLUP_SCHEDULER_ID = 'rollup';

/**
 * Runs the ingest, maintenance and rollup workers over the queues under the
 * configured prefix, and registers the partition-maintenance and rollup job
 * schedulers.
 */
export async function startWorker(options: StartWorkerOptions): Promise<RunningWorker> {
  const { config, db, connection } = options;
  const logger = options.logger.child({ module: 'jobs' });
  const registry = options.registry ?? new Registry();
  const queues = createQueues(connection, config.QUEUE_PREFIX);
  const metrics = createWorkerMetrics(registry, queues);
  const handlers = createHandlers({
    db,
    logger,
    metrics,
    partitions: {
      premakeDays: config.PARTITION_PREMAKE_DAYS,
      interval: config.PARTITION_INTERVAL ?? 'day',
      // Omitted means kept for ever: data is only ever dropped when asked for.
      retentionDays: config.RETENTION_DAYS ?? 0,
    },
    rollupWindowEvents: config.ROLLUP_WINDOW_EVENTS ?? 250_000,
  });
  const outage = new OutagePause(logger, options.outagePauseMs);

  const ingestProcessor = createProcessor(QUEUES.ingest, handlers);
  const ingest = new Worker(
    QUEUES.ingest,
    async (job: Job) => {
      try {
        const result = await ingestProcessor(job);
        outage.succeeded();
        return result;
      } catch (error) {
        // Before the job is handed back: a finishing job fetches the next one unless the worker is paused.
        outage.failed(error);
        throw error;
      }
    },
    { connection, prefix: config.QUEUE_PREFIX, concurrency: config.WORKER_CONCURRENCY, autorun: false },
  );
  outage.attach(ingest);
  // One job at a time per process; the database serializes rollups across processes too.
  const serial = (queue: QueueName) =>
    new Worker(queue, createProcessor(queue, handlers), {
      connection,
      prefix: config.QUEUE_PREFIX,
      concurrency: 1,
      autorun: false,
    });
  const workers = {
    [QUEUES.ingest]: ingest,
    [QUEUES.maintenance]: serial(QUEUES.maintenance),
    [QUEUES.rollup]: serial(QUEUES.rollup),
  };
  for (const worker of Object.values(workers)) observe(worker, logger, metrics);

  // Job schedulers keep at most one scheduled job, however many workers upsert the same id.
  const rollup = JOBS.rollup;
  await queues[rollup.queue].upsertJobScheduler(
    ROLLUP_SCHEDULER_ID,
    { every: config.ROLLUP_INTERVAL_MS ?? rollup.everyMs },
    { name: 'rollup', data: {}, opts: rollup.options },
  );
  const definition = JOBS['maintain-partitions'];
  await queues[definition.queue].upsertJobScheduler(
    PARTITIONS_SCHEDULER_ID,
    { every: definition.everyMs },
    { name: 'maintain-partitions', data: {}, opts: definition.options },
  );
  // The scheduler's next run may be up to an hour away; partitions are checked at every start too.
  await queues[definition.queue].add('maintain-partitions', {}, {
    ...definition.options,
    deduplication: { id: 'maintain-partitions-at-start' },
  });

  for (const worker of Object.values(workers)) {
    worker.run().catch((err: unknown) => logger.error({ err, queue: worker.name }, 'worker stopped'));
  }
  logger.info({ prefix: config.QUEUE_PREFIX, concurrency: config.WORKER_CONCURRENCY }, 'taking jobs');

  let closing: Promise<void> | undefined;
  return {
    workers,
    queues,
    registry,
    close: () =>
      (closing ??= (async () => {
        outage.close();
        await Promise.all(Object.values(workers).map((worker) => worker.close()));
        await closeQueues(queues);
        logger.info('workers closed');
      })()),
  };
}

function observe(worker: Worker, logger: Logger, metrics: WorkerMetrics): void {
  const nameOf = (job: Job | undefined) => (job && isJobName(job.name) ? job.name : 'unknown');
  worker.on('completed', (job) => metrics.jobsCompleted.inc({ name: nameOf(job) }));
  worker.on('failed', (job, err) => {
    // BullMQ sets finishedOn only when the job lands in the failed set for good.
    const final = job?.finishedOn !== undefined;
    metrics.jobsFailed.inc({ name: nameOf(job), final: String(final) });
    const context = { jobId: job?.id, name: nameOf(job), attemptsMade: job?.attemptsMade, err };
    if (final) logger.error(context, 'job failed');
    else logger.warn(context, 'job attempt failed; it will be retried');
  });
  worker.on('stalled', (jobId) => logger.warn({ jobId, queue: worker.name }, 'job stalled; handed back to the queue'));
  // Without a listener an 'error' event would crash the process; BullMQ reconnects by itself.
  worker.on('error', (err) => logger.error({ err, queue: worker.name }, 'worker error'));
}
