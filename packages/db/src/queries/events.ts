import type { StoredEvent } from '@tally/contracts';
import type { Database } from '../client.js';
import { encodeEventRows, type EventRows } from './event-rows.js';
import { insertRowsByCopy } from './insert-copy.js';
import { insertRowsByUnnest } from './insert-unnest.js';

export { insertRowsByCopy, insertRowsByUnnest };
export { EVENT_ROW_COLUMNS, EventRowsError, ROW_DELIMITER, decodeEventRows, encodeEventRowBytes, encodeEventRows, eventRowBytes, eventsOfRows, type EventRows } from './event-rows.js';

/**
 * From this many events on, a batch goes through COPY; smaller ones through
 * unnest. bench/insert-methods.ts measured each side of it (BENCHMARKS.md).
 */
export const COPY_FROM_EVENTS = 1_000;

/**
 * Stores a batch's rows (encodeEventRows, or its bytes) in one round trip, idempotently: the
 * conflict key (project, event id, client time) makes a retried job, or a batch a
 * client sent twice, change nothing. `count` is how many rows there are. Returns
 * how many were new.
 */
export function insertEventRows(db: Database, rows: EventRows, count: number): Promise<number> {
  if (count === 0) return Promise.resolve(0);
  return count >= COPY_FROM_EVENTS ? insertRowsByCopy(db, rows) : insertRowsByUnnest(db, rows);
}

/** insertEventRows for events not yet encoded. */
export function insertEvents(
  db: Database,
  projectId: string,
  receivedAt: number,
  events: readonly StoredEvent[],
): Promise<number> {
  return insertEventRows(db, encodeEventRows(projectId, receivedAt, events), events.length);
}
