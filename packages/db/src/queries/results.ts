import { and, asc, eq, gt, inArray, sql } from 'drizzle-orm';
import type { Database } from '../client.js';
import { experimentTotals, experimentVariantTotals, rollupState } from '../schema/summaries.js';
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
  const rows = await db
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
        inArray(experimentVariantTotals.goal, goal === null ? [''] : ['', goal]),
      ),
    )
    .where(and(eq(experimentTotals.projectId, projectId), eq(experimentTotals.experimentId, experimentId)))
    .orderBy(asc(experimentVariantTotals.variantKey));
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
  const experiments = await db
    .select()
    .from(experimentTotals)
    .where(eq(experimentTotals.projectId, projectId))
    .orderBy(asc(experimentTotals.experimentId));
  const variants = await db
    .select({
      experimentId: experimentVariantTotals.experimentId,
      variantKey: experimentVariantTotals.variantKey,
      sessions: experimentVariantTotals.sessions,
    })
    .from(experimentVariantTotals)
    .where(
      and(
        eq(experimentVariantTotals.projectId, projectId),
        eq(experimentVariantTotals.goal, ''),
        gt(experimentVariantTotals.sessions, 0),
      ),
    )
    .orderBy(asc(experimentVariantTotals.experimentId), asc(experimentVariantTotals.variantKey));
  return experiments.map((e) => ({
    experimentId: e.experimentId,
    exposedSessions: e.exposedSessions,
    excludedSessions: e.excludedSessions,
    firstExposureAt: e.firstExposureAt.toISOString(),
    lastExposureAt: e.lastExposureAt.toISOString(),
    variants: variants
      .filter((v) => v.experimentId === e.experimentId)
      .map((v) => ({ variantKey: v.variantKey, sessions: v.sessions })),
  }));
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
  const { rows } = await db.execute<{ variant_key: string; bucket: Date; sessions: string; converted: string }>(sql`
    SELECT variant_key, date_trunc(${interval}, bucket, 'UTC') AS bucket,
      sum(sessions) FILTER (WHERE goal = '') AS sessions,
      coalesce(sum(converted_sessions) FILTER (WHERE goal = ${goal ?? ''}), 0) AS converted
    FROM experiment_cohorts
    WHERE project_id = ${projectId} AND experiment_id = ${experimentId} AND goal IN ('', ${goal ?? ''})
    GROUP BY 1, 2
    HAVING sum(sessions) FILTER (WHERE goal = '') > 0
    ORDER BY 1, 2`);
  if (rows.length === 0) {
    const exists = await db
      .select({ id: experimentTotals.experimentId })
      .from(experimentTotals)
      .where(and(eq(experimentTotals.projectId, projectId), eq(experimentTotals.experimentId, experimentId)));
    if (exists.length === 0) return undefined;
  }
  const variants: ExperimentTimeseries['variants'] = [];
  for (const row of rows) {
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
  return { experimentId, interval, goal, variants };
}
