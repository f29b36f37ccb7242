import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProject, type ProjectKeys } from '@tally/db';
import { createTestDatabase, type TestDatabase } from '@tally/testing';
import { bearer, conversion, exposure, store, testApp } from './fixture.js';

/**
 * Cohorts by first exposure. T is 2025-01-10 12:00 UTC; times below are after T.
 * Every expected number was worked out by hand from these events.
 *
 * Project A, experiment `pricing`:
 *   p1 control   exposed 0           (hour 10th 12:00)  purchase +30m        → converted (purchase)
 *   p2 control   exposed +10m        (10th 12:00)       nothing              → not converted
 *   p3 control   exposed +1h30m      (10th 13:00)       signup +2h           → converted (signup)
 *   p4 control   exposed +13h        (11th 01:00)       purchase +13h01m     → converted (purchase)
 *   p5 treatment exposed +5m         (10th 12:00)       purchase +6m         → converted (purchase)
 *   p6 treatment exposed +2h, and (stored later) +1h: first exposure +1h (10th 13:00),
 *                so its purchase at +1h30m counts       → converted (purchase)
 *   p7 treatment exposed +25h        (11th 13:00)       signup +26h          → converted (signup)
 *   p8 control at 0, then (stored later) treatment at +3h: excluded, in no bucket;
 *                its purchase at +4h counts nowhere.
 *   p9 treatment exposed +12h, exactly 11th 00:00 (day boundary); purchase at +11h is
 *                before it                              → not converted
 *
 *   hour, any goal   control:   10th 12:00 p1 p2 (1 conv), 10th 13:00 p3 (1), 11th 01:00 p4 (1)
 *                    treatment: 10th 12:00 p5 (1), 10th 13:00 p6 (1), 11th 00:00 p9 (0), 11th 13:00 p7 (1)
 *   day, any goal    control:   10th p1 p2 p3 (2 conv), 11th p4 (1)
 *                    treatment: 10th p5 p6 (2), 11th p9 p7 (1)
 *   results          control 4 sessions, 3 converted (purchase 2: p1 p4; signup 1: p3)
 *                    treatment 4 sessions, 3 converted (purchase 2: p5 p6; signup 1: p7); excluded 1
 *
 * Project B reuses `pricing` and p1 (treatment at +48h, 12th, purchase +48h01m);
 * mixed with A's p1 it would be excluded. B also has `b-only`.
 */

const m = 60;
const h = 3_600;

let database: TestDatabase;
let a: ProjectKeys;
let b: ProjectKeys;
let app: Awaited<ReturnType<typeof testApp>>;

beforeAll(async () => {
  database = await createTestDatabase();
  const db = database.db;
  a = await createProject(db, 'A');
  b = await createProject(db, 'B');

  await store(db, a.projectId, [
    exposure('p1', 0, 'pricing', 'control'),
    conversion('p1', 30 * m, 'purchase'),
    exposure('p2', 10 * m, 'pricing', 'control'),
    exposure('p3', 1 * h + 30 * m, 'pricing', 'control'),
    conversion('p3', 2 * h, 'signup'),
    exposure('p4', 13 * h, 'pricing', 'control'),
    conversion('p4', 13 * h + 1 * m, 'purchase'),
    exposure('p5', 5 * m, 'pricing', 'treatment'),
    conversion('p5', 6 * m, 'purchase'),
    exposure('p6', 2 * h, 'pricing', 'treatment'),
    conversion('p6', 1 * h + 30 * m, 'purchase'),
    exposure('p7', 25 * h, 'pricing', 'treatment'),
    conversion('p7', 26 * h, 'signup'),
    exposure('p8', 0, 'pricing', 'control'),
    conversion('p8', 4 * h, 'purchase'),
    exposure('p9', 12 * h, 'pricing', 'treatment'),
    conversion('p9', 11 * h, 'purchase'),
  ]);
  // Late, in a later rollup run: p6's earliest exposure, and p8's second variant.
  await store(db, a.projectId, [exposure('p6', 1 * h, 'pricing', 'treatment'), exposure('p8', 3 * h, 'pricing', 'treatment')]);

  await store(db, b.projectId, [
    exposure('p1', 48 * h, 'pricing', 'treatment'),
    conversion('p1', 48 * h + 1 * m, 'purchase'),
    exposure('q1', 0, 'b-only', 'x'),
  ]);

  app = await testApp(database.db);
});

