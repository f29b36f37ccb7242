import { describe, expect, it } from 'vitest';
import { compareVariants, DEFAULT_MINIMUMS, type Arm, type VariantComparison } from '../src/index.js';

const arm = (key: string, convertedSessions: number, sessions: number): Arm => ({ key, sessions, convertedSessions });

function compare(control: Arm, variant: Arm, options: { alpha?: number; minimums?: { sessions?: number; conversions?: number } } = {}) {
  return compareVariants({ control, variants: [variant], ...options }).variants[0]!;
}

/** Every number in a result, so a test can say none of them is NaN or Infinity. */
function numbersIn(value: unknown): number[] {
  if (typeof value === 'number') return [value];
  if (Array.isArray(value)) return value.flatMap(numbersIn);
  if (value !== null && typeof value === 'object') return Object.values(value).flatMap(numbersIn);
  return [];
}

function expectAllFinite(result: unknown) {
  for (const x of numbersIn(result)) expect(Number.isFinite(x)).toBe(true);
}

describe('decisions', () => {
  it('calls a clear, well-powered improvement a win', () => {
    const v = compare(arm('control', 500, 10_000), arm('treatment', 650, 10_000));
    expect(v.decision).toBe('win');
    expect(v.decisionBasis).toBe('relative');
    expect(v.relativeLift.value).toBeCloseTo(0.3, 12);
    expect(v.absoluteLift.value).toBeCloseTo(0.015, 12);
    expect(v.relativeLift.significant).toBe(true);
    expect(v.relativeLift.ci![0]).toBeGreaterThan(0);
    expect(v.bayesian.chanceToWin).toBeGreaterThan(0.99);
    expect(v.decisionReason).toMatch(/significant at alpha 0.05/);
  });

  it('calls a clear degradation a loss', () => {
    const v = compare(arm('control', 650, 10_000), arm('treatment', 500, 10_000));
    expect(v.decision).toBe('lose');
    expect(v.relativeLift.ci![1]).toBeLessThan(0);
    expect(v.bayesian.chanceToWin).toBeLessThan(0.01);
  });

  it('calls a small difference inconclusive and says why', () => {
    const v = compare(arm('control', 500, 10_000), arm('treatment', 510, 10_000));
    expect(v.decision).toBe('inconclusive');
    expect(v.relativeLift.significant).toBe(false);
    expect(v.decisionReason).toMatch(/not significant/);
  });

  it('follows alpha: the same data can be significant at 0.1 and not at 0.01', () => {
    const control = arm('control', 500, 10_000);
    const variant = arm('treatment', 560, 10_000);
    const loose = compare(control, variant, { alpha: 0.1 });
    const strict = compare(control, variant, { alpha: 0.01 });
    expect(loose.relativeLift.pValue).toBe(strict.relativeLift.pValue);
    expect(loose.relativeLift.pValue).toBeGreaterThan(0.01);
    expect(loose.relativeLift.pValue).toBeLessThan(0.1);
    expect(loose.decision).toBe('win');
    expect(strict.decision).toBe('inconclusive');
    // The interval follows alpha too.
    expect(strict.relativeLift.ci![0]).toBeLessThan(loose.relativeLift.ci![0]);
  });

  it('says "not enough data" below the minimums, naming each shortfall, even when significant', () => {
    const v = compare(arm('control', 2, 90), arm('treatment', 40, 90));
    expect(v.absoluteLift.significant).toBe(true);
    expect(v.decision).toBe('not enough data');
    expect(v.decisionBasis).toBeNull();
    expect(v.decisionReason).toBe(
      'control has 90 sessions (minimum 100); control has 2 converted sessions (minimum 10); variant has 90 sessions (minimum 100)',
    );
  });

  it('has documented default minimums that can be overridden', () => {
    expect(DEFAULT_MINIMUMS).toEqual({ sessions: 100, conversions: 10 });
    const result = compareVariants({ control: arm('a', 10, 50), variants: [arm('b', 30, 50)], minimums: { sessions: 50, conversions: 5 } });
    expect(result.minimums).toEqual({ sessions: 50, conversions: 5 });
    expect(result.variants[0]!.decision).toBe('win');
  });
});

