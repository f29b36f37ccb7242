import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { TallyQueues } from '@tally/queue';

export type WorkerMetrics = ReturnType<typeof createWorkerMetrics>;

const QUEUE_STATES = ['waiting', 'active', 'delayed', 'failed'] as const;

/** Everything the worker counts, registered on the app's registry (the one `/metrics` serves). */
export function createWorkerMetrics(registry: Registry, queues: TallyQueues) {
  const registers = [registry];
  return {
    jobsCompleted: new Counter({
      name: 'tally_worker_jobs_completed_total',
      help: 'Jobs completed, by job name',
      labelNames: ['name'],
      registers,
    }),
    jobsFailed: new Counter({
      name: 'tally_worker_jobs_failed_total',
      help: 'Failed job attempts, by job name; final="true" when the job will not be retried',
      labelNames: ['name', 'final'],
      registers,
    }),
    eventsInserted: new Counter({
      name: 'tally_worker_events_inserted_total',
      help: 'Events stored by ingest jobs',
      registers,
    }),
    duplicatesSkipped: new Counter({
      name: 'tally_worker_events_duplicate_total',
      help: 'Events of ingest jobs already stored (client or job retries), skipped',
      registers,
    }),
    insertDuration: new Histogram({
      name: 'tally_worker_insert_duration_seconds',
      help: 'Time to insert one batch into Postgres',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    rollupEvents: new Counter({
      name: 'tally_rollup_events_total',
      help: 'Events folded into the experiment summaries',
      registers,
    }),
    rollupsYielded: new Counter({
      name: 'tally_rollup_yielded_total',
      help: 'Rollup turns skipped because ingest jobs were waiting (ROLLUP_YIELD_MAX_MS)',
      registers,
    }),
    rollupDuration: new Histogram({
      name: 'tally_rollup_duration_seconds',
      help: 'Time of one rollup job (one or more windows)',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    rollupAsOf: new Gauge({
      name: 'tally_rollup_as_of_timestamp_seconds',
      help: 'Every event stored before this instant is in the summaries; time() minus this is how stale results are',
      registers,
    }),
    partitionsCreated: new Counter({
      name: 'tally_partitions_created_total',
      help: 'Raw-event partitions made, ahead of time ("premake") or for rows waiting in the default partition ("move_out")',
      labelNames: ['reason'],
      registers,
    }),
    rowsMovedOut: new Counter({
      name: 'tally_partition_rows_moved_out_total',
      help: 'Rows moved from the default partition into partitions of their own',
      registers,
    }),
    partitionsDropped: new Counter({
      name: 'tally_partitions_dropped_total',
      help: 'Raw-event partitions dropped by retention (RETENTION_DAYS)',
      registers,
    }),
    partitionBytesDropped: new Counter({
      name: 'tally_partition_dropped_bytes_total',
      help: 'Disk space of the partitions dropped by retention, with their indexes',
      registers,
    }),
    partitionsExpiredKept: new Gauge({
      name: 'tally_partitions_expired_kept',
      help: 'Partitions past the retention that the last maintenance run could not drop yet (rollup behind, or table locked)',
      registers,
    }),
    queueJobs: new Gauge({
      name: 'tally_queue_jobs',
      help: 'Jobs per queue and state, read from Redis when scraped',
      labelNames: ['queue', 'state'],
      registers,
      async collect() {
        this.reset();
        await Promise.all(
          Object.entries(queues).map(async ([name, queue]) => {
            // A scrape must answer even when Redis does not: the gauge is then left empty.
            const counts = await withTimeout(queue.getJobCounts(...QUEUE_STATES), 1_000).catch(() => undefined);
            if (!counts) return;
            for (const state of QUEUE_STATES) this.set({ queue: name, state }, counts[state] ?? 0);
          }),
        );
      },
    }),
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
