import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp as buildIngestApi } from '@tally/ingest-api/app';
import { loadIngestApiConfig } from '@tally/ingest-api/config';
import { buildApp as buildQueryApi } from '@tally/query-api/app';
import { startWorker, type RunningWorker } from '@tally/worker/app';
import { createDb, createProject, ensureDatabase, type DbHandle, type ProjectKeys } from '@tally/db';
import { createLogger } from '@tally/logger';
import { closeQueues, createQueues, createRedis, type TallyQueues } from '@tally/queue';
import {
  createTestDatabase,
  createTestQueuePrefix,
  dropDatabase,
  TEST_POSTGRES_URL,
  uniqueName,
  waitFor,
  type TestDatabase,
  type TestQueuePrefix,
} from '@tally/testing';

/**
 * Import equals ingest. Random histories are written twice: as rows of a table in
 * the seed's legacy schema (Prisma AnalyticsEvent; timestamps in epoch seconds or
 * milliseconds; with or without the variantKey column), imported by the real
 * `tally import-legacy` process; and as the batches a legacy client would post to
 * the ingest API, carried by BullMQ and the real worker. Every endpoint of the
 * query API must then answer the same for the imported project as for the
 * ingested one.
 */

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const EXPERIMENTS = ['exp-a', 'exp-b'];
const GOALS = [null, 'purchase', 'signup'] as const;
// Whole seconds, so a history can be written in epoch seconds; days back, so cohorts span buckets.
const BASE = Math.floor((Date.now() - 3 * 86_400_000) / 1000) * 1000;

const eventArb = fc.record({
  project: fc.integer({ min: 0, max: 1 }),
  session: fc.integer({ min: 0, max: 7 }),
  kind: fc.constantFrom('EXPOSURE', 'EXPOSURE', 'PAGEVIEW', 'CONVERSION'),
  experiment: fc.constantFrom(...EXPERIMENTS),
  variant: fc.constantFrom('control', 'control', 'treatment', 'treatment', 'other'),
  /** Where a legacy row with a variantKey column keeps an exposure's variant (pre-backfill rows: properties only). */
  variantIn: fc.constantFrom('column', 'properties', 'both'),
  goal: fc.constantFrom(...GOALS),
  pageviewNamesExperiment: fc.boolean(),
  minute: fc.integer({ min: 0, max: 60 * 40 }),
  millisecond: fc.integer({ min: 0, max: 59_999 }),
});

const runArb = fc.record({
  events: fc.array(eventArb, { minLength: 1, maxLength: 60 }),
  unit: fc.constantFrom('s', 'ms'),
  variantColumn: fc.boolean(),
  batch: fc.integer({ min: 1, max: 25 }),
});

type Generated = typeof eventArb extends fc.Arbitrary<infer T> ? T : never;
type Run = typeof runArb extends fc.Arbitrary<infer T> ? T : never;

interface Written {
  legacyProject: string;
  row: Record<string, unknown>;
  wire: Record<string, unknown>;
}

/** One generated event, as a legacy row and as the event a legacy client posts. */
function write(e: Generated, index: number, run: Run, runNo: number): Written {
  const ms = BASE + e.minute * 60_000 + (run.unit === 'ms' ? e.millisecond : Math.floor(e.millisecond / 1000) * 1000);
  const exposure = e.kind === 'EXPOSURE';
  const inColumn = exposure && run.variantColumn && e.variantIn !== 'properties';
  const inProperties = exposure && (!run.variantColumn || e.variantIn !== 'column');
  const experimentId = exposure || (e.kind === 'PAGEVIEW' && e.pageviewNamesExperiment) ? e.experiment : null;
  const goal = e.kind === 'CONVERSION' ? e.goal : null;
  const viewId = e.kind === 'PAGEVIEW' ? `v-${index}` : null;
  const properties = { path: `/p/${index % 3}`, ...(inProperties ? { variantKey: e.variant } : {}), ...(goal !== null ? { goal } : {}) };
  // Ids unrelated to time, as cuids from several servers are.
  const id = `c${runNo}x${((index * 7919) % 10_007).toString(36).padStart(4, '0')}${index}`;
  return {
    legacyProject: `run${runNo}-p${e.project}`,
    row: {
      id,
      projectId: `run${runNo}-p${e.project}`,
      experimentId,
      eventType: e.kind,
      sessionId: `s-${e.session}`,
      viewId,
      variantKey: inColumn ? e.variant : null,
      properties,
      timestamp: String(run.unit === 's' ? ms / 1000 : ms),
    },
    wire: {
      eventId: id,
      eventType: e.kind,
      sessionId: `s-${e.session}`,
      ...(viewId !== null ? { viewId } : {}),
      ...(experimentId !== null ? { experimentId } : {}),
      ...(inColumn ? { variantKey: e.variant } : {}),
      ...(goal !== null ? { goal } : {}),
      properties,
      timestamp: ms,
    },
  };
}

