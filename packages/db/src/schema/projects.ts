import { pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';

/**
 * A tenant. Keys are random 256-bit secrets shown once; only their SHA-256 is
 * kept (a slow hash buys nothing for secrets with that much entropy, and every
 * request looks one up).
 */
export const projects = pgTable('projects', {
  id: uuid('id').primaryKey().defaultRandom(),
  name: text('name').notNull(),
  writeKeyHash: text('write_key_hash').notNull().unique(),
  readKeyHash: text('read_key_hash').notNull().unique(),
  /** Null until `tally project rotate-key --kind admin` makes one: a project starts without anyone able to change its settings over HTTP. */
  adminKeyHash: text('admin_key_hash').unique(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
});

export type Project = typeof projects.$inferSelect;
