import { and, asc, eq, gt, inArray, sql } from 'drizzle-orm';
import type { Database } from '../client.js';
import { experimentTotals, experimentVariantTotals, rollupState } from '../schema/summaries.js';
import { oncePerDatabase } from './prepared.js';
import type { ExperimentCounts, VariantCounts } from './raw-results.js';

/**
 * Results served from the summaries the rollup keeps: a handful of rows per
 * experiment (variants × goals), whatever the number of raw events.
 */

/** Every event whose insert committed before this instant is in the summaries; the epoch before any rollup. */
export async function rollupAsOf(db: Database): Promise<Date> {
  const [row] = await db.select({ asOf: rollupState.asOf }).from(rollupState).where(eq(rollupState.name, 'experiments'));
  return finiteAsOf(row?.asOf);
}

/** The migration starts `as_of` at '-infinity', which no Date can hold: the epoch instead. */
function finiteAsOf(asOf: Date | null | undefined): Date {
  return asOf && Number.isFinite(asOf.getTime()) ? asOf : new Date(0);
}

export async function experimentResults(
  db: Database,
  projectId: string,
  experimentId: string,
  goal: string | null = null,
): Promise<ExperimentCounts | undefined> {
  const found = await experimentResultsAsOf(db, projectId, experimentId, goal);
  if (!found) return undefined;
  const { asOf: _asOf, ...counts } = found;
  return counts;
}

// goal IN ('', $goal): the overall rows, and the asked goal's rows ('' when none is asked).
const resultsStatement = oncePerDatabase((db) =>
  db
    .select({
      asOf: sql`(SELECT ${rollupState.asOf} FROM ${rollupState} WHERE ${rollupState.name} = 'experiments')`.mapWith(rollupState.asOf),
      excludedSessions: experimentTotals.excludedSessions,
      variant: experimentVariantTotals,
    })
    .from(experimentTotals)
    .leftJoin(
      experimentVariantTotals,
      and(
        eq(experimentVariantTotals.projectId, experimentTotals.projectId),
        eq(experimentVariantTotals.experimentId, experimentTotals.experimentId),
        inArray(experimentVariantTotals.goal, ['', sql.placeholder('goal')]),
      ),
    )
    .where(and(eq(experimentTotals.projectId, sql.placeholder('projectId')), eq(experimentTotals.experimentId, sql.placeholder('experimentId'))))
    .orderBy(asc(experimentVariantTotals.variantKey))
    .prepare('tally_experiment_results'),
);

/**
 * An experiment's results with the `asOf` they are as of, in one statement: a
 * statement reads one snapshot, and the rollup updates the summaries and
 * `rollup_state` in one transaction, so the numbers and `asOf` always agree,
 * without a transaction of their own (one round trip instead of five).
 */
export async function experimentResultsAsOf(
  db: Database,
  projectId: string,
  experimentId: string,
  goal: string | null = null,
): Promise<(ExperimentCounts & { asOf: Date }) | undefined> {
  const rows = await resultsStatement(db).execute({ projectId, experimentId, goal: goal ?? '' });
  const [first] = rows;
  if (!first) return undefined;

  const variantRows = rows.flatMap((r) => (r.variant ? [r.variant] : []));
  const goalRows = new Map(variantRows.filter((r) => r.goal !== '').map((r) => [r.variantKey, r]));
  const variants: VariantCounts[] = [];
  for (const row of variantRows) {
    // A variant whose every session turned out to be excluded keeps a zero row.
    if (row.goal !== '' || row.sessions <= 0) continue;
    const conv = goal === null ? row : goalRows.get(row.variantKey);
    const convertedSessions = conv?.convertedSessions ?? 0;
    variants.push({
      variantKey: row.variantKey,
      sessions: row.sessions,
      pageviewSessions: row.pageviewSessions,
      pageviews: row.pageviews,
      convertedSessions,
      conversions: conv?.conversions ?? 0,
      conversionRate: convertedSessions / row.sessions,
    });
  }
  return { experimentId, goal, excludedSessions: first.excludedSessions, variants, asOf: finiteAsOf(first.asOf as Date | null) };
}

export interface ExperimentListItem {
  experimentId: string;
  /** Sessions with at least one exposure, assigned or excluded. */
  exposedSessions: number;
  excludedSessions: number;
  firstExposureAt: string;
  lastExposureAt: string;
  /** Assigned sessions per variant. */
  variants: { variantKey: string; sessions: number }[];
}

export async function listExperiments(db: Database, projectId: string): Promise<ExperimentListItem[]> {
  return (await listExperimentsAsOf(db, projectId)).experiments;
}

/** AS_OF as `db.execute` returns it (timestamps as text). */
const asOfOf = (text: string | null | undefined) => finiteAsOf(text == null ? null : new Date(text));

/** `asOf` of rollup_state in the statement's snapshot: '-infinity' (no rollup yet) as null. */
const AS_OF = sql`(SELECT CASE WHEN isfinite(as_of) THEN as_of END FROM rollup_state WHERE name = 'experiments')`;

