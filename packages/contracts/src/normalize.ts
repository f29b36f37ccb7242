import { TypeCompiler } from '@sinclair/typebox/compiler';
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors';
import type { TSchema } from '@sinclair/typebox';
import { IncomingEvent, ISO_DATE_TIME, type StoredEvent } from './events.js';

export interface IngestLimits {
  /** Largest serialized event accepted, in bytes. */
  maxEventBytes: number;
  /** How far past the receive time (after skew correction) an event may be. */
  maxFutureMs: number;
  /** Events before this instant (epoch ms) are refused, e.g. older than retention. */
  oldestTimestampMs?: number;
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

/** Human sentences for schema errors: "sessionId: is required", not "Expected required property". */
export function describeErrors(errors: Iterable<ValueError>): string[] {
  const byPath = new Map<string, string>();
  for (const error of errors) {
    const field = error.path.replace(/^\//, '').replaceAll('/', '.') || 'event';
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

/** Parses epoch ms or ISO-8601 into epoch ms; the schema has already checked the shape. */
export function parseTimestamp(value: number | string): number {
  if (typeof value === 'number') return value;
  return ISO_DATE_TIME.test(value) ? Date.parse(value) : Number.NaN;
}

/**
 * Serializes once, measuring the size and refusing text Postgres cannot store
 * (NUL characters, unpaired UTF-16 surrogates): such an event would make its whole
 * batch fail in the worker, so it must be refused here, alone.
 */
function unstorableText(event: object): { bytes: number; problem?: string } {
  let problem: string | undefined;
  const check = (text: string, where: string) => {
    if (problem) return;
    if (text.includes('\u0000')) problem = `${where} contains a NUL character, which cannot be stored`;
    else if (!text.isWellFormed()) problem = `${where} contains an unpaired UTF-16 surrogate, which cannot be stored`;
  };
  const json = JSON.stringify(event, (key, value) => {
    check(key, `field name "${key.slice(0, 40)}"`);
    if (typeof value === 'string') check(value, key ? `${key}` : 'a value');
    return value;
  });
  return problem ? { bytes: Buffer.byteLength(json), problem } : { bytes: Buffer.byteLength(json) };
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
  const { bytes, problem } = unstorableText(raw);
  if (bytes > limits.maxEventBytes) {
    return { errors: [`event: is ${bytes} bytes, more than the limit of ${limits.maxEventBytes}`] };
  }
  if (problem) return { errors: [problem] };
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
  if (!Number.isSafeInteger(clientTimestamp) || Number.isNaN(new Date(timestamp).getTime())) {
    errors.push('timestamp: is not a valid date');
  } else if (timestamp > receivedAt + limits.maxFutureMs) {
    errors.push(
      `timestamp: ${new Date(timestamp).toISOString()} is more than ${limits.maxFutureMs / 3_600_000} h in the future`,
    );
  } else if (limits.oldestTimestampMs !== undefined && timestamp < limits.oldestTimestampMs) {
    errors.push(
      `timestamp: ${new Date(timestamp).toISOString()} is older than the oldest accepted, ${new Date(limits.oldestTimestampMs).toISOString()}`,
    );
  }
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
  const sent = sentAt === undefined ? undefined : parseTimestamp(sentAt);
  const skewMs = sent === undefined || Number.isNaN(sent) ? 0 : receivedAt - sent;
  const result: NormalizedBatch = { events: [], rejected: [] };
  events.forEach((raw, index) => {
    const outcome = normalizeEvent(raw, receivedAt, skewMs, limits);
    if ('event' in outcome) result.events.push(outcome.event);
    else result.rejected.push({ index, errors: outcome.errors });
  });
  return result;
}
