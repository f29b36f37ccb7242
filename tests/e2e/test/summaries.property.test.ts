import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp as buildIngestApi } from '@tally/ingest-api/app';
import { loadIngestApiConfig } from '@tally/ingest-api/config';
import { buildApp as buildQueryApi } from '@tally/query-api/app';
import { startWorker, type RunningWorker } from '@tally/worker/app';
import {
  createProject,
  rawExperimentList,
  rawExperimentResults,
  rawExperimentTimeseries,
  type ProjectKeys,
} from '@tally/db';
import { createLogger } from '@tally/logger';
import { closeQueues, createQueues, createRedis, type TallyQueues } from '@tally/queue';
import {
  createTestDatabase,
  createTestQueuePrefix,
  generatedEventArb,
  HISTORY_EXPERIMENTS,
  HISTORY_GOALS,
  waitFor,
  type GeneratedEvent,
  type TestDatabase,
  type TestQueuePrefix,
} from '@tally/testing';

/**
 * Random histories (any arrival order, client retries, conversions before their
 * exposure, late events, sessions that see two variants, several goals, two
 * projects reusing the same ids) posted to the ingest API, inserted by the real
 * worker through BullMQ, folded by its rollup job, and read back from the query
 * API: every number of every endpoint must equal one SQL query over the raw events.
 */

const EXPERIMENTS = HISTORY_EXPERIMENTS;
const GOALS = HISTORY_GOALS;
// Hours and days in the past, so cohorts span several buckets and arrive late.
const BASE = Date.now() - 3 * 86_400_000;


const historyArb = fc
  .array(generatedEventArb, { minLength: 1, maxLength: 50 })
  // Every event once, some again (client retries), in any order, in batches of any size.
  .chain((events) =>
    fc.record({
      events: fc.constant(events),
      retried: fc.array(fc.nat({ max: events.length - 1 }), { maxLength: 8 }),
      batchSize: fc.integer({ min: 1, max: 20 }),
    }),
  )
  .chain(({ events, retried, batchSize }) =>
    fc.record({
      events: fc.constant(events),
      batchSize: fc.constant(batchSize),
      arrivals: fc.shuffledSubarray([...events.keys(), ...retried], {
        minLength: events.length + retried.length,
        maxLength: events.length + retried.length,
      }),
    }),
  );

type History = typeof historyArb extends fc.Arbitrary<infer T> ? T : never;

function toWire(e: GeneratedEvent, index: number) {
  return {
    eventId: `ev-${index}`,
    eventType: e.kind,
    sessionId: `s-${e.session}`,
    ...(e.kind === 'EXPOSURE' ? { experimentId: e.experiment, variantKey: e.variant } : {}),
    ...(e.kind === 'CONVERSION' && e.goal !== null ? { goal: e.goal } : {}),
    ...(e.kind === 'PAGEVIEW' ? { viewId: `v-${index}`, properties: { path: `/p/${index % 3}` } } : {}),
    timestamp: BASE + e.minute * 60_000 + index,
  };
}

describe('every endpoint equals the raw-event oracle, through the real pipeline', () => {
  let database: TestDatabase;
  let prefix: TestQueuePrefix;
  let producer: Redis;
  let workerConnection: Redis;
  let queues: TallyQueues;
  let worker: RunningWorker;
  let ingest: Awaited<ReturnType<typeof buildIngestApi>>;
  let query: Awaited<ReturnType<typeof buildQueryApi>>;

  beforeAll(async () => {
    database = await createTestDatabase();
    prefix = createTestQueuePrefix();
    producer = createRedis(prefix.redisUrl, 'producer');
    workerConnection = createRedis(prefix.redisUrl, 'worker');
    queues = createQueues(producer, prefix.prefix);
    const logger = createLogger('e2e-property', 'silent');
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
    await database?.drop();
  });

  const get = async (key: string, url: string) => {
    const response = await query.inject({ url, headers: { authorization: `Bearer ${key}` } });
    return { status: response.statusCode, body: response.json() as Record<string, unknown> };
  };

  /** The response without `asOf`, which the oracle has no notion of. */
  const withoutAsOf = ({ asOf: _asOf, ...rest }: Record<string, unknown>) => rest;

  async function postAll(projects: ProjectKeys[], history: History): Promise<void> {
    const wire = history.events.map(toWire);
    for (let start = 0; start < history.arrivals.length; start += history.batchSize) {
      const slice = history.arrivals.slice(start, start + history.batchSize);
      for (const [p, keys] of projects.entries()) {
        const events = slice.filter((i) => history.events[i]!.project === p).map((i) => wire[i]!);
        if (events.length === 0) continue;
        // Some batches carry sentAt, so their times are skew-corrected on the way in.
        const body = start % 2 === 0 ? { events } : { sentAt: Date.now(), events };
        const response = await ingest.inject({
          method: 'POST',
          url: '/v1/batch',
          headers: { authorization: `Bearer ${keys.writeKey}` },
          payload: body,
        });
        expect(response.statusCode, response.body).toBe(202);
        expect(response.json()).toEqual({ accepted: events.length, rejected: [] });
      }
    }
  }

  /** Once every batch is inserted and a rollup has started after that. */
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
        const { body } = await get(readKey, '/v1/experiments');
        return Date.parse(String(body.asOf)) > insertedBy ? true : undefined;
      },
      { what: 'the rollup to pass the last insert' },
    );
  }

  it('for random histories posted in random batches', async () => {
    await fc.assert(
      fc.asyncProperty(historyArb, async (history) => {
        const projects = [await createProject(database.db, 'p0'), await createProject(database.db, 'p1')];
        await postAll(projects, history);
        await settle(projects[0]!.readKey);

        for (const { projectId, readKey } of projects) {
          const list = await get(readKey, '/v1/experiments');
          expect(list.status).toBe(200);
          expect(list.body.experiments).toEqual(await rawExperimentList(database.db, projectId));

          for (const experimentId of [...EXPERIMENTS, 'never-exposed']) {
            for (const goal of GOALS) {
              const goalQuery = goal === null ? '' : `goal=${goal}`;
              const expected = await rawExperimentResults(database.db, projectId, experimentId, goal);
              const results = await get(readKey, `/v1/experiments/${experimentId}/results?${goalQuery}`);
              if (!expected) {
                expect(results.status).toBe(404);
                continue;
              }
              expect(results.status).toBe(200);
              // Every count, exactly; the statistics beside them are derived from these (tested in apps/query-api).
              expect(withoutAsOf(results.body)).toMatchObject({ ...expected, control: null });

              for (const interval of ['hour', 'day'] as const) {
                const series = await get(readKey, `/v1/experiments/${experimentId}/timeseries?interval=${interval}&${goalQuery}`);
                expect(series.status).toBe(200);
                expect(withoutAsOf(series.body)).toEqual(
                  await rawExperimentTimeseries(database.db, projectId, experimentId, interval, goal),
                );
              }
            }
          }
        }
      }),
      { numRuns: Number(process.env.PROPERTY_RUNS ?? 15) },
    );
  }, 300_000);
});
