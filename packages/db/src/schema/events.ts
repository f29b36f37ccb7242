import { bigint, jsonb, pgEnum, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { EVENT_TYPES } from '@tally/contracts';

export const eventType = pgEnum('event_type', EVENT_TYPES);

/**
 * Raw events. The table itself is created by the custom migration
 * `drizzle/0001_analytics_events.sql`, because drizzle-kit cannot declare a
 * partitioned table; this definition only types queries, and is kept out of
 * drizzle-kit's schema list (see drizzle.config.ts).
 *
 * Partitioned by range on `client_time` and keyed by (project_id, event_id,
 * client_time): the time the client sent is what a retry repeats, whereas the
 * skew-corrected `event_time` moves with every retry's `sentAt`. A key on
 * `event_time` would count a retried event twice.
 */
export const analyticsEvents = pgTable('analytics_events', {
  projectId: uuid('project_id').notNull(),
  eventId: text('event_id').notNull(),
  eventType: eventType('event_type').notNull(),
  sessionId: text('session_id').notNull(),
  viewId: text('view_id'),
  experimentId: text('experiment_id'),
  variantKey: text('variant_key'),
  goal: text('goal'),
  properties: jsonb('properties').$type<Record<string, unknown>>(),
  /** Skew-corrected event time: every result is computed on it. */
  eventTime: timestamp('event_time', { withTimezone: true, mode: 'date' }).notNull(),
  /** The time the client sent; partition key and part of the idempotency key. */
  clientTime: timestamp('client_time', { withTimezone: true, mode: 'date' }).notNull(),
  receivedAt: timestamp('received_at', { withTimezone: true, mode: 'date' }).notNull(),
  /** Insertion order, from analytics_events_seq: how the rollup finds new events (drizzle/0003_rollup.sql). */
  seq: bigint('seq', { mode: 'number' }).notNull(),
});
