import { sql } from 'drizzle-orm';
import type { Database } from '../client.js';

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

export interface ExperimentSummary {
  experimentId: string;
  exposedSessions: number;
  firstExposureAt: string;
  lastExposureAt: string;
  variants: { variantKey: string; exposedSessions: number }[];
}

/**
 * The project's experiments with the sessions exposed to each variant. An exposure
 * without a variant (the ingest API refuses them, imported data may hold them)
 * makes its session exposed but names no variant: it is in `exposedSessions` and
 * in no variant's count.
 */
export async function rawListExperiments(db: Database, projectId: string): Promise<ExperimentSummary[]> {
  const { rows } = await db.execute<{
    experiment_id: string;
    variant_key: string | null;
    is_total: boolean;
    sessions: string;
    first_at: Date;
    last_at: Date;
  }>(sql`
    SELECT experiment_id, variant_key, grouping(variant_key) = 1 AS is_total,
      count(DISTINCT session_id) AS sessions, min(event_time) AS first_at, max(event_time) AS last_at
    FROM analytics_events
    WHERE project_id = ${projectId} AND event_type = 'EXPOSURE' AND experiment_id IS NOT NULL
    GROUP BY GROUPING SETS ((experiment_id, variant_key), (experiment_id))
    ORDER BY experiment_id, grouping(variant_key) DESC, variant_key`);
  const experiments: ExperimentSummary[] = [];
  for (const row of rows) {
    // A NULL variant_key is either the per-experiment total or a group of variant-less exposures.
    if (row.is_total) {
      experiments.push({
        experimentId: row.experiment_id,
        exposedSessions: Number(row.sessions),
        firstExposureAt: new Date(row.first_at).toISOString(),
        lastExposureAt: new Date(row.last_at).toISOString(),
        variants: [],
      });
    } else if (row.variant_key !== null) {
      experiments.at(-1)!.variants.push({ variantKey: row.variant_key, exposedSessions: Number(row.sessions) });
    }
  }
  return experiments;
}
