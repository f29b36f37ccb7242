import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareVariants, sampleRatioMismatch, type Arm, type LiftEstimate, type VariantComparison } from '../src/index.js';

/** An arm with 0..n conversions out of n sessions, n up to a million. */
const armArb = (key: string) =>
  fc
    .integer({ min: 0, max: 1_000_000 })
    .chain((sessions) => fc.record({ key: fc.constant(key), sessions: fc.constant(sessions), convertedSessions: fc.integer({ min: 0, max: sessions }) }));

/** Mostly realistic rates with enough data, so the interesting branches are reached often. */
const busyArmArb = (key: string) =>
  fc
    .record({ sessions: fc.integer({ min: 200, max: 200_000 }), rate: fc.double({ min: 0.01, max: 0.6, noNaN: true }) })
    .map(({ sessions, rate }) => ({ key, sessions, convertedSessions: Math.round(sessions * rate) }));

const pairArb = fc.oneof(fc.tuple(armArb('A'), armArb('B')), fc.tuple(busyArmArb('A'), busyArmArb('B')));
const alphaArb = fc.constantFrom(0.01, 0.05, 0.1, 0.2);
const minimumsArb = fc.record({ sessions: fc.integer({ min: 0, max: 200 }), conversions: fc.integer({ min: 0, max: 20 }) });

function compareOne(control: Arm, variant: Arm, alpha: number, minimums = { sessions: 0, conversions: 0 }): VariantComparison {
  return compareVariants({ control, variants: [variant], alpha, minimums }).variants[0]!;
}

function numbersIn(value: unknown): number[] {
  if (typeof value === 'number') return [value];
  if (Array.isArray(value)) return value.flatMap(numbersIn);
  if (value !== null && typeof value === 'object') return Object.values(value).flatMap(numbersIn);
  return [];
}

function expectWellFormed(estimate: LiftEstimate) {
  if (estimate.pValue !== null) {
    expect(estimate.pValue).toBeGreaterThanOrEqual(0);
    expect(estimate.pValue).toBeLessThanOrEqual(1);
  }
  if (estimate.ci !== null) {
    expect(estimate.value).not.toBeNull();
    expect(estimate.ci[0]).toBeLessThanOrEqual(estimate.value!);
    expect(estimate.value!).toBeLessThanOrEqual(estimate.ci[1]);
  }
  // A null anywhere comes with its reason.
  if (estimate.value === null || estimate.pValue === null || estimate.ci === null) expect(estimate.reason).toEqual(expect.any(String));
  if (estimate.significant) expect(estimate.ci![0] > 0 || estimate.ci![1] < 0).toBe(true);
}

