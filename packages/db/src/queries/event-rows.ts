import type { StoredEvent } from '@tally/contracts';

/**
 * A batch as rows of analytics_events in COPY's text format: one line per event,
 * the columns below separated by `|` (ROW_DELIMITER), `\N` for NULL, times as
 * ISO-8601 in UTC. Not COPY's default tab: a job's payload is JSON, where each of a
 * row's eleven tabs becomes `\t`, two bytes in Redis and more to serialize.
 *
 * This is the form a batch travels in: the ingest API encodes the events it
 * accepted once, the queue holds the text, and the worker hands it to COPY as it
 * is. The worker neither parses the events nor builds rows again, and no object per
 * event stays alive while a batch waits on Redis or Postgres (BENCHMARKS.md).
 */
export const EVENT_ROW_COLUMNS = [
  'project_id',
  'event_id',
  'event_type',
  'session_id',
  'view_id',
  'experiment_id',
  'variant_key',
  'goal',
  'properties',
  'event_time',
  'client_time',
  'received_at',
] as const;

/** A batch's rows as text or as its UTF-8 bytes (encodeEventRows, encodeEventRowBytes). */
export type EventRows = string | Buffer;

/** What separates the columns of a row; COPY is told so (`DELIMITER`). */
export const ROW_DELIMITER = '|';

/** The rows of a batch's events: one `\n`-terminated line each, in the batch's order. */
export function encodeEventRows(projectId: string, receivedAt: number, events: readonly StoredEvent[]): string {
  // Joined once at the end rather than appended to: `+=` builds a tree of thousands of small
  // strings that lives on until something flattens it, which under load is after the job's
  // wait for Redis, long enough for V8 to move the whole tree into the old generation.
  const rows = new Array<string>(events.length);
  const rowOf = rowEncoder(projectId, receivedAt);
  for (let i = 0; i < events.length; i++) rows[i] = rowOf(events[i]!);
  return rows.join('');
}

/**
 * encodeEventRows as UTF-8 bytes, written row by row into one buffer. The text of
 * a whole batch is never one string: a string of a batch's size (hundreds of KB)
 * is a large object to V8, which frees it only in a full collection, and costs
 * more per byte to make than small ones (BENCHMARKS.md). The buffer's memory is
 * outside V8's heap, freed with the Buffer object.
 */
export function encodeEventRowBytes(projectId: string, receivedAt: number, events: readonly StoredEvent[]): Buffer {
  const rows = eventRowBytes(projectId, receivedAt, events.length);
  for (const event of events) rows.add(event);
  return rows.bytes();
}

/** encodeEventRowBytes an event at a time: `add` encodes one, `bytes` returns the rows so far. */
export function eventRowBytes(projectId: string, receivedAt: number, expectedRows: number): { add: (event: StoredEvent) => void; bytes: () => Buffer } {
  const rowOf = rowEncoder(projectId, receivedAt);
  let bytes = Buffer.allocUnsafe(Math.max(1, expectedRows) * TYPICAL_ROW_BYTES);
  let end = 0;
  return {
    add: (event) => {
      const row = rowOf(event);
      // A UTF-16 unit takes at most 3 bytes in UTF-8 (a surrogate pair, two units, takes 4).
      if (bytes.length - end < row.length * 3) {
        const grown = Buffer.allocUnsafe(Math.max(bytes.length * 2, end + row.length * 3));
        bytes.copy(grown, 0, 0, end);
        bytes = grown;
      }
      end += bytes.write(row, end);
    },
    bytes: () => bytes.subarray(0, end),
  };
}

/** Room for a row in the first buffer; a batch of larger rows grows it (the generated traffic's take about 250 bytes). */
const TYPICAL_ROW_BYTES = 320;

/** One event's row, for the rows of one batch. */
function rowEncoder(projectId: string, receivedAt: number): (e: StoredEvent) => string {
  const project = copyText(projectId);
  const iso = isoFormatter();
  const received = iso(receivedAt);
  return (e) => {
    const properties = e.properties === null ? null : JSON.stringify(e.properties);
    return (
      `${project}|${copyText(e.eventId)}|${copyText(e.eventType)}|${copyText(e.sessionId)}|${copyText(e.viewId)}|` +
      `${copyText(e.experimentId)}|${copyText(e.variantKey)}|${copyText(e.goal)}|${copyText(properties)}|` +
      `${iso(e.timestamp)}|${iso(e.clientTimestamp)}|${received}\n`
    );
  };
}

