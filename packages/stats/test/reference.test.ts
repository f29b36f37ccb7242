import { describe, expect, it } from 'vitest';
import { compareVariants, sampleRatioMismatch } from '../src/index.js';

// Published values from GrowthBook's tests, rounded as they round them (gbstats: 5 decimals,
// checkSrm: 9): gbstats tests/frequentist/test_tests.py (test_two_sided_ttest_binom), the
// Bayesian binomial case of gbstats' effect test with its default flat prior, and the
// checkSrm / check_srm cases (GrowthBook back-end and gbstats tests/test_utils.py).

const noMinimums = { sessions: 0, conversions: 0 };

function variantOf(control: [number, number], variant: [number, number]) {
  const result = compareVariants({
    control: { key: 'A', convertedSessions: control[0], sessions: control[1] },
    variants: [{ key: 'B', convertedSessions: variant[0], sessions: variant[1] }],
    minimums: noMinimums,
  });
  return result.variants[0]!;
}

describe('frequentist: gbstats TwoSidedTTest on proportions', () => {
  it('A = 14/28, B = 16/30: relative lift 0.06667, CI (-0.47767, 0.61101), p 0.80707', () => {
    const { relativeLift } = variantOf([14, 28], [16, 30]);
    expect(relativeLift.value).toBeCloseTo(0.06667, 5);
    expect(relativeLift.stdError).toBeCloseTo(0.2717, 5);
    expect(relativeLift.ci![0]).toBeCloseTo(-0.47767, 5);
    expect(relativeLift.ci![1]).toBeCloseTo(0.61101, 5);
    expect(relativeLift.pValue).toBeCloseTo(0.80707, 5);
    expect(relativeLift.significant).toBe(false);
  });
});

describe('Bayesian: gbstats EffectBayesianABTest, flat prior', () => {
  it('A = 49/100, B = 51/100: lift 0.04082, CI (-0.24779, 0.32943), chance to win 0.60918', () => {
    const { bayesian } = variantOf([49, 100], [51, 100]);
    expect(bayesian.mean).toBeCloseTo(0.04082, 5);
    expect(bayesian.ci![0]).toBeCloseTo(-0.24779, 5);
    expect(bayesian.ci![1]).toBeCloseTo(0.32943, 5);
    expect(bayesian.chanceToWin).toBeCloseTo(0.60918, 5);
  });
});

describe('sample ratio mismatch: gbstats check_srm', () => {
  it.each([
    [[1000, 1200], undefined, 0.000020079],
    [[310, 98], [0.75, 0.25], 0.647434186],
    [[500, 500, 600], [0.34, 0.33, 0.33], 0.000592638],
    [[135, 115], [0.5, 0.5], 0.205903211],
    [[0, 10, 10], [0.34, 0.33, 0.33], 0.005790624],
  ])('%j with weights %j has p = %s', (counts, weights, expected) => {
    expect(sampleRatioMismatch(counts, weights).pValue).toBeCloseTo(expected, 9);
  });

  it('completely equal arms have p = 1', () => {
    expect(sampleRatioMismatch([500, 500], [0.5, 0.5]).pValue).toBe(1);
  });
});
