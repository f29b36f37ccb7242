import type { Static } from '@sinclair/typebox';
import type { ExperimentSettings } from '@tally/db';
import {
  compareVariants,
  DEFAULT_MINIMUMS,
  multipleExposureCheck,
  sampleRatioMismatch,
  type Interval,
  type LiftEstimate,
  type VariantComparison as StatsComparison,
} from '@tally/stats';
import type { experimentStatistics, variantStatistics, VariantComparison } from './statistics-schemas.js';

type ExperimentStatistics = { [K in keyof typeof experimentStatistics]: Static<(typeof experimentStatistics)[K]> };
type VariantStatistics = { [K in keyof typeof variantStatistics]: Static<(typeof variantStatistics)[K]> };

export interface StatisticsInput {
  experimentId: string;
  variants: readonly { variantKey: string; sessions: number; convertedSessions: number }[];
  excludedSessions: number;
  /** The `control` parameter, already checked to be one of `variants`. */
  askedControl: string | null;
  settings: ExperimentSettings;
  alpha: number;
}

/**
 * The statistics of one experiment's results, all computed by @tally/stats on the
 * assigned and converted sessions the results already hold; this only chooses
 * the control and the weights and names things by variant key.
 */
export function experimentStatisticsOf(input: StatisticsInput): {
  experiment: ExperimentStatistics;
  variants: Map<string, VariantStatistics>;
} {
  const { variants, settings, alpha } = input;
  const baseline = chooseBaseline(input);
  const perVariant = new Map<string, VariantStatistics>();

  const control = variants.find((v) => v.variantKey === baseline.variantKey);
  if (control === undefined) {
    for (const v of variants) perVariant.set(v.variantKey, { comparison: null, comparisonReason: baseline.reason });
  } else {
    const others = variants.filter((v) => v !== control);
    const arm = (v: (typeof variants)[number]) => ({ key: v.variantKey, sessions: v.sessions, convertedSessions: v.convertedSessions });
    const compared = compareVariants({ control: arm(control), variants: others.map(arm), alpha });
    perVariant.set(control.variantKey, {
      comparison: null,
      comparisonReason: 'This variant is the control: the others are compared with it.',
    });
    compared.variants.forEach((result, i) => {
      perVariant.set(others[i]!.variantKey, { comparison: comparisonOf(control.variantKey, result), comparisonReason: null });
    });
  }

  const exposedSessions = input.excludedSessions + variants.reduce((sum, v) => sum + v.sessions, 0);
  return {
    experiment: {
      alpha,
      minimums: { ...DEFAULT_MINIMUMS },
      baseline,
      srm: srmOf(variants, settings.weights),
      multipleExposure: multipleExposureCheck({ excludedSessions: input.excludedSessions, exposedSessions }),
    },
    variants: perVariant,
  };
}

function chooseBaseline({ experimentId, variants, askedControl, settings }: StatisticsInput): ExperimentStatistics['baseline'] {
  if (askedControl !== null) return { variantKey: askedControl, source: 'query', reason: null };
  const configured = settings.control;
  if (configured === null) {
    return {
      variantKey: null,
      source: null,
      reason:
        'No control to compare with: ask for one with ?control=<variant>, or configure one ' +
        `(PUT /v1/experiments/${encodeURIComponent(experimentId)}/settings with an admin key, or \`pnpm tally experiment configure --control\`).`,
    };
  }
  if (!variants.some((v) => v.variantKey === configured)) {
    // Not a 400 as for the parameter: the settings were right when made, the data has just not caught up.
    return {
      variantKey: null,
      source: null,
      reason: `The configured control ${JSON.stringify(configured)} has no assigned session yet, so there is nothing to compare with.`,
    };
  }
  return { variantKey: configured, source: 'settings', reason: null };
}

function comparisonOf(control: string, result: StatsComparison): VariantComparison {
  return {
    control,
    absoluteLift: liftOf(result.absoluteLift),
    relativeLift: liftOf(result.relativeLift),
    bayesian: {
      chanceToWin: result.bayesian.chanceToWin,
      mean: result.bayesian.mean,
      stdDev: result.bayesian.stdDev,
      ci: intervalOf(result.bayesian.ci),
      reason: result.bayesian.reason,
    },
    decision: result.decision,
    decisionBasis: result.decisionBasis,
    decisionReason: result.decisionReason,
  };
}

function liftOf(estimate: LiftEstimate): VariantComparison['absoluteLift'] {
  return {
    value: estimate.value,
    stdError: estimate.stdError,
    ci: intervalOf(estimate.ci),
    pValue: estimate.pValue,
    degreesOfFreedom: estimate.degreesOfFreedom,
    significant: estimate.significant,
    reason: estimate.reason,
  };
}

/** An object rather than the library's pair: clearer in JSON, and OpenAPI 3.0 cannot describe a tuple. */
const intervalOf = (ci: Interval | null) => (ci === null ? null : { lower: ci[0], upper: ci[1] });

/**
 * With configured weights, every weighted variant takes part even before its
 * first session (a variant that should get traffic and gets none is the clearest
 * mismatch), and a variant outside the weights counts as weight 0: it should get
 * no traffic. Without weights, the variants that have sessions are expected equal.
 */
function srmOf(
  variants: StatisticsInput['variants'],
  weights: Record<string, number> | null,
): ExperimentStatistics['srm'] {
  const sessions = new Map(variants.map((v) => [v.variantKey, v.sessions]));
  const keys = [...new Set([...sessions.keys(), ...Object.keys(weights ?? {})])].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const counts = keys.map((key) => sessions.get(key) ?? 0);
  const result = sampleRatioMismatch(counts, weights === null ? undefined : keys.map((key) => weights[key] ?? 0));

  let reason = result.reason;
  const unexpected = result.arms.flatMap((arm, i) => (arm.expectedShare === 0 && arm.sessions > 0 ? [keys[i]!] : []));
  if (weights !== null && unexpected.length > 0) {
    // The library names arms by position; say which variants, and why they should have had none.
    reason =
      unexpected
        .map((key) => {
          const why = Object.hasOwn(weights, key) ? 'a configured weight of 0' : 'no configured weight';
          return `variant ${JSON.stringify(key)} has ${sessions.get(key)} sessions but ${why}, so it should get no traffic`;
        })
        .join('; ') + '.';
  }
  return {
    weightsSource: weights === null ? 'equal' : 'settings',
    pValue: result.pValue,
    statistic: result.statistic,
    degreesOfFreedom: result.degreesOfFreedom,
    threshold: result.threshold,
    flagged: result.flagged,
    reason,
    variants: result.arms.map((arm, i) => ({ variantKey: keys[i]!, ...arm })),
  };
}
