import { normalQuantile, normalSf, studentTTwoSided, studentTUpperQuantile } from './distributions.js';

/** Sessions and converted sessions of one arm, as the results endpoint reports them. */
export interface ArmCounts {
  readonly sessions: number;
  readonly convertedSessions: number;
}

export interface Arm extends ArmCounts {
  readonly key: string;
}

/** Per-arm data a decision needs; below either, the decision is `not enough data`. */
export interface Minimums {
  /** Sessions in each of the control and the variant. */
  readonly sessions: number;
  /** Converted sessions in each of the control and the variant. */
  readonly conversions: number;
}

export const DEFAULT_ALPHA = 0.05;

/**
 * 100 sessions and 10 conversions per arm: below 10 conversions the normal approximation
 * behind every interval here (np ≥ 10) is not to be trusted, and below 100 sessions a
 * single session moves the rate by a whole point.
 */
export const DEFAULT_MINIMUMS: Minimums = Object.freeze({ sessions: 100, conversions: 10 });

export interface CompareInput {
  readonly control: Arm;
  readonly variants: readonly Arm[];
  /** Two-sided significance level, and 1 - the level of every interval. Default 0.05. */
  readonly alpha?: number;
  readonly minimums?: Partial<Minimums>;
}

export type Interval = [lower: number, upper: number];

/**
 * One lift with Welch's t test (Welch–Satterthwaite degrees of freedom). A number that
 * cannot be computed is null, and `reason` says why; no field is ever NaN or Infinity.
 */
export interface LiftEstimate {
  readonly value: number | null;
  readonly stdError: number | null;
  readonly ci: Interval | null;
  readonly pValue: number | null;
  readonly degreesOfFreedom: number | null;
  /** pValue < alpha and the interval excludes 0 (equivalent, both required against rounding). */
  readonly significant: boolean;
  readonly reason: string | null;
}

/** Gaussian posterior of the relative lift under a flat prior (gbstats' EffectBayesianABTest). */
export interface BayesianEstimate {
  readonly chanceToWin: number | null;
  readonly mean: number | null;
  readonly stdDev: number | null;
  /** Equal-tailed credible interval at level 1 - alpha. */
  readonly ci: Interval | null;
  readonly reason: string | null;
}

export type Decision = 'win' | 'lose' | 'inconclusive' | 'not enough data';

export interface ArmSummary {
  readonly key: string;
  readonly sessions: number;
  readonly convertedSessions: number;
  readonly conversionRate: number | null;
}

export interface VariantComparison extends ArmSummary {
  /** pB - pA. */
  readonly absoluteLift: LiftEstimate;
  /** pB / pA - 1, variance by the delta method; null when the control rate is 0. */
  readonly relativeLift: LiftEstimate;
  readonly bayesian: BayesianEstimate;
  readonly decision: Decision;
  /** The lift the decision was read from: relative, or absolute where the relative test cannot run; null without a test. */
  readonly decisionBasis: 'relative' | 'absolute' | null;
  readonly decisionReason: string;
}

export interface Comparison {
  readonly alpha: number;
  readonly minimums: Minimums;
  readonly control: ArmSummary;
  readonly variants: VariantComparison[];
}

/** Compares every variant with the control, independently (no multiple-comparison correction). */
export function compareVariants(input: CompareInput): Comparison {
  const alpha = input.alpha ?? DEFAULT_ALPHA;
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`alpha must be in (0, 1), got ${alpha}`);
  const minimums: Minimums = {
    sessions: input.minimums?.sessions ?? DEFAULT_MINIMUMS.sessions,
    conversions: input.minimums?.conversions ?? DEFAULT_MINIMUMS.conversions,
  };
  for (const [name, value] of Object.entries(minimums)) {
    if (!(Number.isFinite(value) && value >= 0)) throw new RangeError(`minimums.${name} must be a non-negative number, got ${value}`);
  }
  validateArm(input.control);
  const keys = new Set([input.control.key]);
  for (const variant of input.variants) {
    validateArm(variant);
    if (keys.has(variant.key)) throw new RangeError(`variant key "${variant.key}" appears more than once`);
    keys.add(variant.key);
  }
  return {
    alpha,
    minimums,
    control: summarize(input.control),
    variants: input.variants.map((variant) => compareOne(input.control, variant, alpha, minimums)),
  };
}

function validateArm(arm: Arm): void {
  const { key, sessions, convertedSessions } = arm;
  if (typeof key !== 'string') throw new TypeError('every arm needs a string key');
  if (!Number.isSafeInteger(sessions) || sessions < 0) {
    throw new RangeError(`${key}: sessions must be a non-negative integer, got ${sessions}`);
  }
  if (!Number.isSafeInteger(convertedSessions) || convertedSessions < 0 || convertedSessions > sessions) {
    throw new RangeError(`${key}: convertedSessions must be an integer in [0, sessions], got ${convertedSessions}`);
  }
}

