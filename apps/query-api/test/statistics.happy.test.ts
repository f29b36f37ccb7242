import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '@tally/contracts';
import { createProject, rotateKey, type ProjectKeys } from '@tally/db';
import { createTestDatabase, type TestDatabase } from '@tally/testing';
import { bearer, conversion, exposure, store, testApp } from './fixture.js';

/**
 * The statistics of `/results`, through the API on real summaries. Expected values
 * are either worked out here by hand (rates, standard errors, Welch degrees of
 * freedom, SRM chi-square by its closed form) or GrowthBook's published gbstats test
 * values (`tests/frequentist/test_tests.py`, the Bayesian and `check_srm` tests),
 * which they reproduce to the 5 or 9 digits given.
 */

let database: TestDatabase;
let keys: ProjectKeys;
let adminKey: string;
let app: Awaited<ReturnType<typeof testApp>>;

/** `sessions` sessions exposed to the variant, the first `converted` of them with a purchase after it. */
function arm(experimentId: string, variantKey: string, sessions: number, converted: number): StoredEvent[] {
  const events: StoredEvent[] = [];
  for (let i = 0; i < sessions; i++) {
    const sessionId = `${experimentId}/${variantKey}/${i}`;
    // Spread over a few hours, so that the cohorts span several buckets.
    const at = (i * 7) % 10_800;
    events.push(exposure(sessionId, at, experimentId, variantKey));
    if (i < converted) events.push(conversion(sessionId, at + 30, 'purchase'));
  }
  return events;
}

/** Sessions that saw two variants: excluded from every variant. */
function excluded(experimentId: string, count: number, variants: [string, string]): StoredEvent[] {
  return Array.from({ length: count }, (_, i) => [
    exposure(`${experimentId}/mixed/${i}`, i, experimentId, variants[0]),
    exposure(`${experimentId}/mixed/${i}`, i + 1, experimentId, variants[1]),
  ]).flat();
}

beforeAll(async () => {
  database = await createTestDatabase();
  keys = await createProject(database.db, 'statistics');
  adminKey = (await rotateKey(database.db, keys.projectId, 'admin'))!;
  await store(database.db, keys.projectId, [
    ...arm('gb-binomial', 'A', 28, 14),
    ...arm('gb-binomial', 'B', 30, 16),
    ...arm('gb-bayes', 'A', 100, 49),
    ...arm('gb-bayes', 'B', 100, 51),
    ...arm('decide', 'control', 2_000, 100),
    ...arm('decide', 'better', 2_000, 150),
    ...arm('decide', 'worse', 2_000, 60),
    ...arm('srm-equal', 'a', 1_000, 0),
    ...arm('srm-equal', 'b', 1_200, 0),
    ...arm('srm-weighted', 'a', 310, 0),
    ...arm('srm-weighted', 'b', 98, 0),
    ...arm('srm-three', 'a', 500, 0),
    ...arm('srm-three', 'b', 500, 0),
    ...arm('srm-three', 'c', 600, 0),
    ...arm('zero-weight', 'A', 50, 5),
    ...arm('zero-weight', 'B', 50, 5),
    ...arm('zero-weight', 'C', 3, 0),
    ...arm('zero-weight', 'D', 2, 0),
    ...arm('missing-arm', 'A', 50, 5),
    ...arm('missing-arm', 'B', 50, 5),
    ...arm('zero-control', 'control', 150, 0),
    ...arm('zero-control', 'treatment', 150, 20),
    ...arm('single', 'only', 40, 4),
    ...arm('sticky', 'A', 10, 1),
    ...arm('sticky', 'B', 10, 2),
    ...excluded('sticky', 10, ['A', 'B']),
  ]);
  app = await testApp(database.db);
  await configure('srm-weighted', { weights: { a: 0.75, b: 0.25 } });
  await configure('srm-three', { weights: { a: 0.34, b: 0.33, c: 0.33 } });
  await configure('zero-weight', { weights: { A: 1, B: 1, C: 0 } });
  await configure('missing-arm', { weights: { A: 1, B: 1, E: 1 } });
  await configure('decide', { control: 'control' });
});

afterAll(async () => {
  await app?.close();
  await database?.drop();
});

async function configure(experimentId: string, settings: Record<string, unknown>) {
  const response = await app.inject({ method: 'PUT', url: `/v1/experiments/${experimentId}/settings`, headers: bearer(adminKey), payload: settings });
  expect(response.statusCode).toBe(200);
}

