import { TypeCompiler } from '@sinclair/typebox/compiler';
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors';
import type { TSchema } from '@sinclair/typebox';
import { IncomingEvent, ISO_DATE_TIME, type StoredEvent } from './events.js';

export interface IngestLimits {
  /** Largest serialized event accepted, in bytes. */
  maxEventBytes: number;
  /** How far past the receive time (after skew correction) an event may be. */
  maxFutureMs: number;
  /**
   * How far before the receive time an event may be: the retention of raw events.
   * Undefined when they are kept for ever.
   */
  maxAgeMs?: number;
}

export interface Rejection {
  index: number;
  errors: string[];
}

export interface NormalizedBatch {
  events: StoredEvent[];
  rejected: Rejection[];
}

const eventChecker = TypeCompiler.Compile(IncomingEvent);

/**
 * Human sentences for schema errors: "sessionId: is required", not "Expected
 * required property". `root` names the checked value itself ("event", "body").
 */
export function describeErrors(errors: Iterable<ValueError>, root = 'event'): string[] {
  const byPath = new Map<string, string>();
  for (const error of errors) {
    const field = error.path.replace(/^\//, '').replaceAll('/', '.') || root;
    if (byPath.has(field)) continue;
    const custom = (error.schema as TSchema & { errorMessage?: string }).errorMessage;
    let message: string;
    switch (error.type) {
      case ValueErrorType.ObjectRequiredProperty:
        message = 'is required';
        break;
      case ValueErrorType.ObjectAdditionalProperties:
        message = 'is not a known field';
        break;
      default:
        message = custom ?? error.message.replace(/^Expected/, 'must be');
    }
    byPath.set(field, `${field}: ${message}`);
  }
  return [...byPath.values()];
}

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})/;

