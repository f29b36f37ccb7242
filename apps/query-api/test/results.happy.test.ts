import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProject, runRollup, type ProjectKeys } from '@tally/db';
import { createTestDatabase, type TestDatabase } from '@tally/testing';
import { at, bearer, conversion, exposure, pageview, store, testApp } from './fixture.js';

/**
 * One scenario that exercises every rule of design.md's "Exact semantics".
 * Times are seconds after T. Every expected number below was worked out by hand
 * from the events, as noted per session.
 *
 * Project A, experiment `checkout`:
 *   s1 control: exposed at +10, then (stored later) at +5, so first exposure +5.
 *      pageview at 0 and purchase at +1 come before it: not counted. pageview at +6
 *      counts only because the first exposure is the earliest one. purchases at +20
 *      and +25, signup at +30: counted.                 → pv 1, purchase 2, signup 1
 *   s2 treatment: exposed at 0; pageviews at 0 (same instant counts), +1, +2 (+2 is
 *      stored twice with the same eventId and client time); signup at +3.
 *                                                       → pv 3, signup 1
 *   s3 exposed to control (0) and treatment (+60): excluded from `checkout`; its
 *      pageview (+1) and purchase (+2) count in `banner`, where it is assigned to a.
 *   s4 treatment: exposed at +100 (and to `banner` b at +50). purchase at +70 is
 *      before +100 (not counted here, counted in banner); pageview at +200 and
 *      signup at +300 count in both experiments.       → pv 1, signup 1
 *   s5 control: exposed at 0; a conversion without goal at +1.  → any-goal 1
 *   s6 treatment: exposure and purchase at +5, each stored twice with the same
 *      eventId and client time (the retry's skew-corrected time differs).  → purchase 1
 *   s8 treatment: exposed at 0; a pageview at -5 only.  → nothing
 *   s9 control: exposed at 0; a purchase at -1 only.    → nothing
 *
 *   control   = s1, s5, s9:      sessions 3, pageviewSessions 1, pageviews 1
 *               any goal: converted s1, s5 = 2; conversions 2+1+1 = 4; rate 2/3
 *               purchase: converted s1 = 1; conversions 2; rate 1/3
 *               signup:   converted s1 = 1; conversions 1; rate 1/3
 *   treatment = s2, s4, s6, s8:  sessions 4, pageviewSessions 2 (s2, s4), pageviews 3+1 = 4
 *               any goal: converted s2, s4, s6 = 3; conversions 3; rate 3/4
 *               purchase: converted s6 = 1; conversions 1; rate 1/4
 *               signup:   converted s2, s4 = 2; conversions 2; rate 2/4
 *   excluded  = s3: 1
 *
 * Project A, experiment `banner`: s3 a (0), s4 b (+50).
 *   a: s3 pageview +1, purchase +2           → 1 session, pv 1, any 1 (purchase)
 *   b: s4 pageview +200, purchase +70, signup +300 → 1 session, pv 1, any 2
 *
 * Project A, experiment `all-excluded`: s10 exposed to x and y: excluded 1, no variant.
 *
 * Project B reuses experiment id `checkout` and session ids s1, s2: s1 is exposed to
 * treatment there (mixed with A's s1, it would be excluded), s2 has a purchase (mixed,
 * A's treatment would gain one). B also has `only-b`.
 */

let database: TestDatabase;
let a: ProjectKeys;
let b: ProjectKeys;
let app: Awaited<ReturnType<typeof testApp>>;

