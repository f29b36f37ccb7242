import { and, eq, sql } from 'drizzle-orm';
import type { Database } from '../client.js';
import { experimentSettings } from '../schema/experiment-settings.js';
import { oncePerDatabase } from './prepared.js';

/** An experiment's settings; every field null (and `updatedAt` null) when it was never configured. */
export interface ExperimentSettings {
  experimentId: string;
  name: string | null;
  control: string | null;
  /** Variant key → weight, in code-point order of the keys; null: every variant expected in equal shares. */
  weights: Record<string, number> | null;
  updatedAt: Date | null;
}

export type ExperimentSettingsInput = Pick<ExperimentSettings, 'name' | 'control' | 'weights'>;

export const SETTINGS_LIMITS = {
  nameLength: 200,
  /** As the ingest API accepts variant keys. */
  variantKeyLength: 128,
  variants: 100,
  /** Weights are relative; a bound keeps their sum (and so every expected share) finite. */
  weight: 1_000_000_000,
} as const;

/** Settings that break a rule of `settingsProblems`; `problems` are sentences for the user. */
export class InvalidSettingsError extends Error {
  override name = 'InvalidSettingsError';
  constructor(readonly problems: string[]) {
    super(problems.join(' '));
  }
}

const quote = (s: string) => JSON.stringify(s);

/**
 * Every rule the settings obey, as sentences naming the field (empty when valid).
 * The query API and the CLI both call it, so settings written either way mean the
 * same to the statistics that read them: a zero weight is kept on purpose ("this
 * variant should get no traffic"), but the weights must leave some traffic
 * somewhere, and the control must be a variant that is meant to get some.
 */
export function settingsProblems(input: ExperimentSettingsInput): string[] {
  const problems: string[] = [];
  const { name, control, weights } = input;
  if (name !== null) {
    if (name.trim().length === 0) problems.push('name must not be empty (send null to remove it).');
    else if (name.length > SETTINGS_LIMITS.nameLength) problems.push(`name must be at most ${SETTINGS_LIMITS.nameLength} characters long.`);
  }
  if (control !== null && (control.length === 0 || control.length > SETTINGS_LIMITS.variantKeyLength)) {
    problems.push(`control must be a variant key of 1 to ${SETTINGS_LIMITS.variantKeyLength} characters.`);
  }
  if (weights !== null) {
    const entries = Object.entries(weights);
    if (entries.length === 0) problems.push('weights must name at least one variant (send null for equal weights).');
    if (entries.length > SETTINGS_LIMITS.variants) problems.push(`weights may name at most ${SETTINGS_LIMITS.variants} variants.`);
    for (const [variant, weight] of entries) {
      if (variant.length === 0 || variant.length > SETTINGS_LIMITS.variantKeyLength) {
        problems.push(`weights: a variant key must have 1 to ${SETTINGS_LIMITS.variantKeyLength} characters, not ${variant.length}.`);
      }
      if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0 || weight > SETTINGS_LIMITS.weight) {
        problems.push(
          `weights: ${quote(variant)} has weight ${String(weight)}; a weight is a number from 0 to ${SETTINGS_LIMITS.weight} ` +
            '(0: the variant should get no traffic).',
        );
      }
    }
    if (entries.length > 0 && entries.every(([, weight]) => weight === 0)) {
      problems.push('weights: at least one weight must be above 0 (a 0 weight means "should get no traffic").');
    }
    if (control !== null && entries.length > 0) {
      const weight = weights[control];
      if (!Object.hasOwn(weights, control)) {
        problems.push(
          `control ${quote(control)} is not one of the weighted variants (${entries.map(([v]) => quote(v)).join(', ')}): ` +
            'give it a weight, or choose another control.',
        );
      } else if (weight === 0) {
        problems.push(`control ${quote(control)} has weight 0, so it should get no traffic: a control needs a weight above 0.`);
      }
    }
  }
  return problems;
}

// Read with every results request.
const settingsStatement = oncePerDatabase((db) =>
  db
    .select()
    .from(experimentSettings)
    .where(and(eq(experimentSettings.projectId, sql.placeholder('projectId')), eq(experimentSettings.experimentId, sql.placeholder('experimentId'))))
    .prepare('tally_experiment_settings'),
);

export async function getExperimentSettings(
  db: Database,
  projectId: string,
  experimentId: string,
): Promise<ExperimentSettings> {
  const [row] = await settingsStatement(db).execute({ projectId, experimentId });
  if (!row) return { experimentId, name: null, control: null, weights: null, updatedAt: null };
  return {
    experimentId,
    name: row.name,
    control: row.controlVariant,
    weights: row.weights === null ? null : sortedWeights(row.weights),
    updatedAt: row.updatedAt,
  };
}

/** Replaces an experiment's settings whole (a field given as null is removed). Throws InvalidSettingsError. */
export async function putExperimentSettings(
  db: Database,
  projectId: string,
  experimentId: string,
  input: ExperimentSettingsInput,
): Promise<ExperimentSettings> {
  const problems = settingsProblems(input);
  if (problems.length > 0) throw new InvalidSettingsError(problems);
  const values = {
    name: input.name,
    controlVariant: input.control,
    weights: input.weights === null ? null : sortedWeights(input.weights),
  };
  const [row] = await db
    .insert(experimentSettings)
    .values({ projectId, experimentId, ...values })
    .onConflictDoUpdate({
      target: [experimentSettings.projectId, experimentSettings.experimentId],
      set: { ...values, updatedAt: sql`now()` },
    })
    .returning();
  return {
    experimentId,
    name: row!.name,
    control: row!.controlVariant,
    weights: row!.weights === null ? null : sortedWeights(row!.weights),
    updatedAt: row!.updatedAt,
  };
}

/**
 * Changes only the given fields, keeping the others as stored; the rules apply to
 * the result. The row is locked while merging, so two concurrent changes of
 * different fields both land, also on an experiment never configured before: a row
 * is made first for the lock to hold (a second change waits on it, then reads what
 * the first wrote), and a refused change takes it back with its transaction.
 */
export async function updateExperimentSettings(
  db: Database,
  projectId: string,
  experimentId: string,
  change: Partial<ExperimentSettingsInput>,
): Promise<ExperimentSettings> {
  return db.transaction(async (tx) => {
    await tx.insert(experimentSettings).values({ projectId, experimentId }).onConflictDoNothing();
    const [row] = await tx
      .select()
      .from(experimentSettings)
      .where(and(eq(experimentSettings.projectId, projectId), eq(experimentSettings.experimentId, experimentId)))
      .for('update');
    const current: ExperimentSettingsInput = {
      name: row?.name ?? null,
      control: row?.controlVariant ?? null,
      weights: row?.weights ?? null,
    };
    const given = Object.fromEntries(Object.entries(change).filter(([, value]) => value !== undefined));
    return putExperimentSettings(tx as unknown as Database, projectId, experimentId, { ...current, ...given });
  });
}

/** jsonb keeps object keys in its own order (by length first); readers get code-point order. */
function sortedWeights(weights: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(weights).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
