import { UnrecoverableError, Worker } from 'bullmq';
import { expect } from 'vitest';
import type { StoredEvent } from '@tally/contracts';
import {
  createDb,
  ensureDatabase,
  experimentResults,
  experimentTimeseries,
  listExperiments,
  rawExperimentList,
  rawExperimentResults,
  rawExperimentTimeseries,
  type Database,
  type DbHandle,
} from '@tally/db';
import { createRedis, type QueueName, type TallyQueues } from '@tally/queue';
import { dropDatabase, seededRandom, TEST_POSTGRES_URL, uniqueName, waitFor, type TestQueuePrefix } from '@tally/testing';
import { run } from '../src/run.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a `tally` command line in-process, with only the given environment, and captures its output. */
export async function tally(argv: string[], env: Record<string, string | undefined>): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await run(argv, {
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
    env,
  });
  return { code, stdout, stderr };
}

export const lines = (text: string) => text.split('\n').filter((line) => line !== '');

/** The shape every failure must have: one line on stderr, no stack trace, nothing on stdout. */
export function expectOneSentenceError(result: CliResult, pattern: RegExp, code = 1): void {
  if (result.code !== code || lines(result.stderr).length !== 1 || result.stdout !== '' || !pattern.test(result.stderr)) {
    throw new Error(`expected exit ${code} with one line matching ${pattern} on stderr, got ${JSON.stringify(result)}`);
  }
  if (/\n\s+at /.test(result.stderr)) throw new Error(`stack trace on stderr: ${result.stderr}`);
}

/** Adds a job and lets a real worker fail it for good, as a broken batch would. */
export async function failJobs(
  queues: TallyQueues,
  prefix: TestQueuePrefix,
  queue: QueueName,
  ids: string[],
  data: Record<string, unknown> = {},
): Promise<void> {
  for (const jobId of ids) await queues[queue].add('test-job', { jobId, ...data }, { jobId, attempts: 1 });
  const connection = createRedis(prefix.redisUrl, 'worker');
  const worker = new Worker(
    queue,
    async () => {
      throw new UnrecoverableError('failed on purpose');
    },
    { connection, prefix: prefix.prefix },
  );
  try {
    await waitFor(
      async () => {
        const states = await Promise.all(ids.map((id) => queues[queue].getJobState(id)));
        return states.every((state) => state === 'failed') ? true : undefined;
      },
      { what: `jobs ${ids.join(', ')} to fail` },
    );
  } finally {
    await worker.close();
    connection.disconnect();
  }
}

const MINUTE = 60_000;

/**
 * One experiment's worth of events, with what makes its numbers hard: events before
 * first exposure (not counted), a session that saw two variants (excluded), several
 * goals, sessions first exposed in different hours, and another experiment beside it.
 */
export function experimentHistory(experimentId: string, start = Date.UTC(2026, 0, 15, 10, 0)): StoredEvent[] {
  let n = 0;
  const event = (
    eventType: StoredEvent['eventType'],
    sessionId: string,
    minute: number,
    extra: Partial<Pick<StoredEvent, 'experimentId' | 'variantKey' | 'goal'>> = {},
  ): StoredEvent => {
    const timestamp = start + minute * MINUTE;
    return {
      eventId: `${experimentId}-${++n}`,
      eventType,
      sessionId,
      viewId: null,
      experimentId: extra.experimentId ?? null,
      variantKey: extra.variantKey ?? null,
      goal: extra.goal ?? null,
      properties: null,
      timestamp,
      clientTimestamp: timestamp,
    };
  };
  const exposure = (sessionId: string, minute: number, variantKey: string, experiment = experimentId) =>
    event('EXPOSURE', sessionId, minute, { experimentId: experiment, variantKey });
  return [
    event('PAGEVIEW', 's1', -5),
    exposure('s1', 0, 'control'),
    event('PAGEVIEW', 's1', 1),
    event('CONVERSION', 's1', 2, { goal: 'purchase' }),
    exposure('s2', 0, 'treatment'),
    event('CONVERSION', 's2', 3, { goal: 'signup' }),
    event('CONVERSION', 's2', 4, { goal: 'purchase' }),
    exposure('s3', 10, 'control'),
    exposure('s3', 11, 'treatment'),
    event('PAGEVIEW', 's3', 12),
    exposure('s4', 60, 'treatment'),
    event('PAGEVIEW', 's4', 61),
    event('PAGEVIEW', 's4', 62),
    event('CONVERSION', 's5', 0, { goal: 'purchase' }),
    exposure('s5', 30, 'control'),
    exposure('s1', 5, 'b', `${experimentId}-other`),
  ];
}

