import { describe, expect, it } from 'vitest';
import {
  chiSquareSf,
  normalCdf,
  normalQuantile,
  studentTCdf,
  studentTTwoSided,
  studentTUpperQuantile,
} from '../src/index.js';

/** Relative closeness: the functions are good to ~1e-13 where doubles allow it. */
function expectClose(actual: number, expected: number, relative = 1e-12) {
  expect(Math.abs(actual - expected)).toBeLessThanOrEqual(relative * Math.abs(expected));
}

// Expected values from scipy 1.17.1 (scipy.stats.t / norm / chi2).
describe('distribution functions agree with scipy', () => {
  it.each([
    [0.2454, 55.7, 0.807048669636938],
    [2.5, 3, 0.08770664700806556],
    [8, 20, 1.165662827148851e-7],
    // Large Welch df (millions of sessions); from mpmath 1.3 at 40 digits, where scipy's own
    // value is off in the 14th digit.
    [1.96, 1e6, 0.04999606758526979],
    [1.96, 1e7, 0.04999581802531419],
    [3, 3e8, 0.0026997962848526145],
  ])('two-sided t tail at t=%s, df=%s', (t, df, expected) => {
    expectClose(studentTTwoSided(t, df), expected);
    expectClose(studentTTwoSided(-t, df), expected);
  });

  it.each([
    [0.025, 55.70744914862206, 2.0034728971453086],
    [0.025, 1, 12.706204736174705],
    [0.005, 4.5, 4.2728239930112935],
    [1e-9, 30, 8.445862796274243],
    [0.025, 2e7, 1.9599641031536226],
  ])('upper t quantile at q=%s, df=%s', (q, df, expected) => {
    expectClose(studentTUpperQuantile(q, df), expected);
  });

  it('lower quantiles mirror upper ones', () => {
    expect(studentTUpperQuantile(0.975, 55.7)).toBeCloseTo(-studentTUpperQuantile(0.025, 55.7), 12);
  });

  it('t CDF and upper quantile invert each other', () => {
    for (const df of [1, 2.5, 7, 55.7, 1e4]) {
      for (const q of [0.4, 0.1, 0.025, 1e-5]) expectClose(studentTCdf(-studentTUpperQuantile(q, df), df), q, 1e-11);
    }
  });

  it.each([
    [-30, 4.906713927147908e-198],
    [-5, 2.866515718791933e-7],
    [-1.96, 0.024997895148220435],
    [0.27721, 0.6091905692369616],
    [2.5, 0.9937903346742238],
  ])('normal CDF at %s', (z, expected) => {
    expectClose(normalCdf(z), expected, 1e-13);
  });

  it.each([
    [1e-12, -7.034483825301131],
    [0.025, -1.9599639845400545],
    [0.3, -0.5244005127080409],
    [0.999, 3.090232306167813],
  ])('normal quantile at %s', (p, expected) => {
    expectClose(normalQuantile(p), expected, 1e-15);
  });

  it.each([
    [18.181818181818183, 1, 2.007865612426481e-5],
    [3.5, 2, 0.1737739434504451],
    [14.9, 2, 0.000581441612193756],
    [40, 9, 7.598525229464264e-6],
    [400, 4, 2.781632018740826e-85],
  ])('chi-square survival at x=%s, k=%s', (x, k, expected) => {
    expectClose(chiSquareSf(x, k), expected);
  });

  it('returns the limits at the edges', () => {
    expect(studentTTwoSided(0, 10)).toBe(1);
    expect(studentTUpperQuantile(0.5, 10)).toBe(0);
    expect(chiSquareSf(0, 3)).toBe(1);
    expect(normalQuantile(0.5)).toBe(0);
  });
});
