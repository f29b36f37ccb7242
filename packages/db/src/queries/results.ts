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
  // The migration starts it at '-infinity', which no Date can hold.
  const asOf = row?.asOf;
  return asOf && Number.isFinite(asOf.getTime()) ? asOf : new Date(0);
}

export async function experimentResults(
  db: Database,
  projectId: string,
  experimentId: string,
  goal: string | null = null,
): Promise<ExperimentCounts | undefined> {
  const [totals] = await db
    .select({ excludedSessions: experimentTotals.excludedSessions })
    .from(experimentTotals)
    .where(and(eq(experimentTotals.projectId, projectId), eq(experimentTotals.experimentId, experimentId)));
  if (!totals) return undefined;

  const rows = await db
    .select()
    .from(experimentVariantTotals)
    .where(
      and(
        eq(experimentVariantTotals.projectId, projectId),
        eq(experimentVariantTotals.experimentId, experimentId),
        inArray(experimentVariantTotals.goal, goal === null ? [''] : ['', goal]),
      ),
    )
    .orderBy(asc(experimentVariantTotals.variantKey));

  const goalRows = new Map(rows.filter((r) => r.goal !== '').map((r) => [r.variantKey, r]));
  const variants: VariantCounts[] = [];
  for (const row of rows) {
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
  return { experimentId, goal, excludedSessions: totals.excludedSessions, variants };
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
