import { Queue, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { IngestBatchRowsRef, JobName, JobPayload } from '@tally/contracts';
import { deleteBatchRows, saveBatchRows } from './batch-rows.js';
import { JOBS, QUEUES, type QueueName } from './definitions.js';

export { JOBS, QUEUES, type QueueName } from './definitions.js';
export { createRedis } from './connection.js';
export { batchRowsKey, deleteBatchRows, expireBatchRows, FAILED_BATCH_ROWS_TTL_MS, keepBatchRows, loadBatchRows } from './batch-rows.js';

export type TallyQueues = Record<QueueName, Queue>;

export function createQueues(connection: Redis, prefix: string): TallyQueues {
  const entries = Object.values(QUEUES).map((name) => [name, new Queue(name, { connection, prefix })] as const);
  return Object.fromEntries(entries) as TallyQueues;
}

/** Adds a job with its declared options; the payload type follows from the job name. */
export function addJob<N extends JobName>(
  queues: TallyQueues,
  name: N,
  payload: JobPayload<N>,
  options: { jobId?: string } = {},
): Promise<Job> {
  const definition = JOBS[name];
  return queues[definition.queue].add(name, payload, { ...definition.options, ...options });
}

/** A batch on its way to Redis: its counts and its rows (encodeEventRowBytes in @tally/db). */
export type BatchToQueue = Omit<IngestBatchRowsRef, 'rowsId'> & { rows: Buffer };

/**
 * Queues a batch: its rows first, under a key of their own (batch-rows.ts), then the
 * job that names them, so that no job is ever without its rows. Rows whose job could
 * not be added are deleted again; only a process that dies between the two leaves
 * them behind.
 */
export async function addIngestBatch(
  queues: TallyQueues,
  redis: Redis,
  { rows, ...batch }: BatchToQueue,
): Promise<Job> {
  const prefix = queuePrefix(queues);
  // As addJob does (BullMQ waits for its connection): a producer connection refuses commands until it is up.
  await queues[JOBS['ingest-batch'].queue].waitUntilReady();
  const rowsId = await saveBatchRows(redis, prefix, rows);
  try {
    return await addJob(queues, 'ingest-batch', { ...batch, rowsId });
  } catch (error) {
    await deleteBatchRows(redis, prefix, rowsId).catch(() => {});
    throw error;
  }
}

/** The key prefix the queues were made with (createQueues). */
export function queuePrefix(queues: TallyQueues): string {
  return queues[QUEUES.ingest].opts.prefix!;
}

export async function closeQueues(queues: TallyQueues): Promise<void> {
  await Promise.all(Object.values(queues).map((queue) => queue.close()));
}
