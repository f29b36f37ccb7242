import { sql } from 'drizzle-orm';
import { check, jsonb, pgTable, primaryKey, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { projects } from './projects.js';

/**
 * What an analyst declares about an experiment, as opposed to what its events
 * say: a display name, the control the other variants are compared with, and the
 * share of traffic each variant should get (for the sample-ratio-mismatch test).
 * A row may exist before the experiment has any exposure: experiments are
 * configured before launch. Each column is optional; null means "not set"
 * (no control, equal weights).
 */
export const experimentSettings = pgTable(
  'experiment_settings',
  {
    projectId: uuid('project_id')
      .notNull()
      .references(() => projects.id, { onDelete: 'cascade' }),
    experimentId: text('experiment_id').notNull(),
    name: text('name'),
    controlVariant: text('control_variant'),
    /**
     * Variant key → relative weight (need not sum to 1). Kept as one JSON object
     * because it is only ever read and replaced whole. The rules a CHECK cannot
     * state (every weight ≥ 0, one > 0, the control weighted) are enforced by
     * `settingsProblems`, which every writer calls.
     */
    weights: jsonb('weights').$type<Record<string, number>>(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.projectId, t.experimentId] }),
    check('experiment_settings_weights_object', sql`${t.weights} IS NULL OR jsonb_typeof(${t.weights}) = 'object'`),
  ],
);