function summarize(arm: Arm): ArmSummary {
  return {
    key: arm.key,
    sessions: arm.sessions,
    convertedSessions: arm.convertedSessions,
    conversionRate: arm.sessions > 0 ? arm.convertedSessions / arm.sessions : null,
  };
}

function compareOne(control: Arm, variant: Arm, alpha: number, minimums: Minimums): VariantComparison {
  const stats = armStatistics(control, variant);
  const absoluteLift = absoluteTest(stats, alpha);
  const relativeLift = relativeTest(stats, alpha);
  const bayesian = bayesianRelative(stats, alpha);
  return {
    ...summarize(variant),
    absoluteLift,
    relativeLift,
    bayesian,
    ...decide(control, variant, absoluteLift, relativeLift, alpha, minimums),
  };
}

// ------------------------------------------------------------------- the tests

/** What both tests share: rates, Bernoulli variances p(1 - p) (gbstats' ProportionStatistic), Welch df. */
interface PairStatistics {
  readonly pA: number | null;
  readonly pB: number | null;
  readonly nA: number;
  readonly nB: number;
  readonly varA: number;
  readonly varB: number;
  readonly degreesOfFreedom: number | null;
  /** Why no test can be run at all, if so. */
  readonly blocker: string | null;
}

function armStatistics(control: Arm, variant: Arm): PairStatistics {
  const nA = control.sessions;
  const nB = variant.sessions;
  const pA = nA > 0 ? control.convertedSessions / nA : null;
  const pB = nB > 0 ? variant.convertedSessions / nB : null;
  const varA = pA === null ? 0 : pA * (1 - pA);
  const varB = pB === null ? 0 : pB * (1 - pB);
  let blocker: string | null = null;
  if (pA === null || pB === null) blocker = `${pA === null ? 'control' : 'variant'} has no sessions`;
  else if (nA < 2 || nB < 2) blocker = 'the t test needs at least 2 sessions in each arm';
  else if (varA === 0 && varB === 0) blocker = 'both arms convert at 0% or 100%: zero variance, no test';
  let degreesOfFreedom: number | null = null;
  if (blocker === null) {
    // Welch–Satterthwaite, on the variances of the two means.
    const seA = varA / nA;
    const seB = varB / nB;
    degreesOfFreedom = finite(((seA + seB) * (seA + seB)) / ((seA * seA) / (nA - 1) + (seB * seB) / (nB - 1)));
    if (degreesOfFreedom === null) blocker = 'degrees of freedom could not be computed';
  }
  return { pA, pB, nA, nB, varA, varB, degreesOfFreedom, blocker };
}

function absoluteTest(s: PairStatistics, alpha: number): LiftEstimate {
  if (s.pA === null || s.pB === null) return emptyEstimate(null, s.blocker);
  return tTest(s.pB - s.pA, s.varA / s.nA + s.varB / s.nB, s, alpha);
}

function relativeTest(s: PairStatistics, alpha: number): LiftEstimate {
  if (s.pA === null || s.pB === null) return emptyEstimate(null, s.blocker);
  const { pA, pB } = s;
  if (pA === 0) return emptyEstimate(null, 'control conversion rate is 0: relative lift is undefined');
  return tTest(pB / pA - 1, relativeVariance(s, pA, pB), s, alpha);
}

/** Delta method for pB / pA with independent arms (gbstats' variance_of_ratios, cov = 0). */
function relativeVariance(s: PairStatistics, pA: number, pB: number): number {
  return s.varB / (s.nB * pA * pA) + (s.varA * pB * pB) / (s.nA * pA ** 4);
}

/** gbstats' TwoSidedTTest: p = 2(1 - F_t(|est| / se)), CI = est ± t_{1-α/2} · se, both with Welch df. */
function tTest(value: number, variance: number, s: PairStatistics, alpha: number): LiftEstimate {
  if (s.blocker !== null || s.degreesOfFreedom === null) return emptyEstimate(value, s.blocker);
  const stdError = finite(Math.sqrt(variance));
  if (stdError === null || stdError === 0) return emptyEstimate(value, 'zero variance: no test');
  const df = s.degreesOfFreedom;
  const pValue = finite(studentTTwoSided(value / stdError, df));
  const half = finite(studentTUpperQuantile(alpha / 2, df) * stdError);
  if (pValue === null || half === null) return emptyEstimate(value, 'the t distribution could not be evaluated');
  const ci: Interval = [value - half, value + half];
  const clamped = Math.min(1, Math.max(0, pValue));
  return {
    value,
    stdError,
    ci,
    pValue: clamped,
    degreesOfFreedom: df,
    significant: clamped < alpha && (ci[0] > 0 || ci[1] < 0),
    reason: null,
  };
}