/** The table as Prisma migrations make it for the seed plan's model, before or after its phase 2.2. */
const legacyTable = (name: string, variantColumn: boolean) => `
  CREATE TABLE "${name}" (
    "id" TEXT NOT NULL, "projectId" TEXT NOT NULL, "experimentId" TEXT,
    "eventType" "EventType" NOT NULL DEFAULT 'EXPOSURE', "sessionId" TEXT NOT NULL, "viewId" TEXT,
    ${variantColumn ? '"variantKey" TEXT,' : ''}
    "properties" JSONB NOT NULL, "timestamp" BIGINT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "${name}_pkey" PRIMARY KEY ("id"))`;

/** Runs `pnpm tally …` as its own process, as an operator would, and resolves with its exit code and output. */
function tallyProcess(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(join(root, 'node_modules', '.bin', 'tsx'), ['src/main.ts', ...args], {
      cwd: join(root, 'apps', 'cli'),
      env: { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('import-legacy equals ingest, through the real pipeline', () => {
  let database: TestDatabase;
  let legacyName: string;
  let legacy: DbHandle;
  let prefix: TestQueuePrefix;
  let producer: Redis;
  let workerConnection: Redis;
  let queues: TallyQueues;
  let worker: RunningWorker;
  let ingest: Awaited<ReturnType<typeof buildIngestApi>>;
  let query: Awaited<ReturnType<typeof buildQueryApi>>;
  let runs = 0;

  beforeAll(async () => {
    database = await createTestDatabase();
    legacyName = uniqueName('legacy');
    const legacyUrl = Object.assign(new URL(TEST_POSTGRES_URL), { pathname: `/${legacyName}` }).toString();
    await ensureDatabase(legacyUrl);
    legacy = createDb(legacyUrl, { max: 2 });
    await legacy.pool.query(`CREATE TYPE "EventType" AS ENUM ('EXPOSURE', 'PAGEVIEW', 'CONVERSION')`);

    prefix = createTestQueuePrefix();
    producer = createRedis(prefix.redisUrl, 'producer');
    workerConnection = createRedis(prefix.redisUrl, 'worker');
    queues = createQueues(producer, prefix.prefix);
    const logger = createLogger('e2e-import', 'silent');
    ingest = await buildIngestApi({
      config: { ...loadIngestApiConfig({}), KEY_CACHE_TTL_SECONDS: 60 },
      db: database.db,
      queues,
      redis: producer,
      logger,
    });
    worker = await startWorker({
      config: { QUEUE_PREFIX: prefix.prefix, WORKER_CONCURRENCY: 4, PARTITION_PREMAKE_DAYS: 7, ROLLUP_INTERVAL_MS: 100 },
      db: database.db,
      logger,
      connection: workerConnection,
    });
    query = await buildQueryApi({ config: { KEY_CACHE_TTL_MS: 60_000 }, db: database.db, logger });
  });

  afterAll(async () => {
    await ingest?.close();
    await query?.close();
    await worker?.close();
    if (queues) await closeQueues(queues);
    producer?.disconnect();
    workerConnection?.disconnect();
    await prefix?.remove();
    await legacy?.close();
    if (legacyName) await dropDatabase(legacyName);
    await database?.drop();
  });

  const get = async (key: string, url: string) => {
    const response = await query.inject({ url, headers: { authorization: `Bearer ${key}` } });
    const { asOf: _asOf, ...body } = response.json() as Record<string, unknown>;
    return { status: response.statusCode, body };
  };

  /** Every answer the query API gives a project about the experiments of these histories. */
  async function everything(readKey: string): Promise<Record<string, unknown>> {
    const answers: Record<string, unknown> = { list: await get(readKey, '/v1/experiments') };
    for (const experimentId of [...EXPERIMENTS, 'never-exposed']) {
      for (const goal of GOALS) {
        const goalQuery = goal === null ? '' : `goal=${goal}`;
        answers[`results ${experimentId} ${goal}`] = await get(readKey, `/v1/experiments/${experimentId}/results?${goalQuery}`);
        for (const interval of ['hour', 'day'] as const) {
          answers[`${interval} ${experimentId} ${goal}`] = await get(readKey, `/v1/experiments/${experimentId}/timeseries?interval=${interval}&${goalQuery}`);
        }
      }
    }
    return answers;
  }

  async function postThroughIngest(keys: ProjectKeys, events: Record<string, unknown>[]): Promise<void> {
    for (let start = 0; start < events.length; start += 20) {
      const batch = events.slice(start, start + 20);
      const response = await ingest.inject({
        method: 'POST',
        url: '/v1/batch',
        headers: { authorization: `Bearer ${keys.writeKey}` },
        payload: { events: batch },
      });
      expect(response.statusCode, response.body).toBe(202);
      expect(response.json()).toEqual({ accepted: batch.length, rejected: [] });
    }
  }

  /** Once every posted batch is inserted and a rollup has started after that. */
  async function settle(readKey: string): Promise<void> {
    await waitFor(
      async () => {
        const counts = await queues.ingest.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
        return Object.values(counts).every((n) => n === 0) ? true : undefined;
      },
      { what: 'every ingest job to finish' },
    );
    const insertedBy = Date.now();
    await waitFor(
      async () => {
        const response = await query.inject({ url: '/v1/experiments', headers: { authorization: `Bearer ${readKey}` } });
        return Date.parse(String((response.json() as { asOf: string }).asOf)) > insertedBy ? true : undefined;
      },
      { what: 'the rollup to pass the last insert' },
    );
  }

  it('for random histories, in seconds or milliseconds, with or without the variantKey column', async () => {
    await fc.assert(
      fc.asyncProperty(runArb, async (run) => {
        const runNo = ++runs;
        const table = `legacy_run_${runNo}`;
        const written = run.events.map((e, i) => write(e, i, run, runNo));
        await legacy.pool.query(legacyTable(table, run.variantColumn));
        const columns = ['id', 'projectId', 'experimentId', 'eventType', 'sessionId', 'viewId', ...(run.variantColumn ? ['variantKey'] : []), 'properties', 'timestamp'];
        await legacy.pool.query(
          `INSERT INTO "${table}" (${columns.map((c) => `"${c}"`).join(', ')})
           SELECT ${columns.map((c) => (c === 'eventType' ? `r."eventType"::"EventType"` : c === 'timestamp' ? 'r."timestamp"::bigint' : `r."${c}"`)).join(', ')}
             FROM jsonb_to_recordset($1::jsonb) AS r("id" text, "projectId" text, "experimentId" text, "eventType" text,
               "sessionId" text, "viewId" text, "variantKey" text, "properties" jsonb, "timestamp" text)`,
          [JSON.stringify(written.map((w) => w.row))],
        );

        const legacyProjects = [...new Set(written.map((w) => w.legacyProject))];
        const ingested = new Map<string, ProjectKeys>();
        for (const legacyProject of legacyProjects) {
          const keys = await createProject(database.db, `ingest ${legacyProject}`);
          ingested.set(legacyProject, keys);
          await postThroughIngest(keys, written.filter((w) => w.legacyProject === legacyProject).map((w) => w.wire));
        }
        await settle(ingested.get(legacyProjects[0]!)!.readKey);

        const imported = await tallyProcess(
          ['import-legacy', '--from', legacy.pool.options.connectionString!, '--table', table, '--batch', String(run.batch), '--json', '--no-progress'],
          { DATABASE_URL: database.url },
        );
        expect(imported.code, imported.stderr).toBe(0);
        expect(imported.stderr).toBe('');
        const report = JSON.parse(imported.stdout) as {
          timestampUnit: string;
          timestampUnitFrom: string;
          variantsFrom: string;
          run: unknown;
          projects: { legacyProjectId: string; created: boolean; readKey: string }[];
          rollup: { events: number };
        };
        expect(report).toMatchObject({
          timestampUnit: run.unit,
          timestampUnitFrom: 'detected',
          variantsFrom: run.variantColumn ? 'column' : 'properties',
          run: { read: written.length, imported: written.length, alreadyPresent: 0, skipped: {} },
        });
        expect(report.projects.map((p) => p.legacyProjectId).sort()).toEqual([...legacyProjects].sort());

        for (const project of report.projects) {
          expect(project.created).toBe(true);
          expect(await everything(project.readKey)).toEqual(await everything(ingested.get(project.legacyProjectId)!.readKey));
        }
      }),
      { numRuns: Number(process.env.PROPERTY_RUNS ?? 6) },
    );
  }, 300_000);
});
