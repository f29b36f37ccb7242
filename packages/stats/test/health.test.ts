import { describe, expect, it } from 'vitest';
import { multipleExposureCheck, sampleRatioMismatch } from '../src/index.js';

describe('sample ratio mismatch', () => {
  it('flags a mismatch below 0.001 and reports the test', () => {
    const srm = sampleRatioMismatch([1000, 1200]);
    expect(srm).toMatchObject({ degreesOfFreedom: 1, threshold: 0.001, flagged: true, reason: null });
    expect(srm.statistic).toBeCloseTo(200 ** 2 / 2 / 1100, 12);
    expect(srm.arms).toEqual([
      { sessions: 1000, expectedShare: 0.5, observedShare: 1000 / 2200, expectedSessions: 1100, included: true },
      { sessions: 1200, expectedShare: 0.5, observedShare: 1200 / 2200, expectedSessions: 1100, included: true },
    ]);
  });

  it('does not flag a split that matches its weights', () => {
    expect(sampleRatioMismatch([310, 98], [0.75, 0.25]).flagged).toBe(false);
    expect(sampleRatioMismatch([310, 98], [3, 1]).pValue).toBe(sampleRatioMismatch([310, 98], [0.75, 0.25]).pValue);
  });

  it('takes a custom threshold', () => {
    expect(sampleRatioMismatch([135, 115], undefined, { threshold: 0.3 }).flagged).toBe(true);
  });

  it('a weighted arm with no sessions counts against the split', () => {
    const srm = sampleRatioMismatch([1000, 0]);
    expect(srm.flagged).toBe(true);
    expect(srm.pValue).toBeLessThan(1e-100);
  });

  it('drops a zero-weight arm with no sessions: no degree of freedom', () => {
    const srm = sampleRatioMismatch([1000, 1200, 0], [0.5, 0.5, 0]);
    expect(srm.pValue).toBe(sampleRatioMismatch([1000, 1200]).pValue);
    expect(srm.degreesOfFreedom).toBe(1);
    expect(srm.arms[2]).toEqual({ sessions: 0, expectedShare: 0, observedShare: 0, expectedSessions: null, included: false });
  });

  it('sessions in a zero-weight arm are a maximal mismatch, flagged without a statistic', () => {
    const srm = sampleRatioMismatch([1000, 1000, 3], [0.5, 0.5, 0]);
    expect(srm).toMatchObject({ pValue: 0, statistic: null, flagged: true, reason: 'arm 2 has 3 sessions but an expected weight of 0' });
  });

  it('cannot test fewer than two weighted arms or no sessions', () => {
    expect(sampleRatioMismatch([1000])).toMatchObject({ pValue: null, flagged: false, reason: 'needs at least two arms with a positive weight' });
    expect(sampleRatioMismatch([0, 0, 0], [0.34, 0.33, 0.33])).toMatchObject({ pValue: null, flagged: false, reason: 'no sessions' });
    expect(sampleRatioMismatch([0, 0, 0], [0.34, 0.33, 0.33]).arms[0]).toMatchObject({ observedShare: null, expectedSessions: null });
  });

  it.each([
    [[10, -1], undefined, /counts\[1\]/],
    [[10, 1.5], undefined, /counts\[1\]/],
    [[10, 10], [1], /2 counts but 1 weights/],
    [[10, 10], [1, -1], /weights\[1\]/],
    [[10, 10], [0, 0], /at least one weight/],
    [[10, 10], [1, Number.NaN], /weights\[1\]/],
  ])('rejects %j with weights %j', (counts, weights, message) => {
    expect(() => sampleRatioMismatch(counts, weights)).toThrow(message);
  });
});

describe('multiple exposures', () => {
  it('reports the excluded share and flags it at 1%', () => {
    expect(multipleExposureCheck({ excludedSessions: 20, exposedSessions: 1000 })).toEqual({
      excludedSessions: 20,
      exposedSessions: 1000,
      share: 0.02,
      threshold: 0.01,
      flagged: true,
      reason: null,
    });
    expect(multipleExposureCheck({ excludedSessions: 10, exposedSessions: 1000 }).flagged).toBe(true);
    expect(multipleExposureCheck({ excludedSessions: 10, exposedSessions: 1001 }).flagged).toBe(false);
  });

  it('needs at least 10 excluded sessions to flag', () => {
    const check = multipleExposureCheck({ excludedSessions: 9, exposedSessions: 20 });
    expect(check).toMatchObject({ share: 0.45, flagged: false });
    expect(check.reason).toMatch(/fewer than the 10 needed/);
    expect(multipleExposureCheck({ excludedSessions: 9, exposedSessions: 20 }, { minExcludedSessions: 0 }).flagged).toBe(true);
  });

  it('takes a custom threshold', () => {
    expect(multipleExposureCheck({ excludedSessions: 20, exposedSessions: 1000 }, { threshold: 0.05 }).flagged).toBe(false);
  });

  it('has no share without exposed sessions', () => {
    expect(multipleExposureCheck({ excludedSessions: 0, exposedSessions: 0 })).toMatchObject({ share: null, flagged: false, reason: 'no exposed sessions' });
  });

  it('rejects more excluded than exposed sessions', () => {
    expect(() => multipleExposureCheck({ excludedSessions: 11, exposedSessions: 10 })).toThrow(/excludedSessions/);
  });
});
