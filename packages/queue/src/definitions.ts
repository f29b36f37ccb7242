import type { JobsOptions } from 'bullmq';
import type { JobName } from '@tally/contracts';

export const QUEUES = {
  /** Batches accepted by the ingest API, waiting to be inserted. */
  ingest: 'ingest',
  /** Scheduled upkeep: partitions (and later rollups). */
  maintenance: 'maintenance',
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
      // Inserts are idempotent, so retrying is always safe; ~20 min of backoff rides
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
} as const satisfies Record<JobName, JobDefinition>;
