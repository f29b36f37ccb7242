import { Type, type Static } from '@sinclair/typebox';

/**
 * The statistics the results carry, as the OpenAPI document describes them. Every
 * number that cannot be computed is null with a `reason` beside it: JSON has no
 * NaN or Infinity, and a reader should never have to guess why a value is missing.
 */

const nullableNumber = (description: string, bounds: { minimum?: number; maximum?: number } = {}) =>
  Type.Union([Type.Number(bounds), Type.Null()], { description });
/** One `enum` in the document, where a union of literals would show as a list of one-value schemas. */
const stringEnum = <const T extends readonly string[]>(values: T, options: { description: string }) =>
  Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });
const reason = (description: string) => Type.Union([Type.String(), Type.Null()], { description });

export const Interval = Type.Object(
  { lower: Type.Number(), upper: Type.Number() },
  { title: 'Interval', description: 'Lower and upper bound' },
);

const interval = (description: string) => Type.Union([Interval, Type.Null()], { description });

const lift = (what: string, estimate: string) =>
  Type.Object({
    value: nullableNumber(`${what}: ${estimate}`),
    stdError: nullableNumber('Its standard error', { minimum: 0 }),
    ci: interval('Confidence interval at level 1 - alpha: value ± t(1 - alpha/2, degreesOfFreedom) · stdError'),
    pValue: nullableNumber("Two-sided p-value of Welch's t test that the lift is 0", { minimum: 0, maximum: 1 }),
    degreesOfFreedom: nullableNumber('Welch–Satterthwaite degrees of freedom', { minimum: 0 }),
    significant: Type.Boolean({ description: 'pValue < alpha and the interval excludes 0' }),
    reason: reason('Why a number above is null; null when all could be computed'),
  }, { description: `${what} with its confidence interval and Welch's t test` });

export const VariantComparison = Type.Object(
  {
    control: Type.String({ description: 'The variant this one is compared with' }),
    absoluteLift: lift('Absolute lift', 'conversion rate of this variant minus that of the control (0.01 = one percentage point)'),
    relativeLift: lift(
      'Relative lift',
      "this variant's conversion rate / the control's - 1 (0.1 = 10% better); the variance by the delta method. Null when the control converts at 0",
    ),
    bayesian: Type.Object(
      {
        chanceToWin: nullableNumber('Posterior probability that the relative lift is above 0', { minimum: 0, maximum: 1 }),
        mean: nullableNumber('Posterior mean of the relative lift'),
        stdDev: nullableNumber('Posterior standard deviation of the relative lift', { minimum: 0 }),
        ci: interval('Equal-tailed credible interval of the relative lift at level 1 - alpha'),
        reason: reason('Why the numbers above are null; null when they could be computed'),
      },
      { description: 'Gaussian posterior of the relative lift under a flat prior (as GrowthBook computes it)' },
    ),
    decision: stringEnum(['win', 'lose', 'inconclusive', 'not enough data'] as const, {
      description:
        '`not enough data` while either arm is below the minimums; else `win` (or `lose`) when the lift that decides is ' +
        'significant and its interval lies above (below) 0; else `inconclusive`',
    }),
    decisionBasis: Type.Union([Type.Literal('relative'), Type.Literal('absolute'), Type.Null()], {
      description:
        'The lift the decision was read from: the relative one, or the absolute one where the relative test cannot run ' +
        '(a rate of 0); null when no test decided',
    }),
    decisionReason: Type.String({ description: 'The numbers behind the decision, in one sentence' }),
  },
  { title: 'VariantComparison', description: 'This variant against the control, computed on sessions and converted sessions' },
);
export type VariantComparison = Static<typeof VariantComparison>;

/** Added to every variant of the results. */
export const variantStatistics = {
  comparison: Type.Union([VariantComparison, Type.Null()], {
    description: 'This variant against the control; null for the control itself and when there is no control (see comparisonReason)',
  }),
  comparisonReason: reason('Why comparison is null; null when there is one'),
};