// ---------------------------------------------------------------------------
// Legacy import: databases in the seed's schema, and one history of events that
// can be written as legacy rows or posted as a legacy client would post them.

/**
 * `current`: the Prisma `AnalyticsEvent` table after the seed plan's phase 2.2
 * (enum eventType, variantKey column, bigint timestamp). `before-variant-column`:
 * the same before it, variants only in properties. `loose`: every column text
 * and nullable, to hold the rows an import must skip.
 */
export type LegacyShape = 'current' | 'before-variant-column' | 'loose';

export interface LegacyRowInput {
  id: string;
  projectId: string | null;
  experimentId?: string | null;
  eventType: string | null;
  sessionId: string | null;
  viewId?: string | null;
  variantKey?: string | null;
  /** An object, or (loose tables) any text. */
  properties?: unknown;
  timestamp: number | string | null;
}

export interface LegacyDatabase {
  name: string;
  url: string;
  handle: DbHandle;
  insert: (rows: LegacyRowInput[], table?: string) => Promise<void>;
  /** Makes another table of the given shape in the same database. */
  createTable: (table: string, shape: LegacyShape) => Promise<void>;
  drop: () => Promise<void>;
}

const legacyDdl = (table: string, shape: LegacyShape) => {
  const name = table.split('.').map((part) => `"${part}"`).join('.');
  if (shape === 'loose') {
    return `CREATE TABLE ${name} ("id" text PRIMARY KEY, "projectId" text, "experimentId" text, "eventType" text,
      "sessionId" text, "viewId" text, "variantKey" text, "properties" text, "timestamp" text,
      "createdAt" timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP)`;
  }
  // As `prisma migrate` writes it for the seed plan's model.
  return `CREATE TABLE ${name} (
      "id" TEXT NOT NULL, "projectId" TEXT NOT NULL, "experimentId" TEXT,
      "eventType" "EventType" NOT NULL DEFAULT 'EXPOSURE', "sessionId" TEXT NOT NULL, "viewId" TEXT,
      ${shape === 'current' ? '"variantKey" TEXT,' : ''}
      "properties" JSONB NOT NULL, "timestamp" BIGINT NOT NULL,
      "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
      CONSTRAINT "${table.split('.').at(-1)}_pkey" PRIMARY KEY ("id"))`;
};