// From rollup_state (one row, made by the migrations): a project without
// experiments still gets a row, which carries asOf.
const listStatement = oncePerDatabase((db) =>
  db
    .select({
      asOf: rollupState.asOf,
      experimentId: experimentTotals.experimentId,
      exposedSessions: experimentTotals.exposedSessions,
      excludedSessions: experimentTotals.excludedSessions,
      firstExposureAt: experimentTotals.firstExposureAt,
      lastExposureAt: experimentTotals.lastExposureAt,
      variantKey: experimentVariantTotals.variantKey,
      sessions: experimentVariantTotals.sessions,
    })
    .from(rollupState)
    .leftJoin(experimentTotals, eq(experimentTotals.projectId, sql.placeholder('projectId')))
    .leftJoin(
      experimentVariantTotals,
      and(
        eq(experimentVariantTotals.projectId, experimentTotals.projectId),
        eq(experimentVariantTotals.experimentId, experimentTotals.experimentId),
        eq(experimentVariantTotals.goal, ''),
        gt(experimentVariantTotals.sessions, 0),
      ),
    )
    .where(eq(rollupState.name, 'experiments'))
    .orderBy(asc(experimentTotals.experimentId), asc(experimentVariantTotals.variantKey))
    .prepare('tally_experiment_list'),
);

/**
 * A project's experiments with their assigned sessions per variant, and the `asOf`
 * they are as of, in one statement (one snapshot, as experimentResultsAsOf).
 */
export async function listExperimentsAsOf(db: Database, projectId: string): Promise<{ experiments: ExperimentListItem[]; asOf: Date }> {
  const rows = await listStatement(db).execute({ projectId });
  const experiments = new Map<string, ExperimentListItem>();
  for (const row of rows) {
    if (row.experimentId === null) continue;
    let experiment = experiments.get(row.experimentId);
    if (!experiment) {
      experiment = {
        experimentId: row.experimentId,
        exposedSessions: row.exposedSessions!,
        excludedSessions: row.excludedSessions!,
        firstExposureAt: row.firstExposureAt!.toISOString(),
        lastExposureAt: row.lastExposureAt!.toISOString(),
        variants: [],
      };
      experiments.set(row.experimentId, experiment);
    }
    if (row.variantKey !== null) experiment.variants.push({ variantKey: row.variantKey, sessions: row.sessions! });
  }
  return { experiments: [...experiments.values()], asOf: finiteAsOf(rows[0]?.asOf) };
}

export interface TimeseriesPoint {
  bucket: string;
  sessions: number;
  convertedSessions: number;
  cumulativeSessions: number;
  cumulativeConvertedSessions: number;
  cumulativeConversionRate: number;
}

export interface ExperimentTimeseries {
  experimentId: string;
  interval: 'hour' | 'day';
  goal: string | null;
  variants: { variantKey: string; points: TimeseriesPoint[] }[];
}

/**
 * Cohorts by first exposure (UTC hour or day) per variant: sessions first exposed
 * in the bucket, how many of them converted, and running totals (whose last point
 * equals the results' sessions and convertedSessions).
 */
export async function experimentTimeseries(
  db: Database,
  projectId: string,
  experimentId: string,
  interval: 'hour' | 'day',
  goal: string | null = null,
): Promise<ExperimentTimeseries | undefined> {
  const found = await experimentTimeseriesAsOf(db, projectId, experimentId, interval, goal);
  if (!found) return undefined;
  const { asOf: _asOf, ...series } = found;
  return series;
}

/** experimentTimeseries with the `asOf` it is as of, in one statement (one snapshot, as experimentResultsAsOf). */
export async function experimentTimeseriesAsOf(
  db: Database,
  projectId: string,
  experimentId: string,
  interval: 'hour' | 'day',
  goal: string | null = null,
): Promise<(ExperimentTimeseries & { asOf: Date }) | undefined> {
  const { rows } = await db.execute<{
    as_of: string | null;
    found: boolean;
    variant_key: string | null;
    bucket: string;
    sessions: string;
    converted: string;
  }>(sql`
    WITH series AS (
      SELECT variant_key, date_trunc(${interval}, bucket, 'UTC') AS bucket,
        sum(sessions) FILTER (WHERE goal = '') AS sessions,
        coalesce(sum(converted_sessions) FILTER (WHERE goal = ${goal ?? ''}), 0) AS converted
      FROM experiment_cohorts
      WHERE project_id = ${projectId} AND experiment_id = ${experimentId} AND goal IN ('', ${goal ?? ''})
      GROUP BY 1, 2
      HAVING sum(sessions) FILTER (WHERE goal = '') > 0
    )
    SELECT ${AS_OF} AS as_of,
      EXISTS (SELECT 1 FROM experiment_totals WHERE project_id = ${projectId} AND experiment_id = ${experimentId}) AS found,
      s.variant_key, s.bucket, s.sessions, s.converted
    -- One row even for an experiment without cohorts: it carries asOf and whether the experiment exists.
    FROM (VALUES (1)) AS one (x)
    LEFT JOIN series s ON true
    ORDER BY s.variant_key, s.bucket`);
  if (!rows[0]?.found) return undefined;
  const variants: ExperimentTimeseries['variants'] = [];
  for (const row of rows) {
    if (row.variant_key === null) continue;
    let series = variants.at(-1);
    if (series?.variantKey !== row.variant_key) {
      series = { variantKey: row.variant_key, points: [] };
      variants.push(series);
    }
    const previous = series.points.at(-1);
    const sessions = Number(row.sessions);
    const convertedSessions = Number(row.converted);
    const cumulativeSessions = (previous?.cumulativeSessions ?? 0) + sessions;
    const cumulativeConvertedSessions = (previous?.cumulativeConvertedSessions ?? 0) + convertedSessions;
    series.points.push({
      bucket: new Date(row.bucket).toISOString(),
      sessions,
      convertedSessions,
      cumulativeSessions,
      cumulativeConvertedSessions,
      cumulativeConversionRate: cumulativeConvertedSessions / cumulativeSessions,
    });
  }
  return { experimentId, interval, goal, variants, asOf: asOfOf(rows[0].as_of) };
}