describe('invariants', () => {
  it('never returns NaN or Infinity, and every p-value and interval is well-formed', () => {
    fc.assert(
      fc.property(pairArb, alphaArb, ([a, b], alpha) => {
        const v = compareOne(a, b, alpha);
        for (const x of numbersIn(v)) expect(Number.isFinite(x)).toBe(true);
        expectWellFormed(v.absoluteLift);
        expectWellFormed(v.relativeLift);
        if (v.bayesian.chanceToWin !== null) {
          expect(v.bayesian.chanceToWin).toBeGreaterThanOrEqual(0);
          expect(v.bayesian.chanceToWin).toBeLessThanOrEqual(1);
          expect(v.bayesian.ci![0]).toBeLessThanOrEqual(v.bayesian.mean!);
          expect(v.bayesian.mean!).toBeLessThanOrEqual(v.bayesian.ci![1]);
        } else {
          expect(v.bayesian.reason).toEqual(expect.any(String));
        }
      }),
      { numRuns: 400 },
    );
  });

  it('swapping control and variant flips the signs, and the absolute test exactly', () => {
    fc.assert(
      fc.property(pairArb, alphaArb, ([a, b], alpha) => {
        const ab = compareOne(a, b, alpha);
        const ba = compareOne({ ...b, key: 'A' }, { ...a, key: 'B' }, alpha);
        // `+ 0` folds -0 into 0: the lift of 0/9 against 0/1 is 0 either way round.
        const negated = (x: number) => -x + 0;
        if (ab.absoluteLift.value !== null) {
          expect(ba.absoluteLift.value! + 0).toBe(negated(ab.absoluteLift.value));
          expect(ba.absoluteLift.pValue).toBe(ab.absoluteLift.pValue);
          if (ab.absoluteLift.ci) expect(ba.absoluteLift.ci!.map((x) => x + 0)).toEqual([negated(ab.absoluteLift.ci[1]), negated(ab.absoluteLift.ci[0])]);
        }
        if (ab.relativeLift.value !== null && ba.relativeLift.value !== null) {
          expect(Math.sign(ba.relativeLift.value) + Math.sign(ab.relativeLift.value)).toBe(0);
        }
        if (ab.bayesian.chanceToWin !== null && ba.bayesian.chanceToWin !== null && ab.bayesian.mean !== 0) {
          expect(ab.bayesian.chanceToWin > 0.5).toBe(ba.bayesian.chanceToWin < 0.5);
        }
        // The delta-method test is not symmetric in size, but a win is always the other side's loss.
        if (ab.decision === 'win') expect(ba.decision).toBe('lose');
        if (ba.decision === 'win') expect(ab.decision).toBe('lose');
      }),
      { numRuns: 400 },
    );
  });

  it('never gives a decision its numbers contradict', () => {
    fc.assert(
      fc.property(pairArb, alphaArb, minimumsArb, ([a, b], alpha, minimums) => {
        const v = compareOne(a, b, alpha, minimums);
        const short = [a, b].some((arm) => arm.sessions < minimums.sessions || arm.convertedSessions < minimums.conversions);
        expect(v.decision === 'not enough data').toBe(short);
        const basis = v.decisionBasis === 'relative' ? v.relativeLift : v.absoluteLift;
        if (v.decision === 'win' || v.decision === 'lose') {
          const sign = v.decision === 'win' ? 1 : -1;
          expect(basis.significant).toBe(true);
          expect(basis.pValue!).toBeLessThan(alpha);
          expect(Math.sign(basis.value!)).toBe(sign);
          expect(Math.sign(basis.ci![0])).toBe(sign);
          expect(Math.sign(basis.ci![1])).toBe(sign);
          // Both lifts and the posterior agree on the direction.
          expect(Math.sign(v.absoluteLift.value!)).toBe(sign);
          if (v.bayesian.chanceToWin !== null) expect(v.bayesian.chanceToWin > 0.5).toBe(sign > 0);
        }
        if (v.decision === 'inconclusive') expect(basis.significant).toBe(false);
        if (v.decision !== 'not enough data') {
          const expected = v.relativeLift.pValue !== null ? 'relative' : v.absoluteLift.pValue !== null ? 'absolute' : null;
          expect(v.decisionBasis).toBe(expected);
        }
      }),
      { numRuns: 400 },
    );
  });

  it('SRM p-values are in [0, 1] and the order of arms does not matter', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ count: fc.integer({ min: 0, max: 100_000 }), weight: fc.integer({ min: 1, max: 10 }) }), { minLength: 2, maxLength: 6 }),
        (arms) => {
          const srm = sampleRatioMismatch(arms.map((arm) => arm.count), arms.map((arm) => arm.weight));
          const reversed = sampleRatioMismatch(arms.map((arm) => arm.count).reverse(), arms.map((arm) => arm.weight).reverse());
          for (const x of numbersIn(srm)) expect(Number.isFinite(x)).toBe(true);
          if (srm.pValue === null) {
            expect(srm.reason).toBe('no sessions');
          } else {
            expect(srm.pValue).toBeGreaterThanOrEqual(0);
            expect(srm.pValue).toBeLessThanOrEqual(1);
            expect(srm.flagged).toBe(srm.pValue < 0.001);
            expect(reversed.pValue).toBeCloseTo(srm.pValue, 12);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
