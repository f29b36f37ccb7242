import { sql } from 'drizzle-orm';
import type { Database } from '../client.js';

export interface RollupRun {
  /** Events folded into the summaries by this run. */
  events: number;
  lastSeq: number;
  /**
   * Every event whose insert committed before this instant is in the summaries.
   * It moves only when a window reaches the newest event; null until one first has.
   */
  asOf: Date | null;
}

/**
 * Folds events inserted since the last run into the summaries (the SQL function
 * `tally_rollup`, drizzle/0003_rollup.sql). Safe to call from several places at
 * once: runs are serialized in the database. At most `maxEvents` per call, so one
 * transaction stays short after a backlog; call again while it returns a full window.
 */
export async function runRollup(db: Database, maxEvents = 500_000): Promise<RollupRun> {
  const { rows } = await db.execute<{ events: string; last_seq: string; as_of: Date }>(
    sql`SELECT events, last_seq, as_of FROM tally_rollup(${maxEvents}::bigint)`,
  );
  const row = rows[0]!;
  // The state starts at '-infinity', which no Date can hold.
  const asOf = new Date(row.as_of);
  return { events: Number(row.events), lastSeq: Number(row.last_seq), asOf: Number.isFinite(asOf.getTime()) ? asOf : null };
}

/**
 * The last sequence number handed to an insert (0 before the first). Every event
 * stored so far has one no greater, and a rollup waits for inserts still in flight,
 * so a rollup that reaches it has folded them all.
 */
export async function lastEventSeq(db: Database): Promise<number> {
  const { rows } = await db.execute<{ seq: string }>(
    sql`SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS seq FROM analytics_events_seq`,
  );
  return Number(rows[0]?.seq ?? 0);
}

/**
 * How long ago, by the database's clock, the summaries last held every stored
 * event (`asOf`), in ms; null before any rollup reached the newest event.
 */
export async function rollupAgeMs(db: Database): Promise<number | null> {
  const { rows } = await db.execute<{ ms: string | null }>(
    sql`SELECT CASE WHEN isfinite(as_of) THEN extract(epoch FROM clock_timestamp() - as_of) * 1000 END AS ms
        FROM rollup_state WHERE name = 'experiments'`,
  );
  const ms = rows[0]?.ms;
  return ms === null || ms === undefined ? null : Number(ms);
}

export interface RollupProgress extends RollupRun {
  windows: number;
  /** Whether every event stored when the call began is now folded. */
  caughtUp: boolean;
}

/**
 * Rolls up, one window per transaction, until every event stored when the call
 * began is folded, or `budgetMs` has passed (the next call goes on). A window that
 * is not full does not mean the end: inserts that turn out to be duplicates still
 * draw sequence numbers. Events stored meanwhile are left to the next call, so the
 * work is bounded even under steady ingest.
 */
export async function rollUpPending(
  db: Database,
  options: { windowEvents?: number; budgetMs?: number; onWindow?: (run: RollupRun, window: number) => void } = {},
): Promise<RollupProgress> {
  const { windowEvents = 250_000, budgetMs = Number.POSITIVE_INFINITY, onWindow } = options;
  const target = await lastEventSeq(db);
  const started = Date.now();
  let events = 0;
  let windows = 0;
  let run: RollupRun;
  do {
    run = await runRollup(db, windowEvents);
    events += run.events;
    windows += 1;
    onWindow?.(run, windows);
  } while (run.lastSeq < target && Date.now() - started < budgetMs);
  return { events, windows, lastSeq: run.lastSeq, asOf: run.asOf, caughtUp: run.lastSeq >= target };
}

/**
 * Recomputes one experiment's summaries from the raw events the rollup has
 * already folded (`tally_rebuild_experiment`). Returns the exposed sessions found.
 */
export async function rebuildExperiment(db: Database, projectId: string, experimentId: string): Promise<number> {
  const { rows } = await db.execute<{ sessions: string }>(
    sql`SELECT tally_rebuild_experiment(${projectId}::uuid, ${experimentId}) AS sessions`,
  );
  return Number(rows[0]?.sessions ?? 0);
}

/** Projects in which an experiment id has exposures (to resolve `--experiment` without `--project`). */
export async function projectsWithExperiment(db: Database, experimentId: string): Promise<string[]> {
  const { rows } = await db.execute<{ project_id: string }>(
    sql`SELECT project_id FROM experiment_totals WHERE experiment_id = ${experimentId} ORDER BY project_id`,
  );
  return rows.map((row) => row.project_id);
}
