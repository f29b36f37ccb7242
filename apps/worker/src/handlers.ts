import { UnrecoverableError, type Job } from 'bullmq';
import type { JobName, JobPayload } from '@tally/contracts';
import { ensurePartitions, insertEvents, type Database } from '@tally/db';
import type { Logger } from '@tally/logger';
import type { WorkerMetrics } from './metrics.js';
import { sqlState } from './postgres-errors.js';

/** What each job returns (kept by BullMQ as the job's return value). */
export interface JobResults {
  'ingest-batch': { inserted: number; duplicates: number };
  'maintain-partitions': { created: number };
}

/** One handler per job name: a job added to @tally/contracts without a handler here fails to compile. */
export type JobHandlers = {
  [N in JobName]: (payload: JobPayload<N>, job: Job) => Promise<JobResults[N]>;
};

export interface HandlerDependencies {
  db: Database;
  logger: Logger;
  metrics: WorkerMetrics;
  partitionPremakeDays: number;
}

export function createHandlers({ db, logger, metrics, partitionPremakeDays }: HandlerDependencies): JobHandlers {
  return {
    'ingest-batch': async ({ projectId, receivedAt, events }, job) => {
      const endTimer = metrics.insertDuration.startTimer();
      let inserted: number;
      try {
        inserted = await insertEvents(db, projectId, receivedAt, events);
      } catch (error) {
        // A data exception (SQLSTATE class 22) fails the same way on every attempt.
        if (sqlState(error)?.startsWith('22')) {
          throw new UnrecoverableError(`Postgres refused the batch: ${(error as Error).message}`);
        }
        throw error;
      }
      endTimer();
      const duplicates = events.length - inserted;
      metrics.eventsInserted.inc(inserted);
      metrics.duplicatesSkipped.inc(duplicates);
      logger.debug({ jobId: job.id, projectId, events: events.length, inserted, duplicates }, 'batch inserted');
      return { inserted, duplicates };
    },

    'maintain-partitions': async (_payload, job) => {
      const created = await ensurePartitions(db, 1, partitionPremakeDays);
      if (created > 0) logger.info({ jobId: job.id, created, daysAhead: partitionPremakeDays }, 'partitions made');
      return { created };
    },
  };
}