beforeAll(async () => {
  database = await createTestDatabase();
  const db = database.db;
  a = await createProject(db, 'A');
  b = await createProject(db, 'B');

  const s2Retried = pageview('s2', 2);
  const s6Exposure = exposure('s6', 5, 'checkout', 'treatment');
  const s6Purchase = conversion('s6', 5, 'purchase');

  await store(db, a.projectId, [
    exposure('s1', 10, 'checkout', 'control'),
    pageview('s1', 0),
    conversion('s1', 1, 'purchase'),
    pageview('s1', 6),
    conversion('s1', 20, 'purchase'),
    conversion('s1', 25, 'purchase'),
    conversion('s1', 30, 'signup'),

    exposure('s2', 0, 'checkout', 'treatment'),
    pageview('s2', 0),
    pageview('s2', 1),
    s2Retried,
    conversion('s2', 3, 'signup'),

    exposure('s3', 0, 'checkout', 'control'),
    exposure('s3', 60, 'checkout', 'treatment'),
    exposure('s3', 0, 'banner', 'a'),
    pageview('s3', 1),
    conversion('s3', 2, 'purchase'),

    exposure('s4', 100, 'checkout', 'treatment'),
    exposure('s4', 50, 'banner', 'b'),
    conversion('s4', 70, 'purchase'),
    pageview('s4', 200),
    conversion('s4', 300, 'signup'),

    exposure('s5', 0, 'checkout', 'control'),
    conversion('s5', 1),

    s6Exposure,
    s6Purchase,

    exposure('s8', 0, 'checkout', 'treatment'),
    pageview('s8', -5),

    exposure('s9', 0, 'checkout', 'control'),
    conversion('s9', -1, 'purchase'),

    exposure('s10', 0, 'all-excluded', 'x'),
    exposure('s10', 1, 'all-excluded', 'y'),
  ]);

  // Arriving late and out of order: s1's earliest exposure, and retries of events already stored.
  const skewed = (e: typeof s6Exposure) => ({ ...e, timestamp: e.timestamp + 2_500 });
  const stored = await store(db, a.projectId, [
    exposure('s1', 5, 'checkout', 'control'),
    skewed(s2Retried),
    skewed(s6Exposure),
    skewed(s6Purchase),
    s6Purchase,
  ]);
  expect(stored).toBe(1);

  await store(db, b.projectId, [
    exposure('s1', 0, 'checkout', 'treatment'),
    pageview('s1', 1),
    conversion('s1', 2, 'purchase'),
    conversion('s2', 10, 'purchase'),
    exposure('s7', 0, 'checkout', 'control'),
    exposure('s7', 0, 'only-b', 'x'),
  ]);

  app = await testApp(database.db);
});

afterAll(async () => {
  await app?.close();
  await database?.drop();
});

async function get(url: string, key = a.readKey) {
  const response = await app.inject({ method: 'GET', url, headers: bearer(key) });
  return { status: response.statusCode, body: response.json() as Record<string, any>, headers: response.headers };
}

/** The counting fields of each variant, without the statistics beside them (tested in statistics.happy.test.ts). */
const counts = (variants: Record<string, unknown>[]) =>
  variants.map(({ comparison: _comparison, comparisonReason: _reason, ...rest }) => rest);

const variant = (
  variantKey: string,
  sessions: number,
  pageviewSessions: number,
  pageviews: number,
  convertedSessions: number,
  conversions: number,
  conversionRate: number,
) => ({ variantKey, sessions, pageviewSessions, pageviews, convertedSessions, conversions, conversionRate });