export const Baseline = Type.Object(
  {
    variantKey: Type.Union([Type.String(), Type.Null()], { description: 'The control every comparison is against; null: none' }),
    source: Type.Union([Type.Literal('query'), Type.Literal('settings'), Type.Null()], {
      description: '`query`: the `control` parameter; `settings`: the control configured for the experiment',
    }),
    reason: reason('Why there is no control; null when there is one'),
  },
  {
    title: 'Baseline',
    description:
      'The control of the comparisons: the `control` parameter, else the configured control when it has assigned sessions, else none',
  },
);

export const SampleRatioMismatch = Type.Object(
  {
    weightsSource: stringEnum(['settings', 'equal'] as const, {
      description: '`settings`: the configured weights; `equal`: none are configured, so every variant with sessions is expected to get the same share',
    }),
    pValue: nullableNumber(
      "Pearson's chi-square test of the variants' sessions against their expected shares; 0 when a variant that should get no traffic got some",
      { minimum: 0, maximum: 1 },
    ),
    statistic: nullableNumber('The chi-square statistic', { minimum: 0 }),
    degreesOfFreedom: nullableNumber('Variants in the test - 1', { minimum: 0 }),
    threshold: Type.Number({ description: 'Flagged when pValue is below this' }),
    flagged: Type.Boolean({
      description: 'The sessions are not split as the weights say: assignment or tracking is broken, and the comparisons are not to be trusted',
    }),
    reason: reason('Why pValue is null, or why the experiment is flagged without a test'),
    variants: Type.Array(
      Type.Object({
        variantKey: Type.String(),
        sessions: Type.Integer({ minimum: 0, description: 'Assigned sessions' }),
        expectedShare: Type.Number({ minimum: 0, maximum: 1, description: 'Its weight / the sum of the weights' }),
        observedShare: nullableNumber('sessions / all assigned sessions; null without sessions', { minimum: 0, maximum: 1 }),
        expectedSessions: nullableNumber('expectedShare · all assigned sessions; null when either is 0', { minimum: 0 }),
        included: Type.Boolean({ description: 'False for a zero-weight variant without sessions: it takes no part in the test' }),
      }),
      {
        description:
          'Every variant with sessions, and with configured weights every weighted variant too (one with no session yet counts as 0 sessions), by variant key',
      },
    ),
  },
  {
    title: 'SampleRatioMismatch',
    description:
      "Whether the variants' assigned sessions match the configured weights (equal when none), as GrowthBook's check_srm; independent of `goal`",
  },
);

export const MultipleExposure = Type.Object(
  {
    excludedSessions: Type.Integer({ minimum: 0, description: 'Sessions that saw more than one variant' }),
    exposedSessions: Type.Integer({ minimum: 0, description: 'Every exposed session: the assigned ones and the excluded ones' }),
    share: nullableNumber('excludedSessions / exposedSessions', { minimum: 0, maximum: 1 }),
    threshold: Type.Number({ description: 'Flagged at a share at or above this' }),
    flagged: Type.Boolean({
      description: 'Too many sessions saw several variants: assignment is not sticky, and the variants may no longer be comparable',
    }),
    reason: reason('Why share is null or the experiment is not flagged despite the share'),
  },
  { title: 'MultipleExposure', description: 'The share of exposed sessions left out for seeing more than one variant' },
);

/** Added to the top level of the results. */
export const experimentStatistics = {
  alpha: Type.Number({ description: 'Significance level of every test, and 1 - the level of every interval' }),
  minimums: Type.Object(
    {
      sessions: Type.Integer({ description: 'Sessions each of the control and a variant needs before a decision' }),
      conversions: Type.Integer({ description: 'Converted sessions each of the control and a variant needs before a decision' }),
    },
    { description: 'Below these a decision is `not enough data`: the normal approximation behind the intervals does not hold yet' },
  ),
  baseline: Baseline,
  srm: SampleRatioMismatch,
  multipleExposure: MultipleExposure,
};
