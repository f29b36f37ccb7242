import { bigint, jsonb, pgTable, primaryKey, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { projects } from './projects.js';

/**
 * Bookkeeping of the legacy import (`tally import-legacy`). The tables are created
 * by the hand-written migration `drizzle/0006_legacy_import.sql`; this file only
 * types queries and is kept out of drizzle-kit's schema list (drizzle.config.ts).
 */

/** Where an import of one legacy table into one target stopped, and what it did so far. */
export const legacyImportCheckpoints = pgTable(
  'legacy_import_checkpoints',
  {
    source: text('source').notNull(),
    sourceTable: text('source_table').notNull(),
    /** A project id, or '*': one Tally project per legacy project. */
    target: text('target').notNull(),
    timestampUnit: text('timestamp_unit').$type<'s' | 'ms'>().notNull(),
    /** Every row with an id up to this one (in the source's order) is imported; null before the first batch. */
    lastId: text('last_id'),
    rowsRead: bigint('rows_read', { mode: 'number' }).notNull().default(0),
    imported: bigint('imported', { mode: 'number' }).notNull().default(0),
    alreadyPresent: bigint('already_present', { mode: 'number' }).notNull().default(0),
    skipped: jsonb('skipped').$type<Record<string, number>>().notNull().default({}),
    startedAt: timestamp('started_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    completedAt: timestamp('completed_at', { withTimezone: true, mode: 'date' }),
  },
  (t) => [primaryKey({ columns: [t.source, t.sourceTable, t.target] })],
);

/** The Tally project that holds a legacy project's events. */
export const legacyProjects = pgTable(
  'legacy_projects',
  {
    source: text('source').notNull(),
    legacyProjectId: text('legacy_project_id').notNull(),
    projectId: uuid('project_id')
      .notNull()
      .references(() => projects.id, { onDelete: 'cascade' }),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.source, t.legacyProjectId] })],
);
