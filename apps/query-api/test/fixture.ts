import type { StoredEvent } from '@tally/contracts';
import { sql, type SQL } from 'drizzle-orm';
import { insertEvents, runRollup, type Database } from '@tally/db';
import { createLogger } from '@tally/logger';
import { buildApp } from '../src/app.js';
import type { ExportOptions } from '../src/routes/export.js';

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

/** An app whose exports run with these settings (small batches make batch boundaries and backpressure visible). */
export function exportTestApp(db: Database, exports: ExportOptions) {
  return buildApp({ config: { KEY_CACHE_TTL_MS: 10_000 }, db, logger: createLogger('query-api-test', 'silent'), exports });
}

export const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

/** An exported event as the export writes it, with `properties` parsed. */
export interface ExportRow {
  eventId: string;
  eventType: string;
  sessionId: string;
  viewId: string | null;
  experimentId: string | null;
  variantKey: string | null;
  goal: string | null;
  timestamp: string;
  clientTimestamp: string;
  receivedAt: string;
  properties: unknown;
}

export const EXPORT_COLUMNS = [
  'eventId', 'eventType', 'sessionId', 'viewId', 'experimentId', 'variantKey', 'goal',
  'timestamp', 'clientTimestamp', 'receivedAt', 'properties',
] as const;

/**
 * The rows an export should hold, read with an ordinary query and converted in
 * JavaScript (not with the export's SQL), in a canonical order for comparing.
 * `where` is SQL over the alias `e` of analytics_events.
 */
export async function storedRows(db: Database, where: SQL): Promise<ExportRow[]> {
  const { rows } = await db.execute<{
    event_id: string; event_type: string; session_id: string; view_id: string | null; experiment_id: string | null;
    variant_key: string | null; goal: string | null; event_time: Date | string; client_time: Date | string;
    received_at: Date | string; properties: unknown;
  }>(sql`SELECT e.* FROM analytics_events e WHERE ${where}`);
  return canonicalOrder(
    rows.map((r) => ({
      eventId: r.event_id,
      eventType: r.event_type,
      sessionId: r.session_id,
      viewId: r.view_id,
      experimentId: r.experiment_id,
      variantKey: r.variant_key,
      goal: r.goal,
      timestamp: new Date(r.event_time).toISOString(),
      clientTimestamp: new Date(r.client_time).toISOString(),
      receivedAt: new Date(r.received_at).toISOString(),
      properties: r.properties,
    })),
  );
}

export const canonicalOrder = (rows: ExportRow[]) =>
  [...rows].sort((a, b) => compareText(a.eventId + '\u0000' + a.clientTimestamp, b.eventId + '\u0000' + b.clientTimestamp));

const compareText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Every line of an NDJSON body, parsed; fails on a line that is not one JSON object, or a missing final newline. */
export function parseNdjson(body: string): ExportRow[] {
  if (body === '') return [];
  if (!body.endsWith('\n')) throw new Error('NDJSON body does not end with a newline');
  return body
    .slice(0, -1)
    .split('\n')
    .map((line, i) => {
      const value: unknown = JSON.parse(line);
      if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`line ${i + 1} is not an object`);
      return value as ExportRow;
    });
}

/**
 * A strict RFC 4180 reader: CRLF record ends (the last one included), quoted fields
 * with doubled quotes, nothing after a closing quote but a comma or the record end.
 * An unquoted empty field reads as null, `""` as the empty string.
 */
export function parseCsv(text: string): (string | null)[][] {
  const records: (string | null)[][] = [];
  let record: (string | null)[] = [];
  let i = 0;
  while (i < text.length) {
    let field: string | null;
    if (text[i] === '"') {
      let value = '';
      i += 1;
      for (;;) {
        const quote = text.indexOf('"', i);
        if (quote < 0) throw new Error(`unterminated quoted field at ${i}`);
        value += text.slice(i, quote);
        if (text[quote + 1] === '"') {
          value += '"';
          i = quote + 2;
        } else {
          i = quote + 1;
          break;
        }
      }
      field = value;
    } else {
      let end = i;
      while (end < text.length && text[end] !== ',' && text[end] !== '\r' && text[end] !== '\n') {
        if (text[end] === '"') throw new Error(`quote inside an unquoted field at ${end}`);
        end += 1;
      }
      field = end === i ? null : text.slice(i, end);
      i = end;
    }
    record.push(field);
    if (text[i] === ',') {
      i += 1;
    } else if (text.startsWith('\r\n', i)) {
      records.push(record);
      record = [];
      i += 2;
    } else {
      throw new Error(`expected a comma or CRLF at ${i}, found ${JSON.stringify(text.slice(i, i + 10))}`);
    }
  }
  if (record.length > 0) throw new Error('the last record does not end with CRLF');
  return records;
}

/** A CSV cell's value: a leading apostrophe (the formula guard) dropped. */
export const csvValue = (cell: string | null) => (cell !== null && cell.startsWith("'") ? cell.slice(1) : cell);

/** CSV records (header first) as export rows, `properties` parsed; checks the header. */
export function csvRows(records: (string | null)[][]): ExportRow[] {
  const [header, ...rows] = records;
  if (header?.join(',') !== EXPORT_COLUMNS.join(',')) throw new Error(`unexpected header ${JSON.stringify(header)}`);
  return rows.map((cells) => {
    if (cells.length !== EXPORT_COLUMNS.length) throw new Error(`a record has ${cells.length} fields`);
    const row = Object.fromEntries(EXPORT_COLUMNS.map((c, i) => [c, csvValue(cells[i] ?? null)])) as Record<string, string | null>;
    const properties = row.properties ?? null;
    return { ...row, properties: properties === null ? null : JSON.parse(properties) } as ExportRow;
  });
}