describe('experiment results, following the exact semantics', () => {
  it('counts every goal when no goal is asked', async () => {
    const { status, body } = await get('/v1/experiments/checkout/results');
    expect(status).toBe(200);
    const noControl = expect.stringMatching(/^No control to compare with: ask for one with \?control=<variant>, or configure one/);
    expect(body).toEqual({
      experimentId: 'checkout',
      goal: null,
      control: null,
      asOf: expect.any(String),
      excludedSessions: 1,
      variants: [
        { ...variant('control', 3, 1, 1, 2, 4, 2 / 3), comparison: null, comparisonReason: noControl },
        { ...variant('treatment', 4, 2, 4, 3, 3, 3 / 4), comparison: null, comparisonReason: noControl },
      ],
      alpha: 0.05,
      minimums: { sessions: 100, conversions: 10 },
      baseline: { variantKey: null, source: null, reason: noControl },
      // Sessions 3 and 4 against equal shares: expected 3.5 each, chi-square (0.5² + 0.5²) / 3.5 = 1/7 with
      // 1 degree of freedom, p = erfc(sqrt(1/14)) = 0.705457.
      srm: {
        weightsSource: 'equal',
        pValue: expect.closeTo(0.7054569861, 9),
        statistic: expect.closeTo(1 / 7, 12),
        degreesOfFreedom: 1,
        threshold: 0.001,
        flagged: false,
        reason: null,
        variants: [
          { variantKey: 'control', sessions: 3, expectedShare: 0.5, observedShare: 3 / 7, expectedSessions: 3.5, included: true },
          { variantKey: 'treatment', sessions: 4, expectedShare: 0.5, observedShare: 4 / 7, expectedSessions: 3.5, included: true },
        ],
      },
      // s3 of the 8 exposed sessions saw both variants: 1/8, but one session is too few to flag.
      multipleExposure: {
        excludedSessions: 1,
        exposedSessions: 8,
        share: 0.125,
        threshold: 0.01,
        flagged: false,
        reason: '1 excluded sessions, fewer than the 10 needed to flag',
      },
    });
  });

  it('counts only the conversions of the asked goal, leaving sessions and pageviews alone', async () => {
    const purchase = await get('/v1/experiments/checkout/results?goal=purchase');
    expect(purchase.body).toMatchObject({ goal: 'purchase', excludedSessions: 1 });
    expect(counts(purchase.body.variants)).toEqual([variant('control', 3, 1, 1, 1, 2, 1 / 3), variant('treatment', 4, 2, 4, 1, 1, 1 / 4)]);
    const signup = await get('/v1/experiments/checkout/results?goal=signup');
    expect(signup.body.goal).toBe('signup');
    expect(counts(signup.body.variants)).toEqual([variant('control', 3, 1, 1, 1, 1, 1 / 3), variant('treatment', 4, 2, 4, 2, 2, 2 / 4)]);
  });

  it('gives zero conversions for a goal nobody reached, with every session still there', async () => {
    const { status, body } = await get('/v1/experiments/checkout/results?goal=newsletter');
    expect(status).toBe(200);
    expect(counts(body.variants)).toEqual([variant('control', 3, 1, 1, 0, 0, 0), variant('treatment', 4, 2, 4, 0, 0, 0)]);
  });

  it('counts a conversion in every experiment its session is assigned in', async () => {
    const any = await get('/v1/experiments/banner/results');
    expect(any.body.excludedSessions).toBe(0);
    expect(counts(any.body.variants)).toEqual([variant('a', 1, 1, 1, 1, 1, 1), variant('b', 1, 1, 1, 1, 2, 1)]);
    const signup = await get('/v1/experiments/banner/results?goal=signup');
    expect(counts(signup.body.variants)).toEqual([variant('a', 1, 1, 1, 0, 0, 0), variant('b', 1, 1, 1, 1, 1, 1)]);
  });

  it('keeps two projects with the same experiment and session ids apart', async () => {
    const { body } = await get('/v1/experiments/checkout/results', b.readKey);
    expect(body.excludedSessions).toBe(0);
    expect(counts(body.variants)).toEqual([variant('control', 1, 0, 0, 0, 0, 0), variant('treatment', 1, 1, 1, 1, 1, 1)]);
  });

  it('reports an experiment whose every session saw several variants with no variant', async () => {
    const { status, body } = await get('/v1/experiments/all-excluded/results');
    expect(status).toBe(200);
    expect(body).toMatchObject({ excludedSessions: 1, variants: [] });
  });

  it('lists the control first when one is asked for', async () => {
    const { body } = await get('/v1/experiments/checkout/results?control=treatment&goal=purchase');
    expect(body.control).toBe('treatment');
    expect(body.variants.map((v: { variantKey: string }) => v.variantKey)).toEqual(['treatment', 'control']);
    expect(counts(body.variants)[0]).toEqual(variant('treatment', 4, 2, 4, 1, 1, 1 / 4));

    const already = await get('/v1/experiments/checkout/results?control=control');
    expect(already.body.variants.map((v: { variantKey: string }) => v.variantKey)).toEqual(['control', 'treatment']);
  });

  it("says how fresh the numbers are: the instant of the rollup's last run", async () => {
    // A run with nothing new to fold still moves asOf: nothing was missed up to it.
    const run = await runRollup(database.db);
    expect(run.events).toBe(0);
    const { body } = await get('/v1/experiments/checkout/results');
    expect(body.asOf).toBe(run.asOf?.toISOString());
    expect((await get('/v1/experiments')).body.asOf).toBe(run.asOf?.toISOString());
  });

  it('answers with no-store and nosniff headers', async () => {
    const { headers } = await get('/v1/experiments/checkout/results');
    expect(headers['cache-control']).toBe('no-store');
    expect(headers['x-content-type-options']).toBe('nosniff');
    expect(headers['content-type']).toMatch(/^application\/json/);
  });
});

