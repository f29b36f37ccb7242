import { Type, type Static } from '@sinclair/typebox';
import { HttpError } from '@tally/server';
import { ErrorResponse, ExperimentParams } from './schemas.js';

/**
 * Route schemas of the exports. The descriptions are the contract analysts read in
 * the OpenAPI document: which rows, which columns, how CSV cells are written.
 */

const format = Type.Unsafe<'ndjson' | 'csv'>({
  type: 'string',
  enum: ['ndjson', 'csv'],
  description: '`ndjson`: one JSON object per line. `csv`: RFC 4180, a header row, CRLF line ends',
});

const dateTime = (description: string) =>
  Type.String({ format: 'date-time', description: `${description} (RFC 3339, with a time zone, e.g. 2025-01-10T00:00:00Z)` });

export const ExperimentExportQuery = Type.Object(
  {
    format,
    from: Type.Optional(dateTime('Only events whose `timestamp` is at or after this instant')),
    to: Type.Optional(dateTime('Only events whose `timestamp` is before this instant')),
  },
  { additionalProperties: false },
);
export type ExperimentExportQuery = Static<typeof ExperimentExportQuery>;

export const ProjectExportQuery = Type.Object(
  {
    format,
    from: dateTime('Events whose `timestamp` is at or after this instant'),
    to: dateTime('Events whose `timestamp` is before this instant, which must be later than `from`'),
  },
  { additionalProperties: false },
);
export type ProjectExportQuery = Static<typeof ProjectExportQuery>;

const nullable = (description: string) => Type.Union([Type.String(), Type.Null()], { description });
const instant = (description: string) =>
  Type.String({ format: 'date-time', description: `${description}; ISO-8601 UTC with milliseconds` });

/** One NDJSON line; the CSV columns are the same, in this order. */
export const ExportedEventLine = Type.Object(
  {
    eventId: Type.String({ description: "The client's idempotency key" }),
    eventType: Type.Union([Type.Literal('PAGEVIEW'), Type.Literal('EXPOSURE'), Type.Literal('CONVERSION')]),
    sessionId: Type.String(),
    viewId: nullable('The view the event belongs to, if the client sent one'),
    experimentId: nullable('Set on exposures'),
    variantKey: nullable('Set on exposures'),
    goal: nullable('Set on conversions that name a goal'),
    timestamp: instant('Event time after clock-skew correction: the time every result is computed on'),
    clientTimestamp: instant("The event time the client's clock gave"),
    receivedAt: instant('When the ingest API received the batch'),
    properties: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()], {
      description: 'The properties the client sent, as stored; in CSV, the JSON text',
    }),
  },
  { title: 'ExportedEvent' },
);

const COMMON =
  'Streamed from one consistent snapshot of the database, in constant memory however many rows there are, as fast ' +
  'as the client reads. Rows come grouped by session, ordered by `timestamp` then `eventId` within a session. ' +
  '`from` is inclusive and `to` exclusive, so consecutive ranges never share or miss a row. ' +
  '**CSV:** one header row, then one row per event; a field with a comma, quote, CR or LF is quoted, quotes doubled ' +
  '(RFC 4180). An empty cell is null, `""` an empty string; `properties` is JSON text. To keep spreadsheets from ' +
  'running cell text as a formula, a cell that begins with `=`, `+`, `-`, `@`, tab, CR or an apostrophe gets one ' +
  'apostrophe in front: a program reading the CSV gets the exact value back by dropping the first character of any ' +
  'cell that begins with an apostrophe. **NDJSON** is written as is. ' +
  'A response that fails after it has begun ends without its final chunk, so the client sees an incomplete transfer, ' +
  'never a short file that looks complete.';

const body = {
  description: 'The events, as an attachment (`Content-Disposition` names the file)',
  content: {
    'application/x-ndjson': { schema: ExportedEventLine },
    'text/csv': {
      schema: Type.String({
        description: `Header: ${Object.keys(ExportedEventLine.properties).join(',')}`,
      }),
    },
  },
};

