import { UnrecoverableError, type Job } from 'bullmq';
import type { JobName, JobPayload } from '@tally/contracts';
import { DAY_MS } from '@tally/config';
import {
  dropExpiredPartitions,
  ensurePartitions,
  encodeEventRows,
  EventRowsError,
  insertEventRows,
  moveOutDefaultPartition,
  PartitionLockError,
  rollupAgeMs,
  rollUpPending,
  savePartitionSettings,
  type Database,
  type EventRows,
  type KeptReason,
  type PartitionInterval,
} from '@tally/db';
import type { Logger } from '@tally/logger';
import type { WorkerMetrics } from './metrics.js';
import { sqlState } from './postgres-errors.js';

/** What each job returns (kept by BullMQ as the job's return value). */
export interface JobResults {
  'ingest-batch': { inserted: number; duplicates: number };
  'maintain-partitions': {
    /** Partitions made ahead of time. */
    created: number;
    /** Partitions made for rows waiting in the default partition, and those rows. */
    movedOut: number;
    rowsMovedOut: number;
    /** Partitions dropped by retention, and those past it that could not be dropped yet. */
    dropped: string[];
    kept: { partition: string; reason: KeptReason }[];
  };
  rollup:
    | { events: number; windows: number; lastSeq: number; asOf: string | null; caughtUp: boolean }
    /** The turn skipped, inserts first (RollupYield). */
    | { yielded: true; waitingJobs: number; ageMs: number };
}

/** One handler per job name: a job added to @tally/contracts without a handler here fails to compile. */
export type JobHandlers = {
  [N in JobName]: (payload: JobPayload<N>, job: Job) => Promise<JobResults[N]>;
};

export interface HandlerDependencies {
  db: Database;
  logger: Logger;
  metrics: WorkerMetrics;
  partitions: {
    premakeDays: number;
    interval: PartitionInterval;
    /** 0 keeps raw events for ever. */
    retentionDays: number;
  };
  /** Most events folded by one rollup transaction. */
  rollupWindowEvents: number;
  rollupYield: RollupYield;
  /** A queued batch's rows, from beside its job (@tally/queue's batch-rows); null when they are gone. */
  loadBatchRows: (rowsId: string) => Promise<Buffer | null>;
}

/**
 * When the rollup lets inserts go first. Under a backlog both compete for the same
 * cores, and every event waits in Redis's memory until it is stored; the summaries
 * can wait a little, their `asOf` says how fresh they are, and a later, larger window
 * costs less per event (fewer sessions folded again in the next window).
 */
export interface RollupYield {
  /** Ingest jobs waiting for a worker. */
  waitingIngestJobs: () => Promise<number>;
  /** From this many waiting jobs on, inserting is behind. */
  behindAt: number;
  /** Turns are skipped only while the results are younger than this; 0: never. */
  maxMs: number;
}

/** After a backlog, one rollup job stops starting new windows past this; the next job goes on. */
const ROLLUP_JOB_BUDGET_MS = 10_000;

