import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { IngestBatchStored } from '@tally/contracts';
import type { Logger } from '@tally/logger';
import { deleteBatchRows, expireBatchRows } from '@tally/queue';

/**
 * What happens to a batch's rows once its ingest job is over.
 *
 * BullMQ keeps completed ingest jobs (the last 1,000, for an hour, so that Bull
 * Board shows what went through), and a batch's rows are nearly all of its size:
 * Redis otherwise held every event of the last 1,000 batches, about 0.5 GB with
 * batches of 2,000 (BENCHMARKS.md), whatever the backlog, and the ingest API's
 * overload check took that memory for one. So once a job is completed its rows go:
 * the key beside it is deleted, or, for a job that an earlier version queued with
 * its rows inside, its data is replaced with its counts (IngestBatchStored). A job
 * that failed for good keeps its rows for as long as it can be retried.
 *
 * Called once the job is completed (or failed for good), so no attempt of it can
 * ever meet its data without the rows. Redis out of reach leaves the rows where
 * they are: nothing is lost either way.
 */
export function rowsAfterJob(redis: Redis, prefix: string, logger: Logger) {
  const warnIfFails = (what: string, job: Job) => (err: unknown) => logger.warn({ err, jobId: job.id }, what);
  return {
    completed(job: Job): void {
      const data = job.data as { projectId: string; receivedAt: number; count?: number; rowsId?: string; rows?: string; events?: unknown[] };
      if (data.rowsId !== undefined) {
        deleteBatchRows(redis, prefix, data.rowsId).catch(warnIfFails("could not delete a stored batch's rows", job));
        return;
      }
      const kept: IngestBatchStored = {
        projectId: data.projectId,
        receivedAt: data.receivedAt,
        count: data.count ?? data.events?.length ?? 0,
      };
      // Fails too when the job was removed meanwhile, with its rows.
      job.updateData(kept).catch((err: unknown) => logger.debug({ err, jobId: job.id }, "could not drop a stored batch's rows from its job"));
    },
    failedForGood(job: Job): void {
      const { rowsId } = job.data as { rowsId?: string };
      if (rowsId === undefined) return;
      expireBatchRows(redis, prefix, rowsId).catch(warnIfFails("could not set when a failed batch's rows expire", job));
    },
  };
}