afterAll(async () => {
  await app?.close();
  await database?.drop();
});

async function get(url: string, key = a.readKey) {
  const response = await app.inject({ method: 'GET', url, headers: bearer(key) });
  return { status: response.statusCode, body: response.json() as Record<string, any> };
}

const point = (bucket: string, sessions: number, convertedSessions: number, cumulativeSessions: number, cumulativeConvertedSessions: number) => ({
  bucket,
  sessions,
  convertedSessions,
  cumulativeSessions,
  cumulativeConvertedSessions,
  cumulativeConversionRate: cumulativeConvertedSessions / cumulativeSessions,
});

describe('the time series of an experiment', () => {
  it('groups assigned sessions by the UTC hour of their first exposure, with running totals', async () => {
    const { status, body } = await get('/v1/experiments/pricing/timeseries?interval=hour');
    expect(status).toBe(200);
    expect(body).toEqual({
      experimentId: 'pricing',
      interval: 'hour',
      goal: null,
      asOf: expect.any(String),
      variants: [
        {
          variantKey: 'control',
          points: [
            point('2025-01-10T12:00:00.000Z', 2, 1, 2, 1),
            point('2025-01-10T13:00:00.000Z', 1, 1, 3, 2),
            point('2025-01-11T01:00:00.000Z', 1, 1, 4, 3),
          ],
        },
        {
          variantKey: 'treatment',
          points: [
            point('2025-01-10T12:00:00.000Z', 1, 1, 1, 1),
            point('2025-01-10T13:00:00.000Z', 1, 1, 2, 2),
            point('2025-01-11T00:00:00.000Z', 1, 0, 3, 2),
            point('2025-01-11T13:00:00.000Z', 1, 1, 4, 3),
          ],
        },
      ],
    });
  });

  it('groups them by UTC day, which is the default interval', async () => {
    const expected = [
      {
        variantKey: 'control',
        points: [point('2025-01-10T00:00:00.000Z', 3, 2, 3, 2), point('2025-01-11T00:00:00.000Z', 1, 1, 4, 3)],
      },
      {
        variantKey: 'treatment',
        points: [point('2025-01-10T00:00:00.000Z', 2, 2, 2, 2), point('2025-01-11T00:00:00.000Z', 2, 1, 4, 3)],
      },
    ];
    const day = await get('/v1/experiments/pricing/timeseries?interval=day');
    expect(day.body).toMatchObject({ interval: 'day', goal: null, variants: expected });
    const byDefault = await get('/v1/experiments/pricing/timeseries');
    expect(byDefault.status).toBe(200);
    expect(byDefault.body).toEqual(day.body);
  });

  it('counts only the conversions of the asked goal, with every session still in its bucket', async () => {
    const purchase = await get('/v1/experiments/pricing/timeseries?interval=day&goal=purchase');
    expect(purchase.body).toMatchObject({
      interval: 'day',
      goal: 'purchase',
      variants: [
        {
          variantKey: 'control',
          points: [point('2025-01-10T00:00:00.000Z', 3, 1, 3, 1), point('2025-01-11T00:00:00.000Z', 1, 1, 4, 2)],
        },
        {
          variantKey: 'treatment',
          points: [point('2025-01-10T00:00:00.000Z', 2, 2, 2, 2), point('2025-01-11T00:00:00.000Z', 2, 0, 4, 2)],
        },
      ],
    });

    const signup = await get('/v1/experiments/pricing/timeseries?interval=hour&goal=signup');
    expect(signup.body.variants).toEqual([
      {
        variantKey: 'control',
        points: [
          point('2025-01-10T12:00:00.000Z', 2, 0, 2, 0),
          point('2025-01-10T13:00:00.000Z', 1, 1, 3, 1),
          point('2025-01-11T01:00:00.000Z', 1, 0, 4, 1),
        ],
      },
      {
        variantKey: 'treatment',
        points: [
          point('2025-01-10T12:00:00.000Z', 1, 0, 1, 0),
          point('2025-01-10T13:00:00.000Z', 1, 0, 2, 0),
          point('2025-01-11T00:00:00.000Z', 1, 0, 3, 0),
          point('2025-01-11T13:00:00.000Z', 1, 1, 4, 1),
        ],
      },
    ]);

    const nobody = await get('/v1/experiments/pricing/timeseries?goal=newsletter');
    expect(nobody.body.variants.flatMap((v: { points: { convertedSessions: number }[] }) => v.points.map((p) => p.convertedSessions))).toEqual([
      0, 0, 0, 0,
    ]);
  });

  it.each([
    ['hour', null],
    ['day', null],
    ['hour', 'purchase'],
    ['day', 'signup'],
  ])("ends, per variant, on the results' sessions and convertedSessions (%s, goal %s)", async (interval, goal) => {
    const query = goal === null ? '' : `&goal=${goal}`;
    const series = (await get(`/v1/experiments/pricing/timeseries?interval=${interval}${query}`)).body;
    const results = (await get(`/v1/experiments/pricing/results?${query.slice(1)}`)).body;
    expect(series.asOf).toBe(results.asOf);
    expect(series.variants.map((v: { variantKey: string }) => v.variantKey)).toEqual(
      results.variants.map((v: { variantKey: string }) => v.variantKey),
    );
    for (const [i, variant] of results.variants.entries()) {
      const last = series.variants[i].points.at(-1);
      expect(last.cumulativeSessions).toBe(variant.sessions);
      expect(last.cumulativeConvertedSessions).toBe(variant.convertedSessions);
      expect(last.cumulativeConversionRate).toBe(variant.conversionRate);
    }
  });

  it('leaves excluded sessions out of every bucket', async () => {
    const { body } = await get('/v1/experiments/pricing/timeseries?interval=hour');
    const bucketed = body.variants.flatMap((v: { points: { sessions: number }[] }) => v.points).reduce((sum: number, p: { sessions: number }) => sum + p.sessions, 0);
    const listed = (await get('/v1/experiments')).body.experiments.find((e: { experimentId: string }) => e.experimentId === 'pricing');
    // p1..p9 exposed, p8 excluded: 9 - 1.
    expect(listed).toMatchObject({ exposedSessions: 9, excludedSessions: 1 });
    expect(bucketed).toBe(8);
  });

  it('moves a session to the bucket of an earlier exposure that arrives late, with the conversions that now count', async () => {
    await store(database.db, a.projectId, [exposure('r1', 2 * h, 'moving', 'v'), conversion('r1', 1 * h + 30 * m)]);
    const before = await get('/v1/experiments/moving/timeseries?interval=hour');
    expect(before.body.variants).toEqual([{ variantKey: 'v', points: [point('2025-01-10T14:00:00.000Z', 1, 0, 1, 0)] }]);

    await store(database.db, a.projectId, [exposure('r1', 1 * h, 'moving', 'v')]);
    const after = await get('/v1/experiments/moving/timeseries?interval=hour');
    expect(after.body.variants).toEqual([{ variantKey: 'v', points: [point('2025-01-10T13:00:00.000Z', 1, 1, 1, 1)] }]);
    expect(Date.parse(after.body.asOf)).toBeGreaterThan(Date.parse(before.body.asOf));
  });

  it('answers an experiment whose every session was excluded with no variant', async () => {
    await store(database.db, a.projectId, [exposure('z1', 0, 'all-excluded', 'x'), exposure('z1', 1, 'all-excluded', 'y')]);
    const { status, body } = await get('/v1/experiments/all-excluded/timeseries');
    expect(status).toBe(200);
    expect(body).toMatchObject({ experimentId: 'all-excluded', interval: 'day', variants: [] });
  });

  it('answers 404 for an experiment the project has no exposure to', async () => {
    const { status, body } = await get('/v1/experiments/nope/timeseries?interval=hour');
    expect(status).toBe(404);
    expect(body.message).toMatch(/^No experiment "nope" in this project/);
  });
});

describe('the time series of another project', () => {
  it('is counted apart for an experiment id and session id both projects use', async () => {
    const { body } = await get('/v1/experiments/pricing/timeseries?interval=day', b.readKey);
    expect(body.variants).toEqual([{ variantKey: 'treatment', points: [point('2025-01-12T00:00:00.000Z', 1, 1, 1, 1)] }]);
  });

  it("is not seen by another project's key: 404, as for an experiment that does not exist", async () => {
    const foreign = await get('/v1/experiments/b-only/timeseries', a.readKey);
    const missing = await get('/v1/experiments/b-nothing/timeseries', a.readKey);
    expect(foreign.status).toBe(404);
    expect(foreign.body.message.replace('b-only', 'X')).toBe(missing.body.message.replace('b-nothing', 'X'));
  });
});