/** A throwaway database (not a Tally one) holding a legacy table; `drop()` removes it. */
export async function createLegacyDatabase(shape: LegacyShape = 'current', table = 'analytics_events'): Promise<LegacyDatabase> {
  const name = uniqueName('legacy');
  const url = Object.assign(new URL(TEST_POSTGRES_URL), { pathname: `/${name}` }).toString();
  await ensureDatabase(url);
  const handle = createDb(url, { max: 2, applicationName: 'tally-test-legacy' });
  await handle.pool.query(`CREATE TYPE "EventType" AS ENUM ('EXPOSURE', 'PAGEVIEW', 'CONVERSION')`);
  const shapes = new Map<string, LegacyShape>();
  const createTable = async (tableName: string, tableShape: LegacyShape) => {
    await handle.pool.query(legacyDdl(tableName, tableShape));
    shapes.set(tableName, tableShape);
  };
  await createTable(table, shape);
  return {
    name,
    url,
    handle,
    createTable,
    insert: async (rows, into = table) => {
      const tableShape = shapes.get(into)!;
      const quoted = into.split('.').map((part) => `"${part}"`).join('.');
      const typed = tableShape !== 'loose';
      const columns = ['id', 'projectId', 'experimentId', 'eventType', 'sessionId', 'viewId', ...(tableShape === 'current' || !typed ? ['variantKey'] : []), 'properties', 'timestamp'];
      const cast = (column: string) =>
        typed && column === 'eventType' ? `r."eventType"::"EventType"` : typed && column === 'timestamp' ? `r."timestamp"::bigint` : `r."${column}"`;
      for (let start = 0; start < rows.length; start += 5_000) {
        const slice = rows.slice(start, start + 5_000).map((row) => ({
          ...row,
          timestamp: row.timestamp === null ? null : String(row.timestamp),
          properties: !typed && row.properties !== undefined && typeof row.properties !== 'string' ? JSON.stringify(row.properties) : (row.properties ?? (typed ? {} : null)),
        }));
        await handle.pool.query(
          `INSERT INTO ${quoted} (${columns.map((c) => `"${c}"`).join(', ')})
           SELECT ${columns.map(cast).join(', ')}
             FROM jsonb_to_recordset($1::jsonb) AS r("id" text, "projectId" text, "experimentId" text, "eventType" text,
               "sessionId" text, "viewId" text, "variantKey" text, "properties" ${typed ? 'jsonb' : 'text'}, "timestamp" text)`,
          [JSON.stringify(slice)],
        );
      }
    },
    drop: async () => {
      await handle.close();
      await dropDatabase(name);
    },
  };
}

/** One event of a generated history, before it is written down either way. */
export interface LogicalEvent {
  id: string;
  project: string;
  eventType: 'EXPOSURE' | 'PAGEVIEW' | 'CONVERSION';
  sessionId: string;
  viewId: string | null;
  experimentId: string | null;
  variantKey: string | null;
  /** Exposures only: where a legacy row keeps the variant. */
  variantIn: 'column' | 'properties' | 'both';
  goal: string | null;
  /** Epoch milliseconds. */
  timestamp: number;
  path: string;
}

export const LEGACY_EXPERIMENTS = ['exp-a', 'exp-b'];
export const LEGACY_GOALS = [null, 'purchase', 'signup'];

/**
 * A history with what makes experiment numbers hard: events before a session's
 * first exposure, sessions that see two variants (excluded), conversions of
 * several goals and of none, sessions first exposed in different hours and days,
 * pageviews naming an experiment, and ids in no relation to time order (as cuids
 * from several servers are).
 */
