import type { StoredEvent } from '@tally/contracts';
import type { Database } from '../client.js';
import { insertEventsByCopy } from './insert-copy.js';
import { insertEventsByUnnest } from './insert-unnest.js';

export { insertEventsByCopy, insertEventsByUnnest };

/**
 * From this many events on, a batch goes through COPY; smaller ones through
 * unnest. bench/insert-methods.ts measured each side of it (BENCHMARKS.md).
 */
export const COPY_FROM_EVENTS = 1_000;

/**
 * Stores a batch of a project's events in one round trip, idempotently: the
 * conflict key (project, event id, client time) makes a retried job, or a batch a
 * client sent twice, change nothing. Returns how many rows were new.
 */
export function insertEvents(
  db: Database,
  projectId: string,
  receivedAt: number,
  events: readonly StoredEvent[],
): Promise<number> {
  if (events.length === 0) return Promise.resolve(0);
  const insert = events.length >= COPY_FROM_EVENTS ? insertEventsByCopy : insertEventsByUnnest;
  return insert(db, projectId, receivedAt, events);
}
