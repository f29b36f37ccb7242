/**
 * The seed plan's system (shared/seed/analytics-scalability-plan.md), rebuilt in a
 * throwaway database so that its queries can be timed on the same events as Tally:
 *
 *   - `analytics_events` as its Prisma model maps it, in the snake_case its SQL
 *     reads: `timestamp` bigint epoch seconds, `properties` jsonb with `variantKey`
 *     inside for exposures, and `variant_key` extracted beside it (phase 2.2,
 *     backfilled for exposures only, as its migration does);
 *   - every index the model declares, plus those of phases 2.1 and 2.2;
 *   - phase 3A's materialized view and its index, refreshed once after loading.
 *
 * The queries are the plan's, as written. Phase 1's is not printed in the plan:
 * it is phase 2.2's query with `properties->>'variantKey'` in place of the column,
 * the "CTE over JSONB" that phase 2.2 calls its updated version of.
 */
import pg from 'pg';
import { TEST_POSTGRES_URL, dropDatabase, uniqueName } from '@tally/testing';
import { copyText, copyTraffic, fmt, type TrafficEvent, type TrafficOptions } from './generate.js';

const SCHEMA = [
  `CREATE TYPE "EventType" AS ENUM ('PAGEVIEW', 'EXPOSURE', 'CONVERSION')`,
  `CREATE TABLE analytics_events (
    id text NOT NULL,
    project_id text NOT NULL,
    experiment_id text,
    event_type "EventType" NOT NULL DEFAULT 'EXPOSURE',
    session_id text NOT NULL,
    view_id text,
    variant_key text,
    properties jsonb NOT NULL,
    timestamp bigint NOT NULL,
    created_at timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
  )`,
];

/** Made after loading (the same indexes, built faster than maintained row by row). */
export const SEED_INDEXES: { name: string; from: string; sql: string }[] = [
  { name: 'analytics_events_pkey', from: 'model', sql: 'ALTER TABLE analytics_events ADD CONSTRAINT analytics_events_pkey PRIMARY KEY (id)' },
  { name: 'project_id, event_type', from: 'model', sql: 'CREATE INDEX analytics_events_project_id_event_type_idx ON analytics_events (project_id, event_type)' },
  { name: 'event_type, timestamp', from: 'model', sql: 'CREATE INDEX analytics_events_event_type_timestamp_idx ON analytics_events (event_type, timestamp)' },
  { name: 'session_id', from: 'model', sql: 'CREATE INDEX analytics_events_session_id_idx ON analytics_events (session_id)' },
  { name: 'experiment_id', from: 'model', sql: 'CREATE INDEX analytics_events_experiment_id_idx ON analytics_events (experiment_id)' },
  { name: 'session_id, event_type', from: 'model', sql: 'CREATE INDEX analytics_events_session_id_event_type_idx ON analytics_events (session_id, event_type)' },
  {
    name: 'experiment_id, variant_key, event_type',
    from: 'model (2.2)',
    sql: 'CREATE INDEX analytics_events_experiment_id_variant_key_event_type_idx ON analytics_events (experiment_id, variant_key, event_type)',
  },
  {
    name: "(properties->>'variantKey') exposures",
    from: '2.1',
    sql: `CREATE INDEX idx_analytics_events_variant_key ON analytics_events ((properties->>'variantKey')) WHERE event_type = 'EXPOSURE'`,
  },
  { name: 'GIN (properties)', from: '2.1', sql: 'CREATE INDEX idx_analytics_events_properties_gin ON analytics_events USING GIN (properties)' },
  {
    name: 'funnel',
    from: '2.1',
    sql: `CREATE INDEX idx_analytics_events_funnel ON analytics_events (project_id, experiment_id, event_type, session_id)
      WHERE event_type IN ('PAGEVIEW', 'EXPOSURE', 'CONVERSION')`,
  },
  {
    name: 'experiment_variant (partial)',
    from: '2.2',
    sql: `CREATE INDEX idx_analytics_events_experiment_variant ON analytics_events (experiment_id, variant_key, event_type)
      WHERE variant_key IS NOT NULL`,
  },
];

