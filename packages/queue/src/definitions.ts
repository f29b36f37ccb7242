import type { JobsOptions } from 'bullmq';
import type { JobName } from '@tally/contracts';

export const QUEUES = {
  /** Batches accepted by the ingest API, waiting to be inserted. */
  ingest: 'ingest',
  /** Scheduled upkeep: partitions. */
  maintenance: 'maintenance',
  /**
   * The rollup, every second or so. A queue of its own so that slow upkeep (moving
   * rows out of the default partition) never delays the freshness of results.
   */
  rollup: 'rollup',
} as const;
export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

interface JobDefinition {
  queue: QueueName;
  options: JobsOptions;
  /** Present for jobs the worker schedules itself (BullMQ job schedulers). */
  everyMs?: number;
}

/**
 * Every job with its settings, in one place. `satisfies Record<JobName, …>` makes a
 * job without a definition fail to compile, and the worker's handler map is typed
 * from the same names.
 */
export const JOBS = {
  'ingest-batch': {
    queue: QUEUES.ingest,
    options: {
      // Inserts are idempotent, so retrying is always safe; ~8½ min of backoff (1 s doubling to 256 s) rides
      // out a Postgres restart or failover before the job lands in the failed set.
      attempts: 10,
      backoff: { type: 'exponential', delay: 1_000 },
      removeOnComplete: { age: 3_600, count: 1_000 },
      removeOnFail: { age: 14 * 24 * 3_600 },
    },
  },
  'maintain-partitions': {
    queue: QUEUES.maintenance,
    everyMs: 60 * 60 * 1_000,
    options: {
      attempts: 3,
      backoff: { type: 'exponential', delay: 5_000 },
      removeOnComplete: { count: 100 },
      removeOnFail: { count: 100 },
    },
  },
  rollup: {
    queue: QUEUES.rollup,
    // The worker's ROLLUP_INTERVAL_MS overrides this when it registers the scheduler.
    everyMs: 1_000,
    options: {
      // The next run comes within a second and takes over whatever this one left.
      attempts: 1,
      removeOnComplete: { count: 50 },
      removeOnFail: { age: 7 * 24 * 3_600, count: 1_000 },
    },
  },
} as const satisfies Record<JobName, JobDefinition>;