describe('the list of experiments', () => {
  it("lists the project's experiments with exposed, excluded and assigned sessions", async () => {
    const { status, body } = await get('/v1/experiments');
    expect(status).toBe(200);
    expect(body).toEqual({
      asOf: expect.any(String),
      experiments: [
        {
          // s10 saw x and y: exposed, excluded, and no variant has an assigned session.
          experimentId: 'all-excluded',
          exposedSessions: 1,
          excludedSessions: 1,
          firstExposureAt: new Date(at(0)).toISOString(),
          lastExposureAt: new Date(at(1)).toISOString(),
          variants: [],
        },
        {
          // s3 a at 0, s4 b at +50.
          experimentId: 'banner',
          exposedSessions: 2,
          excludedSessions: 0,
          firstExposureAt: new Date(at(0)).toISOString(),
          lastExposureAt: new Date(at(50)).toISOString(),
          variants: [
            { variantKey: 'a', sessions: 1 },
            { variantKey: 'b', sessions: 1 },
          ],
        },
        {
          // s1 s2 s3 s4 s5 s6 s8 s9 exposed; s3 excluded; control s1 s5 s9, treatment s2 s4 s6 s8.
          // Earliest exposure at 0 (s2, s3, s5, s8, s9), latest s4's at +100.
          experimentId: 'checkout',
          exposedSessions: 8,
          excludedSessions: 1,
          firstExposureAt: new Date(at(0)).toISOString(),
          lastExposureAt: new Date(at(100)).toISOString(),
          variants: [
            { variantKey: 'control', sessions: 3 },
            { variantKey: 'treatment', sessions: 4 },
          ],
        },
      ],
    });
    expect(Number.isNaN(Date.parse(body.asOf))).toBe(false);
  });

  it('agrees with the results: exposed = excluded + assigned, and the same sessions per variant', async () => {
    const { body } = await get('/v1/experiments');
    for (const listed of body.experiments) {
      const results = (await get(`/v1/experiments/${listed.experimentId}/results`)).body;
      expect(listed.excludedSessions).toBe(results.excludedSessions);
      expect(listed.variants).toEqual(
        results.variants.map((v: { variantKey: string; sessions: number }) => ({ variantKey: v.variantKey, sessions: v.sessions })),
      );
      const assigned = listed.variants.reduce((sum: number, v: { sessions: number }) => sum + v.sessions, 0);
      expect(listed.exposedSessions).toBe(listed.excludedSessions + assigned);
    }
  });

  it("shows another project's key only that project's experiments", async () => {
    const { body } = await get('/v1/experiments', b.readKey);
    expect(body.experiments).toEqual([
      {
        // s1 treatment, s7 control, both at 0.
        experimentId: 'checkout',
        exposedSessions: 2,
        excludedSessions: 0,
        firstExposureAt: new Date(at(0)).toISOString(),
        lastExposureAt: new Date(at(0)).toISOString(),
        variants: [
          { variantKey: 'control', sessions: 1 },
          { variantKey: 'treatment', sessions: 1 },
        ],
      },
      {
        experimentId: 'only-b',
        exposedSessions: 1,
        excludedSessions: 0,
        firstExposureAt: new Date(at(0)).toISOString(),
        lastExposureAt: new Date(at(0)).toISOString(),
        variants: [{ variantKey: 'x', sessions: 1 }],
      },
    ]);
  });

  it('is empty for a project without exposures', async () => {
    const empty = await createProject(database.db, 'empty');
    const { status, body } = await get('/v1/experiments', empty.readKey);
    expect(status).toBe(200);
    expect(body.experiments).toEqual([]);
  });
});
