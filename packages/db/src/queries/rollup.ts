import { sql } from 'drizzle-orm';
import type { Database } from '../client.js';

export interface RollupRun {
  /** Events folded into the summaries by this run. */
  events: number;
  lastSeq: number;
  /** Every event whose insert committed before this instant is now in the summaries. */
  asOf: Date;
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
  return { events: Number(row.events), lastSeq: Number(row.last_seq), asOf: new Date(row.as_of) };
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
