import { sql, type SQL } from 'drizzle-orm';
import type pg from 'pg';
import type { Database } from '../client.js';

/**
 * Time partitions of analytics_events (SQL functions in drizzle/0001 and 0005):
 * made ahead, rows of days without one moved out of the default partition, and
 * whole partitions past the retention dropped. Summaries never read dropped days.
 */

export const PARTITION_INTERVALS = ['day', 'week', 'month'] as const;
export type PartitionInterval = (typeof PARTITION_INTERVALS)[number];

export interface LockOptions {
  /**
   * Longest wait for a table lock. Making a partition waits for inserts in flight
   * and for readers of the default partition (the rollup, exports), and dropping one
   * for every reader and writer of analytics_events; inserts queue behind the
   * waiting statement meanwhile. So wait briefly, give up, and try again later.
   */
  lockTimeoutMs?: number;
  /** Tries before giving up with a PartitionLockError. */
  attempts?: number;
}

/** Partition upkeep gave up waiting for a lock on analytics_events; the next run tries again. */
export class PartitionLockError extends Error {
  override name = 'PartitionLockError';
}

const LOCK_NOT_AVAILABLE = '55P03';

async function underLockTimeout<R extends pg.QueryResultRow>(
  db: Database,
  text: string,
  values: unknown[],
  { lockTimeoutMs = 1_000, attempts = 3 }: LockOptions = {},
): Promise<R[]> {
  for (let attempt = 1; ; attempt++) {
    const client = await db.$client.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      await client.query(`SELECT set_config('lock_timeout', $1, true)`, [`${lockTimeoutMs}ms`]);
      const { rows } = await client.query<R>(text, values);
      await client.query('COMMIT');
      return rows;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      if ((error as { code?: string }).code !== LOCK_NOT_AVAILABLE) {
        // Not handed back to the pool: the connection may be what failed.
        broken = error as Error;
        throw error;
      }
      if (attempt >= attempts) {
        throw new PartitionLockError(
          `analytics_events stayed locked (${attempts} tries of ${lockTimeoutMs} ms; a long export, rollup or rebuild?): partitions not changed, try again later`,
        );
      }
    } finally {
      client.release(broken);
    }
    await new Promise((resolve) => setTimeout(resolve, lockTimeoutMs / 2));
  }
}

/**
 * Makes the partitions holding every UTC day from `daysBack` days ago to
 * `daysAhead` days ahead, of the size in partition_settings; returns how many
 * were new (a month covers many days, so fewer than the days).
 */
export async function ensurePartitions(db: Database, daysBack: number, daysAhead: number, options?: LockOptions): Promise<number> {
  const rows = await underLockTimeout<{ made: number }>(
    db,
    `SELECT tally_ensure_partitions((now() AT TIME ZONE 'UTC')::date - $1::int, (now() AT TIME ZONE 'UTC')::date + $2::int) AS made`,
    [daysBack, daysAhead],
    options,
  );
  return rows[0]?.made ?? 0;
}

/** Drizzle's driver setup hands timestamps back as text in Postgres' format; a number needs no parsing. */
const epochMs = (column: SQL) => sql`(extract(epoch FROM ${column}) * 1000)::float8`;

export interface PartitionSettings {
  interval: PartitionInterval;
  /** Null: raw events are kept for ever. */
  retentionDays: number | null;
  /** When the worker's partition maintenance last ran (and recorded these settings); null if never. */
  maintainedAt: Date | null;
}

/** Records the worker's settings: partitions made from now on (by anyone) have this size. */
export async function savePartitionSettings(
  db: Database,
  settings: { interval: PartitionInterval; retentionDays: number },
): Promise<void> {
  await db.execute(
    sql`UPDATE partition_settings SET partition_interval = ${settings.interval},
      retention_days = ${settings.retentionDays > 0 ? settings.retentionDays : null}, maintained_at = now()`,
  );
}

export async function partitionSettings(db: Database): Promise<PartitionSettings> {
  const { rows } = await db.execute<{ partition_interval: PartitionInterval; retention_days: number | null; maintained_at: number | null }>(
    sql`SELECT partition_interval, retention_days, ${epochMs(sql`maintained_at`)} AS maintained_at FROM partition_settings`,
  );
  const row = rows[0];
  return {
    interval: row?.partition_interval ?? 'day',
    retentionDays: row?.retention_days ?? null,
    maintainedAt: row?.maintained_at ? new Date(row.maintained_at) : null,
  };
}

