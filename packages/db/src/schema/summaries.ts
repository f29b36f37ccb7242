import { bigint, index, integer, pgTable, primaryKey, text, timestamp, uuid } from 'drizzle-orm/pg-core';

/**
 * Summaries kept by the rollup (drizzle/0003_rollup.sql), from which every result
 * is served. Per-session state is what makes them exact and incremental: a late
 * exposure can move a session's first exposure or exclude it, and the rollup then
 * replaces that session's contribution to the totals instead of re-reading history.
 */

/** Where the rollup is: every event with `seq <= last_seq` is in the summaries. */
export const rollupState = pgTable('rollup_state', {
  name: text('name').primaryKey(),
  lastSeq: bigint('last_seq', { mode: 'number' }).notNull().default(0),
  /** Every event whose insert committed before this instant is counted. */
  asOf: timestamp('as_of', { withTimezone: true, mode: 'date' }).notNull(),
  updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  /** `rolled_up_sessions` holds the sessions of every event with `seq <= sessions_seq`. */
  sessionsSeq: bigint('sessions_seq', { mode: 'number' }).notNull().default(0),
});

/**
 * One row per session with a PAGEVIEW or CONVERSION folded by the rollup: the
 * latest event time among them. Only a first exposure at or before
 * `last_event_at` can make events already folded count for that session, and only
 * then does the rollup look them up in the raw events (otherwise it reads no event
 * outside its window).
 */
export const rolledUpSessions = pgTable(
  'rolled_up_sessions',
  {
    projectId: uuid('project_id').notNull(),
    sessionId: text('session_id').notNull(),
    lastEventAt: timestamp('last_event_at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.projectId, t.sessionId] })],
);

/** One row per (experiment, exposed session). `variant_key` NULL: excluded (saw several variants). */
export const experimentSessions = pgTable(
  'experiment_sessions',
  {
    projectId: uuid('project_id').notNull(),
    experimentId: text('experiment_id').notNull(),
    sessionId: text('session_id').notNull(),
    variantKey: text('variant_key'),
    firstExposureAt: timestamp('first_exposure_at', { withTimezone: true, mode: 'date' }).notNull(),
    pageviews: integer('pageviews').notNull().default(0),
  },
  (t) => [
    primaryKey({ columns: [t.projectId, t.experimentId, t.sessionId] }),
    index('experiment_sessions_session_idx').on(t.projectId, t.sessionId),
  ],
);

/** Counted conversions of an assigned session, per goal; goal '' is "any goal". */
export const experimentSessionGoals = pgTable(
  'experiment_session_goals',
  {
    projectId: uuid('project_id').notNull(),
    experimentId: text('experiment_id').notNull(),
    sessionId: text('session_id').notNull(),
    goal: text('goal').notNull(),
    conversions: integer('conversions').notNull(),
  },
  (t) => [primaryKey({ columns: [t.projectId, t.experimentId, t.sessionId, t.goal] })],
);

/**
 * Per variant and goal ('' = any goal). Session and pageview columns are kept on
 * the '' row only; goal rows carry conversions.
 */
export const experimentVariantTotals = pgTable(
  'experiment_variant_totals',
  {
    projectId: uuid('project_id').notNull(),
    experimentId: text('experiment_id').notNull(),
    variantKey: text('variant_key').notNull(),
    goal: text('goal').notNull(),
    sessions: bigint('sessions', { mode: 'number' }).notNull().default(0),
    pageviewSessions: bigint('pageview_sessions', { mode: 'number' }).notNull().default(0),
    pageviews: bigint('pageviews', { mode: 'number' }).notNull().default(0),
    convertedSessions: bigint('converted_sessions', { mode: 'number' }).notNull().default(0),
    conversions: bigint('conversions', { mode: 'number' }).notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.projectId, t.experimentId, t.variantKey, t.goal] })],
);

/** Per experiment: sessions exposed, excluded, and the exposure time span. */
export const experimentTotals = pgTable(
  'experiment_totals',
  {
    projectId: uuid('project_id').notNull(),
    experimentId: text('experiment_id').notNull(),
    exposedSessions: bigint('exposed_sessions', { mode: 'number' }).notNull().default(0),
    excludedSessions: bigint('excluded_sessions', { mode: 'number' }).notNull().default(0),
    firstExposureAt: timestamp('first_exposure_at', { withTimezone: true, mode: 'date' }).notNull(),
    lastExposureAt: timestamp('last_exposure_at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.projectId, t.experimentId] })],
);

/** Cohorts by hour of first exposure, per variant and goal ('' = any; sessions only there). */
export const experimentCohorts = pgTable(
  'experiment_cohorts',
  {
    projectId: uuid('project_id').notNull(),
    experimentId: text('experiment_id').notNull(),
    variantKey: text('variant_key').notNull(),
    goal: text('goal').notNull(),
    bucket: timestamp('bucket', { withTimezone: true, mode: 'date' }).notNull(),
    sessions: bigint('sessions', { mode: 'number' }).notNull().default(0),
    convertedSessions: bigint('converted_sessions', { mode: 'number' }).notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.projectId, t.experimentId, t.variantKey, t.goal, t.bucket] })],
);
