import { sql } from 'drizzle-orm';
import type { Database } from '../client.js';
import type { ExperimentListItem, ExperimentTimeseries } from './results.js';

/**
 * Experiment numbers computed straight from raw events, following the exact
 * semantics of the design (first exposure, exclusion of sessions that saw several
 * variants, only events at or after first exposure count). This scans the
 * experiment's sessions, so it is the reference the summaries are checked against
 * and the fallback for repairs, not something to serve per request at scale.
 */

export interface VariantCounts {
  variantKey: string;
  sessions: number;
  pageviewSessions: number;
  pageviews: number;
  convertedSessions: number;
  conversions: number;
  conversionRate: number;
}

export interface ExperimentCounts {
  experimentId: string;
  goal: string | null;
  excludedSessions: number;
  variants: VariantCounts[];
}

export async function rawExperimentResults(
  db: Database,
  projectId: string,
  experimentId: string,
  goal: string | null = null,
): Promise<ExperimentCounts | undefined> {
  const { rows } = await db.execute<{
    variant_key: string | null;
    sessions: string;
    pageview_sessions: string;
    pageviews: string;
    converted_sessions: string;
    conversions: string;
  }>(sql`
    WITH exposed AS (
      SELECT session_id, min(event_time) AS first_exposure,
        CASE WHEN count(DISTINCT variant_key) = 1 THEN min(variant_key) END AS variant_key
      FROM analytics_events
      WHERE project_id = ${projectId} AND experiment_id = ${experimentId} AND event_type = 'EXPOSURE'
      GROUP BY session_id
    ), per_session AS (
      SELECT x.variant_key, counted.pageviews, counted.conversions
      FROM exposed x
      LEFT JOIN LATERAL (
        SELECT count(*) FILTER (WHERE e.event_type = 'PAGEVIEW') AS pageviews,
          count(*) FILTER (WHERE e.event_type = 'CONVERSION' AND (${goal}::text IS NULL OR e.goal = ${goal}::text)) AS conversions
        FROM analytics_events e
        WHERE e.project_id = ${projectId} AND e.session_id = x.session_id AND e.event_time >= x.first_exposure
          AND e.event_type IN ('PAGEVIEW', 'CONVERSION')
      ) counted ON x.variant_key IS NOT NULL
    )
    SELECT variant_key,
      count(*) AS sessions,
      count(*) FILTER (WHERE pageviews > 0) AS pageview_sessions,
      coalesce(sum(pageviews), 0) AS pageviews,
      count(*) FILTER (WHERE conversions > 0) AS converted_sessions,
      coalesce(sum(conversions), 0) AS conversions
    FROM per_session
    GROUP BY variant_key
    ORDER BY variant_key`);
  if (rows.length === 0) return undefined;

  let excludedSessions = 0;
  const variants: VariantCounts[] = [];
  for (const row of rows) {
    if (row.variant_key === null) {
      excludedSessions = Number(row.sessions);
      continue;
    }
    const sessions = Number(row.sessions);
    const convertedSessions = Number(row.converted_sessions);
    variants.push({
      variantKey: row.variant_key,
      sessions,
      pageviewSessions: Number(row.pageview_sessions),
      pageviews: Number(row.pageviews),
      convertedSessions,
      conversions: Number(row.conversions),
      conversionRate: sessions === 0 ? 0 : convertedSessions / sessions,
    });
  }
  return { experimentId, goal, excludedSessions, variants };
}