describe('edge cases never produce NaN or Infinity', () => {
  const noMinimums = { minimums: { sessions: 0, conversions: 0 } };

  it('zero conversions in both arms: lifts 0 or undefined, no test', () => {
    const v = compare(arm('a', 0, 1000), arm('b', 0, 1000), noMinimums);
    expectAllFinite(v);
    expect(v.absoluteLift).toMatchObject({ value: 0, pValue: null, ci: null, significant: false });
    expect(v.absoluteLift.reason).toMatch(/zero variance/);
    expect(v.relativeLift.value).toBeNull();
    expect(v.relativeLift.reason).toMatch(/control conversion rate is 0/);
    expect(v.bayesian.chanceToWin).toBeNull();
    expect(v.decision).toBe('inconclusive');
    expect(v.decisionBasis).toBeNull();
  });

  it('variant rate 0: the delta method has no variance, so the absolute test decides', () => {
    const v = compare(arm('a', 50, 1000), arm('b', 0, 1000), noMinimums);
    expectAllFinite(v);
    expect(v.relativeLift).toMatchObject({ value: -1, pValue: null, ci: null, reason: 'zero variance: no test' });
    expect(v.bayesian).toMatchObject({ chanceToWin: null, reason: 'zero variance: the posterior is degenerate' });
    expect(v.absoluteLift.pValue).toBeLessThan(0.05);
    expect(v).toMatchObject({ decision: 'lose', decisionBasis: 'absolute' });
    // Against a 100% control neither arm varies: no test at all.
    const w = compare(arm('a', 15, 15), arm('b', 0, 6), noMinimums);
    expect(w.relativeLift).toMatchObject({ value: -1, pValue: null, reason: 'both arms convert at 0% or 100%: zero variance, no test' });
    expect(w).toMatchObject({ decision: 'inconclusive', decisionBasis: null });
  });

  it('control rate 0 is "not enough data" under the default minimums', () => {
    expect(compare(arm('a', 0, 1000), arm('b', 50, 1000)).decision).toBe('not enough data');
  });

  it('100% conversion in both arms: no variance, inconclusive', () => {
    const v = compare(arm('a', 1000, 1000), arm('b', 1000, 1000));
    expectAllFinite(v);
    expect(v.relativeLift).toMatchObject({ value: 0, stdError: null, pValue: null });
    expect(v.decision).toBe('inconclusive');
    expect(v.decisionReason).toMatch(/zero variance/);
  });

  it('100% conversion in one arm only: the other arm carries the variance', () => {
    const v = compare(arm('a', 900, 1000), arm('b', 1000, 1000));
    expectAllFinite(v);
    expect(v.absoluteLift.degreesOfFreedom).toBeCloseTo(999, 9);
    expect(v.decision).toBe('win');
  });

  it('zero sessions: rates null, nothing tested', () => {
    const v = compare(arm('a', 0, 0), arm('b', 0, 0), noMinimums);
    expectAllFinite(v);
    expect(v.conversionRate).toBeNull();
    expect(v.absoluteLift).toMatchObject({ value: null, pValue: null, reason: 'control has no sessions' });
    expect(v.decision).toBe('inconclusive');
    const empty = compare(arm('a', 10, 100), arm('b', 0, 0), noMinimums);
    expect(empty.absoluteLift.reason).toBe('variant has no sessions');
  });

  it('one session per arm is too few for Welch degrees of freedom', () => {
    const v = compare(arm('a', 0, 1), arm('b', 1, 1), noMinimums);
    expectAllFinite(v);
    expect(v.absoluteLift).toMatchObject({ value: 1, pValue: null });
    expect(v.absoluteLift.reason).toMatch(/at least 2 sessions/);
  });

  it('a single arm (no variants) is a valid, empty comparison', () => {
    const result = compareVariants({ control: arm('only', 3, 10), variants: [] });
    expect(result.variants).toEqual([]);
    expect(result.control).toEqual({ key: 'only', sessions: 10, convertedSessions: 3, conversionRate: 0.3 });
  });

  it('millions of sessions stay precise', () => {
    const v = compare(arm('a', 1_000_000, 20_000_000), arm('b', 1_004_000, 20_000_000));
    expectAllFinite(v);
    expect(v.relativeLift.degreesOfFreedom).toBeGreaterThan(1e7);
    expect(v.relativeLift.pValue).toBeGreaterThan(0);
    expect(v.relativeLift.pValue).toBeLessThan(1);
  });
});

describe('several variants', () => {
  it('compares each variant with the control independently', () => {
    const result = compareVariants({
      control: arm('control', 500, 10_000),
      variants: [arm('up', 650, 10_000), arm('flat', 505, 10_000), arm('down', 380, 10_000)],
    });
    expect(result.variants.map((v: VariantComparison) => [v.key, v.decision])).toEqual([
      ['up', 'win'],
      ['flat', 'inconclusive'],
      ['down', 'lose'],
    ]);
  });
});

describe('input validation', () => {
  it.each([
    [{ control: arm('a', -1, 10), variants: [] }, /convertedSessions/],
    [{ control: arm('a', 11, 10), variants: [] }, /convertedSessions/],
    [{ control: arm('a', 1, 10.5), variants: [] }, /sessions must be a non-negative integer/],
    [{ control: arm('a', 1, Number.NaN), variants: [] }, /sessions/],
    [{ control: arm('a', 1, 10), variants: [arm('a', 1, 10)] }, /appears more than once/],
    [{ control: arm('a', 1, 10), variants: [], alpha: 0 }, /alpha/],
    [{ control: arm('a', 1, 10), variants: [], alpha: 1.5 }, /alpha/],
    [{ control: arm('a', 1, 10), variants: [], minimums: { sessions: -1 } }, /minimums.sessions/],
  ])('rejects impossible input %#', (input, message) => {
    expect(() => compareVariants(input)).toThrow(message);
  });
});
