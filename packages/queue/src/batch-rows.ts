import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { JOBS } from './definitions.js';

/**
 * A queued batch's rows wait in Redis beside their ingest job, under a key of their
 * own, as bytes; the job holds the key's id (`rowsId`). Inside the job they would
 * be JSON: escaped and serialized by the ingest API, parsed by the worker, and in
 * both processes strings of a batch's size, which V8 frees only in full collections
 * (BENCHMARKS.md). As bytes they are written once and handed to COPY as they are.
 *
 * The key lives as long as its job needs it: the worker deletes it once the batch
 * is stored, and gives it an expiry once the job has failed for good, a day past
 * the time BullMQ keeps failed jobs, so that rows are there for as long as a failed
 * job can be retried and do not outlive it.
 */
export function batchRowsKey(prefix: string, rowsId: string): string {
  return `${prefix}:ingest-rows:${rowsId}`;
}

/** How long the rows of a job that failed for good stay: as long as BullMQ keeps the job, and a day. */
export const FAILED_BATCH_ROWS_TTL_MS = (JOBS['ingest-batch'].options.removeOnFail.age + 24 * 3_600) * 1_000;

/** Stores a batch's rows under a new id and returns it; the caller adds the job that names it. */
export async function saveBatchRows(redis: Redis, prefix: string, rows: Buffer): Promise<string> {
  const rowsId = randomUUID();
  await redis.set(batchRowsKey(prefix, rowsId), rows);
  return rowsId;
}

/** The rows of a batch, or null when its key is gone. */
export function loadBatchRows(redis: Redis, prefix: string, rowsId: string): Promise<Buffer | null> {
  return redis.getBuffer(batchRowsKey(prefix, rowsId));
}

/** Once the batch is stored, or when its job could not be added. */
export async function deleteBatchRows(redis: Redis, prefix: string, rowsId: string): Promise<void> {
  await redis.del(batchRowsKey(prefix, rowsId));
}

/** When a job that failed for good is retried: its rows stay until it is over again. */
export async function keepBatchRows(redis: Redis, prefix: string, rowsId: string): Promise<void> {
  await redis.persist(batchRowsKey(prefix, rowsId));
}

/** Once its job has failed for good: the rows go a day after BullMQ removes the job. */
export async function expireBatchRows(redis: Redis, prefix: string, rowsId: string): Promise<void> {
  await redis.pexpire(batchRowsKey(prefix, rowsId), FAILED_BATCH_ROWS_TTL_MS);
}