/** The oracle of `listExperiments`: the same list, straight from raw events. */
export async function rawExperimentList(db: Database, projectId: string): Promise<ExperimentListItem[]> {
  const { rows } = await db.execute<{
    experiment_id: string;
    variant_key: string | null;
    is_total: boolean;
    sessions: string;
    excluded: string;
    first_at: Date;
    last_at: Date;
  }>(sql`
    WITH exposed AS (
      SELECT experiment_id, session_id, min(event_time) AS first_at, max(event_time) AS last_at,
        CASE WHEN count(DISTINCT variant_key) = 1 THEN min(variant_key) END AS variant_key
      FROM analytics_events
      WHERE project_id = ${projectId} AND event_type = 'EXPOSURE' AND experiment_id IS NOT NULL
      GROUP BY experiment_id, session_id
    )
    SELECT experiment_id, variant_key, grouping(variant_key) = 1 AS is_total, count(*) AS sessions,
      count(*) FILTER (WHERE variant_key IS NULL) AS excluded, min(first_at) AS first_at, max(last_at) AS last_at
    FROM exposed
    GROUP BY GROUPING SETS ((experiment_id), (experiment_id, variant_key))
    ORDER BY experiment_id COLLATE "C", grouping(variant_key) DESC, variant_key COLLATE "C"`);
  const experiments: ExperimentListItem[] = [];
  for (const row of rows) {
    if (row.is_total) {
      experiments.push({
        experimentId: row.experiment_id,
        exposedSessions: Number(row.sessions),
        excludedSessions: Number(row.excluded),
        firstExposureAt: new Date(row.first_at).toISOString(),
        lastExposureAt: new Date(row.last_at).toISOString(),
        variants: [],
      });
    } else if (row.variant_key !== null) {
      experiments.at(-1)!.variants.push({ variantKey: row.variant_key, sessions: Number(row.sessions) });
    }
  }
  return experiments;
}

/** The oracle of `experimentTimeseries`: cohorts by first exposure and running totals, from raw events. */
export async function rawExperimentTimeseries(
  db: Database,
  projectId: string,
  experimentId: string,
  interval: 'hour' | 'day',
  goal: string | null = null,
): Promise<ExperimentTimeseries | undefined> {
  const { rows } = await db.execute<{
    variant_key: string | null;
    bucket: Date | null;
    sessions: string;
    converted: string;
    cumulative_sessions: string | null;
    cumulative_converted: string | null;
  }>(sql`
    WITH exposed AS (
      SELECT session_id, min(event_time) AS first_exposure,
        CASE WHEN count(DISTINCT variant_key) = 1 THEN min(variant_key) END AS variant_key
      FROM analytics_events
      WHERE project_id = ${projectId} AND experiment_id = ${experimentId} AND event_type = 'EXPOSURE'
      GROUP BY session_id
    ), cohorts AS (
      SELECT x.variant_key, date_trunc(${interval}, x.first_exposure, 'UTC') AS bucket, count(*) AS sessions,
        count(*) FILTER (WHERE EXISTS (
          SELECT 1 FROM analytics_events e
          WHERE e.project_id = ${projectId} AND e.session_id = x.session_id AND e.event_type = 'CONVERSION'
            AND e.event_time >= x.first_exposure AND (${goal}::text IS NULL OR e.goal = ${goal}::text)
        )) AS converted
      FROM exposed x WHERE x.variant_key IS NOT NULL
      GROUP BY 1, 2
    )
    SELECT * FROM (
      SELECT variant_key, bucket, sessions, converted,
        sum(sessions) OVER running AS cumulative_sessions, sum(converted) OVER running AS cumulative_converted
      FROM cohorts
      WINDOW running AS (PARTITION BY variant_key ORDER BY bucket)
      -- A row without a variant: the experiment exists even when every session is excluded.
      UNION ALL SELECT NULL, NULL, 0, 0, NULL, NULL WHERE EXISTS (SELECT 1 FROM exposed)
    ) series
    ORDER BY variant_key COLLATE "C", bucket`);
  if (rows.length === 0) return undefined;
  const variants: ExperimentTimeseries['variants'] = [];
  for (const row of rows) {
    if (row.variant_key === null) continue;
    if (variants.at(-1)?.variantKey !== row.variant_key) variants.push({ variantKey: row.variant_key, points: [] });
    const cumulativeSessions = Number(row.cumulative_sessions);
    const cumulativeConvertedSessions = Number(row.cumulative_converted);
    variants.at(-1)!.points.push({
      bucket: new Date(row.bucket!).toISOString(),
      sessions: Number(row.sessions),
      convertedSessions: Number(row.converted),
      cumulativeSessions,
      cumulativeConvertedSessions,
      cumulativeConversionRate: cumulativeConvertedSessions / cumulativeSessions,
    });
  }
  return { experimentId, interval, goal, variants };
}
