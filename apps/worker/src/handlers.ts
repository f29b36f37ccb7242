import { UnrecoverableError, type Job } from 'bullmq';
import type { JobName, JobPayload } from '@tally/contracts';
import { ensurePartitions, insertEvents, rollUpPending, type Database } from '@tally/db';
import type { Logger } from '@tally/logger';
import type { WorkerMetrics } from './metrics.js';
import { sqlState } from './postgres-errors.js';

/** What each job returns (kept by BullMQ as the job's return value). */
export interface JobResults {
  'ingest-batch': { inserted: number; duplicates: number };
  'maintain-partitions': { created: number };
  rollup: { events: number; windows: number; lastSeq: number; asOf: string | null; caughtUp: boolean };
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
  /** Most events folded by one rollup transaction. */
  rollupWindowEvents: number;
}

/** After a backlog, one rollup job stops starting new windows past this; the next job goes on. */
const ROLLUP_JOB_BUDGET_MS = 10_000;

export function createHandlers({
  db,
  logger,
  metrics,
  partitionPremakeDays,
  rollupWindowEvents,
}: HandlerDependencies): JobHandlers {
  return {
    'ingest-batch': async ({ projectId, receivedAt, events }, job) => {
      const endTimer = metrics.insertDuration.startTimer();
      let inserted: number;
      try {
        inserted = await insertEvents(db, projectId, receivedAt, events);
      } catch (error) {
        // A data exception (class 22) or a broken constraint (class 23) fails the same way on every attempt.
        const state = sqlState(error);
        if (state?.startsWith('22') || state?.startsWith('23')) {
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

    rollup: async (_payload, job) => {
      const endTimer = metrics.rollupDuration.startTimer();
      const progress = await rollUpPending(db, {
        windowEvents: rollupWindowEvents,
        budgetMs: ROLLUP_JOB_BUDGET_MS,
        onWindow: (run) => metrics.rollupEvents.inc(run.events),
      });
      endTimer();
      if (progress.asOf) metrics.rollupAsOf.set(progress.asOf.getTime() / 1_000);
      if (progress.windows > 1) {
        logger.info({ jobId: job.id, events: progress.events, windows: progress.windows, caughtUp: progress.caughtUp }, 'rollup worked off a backlog');
      }
      const { events, windows, lastSeq, asOf, caughtUp } = progress;
      return { events, windows, lastSeq, asOf: asOf?.toISOString() ?? null, caughtUp };
    },
  };
}
