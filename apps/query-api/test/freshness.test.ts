import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProject, runRollup, type ProjectKeys } from '@tally/db';
import { createTestDatabase, type TestDatabase } from '@tally/testing';
import { bearer, conversion, exposure, insertOnly, testApp } from './fixture.js';

/**
 * The API serves the rollup's summaries: an event counts once a rollup run has
 * folded it, and `asOf` is the instant of that run. Tests run in order here and
 * the rollup is driven by hand (the fixture's `store` would roll up at once).
 */

let database: TestDatabase;
let keys: ProjectKeys;
let app: Awaited<ReturnType<typeof testApp>>;

beforeAll(async () => {
  database = await createTestDatabase();
  keys = await createProject(database.db, 'fresh');
  app = await testApp(database.db);
});

afterAll(async () => {
  await app?.close();
  await database?.drop();
});

async function get(url: string) {
  const response = await app.inject({ method: 'GET', url, headers: bearer(keys.readKey) });
  return { status: response.statusCode, body: response.json() as Record<string, any> };
}

const urls = ['/v1/experiments', '/v1/experiments/fresh/results', '/v1/experiments/fresh/timeseries?interval=hour'];

async function databaseNow(): Promise<number> {
  const { rows } = await database.pool.query<{ now: Date }>('SELECT clock_timestamp() AS now');
  return rows[0]!.now.getTime();
}

describe('what the summaries hold', () => {
  it('counts nothing before the first rollup, and says so with asOf at the epoch', async () => {
    await insertOnly(database.db, keys.projectId, [exposure('f1', 0, 'fresh', 'control')]);
    const list = await get('/v1/experiments');
    expect(list.body).toEqual({ experiments: [], asOf: '1970-01-01T00:00:00.000Z' });
    expect((await get('/v1/experiments/fresh/results')).status).toBe(404);
    expect((await get('/v1/experiments/fresh/timeseries')).status).toBe(404);
  });

  it('counts an event once the rollup has run, with asOf the instant of that run', async () => {
    const committed = await databaseNow();
    const run = await runRollup(database.db);
    expect(run.events).toBe(1);
    for (const url of urls) {
      const { status, body } = await get(url);
      expect(status).toBe(200);
      expect(body.asOf).toBe(run.asOf?.toISOString());
      expect(Date.parse(body.asOf)).toBeGreaterThanOrEqual(committed);
    }
    const series = (await get('/v1/experiments/fresh/timeseries?interval=hour')).body;
    expect(series.variants).toEqual([
      {
        variantKey: 'control',
        points: [
          {
            bucket: '2025-01-10T12:00:00.000Z',
            sessions: 1,
            convertedSessions: 0,
            cumulativeSessions: 1,
            cumulativeConvertedSessions: 0,
            cumulativeConversionRate: 0,
          },
        ],
      },
    ]);
  });

  it('does not count an event inserted after the last run, and asOf does not move until the next run', async () => {
    const before = await Promise.all(urls.map((url) => get(url)));

    // f1 converts, f2 is a new session in another variant and hour, `later` a new experiment.
    await insertOnly(database.db, keys.projectId, [
      conversion('f1', 60, 'purchase'),
      exposure('f2', 3_600, 'fresh', 'treatment'),
      exposure('f2', 0, 'later', 'x'),
    ]);
    const committed = await databaseNow();

    const unchanged = await Promise.all(urls.map((url) => get(url)));
    expect(unchanged).toEqual(before);
    expect((await get('/v1/experiments/later/timeseries')).status).toBe(404);

    const run = await runRollup(database.db);
    expect(run.events).toBe(3);
    const after = await get('/v1/experiments/fresh/timeseries?interval=hour');
    expect(after.body.asOf).toBe(run.asOf?.toISOString());
    expect(Date.parse(after.body.asOf)).toBeGreaterThan(Date.parse(before[2]!.body.asOf));
    expect(Date.parse(after.body.asOf)).toBeGreaterThanOrEqual(committed);
    expect(after.body.variants).toEqual([
      {
        variantKey: 'control',
        points: [
          {
            bucket: '2025-01-10T12:00:00.000Z',
            sessions: 1,
            convertedSessions: 1,
            cumulativeSessions: 1,
            cumulativeConvertedSessions: 1,
            cumulativeConversionRate: 1,
          },
        ],
      },
      {
        variantKey: 'treatment',
        points: [
          {
            bucket: '2025-01-10T13:00:00.000Z',
            sessions: 1,
            convertedSessions: 0,
            cumulativeSessions: 1,
            cumulativeConvertedSessions: 0,
            cumulativeConversionRate: 0,
          },
        ],
      },
    ]);
    expect((await get('/v1/experiments/fresh/results')).body).toMatchObject({
      asOf: run.asOf?.toISOString(),
      variants: [
        { variantKey: 'control', sessions: 1, convertedSessions: 1, conversions: 1 },
        { variantKey: 'treatment', sessions: 1, convertedSessions: 0, conversions: 0 },
      ],
    });
    expect((await get('/v1/experiments/later/timeseries')).status).toBe(200);
  });

  it('reads no raw event: every route answers the same with the events table gone', async () => {
    const before = await Promise.all(urls.map((url) => get(url)));
    const client = await database.pool.connect();
    try {
      await client.query('ALTER TABLE analytics_events RENAME TO analytics_events_away');
      expect(await Promise.all(urls.map((url) => get(url)))).toEqual(before);
    } finally {
      await client.query('ALTER TABLE analytics_events_away RENAME TO analytics_events');
      client.release();
    }
  });
});