const errors = (statuses: Record<number, string>) =>
  Object.fromEntries(Object.entries(statuses).map(([status, description]) => [status, { ...ErrorResponse, description }]));

const commonErrors = {
  401: 'No key, or not a live read key of any project',
  403: "A write key was sent: reading needs the project's read key",
  429: 'As many exports as the server allows are running; retry after `Retry-After` seconds',
};

export const experimentExportSchema = {
  summary: 'Raw events of one experiment',
  description:
    'Every stored event of every session that has at least one exposure to the experiment: the session\'s exposures ' +
    "to this experiment, and all its pageviews and conversions (also those before its first exposure, which the " +
    "results do not count, so that the rules can be checked). The session's exposures to other experiments are left " +
    'out: they play no part in this experiment, and their own exports have them. This is everything needed to ' +
    're-derive the results (first exposure, exclusion, counted events) from raw data, on the events stored when the ' +
    'export starts, which may include some the results (served from summaries, see `asOf`) do not count yet. ' +
    '`from`/`to` filter these rows by `timestamp`; the sessions are the same whatever the range. ' +
    COMMON,
  tags: ['exports'],
  params: ExperimentParams,
  querystring: ExperimentExportQuery,
  response: {
    200: body,
    ...errors({
      400: 'Invalid or unknown parameter, or `to` not after `from`',
      ...commonErrors,
      404: 'The project has no exposure to this experiment',
    }),
  },
};

export const projectExportSchema = {
  summary: "Raw events of the project in a time range",
  description:
    "Every stored event of the key's project (pageviews, exposures to any experiment, conversions) whose `timestamp` " +
    'is in [from, to). Both bounds are required. ' +
    COMMON,
  tags: ['exports'],
  querystring: ProjectExportQuery,
  response: {
    200: body,
    ...errors({ 400: 'Invalid, missing or unknown parameter, or `to` not after `from`', ...commonErrors }),
  },
};

const RFC3339 = /^(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?([Zz]|[+-]\d\d(?::?\d\d)?)$/;

/**
 * The instant of a date-time the schema accepted, to the millisecond (events are
 * stored to the millisecond). Written out by hand because Date.parse does not take
 * every form RFC 3339 allows (a lower-case `t`, a space, `+0100`, a leap second).
 */
export function parseDateTime(text: string): Date | undefined {
  const m = RFC3339.exec(text);
  if (!m) return undefined;
  const [, year, month, day, hour, minute, second, fraction = '', zone = 'Z'] = m;
  const millis = (fraction + '000').slice(0, 3);
  const offset = zone.toUpperCase() === 'Z' ? 'Z' : `${zone.slice(0, 3)}:${zone.slice(-2)}`;
  // 23:59:60 is the leap second: the same instant as the next second, to a computer's clock.
  const leap = second === '60';
  const ms = Date.parse(`${year}-${month}-${day}T${hour}:${minute}:${leap ? '59' : second}.${millis}${offset}`);
  return Number.isNaN(ms) ? undefined : new Date(leap ? ms + 1_000 : ms);
}

/** The half-open range of an export, checked: a bound that is not an instant, or `to` not after `from`, is a 400. */
export function exportRange(query: { from?: string | undefined; to?: string | undefined }): { from?: Date; to?: Date } {
  const bound = (name: 'from' | 'to') => {
    const text = query[name];
    if (text === undefined) return undefined;
    const instant = parseDateTime(text);
    if (!instant) throw new HttpError(400, `querystring: ${name} is not a valid date-time.`);
    return instant;
  };
  const from = bound('from');
  const to = bound('to');
  if (from && to && to.getTime() <= from.getTime()) {
    throw new HttpError(
      400,
      `querystring: to (${to.toISOString()}) must be later than from (${from.toISOString()}); ` +
        'the export takes events with from <= timestamp < to.',
    );
  }
  return { ...(from && { from }), ...(to && { to }) };
}
