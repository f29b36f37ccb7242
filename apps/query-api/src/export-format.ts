import { Transform } from 'node:stream';
import { EXPORTED_EVENT_FIELDS, type ExportedEvent } from '@tally/db';

export type ExportFormat = 'ndjson' | 'csv';

interface Encoding {
  contentType: string;
  extension: string;
  /** Written before the first row, even when there is none. */
  header: string;
  rows: (batch: readonly ExportedEvent[]) => string;
}

export const ENCODINGS: Record<ExportFormat, Encoding> = {
  ndjson: {
    contentType: 'application/x-ndjson',
    extension: 'ndjson',
    header: '',
    rows: (batch) => {
      let text = '';
      for (const e of batch) text += ndjsonLine(e);
      return text;
    },
  },
  csv: {
    contentType: 'text/csv; charset=utf-8',
    extension: 'csv',
    header: `${EXPORTED_EVENT_FIELDS.join(',')}\r\n`,
    rows: (batch) => {
      let text = '';
      for (const e of batch) text += csvLine(e);
      return text;
    },
  },
};

/**
 * Batches of events in, text out. Its writable side holds one batch, so together
 * with the source's one-batch buffer it passes the HTTP socket's backpressure on
 * to the cursor: while the client does not read, no further batch is fetched.
 */
export function encoder(format: ExportFormat): Transform {
  const encoding = ENCODINGS[format];
  const stream = new Transform({
    writableObjectMode: true,
    writableHighWaterMark: 1,
    transform(batch: readonly ExportedEvent[], _encoding, done) {
      done(null, encoding.rows(batch));
    },
  });
  if (encoding.header) stream.push(encoding.header);
  return stream;
}

const str = (value: string | null) => (value === null ? 'null' : JSON.stringify(value));

/**
 * `properties` is jsonb text from Postgres, valid JSON without a line break (jsonb
 * prints no whitespace but single spaces), so it goes in as it is: parsing it only
 * to print it again would cost time and could round large numbers.
 */
function ndjsonLine(e: ExportedEvent): string {
  return (
    `{"eventId":${str(e.eventId)},"eventType":${str(e.eventType)},"sessionId":${str(e.sessionId)},` +
    `"viewId":${str(e.viewId)},"experimentId":${str(e.experimentId)},"variantKey":${str(e.variantKey)},` +
    `"goal":${str(e.goal)},"timestamp":${str(e.timestamp)},"clientTimestamp":${str(e.clientTimestamp)},` +
    `"receivedAt":${str(e.receivedAt)},"properties":${e.properties ?? 'null'}}\n`
  );
}

function csvLine(e: ExportedEvent): string {
  return (
    `${csvCell(e.eventId)},${csvCell(e.eventType)},${csvCell(e.sessionId)},${csvCell(e.viewId)},` +
    `${csvCell(e.experimentId)},${csvCell(e.variantKey)},${csvCell(e.goal)},${csvCell(e.timestamp)},` +
    `${csvCell(e.clientTimestamp)},${csvCell(e.receivedAt)},${csvCell(e.properties)}\r\n`
  );
}

// A spreadsheet runs a cell that starts with one of = + - @ (or with a tab or CR
// before one) as a formula (OWASP "CSV injection"). A leading apostrophe makes it
// text. Cells that already start with an apostrophe get one too, so that "drop a
// leading apostrophe" restores every value exactly.
const FORMULA_START = /^[=+\-@\t\r']/;
const NEEDS_QUOTES = /[",\r\n]/;

/** One RFC 4180 field: null is an empty field, the empty string `""`. */
export function csvCell(value: string | null): string {
  if (value === null) return '';
  if (value === '') return '""';
  const text = FORMULA_START.test(value) ? `'${value}` : value;
  return NEEDS_QUOTES.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/**
 * `attachment` with a file name every client can take (ASCII letters, digits,
 * `.`, `_`, `-`), plus the exact name in RFC 5987 form when they differ.
 */
export function contentDisposition(name: string): string {
  const plain = name.replace(/[^A-Za-z0-9._-]+/g, '_');
  if (plain === name) return `attachment; filename="${name}"`;
  const encoded = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${plain}"; filename*=UTF-8''${encoded}`;
}
