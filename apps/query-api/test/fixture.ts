import type { StoredEvent } from '@tally/contracts';
import { insertEvents, runRollup, type Database } from '@tally/db';
import { createLogger } from '@tally/logger';
import { buildApp } from '../src/app.js';

export const T = Date.parse('2025-01-10T12:00:00.000Z');
export const at = (seconds: number) => T + seconds * 1_000;

let counter = 0;

/** A stored event; `timestamp` is in seconds after T, and the client's clock is taken as right unless said otherwise. */
export function event(
  eventType: StoredEvent['eventType'],
  sessionId: string,
  seconds: number,
  fields: Partial<Omit<StoredEvent, 'eventType' | 'sessionId' | 'timestamp'>> = {},
): StoredEvent {
  return {
    eventId: `ev-${++counter}`,
    eventType,
    sessionId,
    viewId: null,
    experimentId: null,
    variantKey: null,
    goal: null,
    properties: null,
    timestamp: at(seconds),
    clientTimestamp: at(seconds),
    ...fields,
  };
}

export const exposure = (sessionId: string, seconds: number, experimentId: string, variantKey: string) =>
  event('EXPOSURE', sessionId, seconds, { experimentId, variantKey });
export const pageview = (sessionId: string, seconds: number) => event('PAGEVIEW', sessionId, seconds);
export const conversion = (sessionId: string, seconds: number, goal: string | null = null) =>
  event('CONVERSION', sessionId, seconds, { goal });

/** Inserts without rolling up: the query API does not count these events yet. */
export function insertOnly(db: Database, projectId: string, events: StoredEvent[]): Promise<number> {
  return insertEvents(db, projectId, Date.now(), events);
}

/**
 * Inserts, then folds everything inserted so far into the summaries, as the
 * worker's rollup job does every second or so. Returns how many events were new.
 */
export async function store(db: Database, projectId: string, events: StoredEvent[]): Promise<number> {
  const inserted = await insertOnly(db, projectId, events);
  await runRollup(db);
  return inserted;
}

export function testApp(db: Database, keyCacheTtlMs = 10_000) {
  return buildApp({ config: { KEY_CACHE_TTL_MS: keyCacheTtlMs }, db, logger: createLogger('query-api-test', 'silent') });
}

export const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
