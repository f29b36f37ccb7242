import { EVENT_TYPES, normalizeEvent, type EventType, type IngestLimits, type StoredEvent } from '@tally/contracts';
import { MILLISECONDS_FROM, type LegacyRow, type LegacyTimestampStats } from '@tally/db';

/**
 * From a legacy row to the event Tally stores: the same event a legacy client
 * would have posted to the ingest API, checked by the ingest API's own
 * `normalizeEvent`, so an import stores exactly what ingest would have.
 */

export type TimestampUnit = 's' | 'ms';

export const UNIT_NAMES: Record<TimestampUnit, string> = { s: 'epoch seconds', ms: 'epoch milliseconds' };

export type UnitDetection =
  | { unit: TimestampUnit }
  /** No row has a whole-number timestamp: no unit to find, and none needed. */
  | { unit: undefined }
  | { mixed: { seconds: number; milliseconds: number } };

/** The unit of the timestamp column, from the magnitude of its values (see MILLISECONDS_FROM). */
export function detectUnit(stats: LegacyTimestampStats): UnitDetection {
  if (stats.secondsLike > 0 && stats.millisecondsLike > 0) {
    return { mixed: { seconds: stats.secondsLike, milliseconds: stats.millisecondsLike } };
  }
  if (stats.millisecondsLike > 0) return { unit: 'ms' };
  if (stats.secondsLike > 0) return { unit: 's' };
  return { unit: undefined };
}

/** The earliest and latest event time under a unit, as ISO strings (null when no row fits the unit). */
export function timeRange(stats: LegacyTimestampStats, unit: TimestampUnit): { from: string | null; to: string | null } {
  const { min, max } = unit === 's' ? stats.seconds : stats.milliseconds;
  const iso = (value: number | null) => (value === null ? null : safeIso(unit === 's' ? value * 1000 : value));
  return { from: iso(min), to: iso(max) };
}

function safeIso(ms: number): string | null {
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

/** Why rows are skipped, in words; `invalid-<field>` reasons are made from the ingest API's error on that field. */
export const SKIP_REASONS: Record<string, string> = {
  'event-type': 'eventType is not EXPOSURE, PAGEVIEW or CONVERSION',
  'exposure-without-experiment': 'EXPOSURE without experimentId',
  'exposure-without-variant': 'EXPOSURE without variantKey (neither the column nor properties.variantKey)',
  'project-missing': 'projectId is empty',
  timestamp: 'timestamp missing, not a whole number, or not a date',
  'timestamp-other-unit': 'timestamp in the other unit than the one used (the table mixes seconds and milliseconds)',
  'timestamp-in-future': 'timestamp more than 24 h in the future',
  'timestamp-too-old': 'timestamp older than the retention the worker applies (RETENTION_DAYS)',
  'properties-invalid': 'properties is not a JSON object',
};

export function describeSkipReason(reason: string): string {
  const known = SKIP_REASONS[reason];
  if (known !== undefined) return known;
  const field = reason.replace(/^invalid-/, '');
  return field === 'event' ? 'event too large or too deeply nested to store' : `${field} cannot be stored`;
}

export interface MapOptions {
  unit: TimestampUnit;
  /** The key of `properties` that names a CONVERSION's goal (the legacy schema has no goal column). */
  goalProperty: string;
  /** Now, in epoch ms: timestamps are checked against it as the ingest API does. */
  now: number;
  limits: IngestLimits;
}

export type MappedRow = { event: StoredEvent } | { skip: string; detail: string };

/** The ingest API's limit on an identifier (events.ts), which a goal taken from properties must respect too. */
const MAX_ID_LENGTH = 128;
const WHOLE_NUMBER = /^[0-9]{1,18}$/;

export function mapLegacyRow(row: LegacyRow, options: MapOptions): MappedRow {
  const eventType = row.eventType?.trim().toUpperCase();
  if (!EVENT_TYPES.includes(eventType as EventType)) {
    return { skip: 'event-type', detail: `eventType ${JSON.stringify(row.eventType)}` };
  }

  if (row.timestamp === null || !WHOLE_NUMBER.test(row.timestamp)) {
    return { skip: 'timestamp', detail: `timestamp ${JSON.stringify(row.timestamp)}` };
  }
  const value = Number(row.timestamp);
  // A value of the other magnitude is not a time in this unit: read as seconds, a
  // millisecond value lands thousands of years ahead; read as milliseconds, a
  // second value lands in January 1970.
  if ((options.unit === 's') !== (value < MILLISECONDS_FROM)) {
    return { skip: 'timestamp-other-unit', detail: `timestamp ${row.timestamp}` };
  }
  const timestamp = options.unit === 's' ? value * 1000 : value;

  let properties = row.properties;
  if (typeof properties === 'string') {
    try {
      properties = JSON.parse(properties) as unknown;
    } catch {
      return { skip: 'properties-invalid', detail: 'properties is not JSON' };
    }
  }
  if (properties !== null && properties !== undefined && (typeof properties !== 'object' || Array.isArray(properties))) {
    return { skip: 'properties-invalid', detail: `properties is ${Array.isArray(properties) ? 'an array' : typeof properties}` };
  }
  const props = (properties ?? undefined) as Record<string, unknown> | undefined;

  // Legacy rows leave optional columns empty as often as NULL; both mean "none".
  const experimentId = present(row.experimentId);
  const variantKey = present(row.variantKey);
  if (eventType === 'EXPOSURE') {
    if (experimentId === undefined) return { skip: 'exposure-without-experiment', detail: 'experimentId is empty' };
    // normalizeEvent falls back on properties.variantKey as it does for legacy clients.
    if (variantKey === undefined && !isId(props?.variantKey)) {
      return { skip: 'exposure-without-variant', detail: 'no variantKey column value and no usable properties.variantKey' };
    }
  }
  const goal = eventType === 'CONVERSION' && isId(props?.[options.goalProperty]) ? (props![options.goalProperty] as string) : undefined;

  // The event a legacy client would post: absent fields are left out, not undefined.
  const incoming: Record<string, unknown> = { eventId: row.id, eventType, timestamp };
  if (row.sessionId !== null) incoming.sessionId = row.sessionId;
  const viewId = present(row.viewId);
  if (viewId !== undefined) incoming.viewId = viewId;
  if (experimentId !== undefined) incoming.experimentId = experimentId;
  if (variantKey !== undefined) incoming.variantKey = variantKey;
  if (goal !== undefined) incoming.goal = goal;
  if (props !== undefined) incoming.properties = props;

  // No clock-skew correction: the legacy times are all there is.
  const outcome = normalizeEvent(incoming, options.now, 0, options.limits);
  if ('event' in outcome) return outcome;
  const first = outcome.errors[0] ?? 'event: is not valid';
  return { skip: reasonOf(first), detail: first };
}

/** A stable reason from the ingest API's first error, e.g. "sessionId: is required" → invalid-sessionId. */
function reasonOf(error: string): string {
  const field = error.split(':')[0]!.split(/[.[]/)[0]!;
  if (field === 'timestamp') return /in the future/.test(error) ? 'timestamp-in-future' : /older than/.test(error) ? 'timestamp-too-old' : 'timestamp';
  return `invalid-${field}`;
}

function present(value: string | null): string | undefined {
  return value === null || value === '' ? undefined : value;
}

function isId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_ID_LENGTH;
}