export function legacyHistory(options: {
  count: number;
  seed: number;
  projects: string[];
  /** Whole seconds only, so that the same history can be written in epoch seconds. */
  wholeSeconds?: boolean;
  start?: number;
}): LogicalEvent[] {
  // Seeded, so that a failing history can be replayed.
  const next = seededRandom(options.seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  const start = options.start ?? Date.now() - 3 * 86_400_000;
  const ids = new Set<string>();
  const events: LogicalEvent[] = [];
  for (let n = 0; n < options.count; n++) {
    let id: string;
    do id = `c${Array.from({ length: 24 }, () => pick([...'0123456789abcdefghijklmnopqrstuvwxyz'])).join('')}`;
    while (ids.has(id));
    ids.add(id);
    const project = pick(options.projects);
    const session = Math.floor(next() * 30);
    const experimentId = pick(LEGACY_EXPERIMENTS);
    const roll = next();
    const eventType = roll < 0.35 ? 'EXPOSURE' : roll < 0.75 ? 'PAGEVIEW' : 'CONVERSION';
    // Mostly one variant per session and experiment; sometimes another, which excludes the session.
    const assigned = (session + experimentId.length) % 2 === 0 ? 'control' : 'treatment';
    const variantKey = eventType === 'EXPOSURE' ? (next() < 0.08 ? pick(['control', 'treatment', 'other']) : assigned) : null;
    const ms = Math.floor(next() * 40 * 3_600_000);
    events.push({
      id,
      project,
      eventType,
      sessionId: `s-${session}`,
      viewId: eventType === 'PAGEVIEW' ? `v-${n}` : null,
      experimentId: eventType === 'EXPOSURE' || (eventType === 'PAGEVIEW' && next() < 0.3) ? experimentId : null,
      variantKey,
      variantIn: pick(['column', 'properties', 'both'] as const),
      goal: eventType === 'CONVERSION' ? pick(LEGACY_GOALS) : null,
      timestamp: options.wholeSeconds ? Math.floor((start + ms) / 1000) * 1000 : start + ms,
      path: `/p/${n % 5}`,
    });
  }
  return events;
}

/** The event as a legacy row: goal and (without a variantKey column) variant in properties. */
export function asLegacyRow(e: LogicalEvent, options: { unit: 's' | 'ms'; variantColumn: boolean }): LegacyRowInput {
  const inColumn = options.variantColumn && e.variantIn !== 'properties';
  const inProperties = !options.variantColumn || e.variantIn !== 'column';
  return {
    id: e.id,
    projectId: e.project,
    experimentId: e.experimentId,
    eventType: e.eventType,
    sessionId: e.sessionId,
    viewId: e.viewId,
    variantKey: inColumn ? e.variantKey : null,
    properties: {
      path: e.path,
      ...(e.variantKey !== null && inProperties ? { variantKey: e.variantKey } : {}),
      ...(e.goal !== null ? { goal: e.goal } : {}),
    },
    timestamp: options.unit === 's' ? e.timestamp / 1000 : e.timestamp,
  };
}

/** The same event as a legacy client posts it to `POST /v1/batch`: the variant where its row has it, the goal as a field. */
export function asIngestEvent(e: LogicalEvent, options: { variantColumn: boolean }): Record<string, unknown> {
  const row = asLegacyRow(e, { unit: 'ms', variantColumn: options.variantColumn });
  return {
    eventId: e.id,
    eventType: e.eventType,
    sessionId: e.sessionId,
    ...(e.viewId !== null ? { viewId: e.viewId } : {}),
    ...(e.experimentId !== null ? { experimentId: e.experimentId } : {}),
    ...(row.variantKey ? { variantKey: row.variantKey } : {}),
    ...(e.goal !== null ? { goal: e.goal } : {}),
    properties: row.properties,
    timestamp: e.timestamp,
  };
}

/**
 * Every number the query API serves for a project (list, results for any goal and
 * each goal, hourly and daily series), read from the summaries, after checking
 * each equals the one query over the raw events.
 */
export async function servedNumbers(db: Database, projectId: string): Promise<Record<string, unknown>> {
  const served: Record<string, unknown> = {};
  served.list = await listExperiments(db, projectId);
  expect(served.list).toEqual(await rawExperimentList(db, projectId));
  for (const experimentId of [...LEGACY_EXPERIMENTS, 'never-exposed']) {
    for (const goal of LEGACY_GOALS) {
      const results = await experimentResults(db, projectId, experimentId, goal);
      expect(results).toEqual(await rawExperimentResults(db, projectId, experimentId, goal));
      served[`results ${experimentId} ${goal}`] = results;
      for (const interval of ['hour', 'day'] as const) {
        const series = await experimentTimeseries(db, projectId, experimentId, interval, goal);
        expect(series).toEqual(await rawExperimentTimeseries(db, projectId, experimentId, interval, goal));
        served[`${interval} ${experimentId} ${goal}`] = series;
      }
    }
  }
  return served;
}

/** The Tally project of each legacy project, as the import recorded it. */
export async function legacyProjectMap(db: Database): Promise<Map<string, string>> {
  const { rows } = await db.$client.query<{ legacy_project_id: string; project_id: string }>(
    'SELECT legacy_project_id, project_id FROM legacy_projects',
  );
  return new Map(rows.map((row) => [row.legacy_project_id, row.project_id]));
}