const MATVIEW = `
  CREATE MATERIALIZED VIEW experiment_variant_stats AS
  SELECT
    experiment_id,
    variant_key,
    event_type,
    COUNT(DISTINCT session_id) as unique_sessions,
    COUNT(*) as total_events,
    DATE_TRUNC('hour', TIMESTAMP 'epoch' + timestamp * INTERVAL '1 second') as hour_bucket
  FROM analytics_events
  WHERE experiment_id IS NOT NULL
    AND variant_key IS NOT NULL
  GROUP BY experiment_id, variant_key, event_type, hour_bucket
  WITH NO DATA`;

export interface SeedQuery {
  name: string;
  sql: string;
  params: (projectId: string, experimentId: string) => string[];
}

export const SEED_QUERIES: SeedQuery[] = [
  {
    name: "seed phase 1: CTE over JSONB properties->>'variantKey'",
    sql: `
      WITH exposure_variants AS (
        SELECT DISTINCT session_id, properties->>'variantKey' AS variant_key
        FROM analytics_events
        WHERE project_id = $1
          AND experiment_id = $2
          AND event_type = 'EXPOSURE'
          AND properties->>'variantKey' IS NOT NULL
      )
      SELECT
        ev.variant_key,
        ae.event_type,
        COUNT(DISTINCT ae.session_id)::bigint as unique_sessions
      FROM exposure_variants ev
      INNER JOIN analytics_events ae ON ae.session_id = ev.session_id
      WHERE ae.project_id = $1
        AND ae.event_type IN ('PAGEVIEW', 'EXPOSURE', 'CONVERSION')
      GROUP BY ev.variant_key, ae.event_type`,
    params: (projectId, experimentId) => [projectId, experimentId],
  },
  {
    name: 'seed phase 2.2: extracted variant_key column',
    sql: `
      WITH exposure_variants AS (
        SELECT DISTINCT session_id, variant_key
        FROM analytics_events
        WHERE project_id = $1
          AND experiment_id = $2
          AND event_type = 'EXPOSURE'
          AND variant_key IS NOT NULL
      )
      SELECT
        ev.variant_key,
        ae.event_type,
        COUNT(DISTINCT ae.session_id)::bigint as unique_sessions
      FROM exposure_variants ev
      INNER JOIN analytics_events ae ON ae.session_id = ev.session_id
      WHERE ae.project_id = $1
        AND ae.event_type IN ('PAGEVIEW', 'EXPOSURE', 'CONVERSION')
      GROUP BY ev.variant_key, ae.event_type`,
    params: (projectId, experimentId) => [projectId, experimentId],
  },
  {
    name: 'seed phase 3A: materialized view',
    sql: `
      SELECT
        variant_key,
        event_type,
        SUM(unique_sessions)::bigint as unique_sessions
      FROM experiment_variant_stats
      WHERE experiment_id = $1
      GROUP BY variant_key, event_type`,
    params: (_, experimentId) => [experimentId],
  },
];

/** What a seed query's rows say per variant, in Tally's words: EXPOSURE, PAGEVIEW and CONVERSION sessions. */
export interface SeedVariantCounts {
  variantKey: string;
  sessions: number;
  pageviewSessions: number;
  convertedSessions: number;
}

export function seedVariantCounts(rows: { variant_key: string; event_type: string; unique_sessions: string }[]): SeedVariantCounts[] {
  const byVariant = new Map<string, SeedVariantCounts>();
  for (const row of rows) {
    const counts = byVariant.get(row.variant_key) ?? { variantKey: row.variant_key, sessions: 0, pageviewSessions: 0, convertedSessions: 0 };
    const n = Number(row.unique_sessions);
    if (row.event_type === 'EXPOSURE') counts.sessions = n;
    else if (row.event_type === 'PAGEVIEW') counts.pageviewSessions = n;
    else if (row.event_type === 'CONVERSION') counts.convertedSessions = n;
    byVariant.set(row.variant_key, counts);
  }
  return [...byVariant.values()].sort((a, b) => (a.variantKey < b.variantKey ? -1 : a.variantKey > b.variantKey ? 1 : 0));
}

// ---------------------------------------------------------------------------
// The throwaway database.
// ---------------------------------------------------------------------------

export interface SeedDatabase {
  name: string;
  url: string;
  drop: () => Promise<void>;
}