/** Parses epoch ms or ISO-8601 into epoch ms (NaN if it is no real date); the schema has already checked the shape. */
export function parseTimestamp(value: number | string): number {
  if (typeof value === 'number') return value;
  if (!ISO_DATE_TIME.test(value)) return Number.NaN;
  // Date.parse rolls 2024-02-30 over to March 1st instead of refusing it.
  const [, year, month, day] = ISO_DATE.exec(value)!.map(Number) as [number, number, number, number];
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return Number.NaN;
  return Date.parse(value);
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/** Deeper JSON overflows the stack of JSON.stringify here and of Postgres' jsonb parser in the worker. */
export const MAX_EVENT_DEPTH = 32;

interface Node {
  value: unknown;
  depth: number;
  parent?: Node;
  key?: string | number;
}

/** Where a node is, as `properties.items[2].name`; only the first `levels` levels when given. */
function pathOf(node: Node, levels = Number.POSITIVE_INFINITY): string {
  let at: Node | undefined = node;
  while (at && at.depth > levels) at = at.parent;
  let path = '';
  for (; at?.parent; at = at.parent) {
    path = typeof at.key === 'number' ? `[${at.key}]${path}` : `.${printable(at.key!)}${path}`;
  }
  return path.replace(/^\./, '') || 'event';
}

/** Bad text is named in errors without being echoed as is. */
function printable(text: string): string {
  return text.slice(0, 40).replaceAll('\u0000', '\\0').toWellFormed();
}

function textProblem(text: string): string | undefined {
  if (text.includes('\u0000')) return 'contains a NUL character, which cannot be stored';
  if (!text.isWellFormed()) return 'contains an unpaired UTF-16 surrogate, which cannot be stored';
  return undefined;
}

/**
 * Refuses what Postgres cannot store (NUL characters, unpaired UTF-16 surrogates,
 * in values or field names) and nesting too deep to handle: such an event would
 * make its whole batch fail in the worker, so it must be refused here, alone.
 * Iterative, so no input can overflow the stack.
 */
function unstorable(event: object): string | undefined {
  const stack: Node[] = [{ value: event, depth: 0 }];
  while (stack.length > 0) {
    const node = stack.pop()!;
    const { value, depth } = node;
    if (typeof value === 'string') {
      const problem = textProblem(value);
      if (problem) return `${pathOf(node)}: ${problem}`;
      continue;
    }
    if (typeof value !== 'object' || value === null) continue;
    if (depth >= MAX_EVENT_DEPTH) return `${pathOf(node, 2)}: nests objects or arrays more than ${MAX_EVENT_DEPTH} levels deep`;
    if (Array.isArray(value)) {
      value.forEach((child, key) => stack.push({ value: child, depth: depth + 1, parent: node, key }));
      continue;
    }
    for (const [key, child] of Object.entries(value)) {
      const problem = textProblem(key);
      if (problem) return `${pathOf(node)}: the field name "${printable(key)}" ${problem}`;
      stack.push({ value: child, depth: depth + 1, parent: node, key });
    }
  }
  return undefined;
}

/**
 * One quick pass over an event, for the common case where all is well: -1 if
 * `unstorable` would find something (it then says what and where), else an upper
 * bound of the event's JSON size in UTF-8 bytes, so that the exact size (a
 * JSON.stringify of the event) is needed only when the bound passes the limit.
 * A UTF-16 unit never takes more than 6 bytes in JSON (`\u001f`); a number never
 * more than 24 characters. Recursive, but never deeper than MAX_EVENT_DEPTH + 1.
 */
function quickScan(value: unknown, depth: number): number {
  switch (typeof value) {
    case 'string':
      return value.includes('\u0000') || !value.isWellFormed() ? -1 : 6 * value.length + 2;
    case 'number':
      return 24;
    case 'boolean':
      return 5;
    case 'object': {
      if (value === null) return 4;
      if (depth >= MAX_EVENT_DEPTH) return -1;
      let bytes = 2;
      if (Array.isArray(value)) {
        for (const child of value) {
          const size = quickScan(child, depth + 1);
          if (size < 0) return -1;
          bytes += size + 1;
        }
        return bytes;
      }
      for (const key in value) {
        if (!Object.hasOwn(value, key)) continue;
        if (key.includes('\u0000') || !key.isWellFormed()) return -1;
        const size = quickScan((value as Record<string, unknown>)[key], depth + 1);
        if (size < 0) return -1;
        bytes += 6 * key.length + 4 + size;
      }
      return bytes;
    }
    default:
      return 0;
  }
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * Both times are checked against the past limits: the skew-corrected one is what
 * results count by, the client's own is what the row is partitioned (and so
 * dropped) by. Before 1970: no tracking client means it, and Postgres cannot store
 * the earliest dates JavaScript can, which would fail the whole batch in the worker.
 */
function timestampProblem(timestamp: number, clientTimestamp: number, receivedAt: number, limits: IngestLimits): string | undefined {
  if (!Number.isSafeInteger(clientTimestamp) || [clientTimestamp, timestamp].some((ms) => Number.isNaN(new Date(ms).getTime()))) {
    return 'timestamp: is not a valid date';
  }
  if (timestamp > receivedAt + limits.maxFutureMs) {
    return `timestamp: ${iso(timestamp)} is more than ${limits.maxFutureMs / 3_600_000} h in the future`;
  }
  /** The corrected or the client's time if it is before `limit`, named as such. */
  const before = (limit: number) => {
    if (timestamp < limit) return `timestamp: ${iso(timestamp)}`;
    if (clientTimestamp < limit) return `timestamp: ${iso(clientTimestamp)} as sent (before clock-skew correction)`;
    return undefined;
  };
  const prehistoric = before(0);
  if (prehistoric) return `${prehistoric} is before 1970-01-01T00:00:00.000Z`;
  if (limits.maxAgeMs !== undefined) {
    const tooOld = before(receivedAt - limits.maxAgeMs);
    if (tooOld) {
      return `${tooOld} is more than ${limits.maxAgeMs / 86_400_000} days in the past; events older than the retention period are not kept`;
    }
  }
  return undefined;
}

export function normalizeEvent(
  raw: unknown,
  receivedAt: number,
  skewMs: number,
  limits: IngestLimits,
): { event: StoredEvent } | { errors: string[] } {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { errors: ['event: must be a JSON object'] };
  }
  const bound = quickScan(raw, 0);
  if (bound < 0) return { errors: [unstorable(raw) ?? 'event: cannot be stored'] };
  if (bound > limits.maxEventBytes) {
    const bytes = Buffer.byteLength(JSON.stringify(raw));
    if (bytes > limits.maxEventBytes) {
      return { errors: [`event: is ${bytes} bytes, more than the limit of ${limits.maxEventBytes}`] };
    }
  }
  if (!eventChecker.Check(raw)) return { errors: describeErrors(eventChecker.Errors(raw)) };

  const errors: string[] = [];
  const legacyVariant = raw.properties?.variantKey;
  const variantKey =
    raw.variantKey ??
    (typeof legacyVariant === 'string' && legacyVariant.length > 0 && legacyVariant.length <= 128
      ? legacyVariant
      : undefined);
  if (raw.eventType === 'EXPOSURE') {
    if (raw.experimentId === undefined) errors.push('experimentId: is required for EXPOSURE');
    if (variantKey === undefined) errors.push('variantKey: is required for EXPOSURE');
  }
  if (raw.goal !== undefined && raw.eventType !== 'CONVERSION') {
    errors.push('goal: is only allowed on CONVERSION');
  }

  const clientTimestamp = parseTimestamp(raw.timestamp);
  const timestamp = clientTimestamp + skewMs;
  const timeProblem = timestampProblem(timestamp, clientTimestamp, receivedAt, limits);
  if (timeProblem) errors.push(timeProblem);
  if (errors.length > 0) return { errors };

  return {
    event: {
      eventId: raw.eventId,
      eventType: raw.eventType,
      sessionId: raw.sessionId,
      viewId: raw.viewId ?? null,
      experimentId: raw.experimentId ?? null,
      variantKey: raw.eventType === 'EXPOSURE' ? (variantKey ?? null) : (raw.variantKey ?? null),
      goal: raw.goal ?? null,
      properties: raw.properties ?? null,
      timestamp,
      clientTimestamp,
    },
  };
}

