import { chiSquareSf } from './distributions.js';

/** GrowthBook's default: an SRM p-value below 0.001 flags the experiment. */
export const DEFAULT_SRM_THRESHOLD = 0.001;

export interface SrmArm {
  readonly sessions: number;
  /** The arm's expected share of sessions (its weight over the sum of weights). */
  readonly expectedShare: number;
  readonly observedShare: number | null;
  readonly expectedSessions: number | null;
  /** False for a zero-weight arm with no sessions: it takes no part in the test. */
  readonly included: boolean;
}

export interface SampleRatioMismatch {
  readonly pValue: number | null;
  /** Pearson's chi-square statistic Σ (observed - expected)² / expected. */
  readonly statistic: number | null;
  readonly degreesOfFreedom: number | null;
  readonly threshold: number;
  readonly flagged: boolean;
  /** Why pValue is null, or why the experiment is flagged without a test. */
  readonly reason: string | null;
  readonly arms: SrmArm[];
}

/**
 * Chi-square goodness of fit of the sessions per arm against the expected weights (equal
 * when none are given), as gbstats' check_srm. Zero-weight arms are handled on purpose:
 * one with no sessions is dropped (no degree of freedom); one that received sessions
 * cannot happen under a correct assignment, so the mismatch is maximal (p = 0, flagged),
 * where gbstats would silently skip the arm.
 */
export function sampleRatioMismatch(
  counts: readonly number[],
  weights?: readonly number[],
  options: { readonly threshold?: number } = {},
): SampleRatioMismatch {
  const threshold = options.threshold ?? DEFAULT_SRM_THRESHOLD;
  if (!(threshold > 0 && threshold < 1)) throw new RangeError(`threshold must be in (0, 1), got ${threshold}`);
  counts.forEach((count, i) => {
    if (!Number.isSafeInteger(count) || count < 0) throw new RangeError(`counts[${i}] must be a non-negative integer, got ${count}`);
  });
  const w = weights ?? counts.map(() => 1);
  if (w.length !== counts.length) throw new RangeError(`${counts.length} counts but ${w.length} weights`);
  w.forEach((weight, i) => {
    if (!(Number.isFinite(weight) && weight >= 0)) throw new RangeError(`weights[${i}] must be a non-negative number, got ${weight}`);
  });
  const totalWeight = w.reduce((sum, x) => sum + x, 0);
  if (counts.length > 0 && !(totalWeight > 0)) throw new RangeError('at least one weight must be positive');

  const total = counts.reduce((sum, x) => sum + x, 0);
  const arms: SrmArm[] = counts.map((sessions, i) => {
    const expectedShare = w[i]! / totalWeight;
    return {
      sessions,
      expectedShare,
      observedShare: total > 0 ? sessions / total : null,
      expectedSessions: expectedShare > 0 && total > 0 ? expectedShare * total : null,
      included: expectedShare > 0 || sessions > 0,
    };
  });
  const result = (fields: Pick<SampleRatioMismatch, 'pValue' | 'statistic' | 'degreesOfFreedom' | 'flagged' | 'reason'>) => ({
    ...fields,
    threshold,
    arms,
  });

  const unexpected = arms.map((arm, i) => [arm, i] as const).filter(([arm]) => arm.expectedShare === 0 && arm.sessions > 0);
  if (unexpected.length > 0) {
    const which = unexpected.map(([arm, i]) => `arm ${i} has ${arm.sessions} sessions`).join(', ');
    return result({ pValue: 0, statistic: null, degreesOfFreedom: null, flagged: true, reason: `${which} but an expected weight of 0` });
  }
  const tested = arms.filter((arm) => arm.expectedShare > 0);
  if (tested.length < 2) {
    return result({ pValue: null, statistic: null, degreesOfFreedom: null, flagged: false, reason: 'needs at least two arms with a positive weight' });
  }
  if (total === 0) {
    return result({ pValue: null, statistic: null, degreesOfFreedom: null, flagged: false, reason: 'no sessions' });
  }
  let statistic = 0;
  for (const arm of tested) {
    const expected = arm.expectedShare * total;
    statistic += ((arm.sessions - expected) * (arm.sessions - expected)) / expected;
  }
  const degreesOfFreedom = tested.length - 1;
  const pValue = Math.min(1, Math.max(0, chiSquareSf(statistic, degreesOfFreedom)));
  return result({ pValue, statistic, degreesOfFreedom, flagged: pValue < threshold, reason: null });
}

/** GrowthBook's defaults: flag when at least 1% of exposed sessions, and at least 10, saw several variants. */
export const DEFAULT_MULTIPLE_EXPOSURE_THRESHOLD = 0.01;
export const DEFAULT_MULTIPLE_EXPOSURE_MIN_SESSIONS = 10;

export interface MultipleExposureCheck {
  readonly excludedSessions: number;
  readonly exposedSessions: number;
  /** excludedSessions / exposedSessions. */
  readonly share: number | null;
  readonly threshold: number;
  readonly flagged: boolean;
  readonly reason: string | null;
}

/**
 * The share of exposed sessions excluded for seeing more than one variant. A large share
 * means assignment is not sticky, and the remaining arms may no longer be comparable.
 * `exposedSessions` counts every exposed session, excluded ones included.
 */
export function multipleExposureCheck(
  input: { readonly excludedSessions: number; readonly exposedSessions: number },
  options: { readonly threshold?: number; readonly minExcludedSessions?: number } = {},
): MultipleExposureCheck {
  const { excludedSessions, exposedSessions } = input;
  const threshold = options.threshold ?? DEFAULT_MULTIPLE_EXPOSURE_THRESHOLD;
  const minExcluded = options.minExcludedSessions ?? DEFAULT_MULTIPLE_EXPOSURE_MIN_SESSIONS;
  if (!(threshold > 0 && threshold <= 1)) throw new RangeError(`threshold must be in (0, 1], got ${threshold}`);
  if (!(Number.isFinite(minExcluded) && minExcluded >= 0)) throw new RangeError(`minExcludedSessions must be a non-negative number, got ${minExcluded}`);
  if (!Number.isSafeInteger(exposedSessions) || exposedSessions < 0) {
    throw new RangeError(`exposedSessions must be a non-negative integer, got ${exposedSessions}`);
  }
  if (!Number.isSafeInteger(excludedSessions) || excludedSessions < 0 || excludedSessions > exposedSessions) {
    throw new RangeError(`excludedSessions must be an integer in [0, exposedSessions], got ${excludedSessions}`);
  }
  const base = { excludedSessions, exposedSessions, threshold };
  if (exposedSessions === 0) return { ...base, share: null, flagged: false, reason: 'no exposed sessions' };
  const share = excludedSessions / exposedSessions;
  if (excludedSessions < minExcluded) {
    return { ...base, share, flagged: false, reason: `${excludedSessions} excluded sessions, fewer than the ${minExcluded} needed to flag` };
  }
  return { ...base, share, flagged: share >= threshold, reason: null };
}