/**
 * Gives the rows waiting in the default partition (days that had no partition when
 * they arrived: far past or future, or made too late) partitions of their own.
 */
export async function moveOutDefaultPartition(db: Database, options?: LockOptions): Promise<{ partitions: number; rows: number }> {
  const rows = await underLockTimeout<{ partitions: number; moved: string }>(
    db,
    'SELECT partitions, moved FROM tally_move_out_default()',
    [],
    options,
  );
  return { partitions: rows[0]?.partitions ?? 0, rows: Number(rows[0]?.moved ?? 0) };
}

export interface PartitionInfo {
  name: string;
  /** Inclusive. */
  from: Date;
  /** Exclusive. */
  to: Date;
  /** On disk, with indexes and TOAST (pg_total_relation_size). */
  bytes: number;
  /** Postgres' estimate (pg_class.reltuples); null when the partition was never analyzed. */
  estimatedRows: number | null;
}

/** Every time partition, oldest first. */
export async function listPartitions(db: Database): Promise<PartitionInfo[]> {
  const { rows } = await db.execute<{ name: string; lo: number; hi: number; bytes: string; estimated_rows: number | null }>(
    sql`SELECT p.part::text AS name, ${epochMs(sql`p.lo`)} AS lo, ${epochMs(sql`p.hi`)} AS hi, pg_total_relation_size(p.part) AS bytes,
        -- An empty heap has no rows, analyzed or not; -1 means never analyzed.
        CASE WHEN pg_relation_size(p.part) = 0 THEN 0 WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::float8 END AS estimated_rows
      FROM tally_partitions() p JOIN pg_class c ON c.oid = p.part
      ORDER BY p.lo`,
  );
  return rows.map((row) => ({
    name: row.name,
    from: new Date(row.lo),
    to: new Date(row.hi),
    bytes: Number(row.bytes),
    estimatedRows: row.estimated_rows === null ? null : Math.round(row.estimated_rows),
  }));
}

/** Rows (counted exactly) and bytes of the default partition. */
export async function defaultPartitionUsage(db: Database): Promise<{ rows: number; bytes: number }> {
  const { rows } = await db.execute<{ rows: string; bytes: string }>(
    sql`SELECT (SELECT count(*) FROM analytics_events_default) AS rows,
      pg_total_relation_size('analytics_events_default') AS bytes`,
  );
  return { rows: Number(rows[0]?.rows ?? 0), bytes: Number(rows[0]?.bytes ?? 0) };
}

/** Why a partition past the horizon is still there. */
export type KeptReason = 'waiting for the rollup' | 'locked';

export interface RetentionRun {
  dropped: PartitionInfo[];
  /** Past the horizon but still there; the next run tries again. */
  kept: (PartitionInfo & { reason: KeptReason })[];
}

/**
 * Detaches and drops, one transaction each, every partition whose whole range is
 * before `horizon` and whose rows are all in the summaries. Never deletes rows:
 * a partition goes whole or stays. Stops at the first lock timeout, since the
 * others would wait for the same reader, each stalling writers meanwhile.
 */
export async function dropExpiredPartitions(db: Database, horizon: Date, { lockTimeoutMs = 1_000 }: LockOptions = {}): Promise<RetentionRun> {
  const run: RetentionRun = { dropped: [], kept: [] };
  const expired = (await listPartitions(db)).filter((partition) => partition.to.getTime() <= horizon.getTime());
  for (const partition of expired) {
    if (run.kept.at(-1)?.reason === 'locked') {
      run.kept.push({ ...partition, reason: 'locked' });
      continue;
    }
    const { rows } = await db.$client.query<{ outcome: string }>('SELECT tally_drop_partition($1, $2, $3) AS outcome', [
      partition.name,
      horizon,
      `${lockTimeoutMs}ms`,
    ]);
    const outcome = rows[0]?.outcome;
    if (outcome === 'dropped') run.dropped.push(partition);
    else if (outcome === 'waiting for the rollup' || outcome === 'locked') run.kept.push({ ...partition, reason: outcome });
    // 'gone' (dropped meanwhile by another run) and 'not expired' (no clock moves backwards) need nothing.
  }
  return run;
}