/**
 * Validates each event on its own and corrects client clock skew as the Segment
 * spec does: timestamp = receivedAt - (sentAt - clientTimestamp).
 */
export function normalizeBatch(
  events: unknown[],
  sentAt: number | string | undefined,
  receivedAt: number,
  limits: IngestLimits,
): NormalizedBatch {
  const result: NormalizedBatch = { events: [], rejected: [] };
  normalizeEach(events, sentAt, receivedAt, limits, {
    accept: (event) => result.events.push(event),
    reject: (rejection) => result.rejected.push(rejection),
  });
  return result;
}

/**
 * normalizeBatch one event at a time, in the batch's order: each valid event goes
 * to `accept` as soon as it is normalized, each refusal to `reject`, so that a
 * caller can encode an event and let it go before the next one is made.
 */
export function normalizeEach(
  events: unknown[],
  sentAt: number | string | undefined,
  receivedAt: number,
  limits: IngestLimits,
  to: { accept: (event: StoredEvent, index: number) => void; reject: (rejection: Rejection) => void },
): void {
  const sent = sentAt === undefined ? undefined : parseTimestamp(sentAt);
  const skewMs = sent === undefined || Number.isNaN(sent) ? 0 : receivedAt - sent;
  for (let index = 0; index < events.length; index++) {
    const outcome = normalizeEvent(events[index], receivedAt, skewMs, limits);
    if ('event' in outcome) to.accept(outcome.event, index);
    else to.reject({ index, errors: outcome.errors });
  }
}
