import { Type, type Static } from '@sinclair/typebox';
import { commonEnv, httpEnv, loadConfig, retentionEnv } from '@tally/config';
import { PARTITION_INTERVALS } from '@tally/db';

export const WorkerEnv = Type.Object({
  ...commonEnv,
  ...httpEnv(3400),
  WORKER_CONCURRENCY: Type.Integer({
    default: 4,
    minimum: 1,
    maximum: 256,
    description: 'Ingest jobs processed at once by this process',
  }),
  DB_POOL_SIZE: Type.Optional(
    Type.Integer({ minimum: 1, maximum: 1_000, description: 'Postgres connections; default WORKER_CONCURRENCY + 3' }),
  ),
  ...retentionEnv,
  PARTITION_PREMAKE_DAYS: Type.Integer({
    default: 7,
    minimum: 1,
    maximum: 366,
    description: 'Days ahead of today that always have a partition',
  }),
  PARTITION_INTERVAL: Type.Union(
    PARTITION_INTERVALS.map((interval) => Type.Literal(interval)),
    {
      default: 'day',
      description:
        'Range of each raw-event partition: day, week (from Monday) or month (UTC). A change applies to partitions made from then on',
    },
  ),
  ROLLUP_INTERVAL_MS: Type.Integer({
    default: 1_000,
    minimum: 100,
    maximum: 3_600_000,
    description: 'How often the rollup folds new events into the summaries the query API serves',
  }),
  ROLLUP_YIELD_MAX_MS: Type.Integer({
    default: 10_000,
    minimum: 0,
    maximum: 3_600_000,
    description:
      'While ingest jobs wait for a worker (at least WORKER_CONCURRENCY of them), the rollup skips its turns until the ' +
      'results are this old: stored events come first, and one larger window later costs less per event. 0: never skips',
  }),
  ROLLUP_WINDOW_EVENTS: Type.Integer({
    default: 250_000,
    minimum: 1_000,
    maximum: 10_000_000,
    description: 'Most events one rollup transaction folds; a backlog is worked off in several',
  }),
  JOB_LOCK_DURATION_MS: Type.Integer({
    default: 30_000,
    minimum: 1_000,
    maximum: 600_000,
    description:
      "How long a job stays locked to this worker without renewal; after a crash its jobs run again elsewhere once it expires",
  }),
  STALLED_INTERVAL_MS: Type.Integer({
    default: 30_000,
    minimum: 1_000,
    maximum: 600_000,
    description: 'How often this worker looks for jobs whose worker died (expired locks) and puts them back',
  }),
  MIGRATE_ON_START: Type.Boolean({
    default: true,
    description: 'Apply pending migrations before taking jobs (idempotent, under an advisory lock)',
  }),
});

export type WorkerConfig = Omit<Static<typeof WorkerEnv>, 'DB_POOL_SIZE'> & { DB_POOL_SIZE: number };

export function loadWorkerConfig(env: Record<string, string | undefined> = process.env): WorkerConfig {
  const config = loadConfig(WorkerEnv, env);
  // One connection per concurrent insert, plus the rollup, the maintenance job and readiness checks.
  return { ...config, DB_POOL_SIZE: config.DB_POOL_SIZE ?? config.WORKER_CONCURRENCY + 3 };
}
