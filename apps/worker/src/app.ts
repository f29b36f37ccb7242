import { Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import type { Database } from '@tally/db';
import type { Logger } from '@tally/logger';
import { closeQueues, createQueues, JOBS, loadBatchRows, QUEUES, type QueueName, type TallyQueues } from '@tally/queue';
import type { WorkerConfig } from './config.js';
import { createHandlers } from './handlers.js';
import { createWorkerMetrics, type WorkerMetrics } from './metrics.js';
import { OutagePause } from './outage.js';
import { createProcessor, isJobName } from './processor.js';
import { rowsAfterJob } from './stored-rows.js';

export interface StartWorkerOptions {
  config: Pick<WorkerConfig, 'QUEUE_PREFIX' | 'WORKER_CONCURRENCY' | 'PARTITION_PREMAKE_DAYS'> &
    Partial<
      Pick<
        WorkerConfig,
        | 'ROLLUP_INTERVAL_MS'
        | 'ROLLUP_WINDOW_EVENTS'
        | 'ROLLUP_YIELD_MAX_MS'
        | 'PARTITION_INTERVAL'
        | 'RETENTION_DAYS'
        | 'JOB_LOCK_DURATION_MS'
        | 'STALLED_INTERVAL_MS'
      >
    >;
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
 * How often the schedulers are registered again. Registering is idempotent; doing
 * it now and then brings the rollup back by itself if Redis lost its keys (a
 * restart without persistence), instead of only when a worker restarts.
 */
const SCHEDULERS_REFRESH_MS = 60_000;

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
    rollupYield: {
      waitingIngestJobs: () => queues[QUEUES.ingest].getWaitingCount(),
      // Every ingest slot of this process busy, and as many jobs again queued behind them.
      behindAt: config.WORKER_CONCURRENCY,
      maxMs: config.ROLLUP_YIELD_MAX_MS ?? 10_000,
    },
    loadBatchRows: (rowsId) => loadBatchRows(connection, config.QUEUE_PREFIX, rowsId),
  });
  const outage = new OutagePause(logger, options.outagePauseMs);

  const ingestProcessor = createProcessor(QUEUES.ingest, handlers);
  // A killed worker's jobs go back to the queue once their lock expires and a
  // stall check sees it: these two settings bound how long that takes.
  const lockSettings = {
    ...(config.JOB_LOCK_DURATION_MS ? { lockDuration: config.JOB_LOCK_DURATION_MS } : {}),
    ...(config.STALLED_INTERVAL_MS ? { stalledInterval: config.STALLED_INTERVAL_MS } : {}),
  };
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
    { connection, prefix: config.QUEUE_PREFIX, concurrency: config.WORKER_CONCURRENCY, autorun: false, ...lockSettings },
  );
  outage.attach(ingest);
  const rows = rowsAfterJob(connection, config.QUEUE_PREFIX, logger);
  ingest.on('completed', (job) => rows.completed(job));
  ingest.on('failed', (job) => {
    if (job && failedForGood(job)) rows.failedForGood(job);
  });
  // One job at a time per process; the database serializes rollups across processes too.
  const serial = (queue: QueueName) =>
    new Worker(queue, createProcessor(queue, handlers), {
      connection,
      prefix: config.QUEUE_PREFIX,
      concurrency: 1,
      autorun: false,
      ...lockSettings,
    });
  const workers = {
    [QUEUES.ingest]: ingest,
    [QUEUES.maintenance]: serial(QUEUES.maintenance),
    [QUEUES.rollup]: serial(QUEUES.rollup),
  };
  for (const worker of Object.values(workers)) observe(worker, logger, metrics);
  // Without a listener BullMQ prints each error raw on stderr; the Redis connection's
  // own listener (main.ts) already reports an outage once, and BullMQ reconnects.
  for (const queue of Object.values(queues)) queue.on('error', () => {});

  // Job schedulers keep at most one scheduled job, however many workers upsert the same id.
  const registerSchedulers = async () => {
    const rollup = JOBS.rollup;
    await queues[rollup.queue].upsertJobScheduler(
      ROLLUP_SCHEDULER_ID,
      { every: config.ROLLUP_INTERVAL_MS ?? rollup.everyMs },
      { name: 'rollup', data: {}, opts: rollup.options },
    );
    const partitions = JOBS['maintain-partitions'];
    await queues[partitions.queue].upsertJobScheduler(
      PARTITIONS_SCHEDULER_ID,
      { every: partitions.everyMs },
      { name: 'maintain-partitions', data: {}, opts: partitions.options },
    );
  };
  await registerSchedulers();
  const refresh = setInterval(() => {
    registerSchedulers().catch((err: unknown) => logger.warn({ err }, 'could not register the job schedulers; next try in a minute'));
  }, SCHEDULERS_REFRESH_MS);
  refresh.unref();
  const definition = JOBS['maintain-partitions'];
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
        clearInterval(refresh);
        await Promise.all(Object.values(workers).map((worker) => worker.close()));
        await closeQueues(queues);
        logger.info('workers closed');
      })()),
  };
}

/** BullMQ sets finishedOn only when a job lands in the failed set for good, not when it will be retried. */
function failedForGood(job: Job): boolean {
  return job.finishedOn !== undefined;
}

function observe(worker: Worker, logger: Logger, metrics: WorkerMetrics): void {
  const nameOf = (job: Job | undefined) => (job && isJobName(job.name) ? job.name : 'unknown');
  worker.on('completed', (job) => metrics.jobsCompleted.inc({ name: nameOf(job) }));
  worker.on('failed', (job, err) => {
    const final = job !== undefined && failedForGood(job);
    metrics.jobsFailed.inc({ name: nameOf(job), final: String(final) });
    const context = { jobId: job?.id, name: nameOf(job), attemptsMade: job?.attemptsMade, err };
    if (final) logger.error(context, 'job failed');
    else logger.warn(context, 'job attempt failed; it will be retried');
  });
  worker.on('stalled', (jobId) => logger.warn({ jobId, queue: worker.name }, 'job stalled; handed back to the queue'));
  // Without a listener an 'error' event would crash the process; BullMQ reconnects by
  // itself. During an outage it fails at every attempt: one line per 30 s is enough.
  let lastReported = 0;
  worker.on('error', (err) => {
    if (Date.now() - lastReported < 30_000) return;
    lastReported = Date.now();
    logger.warn({ err, queue: worker.name }, 'worker error (repeats are not logged for 30 s)');
  });
}