export function createHandlers({
  db,
  logger,
  metrics,
  partitions,
  rollupWindowEvents,
  rollupYield,
  loadBatchRows,
}: HandlerDependencies): JobHandlers {
  /** The rows to store: from beside the job as the ingest API queues them, or from jobs an earlier version queued. */
  const rowsOf = async (payload: JobPayload<'ingest-batch'>): Promise<{ rows: EventRows; count: number }> => {
    if ('rows' in payload) return payload;
    if ('events' in payload) {
      return { rows: encodeEventRows(payload.projectId, payload.receivedAt, payload.events), count: payload.events.length };
    }
    const rows = await loadBatchRows(payload.rowsId);
    // Deleted once the batch was stored, or expired after the job failed for good: running it again stores nothing.
    if (rows === null) {
      throw new UnrecoverableError(`The batch's rows (${payload.rowsId}) are no longer in Redis: it was stored already, or failed too long ago`);
    }
    return { rows, count: payload.count };
  };

  /** The skipped turn's result, or undefined when the rollup should run. */
  const yieldToInserts = async (): Promise<JobResults['rollup'] | undefined> => {
    if (rollupYield.maxMs === 0) return undefined;
    const waitingJobs = await rollupYield.waitingIngestJobs();
    if (waitingJobs < rollupYield.behindAt) return undefined;
    const ageMs = await rollupAgeMs(db);
    if (ageMs === null || ageMs >= rollupYield.maxMs) return undefined;
    return { yielded: true, waitingJobs, ageMs: Math.round(ageMs) };
  };

  return {
    'ingest-batch': async (payload, job) => {
      const { projectId } = payload;
      const { rows, count } = await rowsOf(payload);
      const endTimer = metrics.insertDuration.startTimer();
      let inserted: number;
      try {
        inserted = await insertEventRows(db, rows, count);
      } catch (error) {
        // A data exception (class 22), a broken constraint (class 23) or malformed rows fail the same way on every attempt.
        if (error instanceof EventRowsError) throw new UnrecoverableError(`The batch's rows are malformed: ${error.message}`);
        const state = sqlState(error);
        if (state?.startsWith('22') || state?.startsWith('23')) {
          throw new UnrecoverableError(`Postgres refused the batch: ${(error as Error).message}`);
        }
        throw error;
      }
      endTimer();
      const duplicates = count - inserted;
      metrics.eventsInserted.inc(inserted);
      metrics.duplicatesSkipped.inc(duplicates);
      logger.debug({ jobId: job.id, projectId, events: count, inserted, duplicates }, 'batch inserted');
      return { inserted, duplicates };
    },

    'maintain-partitions': async (_payload, job) => {
      const { premakeDays, interval, retentionDays } = partitions;
      // Recorded first: the partitions made below, and any `tally partitions ensure`, take this size.
      await savePartitionSettings(db, { interval, retentionDays });

      // Each step runs even when another found the table locked; the job then fails, to be retried soon.
      const locked: PartitionLockError[] = [];
      const unlessLocked = async <T>(step: () => Promise<T>, otherwise: T): Promise<T> => {
        try {
          return await step();
        } catch (error) {
          if (!(error instanceof PartitionLockError)) throw error;
          locked.push(error);
          return otherwise;
        }
      };

      const created = await unlessLocked(() => ensurePartitions(db, 1, premakeDays), 0);
      metrics.partitionsCreated.inc({ reason: 'premake' }, created);
      if (created > 0) logger.info({ jobId: job.id, created, interval, daysAhead: premakeDays }, 'partitions made');

      // Rows of days that had no partition (far past or future, or made late) get one, then follow the same retention.
      const moved = await unlessLocked(() => moveOutDefaultPartition(db), { partitions: 0, rows: 0 });
      metrics.partitionsCreated.inc({ reason: 'move_out' }, moved.partitions);
      metrics.rowsMovedOut.inc(moved.rows);
      if (moved.rows > 0) {
        logger.info({ jobId: job.id, partitions: moved.partitions, rows: moved.rows }, 'rows moved out of the default partition');
      }

      const retention =
        retentionDays > 0 ? await dropExpiredPartitions(db, new Date(Date.now() - retentionDays * DAY_MS)) : { dropped: [], kept: [] };
      for (const partition of retention.dropped) {
        metrics.partitionsDropped.inc();
        metrics.partitionBytesDropped.inc(partition.bytes);
        logger.info(
          {
            jobId: job.id,
            partition: partition.name,
            from: partition.from.toISOString(),
            to: partition.to.toISOString(),
            bytes: partition.bytes,
            estimatedRows: partition.estimatedRows,
            retentionDays,
          },
          'partition dropped by retention',
        );
      }
      metrics.partitionsExpiredKept.set(retention.kept.length);
      if (retention.kept.length > 0) {
        const count = (reason: KeptReason) => retention.kept.filter((partition) => partition.reason === reason).length;
        logger.warn(
          { jobId: job.id, waitingForRollup: count('waiting for the rollup'), locked: count('locked'), retentionDays },
          'partitions past the retention kept for now; the next run tries again',
        );
      }

      if (locked.length > 0) throw locked[0]!;
      return {
        created,
        movedOut: moved.partitions,
        rowsMovedOut: moved.rows,
        dropped: retention.dropped.map((partition) => partition.name),
        kept: retention.kept.map((partition) => ({ partition: partition.name, reason: partition.reason })),
      };
    },

    rollup: async (_payload, job) => {
      const yielded = await yieldToInserts();
      if (yielded) {
        metrics.rollupsYielded.inc();
        logger.debug({ jobId: job.id, ...yielded }, 'rollup turn skipped: ingest jobs are waiting');
        return yielded;
      }
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