export async function createSeedDatabase(): Promise<SeedDatabase> {
  const name = uniqueName('seed');
  const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  } finally {
    await admin.end();
  }
  const url = new URL(TEST_POSTGRES_URL);
  url.pathname = `/${name}`;
  return { name, url: url.toString(), drop: () => dropDatabase(name) };
}

export interface SeedLoad {
  copySeconds: number;
  /** Per index, seconds to build. */
  indexSeconds: { name: string; from: string; seconds: number }[];
  vacuumSeconds: number;
  matviewRefreshSeconds: number;
  /** What `REFRESH MATERIALIZED VIEW CONCURRENTLY`, as the plan schedules it, answered. */
  concurrentRefresh: string;
  tableBytes: number;
  indexBytes: number;
  matviewRows: number;
}

const SEED_COPY = `COPY analytics_events (id, project_id, experiment_id, event_type, session_id, view_id, variant_key,
  properties, timestamp) FROM STDIN`;

export function seedRow(projectId: string) {
  return (e: TrafficEvent): string => {
    // Legacy clients kept the variant and the goal in properties.
    const properties =
      e.eventType === 'EXPOSURE' ? { variantKey: e.variantKey } : e.goal === null ? e.properties : { ...e.properties, goal: e.goal };
    return `${e.eventId}\t${projectId}\t${copyText(e.experimentId)}\t${e.eventType}\t${e.sessionId}\t${copyText(e.viewId)}\t` +
      `${copyText(e.variantKey)}\t${copyText(JSON.stringify(properties ?? {}))}\t${Math.floor(e.timestamp / 1000)}\n`;
  };
}

const seconds = (since: number) => (performance.now() - since) / 1000;

/** Schema, COPY of the same traffic, indexes, VACUUM ANALYZE, then the materialized view. */
export async function loadSeed(
  database: SeedDatabase,
  projectId: string,
  options: TrafficOptions,
  { lanes = 2, log = (_: string) => {} } = {},
): Promise<SeedLoad> {
  const client = new pg.Client({ connectionString: database.url, application_name: 'tally-bench-seed' });
  await client.connect();
  try {
    for (const statement of SCHEMA) await client.query(statement);
    let t = performance.now();
    log(`seed: COPY of ${fmt(options.events)} events`);
    await copyTraffic(database.url, SEED_COPY, options, lanes, 'seed', projectId);
    const copySeconds = seconds(t);

    // This session only: index builds sort in memory instead of on disk.
    await client.query(`SET maintenance_work_mem = '512MB'`);
    const indexSeconds: SeedLoad['indexSeconds'] = [];
    for (const index of SEED_INDEXES) {
      t = performance.now();
      await client.query(index.sql);
      indexSeconds.push({ name: index.name, from: index.from, seconds: seconds(t) });
      log(`seed: index ${index.name} in ${seconds(t).toFixed(1)} s`);
    }
    t = performance.now();
    await client.query('VACUUM ANALYZE analytics_events');
    const vacuumSeconds = seconds(t);

    await client.query(MATVIEW);
    await client.query('CREATE INDEX ON experiment_variant_stats (experiment_id, variant_key)');
    t = performance.now();
    await client.query('REFRESH MATERIALIZED VIEW experiment_variant_stats');
    const matviewRefreshSeconds = seconds(t);
    await client.query('ANALYZE experiment_variant_stats');
    let concurrentRefresh = 'succeeded';
    try {
      await client.query('REFRESH MATERIALIZED VIEW CONCURRENTLY experiment_variant_stats');
    } catch (error) {
      concurrentRefresh = `fails: ${(error as Error).message}`;
    }

    const { rows } = await client.query<{ table_bytes: string; index_bytes: string; matview_rows: string }>(`
      SELECT pg_table_size('analytics_events') AS table_bytes, pg_indexes_size('analytics_events') AS index_bytes,
        (SELECT count(*) FROM experiment_variant_stats) AS matview_rows`);
    return {
      copySeconds,
      indexSeconds,
      vacuumSeconds,
      matviewRefreshSeconds,
      concurrentRefresh,
      tableBytes: Number(rows[0]!.table_bytes),
      indexBytes: Number(rows[0]!.index_bytes),
      matviewRows: Number(rows[0]!.matview_rows),
    };
  } finally {
    await client.end();
  }
}
