import type { Job } from 'bullmq';
import type { IngestBatchStored } from '@tally/contracts';
import type { Logger } from '@tally/logger';

/**
 * Replaces a completed ingest job's data with its counts (IngestBatchStored).
 *
 * BullMQ keeps completed ingest jobs with their data (the last 1,000, for an hour,
 * so that Bull Board shows what went through), and a batch's rows are nearly all of
 * a job's size: Redis otherwise held every event of the last 1,000 batches, about
 * 0.5 GB with batches of 2,000 (BENCHMARKS.md), whatever the backlog, and the
 * ingest API's overload check took that memory for one.
 *
 * Called once the job is completed, so no attempt of it can ever meet its data
 * without the rows. A job already removed, or Redis out of reach, leaves the rows
 * until the job itself goes: nothing is lost either way.
 */
export function dropStoredRows(job: Job, logger: Logger): void {
  const data = job.data as { projectId: string; receivedAt: number; count?: number; events?: unknown[] };
  const kept: IngestBatchStored = {
    projectId: data.projectId,
    receivedAt: data.receivedAt,
    count: data.count ?? data.events?.length ?? 0,
  };
  job.updateData(kept).catch((err: unknown) => logger.debug({ err, jobId: job.id }, "could not drop a stored batch's rows from its job"));
}