/** Year 10000: from there on toISOString writes six-digit years, which the prefix below does not expect. */
const ISO_FOUR_DIGIT_YEARS_END = 253_402_300_800_000;

/**
 * `new Date(ms).toISOString()` for the times of one batch, which mostly fall in a
 * few minutes: the date, hour and minute are formatted once per minute, seconds and
 * milliseconds by hand. Two times per event made toISOString a third of the cost
 * of encoding a batch.
 */
function isoFormatter(): (ms: number) => string {
  let minuteStart = Number.NaN;
  let prefix = '';
  return (ms) => {
    if (!Number.isInteger(ms) || ms < 0 || ms >= ISO_FOUR_DIGIT_YEARS_END) return new Date(ms).toISOString();
    const intoMinute = ms % 60_000;
    if (ms - intoMinute !== minuteStart) {
      minuteStart = ms - intoMinute;
      prefix = new Date(minuteStart).toISOString().slice(0, 17); // 2026-12-01T12:34:
    }
    const seconds = Math.floor(intoMinute / 1000);
    const millis = intoMinute % 1000;
    return `${prefix}${seconds < 10 ? '0' : ''}${seconds}.${millis < 10 ? '00' : millis < 100 ? '0' : ''}${millis}Z`;
  };
}

/** The rows as columns (EVENT_ROW_COLUMNS order), each field's text unescaped, NULL as null. */
export function decodeEventRows(rows: string): (string | null)[][] {
  const lines = rows.endsWith('\n') ? rows.slice(0, -1).split('\n') : rows.split('\n');
  const columns = EVENT_ROW_COLUMNS.map(() => new Array<string | null>(lines.length));
  lines.forEach((line, row) => {
    const fields = line.split(ROW_DELIMITER);
    if (fields.length !== EVENT_ROW_COLUMNS.length) {
      throw new EventRowsError(`row ${row + 1} has ${fields.length} fields, not ${EVENT_ROW_COLUMNS.length}`);
    }
    fields.forEach((field, column) => (columns[column]![row] = fieldValue(field)));
  });
  return columns;
}

/** The events back from their rows, as encodeEventRows took them: for tests and for looking into a queued job. */
export function eventsOfRows(rows: string): { projectId: string; receivedAt: number; events: StoredEvent[] } {
  const [project, eventId, eventType, sessionId, viewId, experimentId, variantKey, goal, properties, eventTime, clientTime, received] =
    decodeEventRows(rows);
  const events = eventId!.map(
    (id, i): StoredEvent => ({
      eventId: id!,
      eventType: eventType![i] as StoredEvent['eventType'],
      sessionId: sessionId![i]!,
      viewId: viewId![i]!,
      experimentId: experimentId![i]!,
      variantKey: variantKey![i]!,
      goal: goal![i]!,
      properties: properties![i] === null ? null : (JSON.parse(properties![i]!) as StoredEvent['properties']),
      timestamp: Date.parse(eventTime![i]!),
      clientTimestamp: Date.parse(clientTime![i]!),
    }),
  );
  return { projectId: project![0]!, receivedAt: Date.parse(received![0]!), events };
}

/** Rows that are not what encodeEventRows makes. */
export class EventRowsError extends Error {
  override name = 'EventRowsError';
}

/**
 * What COPY's text format gives a meaning to: backslash, line breaks and the
 * delimiter. The delimiter is written as its octal escape, so that a row splits on
 * every `|` it holds.
 */
const COPY_SPECIAL = /[\\|\n\r]/;
const COPY_SPECIALS = /[\\|\n\r]/g;
const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '|': '\\174', '\n': '\\n', '\r': '\\r' };
const COPY_UNESCAPE = /\\(174|[\s\S]?)/g;
const COPY_UNESCAPES: Record<string, string> = { '\\': '\\', '174': '|', n: '\n', r: '\r', t: '\t' };

function copyText(value: string | null): string {
  if (value === null) return '\\N';
  return COPY_SPECIAL.test(value) ? value.replace(COPY_SPECIALS, (c) => COPY_ESCAPES[c]!) : value;
}

function fieldValue(field: string): string | null {
  if (field === '\\N') return null;
  if (!field.includes('\\')) return field;
  return field.replace(COPY_UNESCAPE, (escape, c: string) => {
    const plain = COPY_UNESCAPES[c];
    if (plain === undefined) throw new EventRowsError(`unknown escape ${escape} in ${JSON.stringify(field.slice(0, 100))}`);
    return plain;
  });
}