/**
 * gbstats' EffectBayesianABTest with its default improper (flat) prior: the posterior of the
 * relative lift is N(estimate, delta-method variance), so chance to win is Φ(mean / sd) and
 * the credible interval uses normal quantiles.
 */
function bayesianRelative(s: PairStatistics, alpha: number): BayesianEstimate {
  const empty = (reason: string | null): BayesianEstimate => ({ chanceToWin: null, mean: null, stdDev: null, ci: null, reason });
  if (s.pA === null || s.pB === null) return empty(s.blocker);
  if (s.pA === 0) return empty('control conversion rate is 0: relative lift is undefined');
  if (s.nA < 2 || s.nB < 2) return empty(s.blocker);
  const mean = s.pB / s.pA - 1;
  const stdDev = finite(Math.sqrt(relativeVariance(s, s.pA, s.pB)));
  if (stdDev === null || stdDev === 0) return empty('zero variance: the posterior is degenerate');
  const half = -normalQuantile(alpha / 2) * stdDev;
  const chanceToWin = finite(normalSf(-mean / stdDev));
  if (chanceToWin === null || !Number.isFinite(half)) return empty('the normal distribution could not be evaluated');
  return { chanceToWin, mean, stdDev, ci: [mean - half, mean + half], reason: null };
}

function emptyEstimate(value: number | null, reason: string | null): LiftEstimate {
  return { value, stdError: null, ci: null, pValue: null, degreesOfFreedom: null, significant: false, reason };
}

function finite(x: number): number | null {
  return Number.isFinite(x) ? x : null;
}

// -------------------------------------------------------------------- the decision

type DecisionFields = Pick<VariantComparison, 'decision' | 'decisionBasis' | 'decisionReason'>;

/**
 * Read only from the numbers beside it: `win` needs a significant lift above 0 whose
 * interval excludes 0, `lose` the mirror image, and the minimums come first.
 */
function decide(
  control: Arm,
  variant: Arm,
  absolute: LiftEstimate,
  relative: LiftEstimate,
  alpha: number,
  minimums: Minimums,
): DecisionFields {
  const shortfalls: string[] = [];
  for (const [label, arm] of [
    ['control', control],
    ['variant', variant],
  ] as const) {
    if (arm.sessions < minimums.sessions) shortfalls.push(`${label} has ${arm.sessions} sessions (minimum ${minimums.sessions})`);
    if (arm.convertedSessions < minimums.conversions) {
      shortfalls.push(`${label} has ${arm.convertedSessions} converted sessions (minimum ${minimums.conversions})`);
    }
  }
  if (shortfalls.length > 0) return { decision: 'not enough data', decisionBasis: null, decisionReason: shortfalls.join('; ') };

  // The relative lift is the headline (as in gbstats). Where the delta method has nothing
  // to say (control rate 0: undefined; variant rate 0: its variance collapses to 0) the
  // absolute lift, whose test needs only one arm to vary, decides instead.
  const basis = relative.pValue !== null ? 'relative' : absolute.pValue !== null ? 'absolute' : null;
  const estimate = basis === 'relative' ? relative : absolute;
  if (basis === null || estimate.pValue === null || estimate.value === null || estimate.ci === null) {
    return { decision: 'inconclusive', decisionBasis: null, decisionReason: absolute.reason ?? relative.reason ?? 'no test could be run' };
  }
  const unit = basis === 'relative' ? '%' : ' pp';
  const show = (x: number) => `${x > 0 ? '+' : ''}${fmt(x * 100)}${unit}`;
  const summary =
    `${basis} lift ${show(estimate.value)} (${fmt((1 - alpha) * 100)}% CI ${show(estimate.ci[0])} to ${show(estimate.ci[1])}), ` +
    `p = ${fmt(estimate.pValue)}`;
  if (estimate.significant && estimate.value > 0 && estimate.ci[0] > 0) {
    return { decision: 'win', decisionBasis: basis, decisionReason: `${summary}: significant at alpha ${alpha}` };
  }
  if (estimate.significant && estimate.value < 0 && estimate.ci[1] < 0) {
    return { decision: 'lose', decisionBasis: basis, decisionReason: `${summary}: significant at alpha ${alpha}` };
  }
  return { decision: 'inconclusive', decisionBasis: basis, decisionReason: `${summary}: not significant at alpha ${alpha}` };
}

/** Three significant digits, small numbers in exponent form. */
function fmt(x: number): string {
  return Math.abs(x) >= 1e-4 || x === 0 ? String(Number(x.toPrecision(3))) : x.toExponential(2);
}