async function results(path: string) {
  const response = await app.inject({ url: `/v1/experiments/${path}`, headers: bearer(keys.readKey) });
  expect(response.statusCode).toBe(200);
  // JSON has no NaN or Infinity: a number that cannot be computed must be null, never a bare token or a string.
  expect(response.body).not.toMatch(/NaN|Infinity/);
  return response.json() as Record<string, any>;
}

const variantOf = (body: Record<string, any>, key: string) => body.variants.find((v: { variantKey: string }) => v.variantKey === key);

describe('comparisons against the control, with published reference values', () => {
  it('reproduces gbstats binomial A=14/28, B=16/30: relative lift 0.06667, CI (-0.47767, 0.61101), p 0.80707', async () => {
    const body = await results('gb-binomial/results?control=A');
    expect(body.baseline).toEqual({ variantKey: 'A', source: 'query', reason: null });
    const { comparison } = variantOf(body, 'B');
    expect(comparison.control).toBe('A');
    expect(comparison.relativeLift.value).toBeCloseTo(0.06667, 5);
    expect(comparison.relativeLift.ci.lower).toBeCloseTo(-0.47767, 5);
    expect(comparison.relativeLift.ci.upper).toBeCloseTo(0.61101, 5);
    expect(comparison.relativeLift.pValue).toBeCloseTo(0.80707, 5);
    expect(comparison.relativeLift.significant).toBe(false);

    // By hand: pA = 1/2, pB = 8/15; Bernoulli variances p(1 - p).
    const [pA, pB, nA, nB] = [14 / 28, 16 / 30, 28, 30];
    const [vA, vB] = [pA * (1 - pA), pB * (1 - pB)];
    expect(comparison.absoluteLift.value).toBeCloseTo(1 / 30, 12);
    expect(comparison.absoluteLift.stdError).toBeCloseTo(Math.sqrt(vA / nA + vB / nB), 12);
    // The delta method for pB / pA with independent arms.
    expect(comparison.relativeLift.stdError).toBeCloseTo(Math.sqrt(vB / (nB * pA ** 2) + (vA * pB ** 2) / (nA * pA ** 4)), 12);
    // Welch–Satterthwaite on the variances of the two means.
    const [a, b] = [vA / nA, vB / nB];
    expect(comparison.relativeLift.degreesOfFreedom).toBeCloseTo((a + b) ** 2 / (a ** 2 / (nA - 1) + b ** 2 / (nB - 1)), 9);

    // 28 and 30 sessions are below the minimum of 100 per arm: no decision, whatever the numbers.
    expect(comparison.decision).toBe('not enough data');
    expect(comparison.decisionBasis).toBeNull();
    expect(comparison.decisionReason).toBe('control has 28 sessions (minimum 100); variant has 30 sessions (minimum 100)');

    const control = variantOf(body, 'A');
    expect(control.comparison).toBeNull();
    expect(control.comparisonReason).toMatch(/is the control/);
  });

  it('reproduces gbstats Bayesian A=49/100, B=51/100: lift 0.04082, CI (-0.24779, 0.32943), chance to win 0.60918', async () => {
    const body = await results('gb-bayes/results?control=A');
    const { comparison } = variantOf(body, 'B');
    expect(comparison.bayesian.mean).toBeCloseTo(0.04082, 5);
    expect(comparison.bayesian.ci.lower).toBeCloseTo(-0.24779, 5);
    expect(comparison.bayesian.ci.upper).toBeCloseTo(0.32943, 5);
    expect(comparison.bayesian.chanceToWin).toBeCloseTo(0.60918, 5);
    expect(comparison.bayesian.reason).toBeNull();
    // 100 sessions and 49 / 51 conversions meet the minimums: a decision, and not a win at p ≈ 0.78.
    expect(comparison.decision).toBe('inconclusive');
    expect(comparison.decisionBasis).toBe('relative');
    expect(comparison.decisionReason).toMatch(/^relative lift \+4\.08% \(95% CI .* to .*\), p = 0\.\d+: not significant at alpha 0\.05$/);
  });

  it('takes alpha: 90% intervals are narrower by z(0.95) / z(0.975), and the answer says which alpha it used', async () => {
    const at05 = variantOf(await results('gb-bayes/results?control=A'), 'B').comparison;
    const body = await results('gb-bayes/results?control=A&alpha=0.1');
    expect(body.alpha).toBe(0.1);
    const at10 = body.variants[1].comparison;
    const half = (ci: { lower: number; upper: number }) => (ci.upper - ci.lower) / 2;
    // The credible interval is mean ± z · sd: its half-width scales with the normal quantile.
    expect(half(at10.bayesian.ci) / half(at05.bayesian.ci)).toBeCloseTo(1.6448536269514722 / 1.959963984540054, 9);
    expect(at10.bayesian.mean).toBe(at05.bayesian.mean);
    // The p-value does not depend on alpha; the confidence interval does.
    expect(at10.relativeLift.pValue).toBe(at05.relativeLift.pValue);
    expect(half(at10.relativeLift.ci)).toBeLessThan(half(at05.relativeLift.ci));
    expect(at10.decisionReason).toMatch(/\(90% CI .*not significant at alpha 0\.1$/);
  });

  it('decides win and lose only when the interval excludes 0, and against the configured control when none is asked', async () => {
    const body = await results('decide/results');
    expect(body.control).toBeNull();
    expect(body.baseline).toEqual({ variantKey: 'control', source: 'settings', reason: null });
    // The variants keep their order by key: the configured control is not moved first (that stays the parameter's doing).
    expect(body.variants.map((v: { variantKey: string }) => v.variantKey)).toEqual(['better', 'control', 'worse']);

    // 150/2000 against 100/2000: relative lift exactly 0.5; 60/2000 against it: -0.4.
    const better = variantOf(body, 'better').comparison;
    expect(better.relativeLift.value).toBeCloseTo(0.5, 12);
    expect(better.absoluteLift.value).toBeCloseTo(0.025, 12);
    expect(better.decision).toBe('win');
    expect(better.relativeLift.significant).toBe(true);
    expect(better.relativeLift.ci.lower).toBeGreaterThan(0);
    expect(better.relativeLift.pValue).toBeLessThan(0.05);
    expect(better.bayesian.chanceToWin).toBeGreaterThan(0.99);
    expect(better.decisionReason).toMatch(/^relative lift \+50% .*: significant at alpha 0\.05$/);

    const worse = variantOf(body, 'worse').comparison;
    expect(worse.relativeLift.value).toBeCloseTo(-0.4, 12);
    expect(worse.decision).toBe('lose');
    expect(worse.relativeLift.ci.upper).toBeLessThan(0);
    expect(worse.bayesian.chanceToWin).toBeLessThan(0.01);
  });

  it('compares with the control asked for rather than the configured one', async () => {
    const body = await results('decide/results?control=better');
    expect(body.baseline).toEqual({ variantKey: 'better', source: 'query', reason: null });
    expect(body.control).toBe('better');
    expect(variantOf(body, 'control').comparison.control).toBe('better');
    expect(variantOf(body, 'control').comparison.relativeLift.value).toBeCloseTo(100 / 150 - 1, 12);
    expect(variantOf(body, 'better').comparison).toBeNull();
  });

  it('gives null with a reason, never NaN, when the control converts at 0', async () => {
    const body = await results('zero-control/results?control=control');
    const { comparison } = variantOf(body, 'treatment');
    expect(comparison.relativeLift).toMatchObject({
      value: null,
      ci: null,
      pValue: null,
      significant: false,
      reason: 'control conversion rate is 0: relative lift is undefined',
    });
    expect(comparison.bayesian).toMatchObject({ chanceToWin: null, ci: null, reason: expect.stringMatching(/control conversion rate is 0/) });
    // The absolute lift is still defined: 20/150 - 0.
    expect(comparison.absoluteLift.value).toBeCloseTo(20 / 150, 12);
    expect(comparison.decision).toBe('not enough data');
    expect(comparison.decisionReason).toBe('control has 0 converted sessions (minimum 10)');
  });

  it('keeps finite numbers at an extreme alpha', async () => {
    const body = await results('gb-bayes/results?control=A&alpha=1e-12');
    expect(body.alpha).toBe(1e-12);
    expect(Number.isFinite(body.variants[1].comparison.relativeLift.ci.upper)).toBe(true);
  });

  it('compares nothing without a control, and says how to set one', async () => {
    const body = await results('gb-binomial/results');
    expect(body.baseline).toMatchObject({ variantKey: null, source: null });
    expect(body.baseline.reason).toMatch(/\?control=<variant>.*PUT \/v1\/experiments\/gb-binomial\/settings.*tally experiment configure --control/);
    for (const v of body.variants) expect(v).toMatchObject({ comparison: null, comparisonReason: body.baseline.reason });
  });

  it('compares nothing when the configured control has no session yet, rather than refusing', async () => {
    await configure('single', { control: 'not-yet-live' });
    const body = await results('single/results');
    expect(body.baseline).toEqual({
      variantKey: null,
      source: null,
      reason: 'The configured control "not-yet-live" has no assigned session yet, so there is nothing to compare with.',
    });
    expect(body.variants[0].comparison).toBeNull();
  });
});

describe('sample ratio mismatch', () => {
  it('reproduces gbstats: [1000, 1200] with equal weights → p 0.000020079, flagged', async () => {
    const { srm } = await results('srm-equal/results');
    expect(srm.weightsSource).toBe('equal');
    expect(srm.pValue).toBeCloseTo(0.000020079, 9);
    // By hand: expected 1100 each, chi-square 2 · 100² / 1100 = 200/11 with 1 degree of freedom.
    expect(srm.statistic).toBeCloseTo(200 / 11, 12);
    expect(srm.degreesOfFreedom).toBe(1);
    expect(srm.flagged).toBe(true);
    expect(srm.variants).toEqual([
      { variantKey: 'a', sessions: 1000, expectedShare: 0.5, observedShare: 1000 / 2200, expectedSessions: 1100, included: true },
      { variantKey: 'b', sessions: 1200, expectedShare: 0.5, observedShare: 1200 / 2200, expectedSessions: 1100, included: true },
    ]);
  });

  it('reproduces gbstats: [310, 98] with configured weights [0.75, 0.25] → p 0.647434186, not flagged', async () => {
    const { srm } = await results('srm-weighted/results');
    expect(srm.weightsSource).toBe('settings');
    expect(srm.pValue).toBeCloseTo(0.647434186, 9);
    // Expected 306 and 102: chi-square 4²/306 + 4²/102.
    expect(srm.statistic).toBeCloseTo(16 / 306 + 16 / 102, 12);
    expect(srm.flagged).toBe(false);
  });

  it('reproduces gbstats: [500, 500, 600] with weights [0.34, 0.33, 0.33] → p 0.000592638', async () => {
    const { srm } = await results('srm-three/results');
    expect(srm.pValue).toBeCloseTo(0.000592638, 9);
    expect(srm.degreesOfFreedom).toBe(2);
    expect(srm.flagged).toBe(true);
  });

  it('flags sessions in a variant weighted 0, or in one outside the weights, and names them', async () => {
    const { srm } = await results('zero-weight/results');
    expect(srm).toMatchObject({ pValue: 0, statistic: null, degreesOfFreedom: null, flagged: true });
    expect(srm.reason).toBe(
      'variant "C" has 3 sessions but a configured weight of 0, so it should get no traffic; ' +
        'variant "D" has 2 sessions but no configured weight, so it should get no traffic.',
    );
    expect(srm.variants.map((v: { variantKey: string; expectedShare: number }) => [v.variantKey, v.expectedShare])).toEqual([
      ['A', 0.5],
      ['B', 0.5],
      ['C', 0],
      ['D', 0],
    ]);
  });

  it('counts a weighted variant that got no session at all as a mismatch', async () => {
    const { srm } = await results('missing-arm/results');
    // 50, 50 and 0 against 100/3 each: chi-square 2 · (50 - 100/3)² / (100/3) + 100/3 = 50, 2 degrees of freedom, p = e^-25.
    expect(srm.statistic).toBeCloseTo(50, 9);
    expect(srm.degreesOfFreedom).toBe(2);
    expect(srm.pValue).toBeCloseTo(Math.exp(-25), 15);
    expect(srm.flagged).toBe(true);
    expect(srm.variants.at(-1)).toEqual({
      variantKey: 'E',
      sessions: 0,
      expectedShare: expect.closeTo(1 / 3, 15),
      observedShare: 0,
      expectedSessions: expect.closeTo(100 / 3, 12),
      included: true,
    });
  });

  it('needs two variants', async () => {
    const { srm } = await results('single/results');
    expect(srm).toMatchObject({ pValue: null, flagged: false, reason: 'needs at least two arms with a positive weight' });
  });

  it('does not depend on the goal', async () => {
    expect((await results('srm-equal/results?goal=other')).srm).toEqual((await results('srm-equal/results')).srm);
  });
});

describe('multiple exposures', () => {
  it('flags an experiment where 10 of 30 exposed sessions saw both variants', async () => {
    const body = await results('sticky/results');
    expect(body.excludedSessions).toBe(10);
    expect(body.multipleExposure).toEqual({
      excludedSessions: 10,
      exposedSessions: 30,
      share: 1 / 3,
      threshold: 0.01,
      flagged: true,
      reason: null,
    });
  });

  it('agrees with the list of experiments on the exposed sessions', async () => {
    const list = await app.inject({ url: '/v1/experiments', headers: bearer(keys.readKey) });
    for (const listed of list.json().experiments) {
      const body = await results(`${listed.experimentId}/results`);
      expect(body.multipleExposure.exposedSessions).toBe(listed.exposedSessions);
    }
  });
});
