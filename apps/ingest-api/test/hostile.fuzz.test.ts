import { deflateSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_EVENT_DEPTH, type StoredEvent } from '@tally/contracts';
import { createProject, generateKey, insertEventRows, type ProjectKeys } from '@tally/db';
import { createFixture, type Fixture, type IngestApp } from './fixture.js';

/**
 * Thousands of hostile requests against the ingest API (in process, real Postgres
 * and Redis). Each request is generated with what it should get: every part of it
 * (key, content type, encoding, body, each event) is either fine or broken in one
 * known way, so the test knows the status a request deserves and, when it is
 * accepted, exactly which events must be queued. Whatever the request:
 *   - never a 5xx;
 *   - every 4xx has the refusal shape and a sentence that explains it;
 *   - the queue holds exactly the valid events of accepted batches, under the key's
 *     project, and nothing of any other; the worker's payload check and insert take
 *     them all;
 *   - the process answers a valid batch afterwards.
 * FUZZ_RUNS and FUZZ_SEED (printed on failure) replay or widen a run.
 */

const LIMITS = { MAX_BODY_BYTES: 16_384, MAX_EVENTS_PER_BATCH: 12, MAX_EVENT_BYTES: 2_048 };
const RUNS = Number(process.env.FUZZ_RUNS ?? 3_000);
const NOW = Date.now();
const HOUR = 3_600_000;

// ---------------------------------------------------------------- events

/** Stands for the eventId the test assigns when it sends the event, so that every event sent is unique. */
const ID = Symbol('eventId');
type Template = { [key: string]: unknown; eventId?: unknown };

const SQL_FRAGMENTS = [
  "'; DROP TABLE analytics_events; --",
  "' OR '1'='1",
  '1; SELECT pg_sleep(10)',
  '$1',
  '\\',
  '%_%',
  '"quoted"',
  "E'\\x41'",
  '); COPY analytics_events TO PROGRAM \'id\'; --',
  '\t\r\n',
];

/** Strings Postgres can store: anything but NUL and unpaired surrogates. */
const text = (maxLength: number) =>
  fc
    .oneof(
      { arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: Math.min(maxLength, 24) }), weight: 3 },
      { arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: Math.min(maxLength, 24) }), weight: 2 },
      { arbitrary: fc.constantFrom(...SQL_FRAGMENTS, '\u202Eevil', 'zero\u200Bwidth', '🧪🔬', 'ﷺ', 'a\u0301'), weight: 2 },
    )
    .filter((s) => s.length >= 1 && s.length <= maxLength && storable(s));

const timestamp = fc.oneof(
  fc.integer({ min: NOW - 5 * 24 * HOUR, max: NOW - HOUR }),
  fc.integer({ min: NOW - 5 * 24 * HOUR, max: NOW - HOUR }).map((ms) => new Date(ms).toISOString()),
  fc.integer({ min: NOW - 5 * 24 * HOUR, max: NOW - HOUR }).map((ms) => new Date(ms).toISOString().replace('Z', '+00:00').replace('T', 't')),
);

const properties = fc.dictionary(
  fc.oneof(text(40), fc.constantFrom('constructor', 'toString', 'hasOwnProperty', 'valueOf', 'path', 'SELECT')),
  fc.jsonValue({ maxDepth: 3, stringUnit: 'grapheme' }),
  { maxKeys: 5 },
);

const validEvent: fc.Arbitrary<Template> = fc.oneof(
  fc.record(
    {
      eventType: fc.constant('PAGEVIEW'),
      sessionId: text(256),
      viewId: text(256),
      properties,
      timestamp,
    },
    { requiredKeys: ['eventType', 'sessionId', 'timestamp'] },
  ),
  fc.record(
    {
      eventType: fc.constant('CONVERSION'),
      sessionId: text(256),
      goal: text(128),
      experimentId: text(128),
      properties,
      timestamp,
    },
    { requiredKeys: ['eventType', 'sessionId', 'timestamp'] },
  ),
  fc.record({ eventType: fc.constant('EXPOSURE'), sessionId: text(256), experimentId: text(128), variantKey: text(128), timestamp }),
  // A legacy client: the variant in properties.
  fc
    .record({ sessionId: text(256), experimentId: text(128), variantKey: text(128), extra: properties, timestamp })
    .map(({ variantKey, extra, ...rest }) => ({ ...rest, eventType: 'EXPOSURE', properties: { ...extra, variantKey } })),
).map((event) => ({ eventId: ID, ...event }));

const NUL = 'nul\u0000byte';
const LONE = 'lone\uD800surrogate';
const deep = (levels: number): unknown => (levels === 0 ? 'bottom' : levels % 2 ? [deep(levels - 1)] : { down: deep(levels - 1) });

/** One way of breaking an event that the API must refuse, on its own. */
const breakages: fc.Arbitrary<(event: Template) => unknown>[] = [
  fc.constant(({ sessionId: _, ...event }) => event),
  fc.constantFrom<unknown>('', 'x'.repeat(257), 42, null, ['s'], { s: 1 }).map((bad) => (event) => ({ ...event, sessionId: bad })),
  fc.constantFrom<unknown>('CLICK', 'pageview', '', null, 1, ['PAGEVIEW']).map((bad) => (event) => ({ ...event, eventType: bad })),
  fc.constant(({ variantKey: _, properties: __, ...event }) => ({ ...event, eventType: 'EXPOSURE', experimentId: 'e' })),
  fc.constant(({ experimentId: _, ...event }) => ({ ...event, eventType: 'EXPOSURE', variantKey: 'v' })),
  fc.constant(({ variantKey: _, ...event }) => ({ ...event, eventType: 'EXPOSURE', experimentId: 'e', properties: { variantKey: 'v'.repeat(129) } })),
  fc.constantFrom('PAGEVIEW', 'EXPOSURE').map((type) => (event) => ({ ...event, eventType: type, experimentId: 'e', variantKey: 'v', goal: 'g' })),
  fc.constantFrom('extra', 'toString', 'constructor', 'hasOwnProperty', 'user_id; DROP TABLE x', '\u{1F600}').map((field) => (event) => ({ ...event, [field]: 1 })),
  fc
    .constantFrom<unknown>('yesterday', '2024-02-30T00:00:00Z', '2024-01-01', '2024-01-01T00:00:00', -1, 1.5, 1e300, 8.64e15 + 1, NOW + 30 * 24 * HOUR, '1969-12-31T23:59:59Z', null, true, [])
    .map((bad) => (event) => ({ ...event, timestamp: bad })),
  fc.constant(({ timestamp: _, ...event }) => event),
  fc.constantFrom<unknown>('', 'i'.repeat(129), 7, null).map((bad) => (event) => ({ ...event, eventId: bad })),
  fc.constant(({ eventId: _, ...event }) => event),
  fc.constantFrom<unknown>([], 'props', 3, null, true).map((bad) => (event) => ({ ...event, properties: bad })),
  // What Postgres cannot store, anywhere in the event.
  fc
    .constantFrom('sessionId', 'viewId', 'experimentId', 'variantKey', 'goal', 'eventId')
    .chain((field) => fc.constantFrom(NUL, LONE).map((bad) => (event: Template) => ({ ...event, [field]: field === 'eventId' ? [ID, bad] : bad }))),
  fc.constantFrom(NUL, LONE).map((bad) => (event) => ({ ...event, properties: { nested: { list: [1, { [bad]: 'key' }] } } })),
  fc.constantFrom(NUL, LONE).map((bad) => (event) => ({ ...event, properties: { nested: [[bad]] } })),
  fc.integer({ min: MAX_EVENT_DEPTH, max: MAX_EVENT_DEPTH + 40 }).map((levels) => (event) => ({ ...event, properties: { deep: deep(levels) } })),
  fc.constant((event) => ({ ...event, properties: { padding: 'p'.repeat(LIMITS.MAX_EVENT_BYTES) } })),
  fc.constantFrom<unknown>(42, 'event', null, true, [], [{ eventType: 'PAGEVIEW' }]).map((bad) => () => bad),
];

interface SentEvent {
  /** The event as sent, the eventId placeholder still in it. */
  template: unknown;
  valid: boolean;
}

const sentEvent: fc.Arbitrary<SentEvent> = fc.oneof(
  { arbitrary: validEvent.map((template) => ({ template, valid: true })), weight: 3 },
  { arbitrary: fc.tuple(validEvent, fc.oneof(...breakages)).map(([event, breakIt]) => ({ template: breakIt(event), valid: false })), weight: 2 },
);

// ---------------------------------------------------------------- requests

type KeyChoice = { kind: 'A' | 'B'; header: (keys: Keys) => string } | { kind: 'refused'; header: (keys: Keys) => string | undefined };
interface Keys {
  a: ProjectKeys;
  b: ProjectKeys;
  unknown: string;
}

const keyChoice: fc.Arbitrary<KeyChoice> = fc.oneof(
  { arbitrary: fc.constantFrom<KeyChoice>(
      { kind: 'A', header: (k) => `Bearer ${k.a.writeKey}` },
      { kind: 'A', header: (k) => `bearer ${k.a.writeKey}` },
      { kind: 'A', header: (k) => `BEARER \t ${k.a.writeKey}  ` },
    ), weight: 8 },
  // Another project's write key: accepted, for that project.
  { arbitrary: fc.constant<KeyChoice>({ kind: 'B', header: (k) => `Bearer ${k.b.writeKey}` }), weight: 2 },
  {
    arbitrary: fc.constantFrom<KeyChoice>(
      { kind: 'refused', header: () => undefined },
      { kind: 'refused', header: () => 'Bearer' },
      { kind: 'refused', header: () => 'Bearer ' },
      { kind: 'refused', header: (k) => `Basic ${Buffer.from(`x:${k.a.writeKey}`).toString('base64')}` },
      { kind: 'refused', header: (k) => `Token ${k.a.writeKey}` },
      { kind: 'refused', header: (k) => `Bearer ${k.a.readKey}` },
      { kind: 'refused', header: (k) => `Bearer ${k.b.readKey}` },
      { kind: 'refused', header: (k) => `Bearer ${k.unknown}` },
      { kind: 'refused', header: (k) => `Bearer ${k.a.writeKey}x` },
      { kind: 'refused', header: (k) => `Bearer ${k.a.writeKey} ${k.a.writeKey}` },
      { kind: 'refused', header: (k) => `Bearer ${k.a.writeKey}, Bearer ${k.a.writeKey}` },
      { kind: 'refused', header: () => "Bearer tly_w_' OR '1'='1" },
      { kind: 'refused', header: () => 'Bearer tly_w_%00%27' },
      { kind: 'refused', header: () => `Bearer tly_w_${'a'.repeat(5_000)}` },
      { kind: 'refused', header: () => 'Bearer tly_w_caf\u00e9' },
    ),
    weight: 2,
  },
);

/** A part of the request that is fine (undefined) or the statuses it may cause. */
type Verdict = readonly number[] | undefined;

const contentType = fc.oneof(
  {
    arbitrary: fc.constantFrom(
      'application/json',
      'application/json; charset=utf-8',
      'application/JSON;charset=UTF-8',
      'APPLICATION/JSON',
    ).map((value) => ({ value: value as string | undefined, verdict: undefined as Verdict })),
    weight: 14,
  },
  {
    arbitrary: fc.constantFrom(
      undefined,
      '',
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/jsonx',
      'text/json',
      'application/xml',
      ';;;==',
      'application/vnd.api+json',
    ).map((value) => ({ value, verdict: [415] as Verdict })),
    weight: 1,
  },
  // Anything: it must not matter how wrong it is.
  { arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: 60 }).map((value) => ({ value: value as string | undefined, verdict: [415, 400, 413, 202] as Verdict })), weight: 1 },
);

type Encoding =
  | { kind: 'plain'; header?: string }
  | { kind: 'gzip' | 'deflate'; header: string }
  | { kind: 'refused'; header: string }
  | { kind: 'lying' | 'truncated' | 'garbage' | 'bomb'; header: string };
const encoding = fc.oneof(
  { arbitrary: fc.constantFrom<Encoding>({ kind: 'plain' }, { kind: 'plain', header: 'identity' }, { kind: 'plain', header: '' }), weight: 8 },
  { arbitrary: fc.constantFrom<Encoding>({ kind: 'gzip', header: 'gzip' }, { kind: 'gzip', header: 'x-gzip' }, { kind: 'gzip', header: 'GZIP' }, { kind: 'deflate', header: 'deflate' }), weight: 3 },
  { arbitrary: fc.constantFrom<Encoding>({ kind: 'refused', header: 'br' }, { kind: 'refused', header: 'gzip, gzip' }, { kind: 'refused', header: 'compress' }, { kind: 'refused', header: 'gzip;q=1' }), weight: 1 },
  { arbitrary: fc.constantFrom<Encoding>({ kind: 'lying', header: 'gzip' }, { kind: 'truncated', header: 'gzip' }, { kind: 'garbage', header: 'deflate' }, { kind: 'bomb', header: 'gzip' }), weight: 1 },
);
const ENCODING_VERDICT: Record<Encoding['kind'], Verdict> = {
  plain: undefined,
  gzip: undefined,
  deflate: undefined,
  refused: [415],
  lying: [400],
  truncated: [400, 413],
  garbage: [400],
  bomb: [413],
};

type Body =
  | { kind: 'batch'; events: SentEvent[]; sentAt?: unknown; bom: boolean }
  | { kind: 'envelope'; value: (events: unknown[]) => unknown; events: SentEvent[] }
  | { kind: 'poisoned'; events: SentEvent[]; where: 'envelope' | 'event' | 'constructor' }
  | { kind: 'malformed'; events: SentEvent[]; cut: number }
  | { kind: 'text'; text: string }
  | { kind: 'bytes'; bytes: Uint8Array }
  | { kind: 'nested'; levels: number; inEvents: boolean }
  | { kind: 'too-many'; events: SentEvent[] }
  | { kind: 'oversized'; events: SentEvent[] };

const events = fc.array(sentEvent, { minLength: 1, maxLength: LIMITS.MAX_EVENTS_PER_BATCH });
const body: fc.Arbitrary<Body> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant('batch' as const),
      events,
      sentAt: fc.option(fc.oneof(fc.integer({ min: NOW - 600_000, max: NOW + 600_000 }), fc.constant(new Date(NOW).toISOString())), { nil: undefined }),
      bom: fc.boolean().map((b) => b && Math.random() < 0.1),
    }),
    weight: 12,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('envelope' as const),
      events,
      value: fc.constantFrom<(events: unknown[]) => unknown>(
        (e) => ({ events: e, sentAt: 'yesterday' }),
        (e) => ({ events: e, sentAt: -5 }),
        (e) => ({ events: e, sentAt: { $gt: 0 } }),
        (e) => ({ events: e, extra: 1 }),
        (e) => ({ events: e, constructor: 1 }),
        () => ({ events: 'x' }),
        () => ({ events: {} }),
        () => ({ events: null }),
        () => ({ events: [] }),
        () => ({}),
        (e) => e,
        () => null,
        () => 42,
        () => 'events',
        () => [],
      ),
    }),
    weight: 2,
  },
  { arbitrary: fc.record({ kind: fc.constant('poisoned' as const), events, where: fc.constantFrom('envelope', 'event', 'constructor') as fc.Arbitrary<'envelope' | 'event' | 'constructor'> }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('malformed' as const), events, cut: fc.double({ min: 0, max: 0.999, noNaN: true }) }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('text' as const), text: fc.string({ unit: 'binary', maxLength: 200 }) }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('bytes' as const), bytes: fc.uint8Array({ maxLength: 300 }) }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('nested' as const), levels: fc.integer({ min: 1, max: 12_000 }), inEvents: fc.boolean() }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('too-many' as const), events: fc.array(sentEvent, { minLength: LIMITS.MAX_EVENTS_PER_BATCH + 1, maxLength: LIMITS.MAX_EVENTS_PER_BATCH + 4 }) }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('oversized' as const), events }), weight: 1 },
);

/** Headers that change nothing, and a few that should. */
const headerNoise = fc.oneof(
  { arbitrary: fc.constant({ headers: {} as Record<string, string>, verdict: undefined as Verdict }), weight: 6 },
  {
    arbitrary: fc.constantFrom<Record<string, string>>(
      { origin: 'https://evil.example', 'x-forwarded-for': '127.0.0.1, ::1, garbage' },
      { accept: 'text/html', 'user-agent': 'x'.repeat(4_000) },
      { cookie: 'session=1; __proto__=x', 'x-http-method-override': 'DELETE' },
      { 'content-length': 'abc' },
      { 'accept-encoding': 'br', host: 'localhost:1' },
    ).map((headers) => ({ headers, verdict: undefined as Verdict })),
    weight: 2,
  },
  // Content-Length that does not match the body.
  { arbitrary: fc.constantFrom(1, -1, 100).map((delta) => ({ headers: { __lengthDelta: String(delta) } as Record<string, string>, verdict: [400, 413] as Verdict })), weight: 1 },
);

const target = fc.oneof(
  { arbitrary: fc.constant({ method: 'POST', url: '/v1/batch', verdict: undefined as Verdict }), weight: 20 },
  // Same route, a query string it ignores.
  { arbitrary: fc.constantFrom('/v1/batch?__proto__[x]=1', '/v1/batch?constructor[prototype][y]=1&a=%00', '/v1/batch?').map((url) => ({ method: 'POST', url, verdict: undefined as Verdict })), weight: 1 },
  {
    arbitrary: fc.constantFrom(
      { method: 'POST', url: '/v1/batch/' },
      { method: 'POST', url: '/V1/BATCH' },
      { method: 'POST', url: '/v1/batch%00' },
      { method: 'POST', url: '/%' },
      { method: 'POST', url: '/v1/%E0%A4%A' },
      { method: 'GET', url: '/v1/batch' },
      { method: 'PUT', url: '/v1/batch' },
      { method: 'DELETE', url: '/v1/batch' },
      // Fastify reads (and may refuse) the body even where no route is.
    ).map((t) => ({ ...t, verdict: [400, 404, 413, 415] as Verdict })),
    weight: 1,
  },
);

const hostileRequest = fc.record({ target, key: keyChoice, contentType, encoding, body, noise: headerNoise });
type HostileRequest = typeof hostileRequest extends fc.Arbitrary<infer T> ? T : never;

// ---------------------------------------------------------------- what a request deserves

function storable(value: unknown, depth = 0): boolean {
  if (typeof value === 'string') return !value.includes('\u0000') && value.isWellFormed();
  if (typeof value !== 'object' || value === null) return true;
  if (depth >= MAX_EVENT_DEPTH) return false;
  return Object.entries(value).every(([key, child]) => storable(key) && storable(child, depth + 1));
}

/** What secure-json-parse refuses: a `__proto__` key, or a `constructor` object with a `prototype` key. */
function poisoned(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if (Object.hasOwn(value, '__proto__')) return true;
  const ctor = (value as Record<string, unknown>).constructor;
  if (Object.hasOwn(value, 'constructor') && typeof ctor === 'object' && ctor !== null && Object.hasOwn(ctor, 'prototype')) return true;
  return Object.values(value).some(poisoned);
}

let sequence = 0;

/** The template with its placeholders replaced by fresh ids: `ok-…` for valid events, `rej-…` for the others. */
function materialize(value: unknown, label: string): unknown {
  if (value === ID) return `${label}-${++sequence}-${NOW.toString(36)}`;
  if (Array.isArray(value)) {
    if (value[0] === ID && value.length === 2) return `${label}-${++sequence}${String(value[1])}`;
    return value.map((child) => materialize(child, label));
  }
  if (typeof value !== 'object' || value === null) return value;
  // Object.entries/fromEntries keep a `__proto__` key as an own property.
  return Object.fromEntries(Object.entries(value).map(([key, child]) => [key, materialize(child, label)]));
}

interface Expectation {
  statuses: readonly number[];
  /** For a 202: the project, and the events it must have queued, in order. */
  project?: 'A' | 'B';
  accepted?: Record<string, unknown>[];
  rejectedIndexes?: number[];
  /** The reason a refusal must give. */
  message?: RegExp;
  /** Only the body decides: its message and rejections are known. */
  exact?: boolean;
}

interface Prepared {
  inject: { method: string; url: string; headers: Record<string, string>; payload: Buffer };
  expectation: Expectation;
  /** Valid events sent in this request (queued only if it is accepted). */
  sentValid: Record<string, unknown>[];
  /** Sent to POST /v1/batch, whose refusals have the batch response's shape. */
  onRoute: boolean;
}

const jsonBytes = (value: unknown) => Buffer.from(JSON.stringify(value));

function prepare(request: HostileRequest, keys: Keys): Prepared {
  const { target, key, contentType, encoding, body, noise } = request;
  let sentValid: Record<string, unknown>[] = [];
  const materialized = (list: SentEvent[]) =>
    list.map(({ template, valid }) => {
      const event = materialize(template, valid ? 'ok' : 'rej');
      const fits = valid && Buffer.byteLength(JSON.stringify(event)) <= LIMITS.MAX_EVENT_BYTES;
      return { event, valid: fits };
    });

  // The body, and the outcome it deserves when everything else about the request is fine.
  let payload: Buffer;
  let clean: Expectation;
  switch (body.kind) {
    case 'batch':
    case 'too-many':
    case 'oversized': {
      const list = materialized(body.events);
      const envelope: Record<string, unknown> = { events: list.map((e) => e.event) };
      if (body.kind === 'batch' && body.sentAt !== undefined) envelope.sentAt = body.sentAt;
      if (body.kind === 'oversized') envelope.events = [...(envelope.events as unknown[]), { padding: 'p'.repeat(LIMITS.MAX_BODY_BYTES) }];
      payload = Buffer.from((body.kind === 'batch' && body.bom ? '\uFEFF' : '') + JSON.stringify(envelope));
      const accepted = list.filter((e) => e.valid).map((e) => e.event as Record<string, unknown>);
      sentValid = accepted;
      if (payload.length > LIMITS.MAX_BODY_BYTES) clean = { statuses: [413] };
      else if (poisoned(envelope)) clean = { statuses: [400], message: /"__proto__" key/ };
      else if (list.length > LIMITS.MAX_EVENTS_PER_BATCH) clean = { statuses: [413], message: /at most 12 are accepted/ };
      else if (accepted.length === 0) clean = { statuses: [400], rejectedIndexes: list.map((_, i) => i), message: /nothing was accepted/ };
      else {
        clean = {
          statuses: [202],
          accepted,
          rejectedIndexes: list.flatMap((e, i) => (e.valid ? [] : [i])),
        };
      }
      break;
    }
    case 'envelope': {
      const value = body.value(materialized(body.events).map((e) => e.event));
      payload = jsonBytes(value);
      clean = { statuses: payload.length > LIMITS.MAX_BODY_BYTES ? [413] : [400], message: /not a valid batch|"__proto__" key/ };
      break;
    }
    case 'poisoned': {
      const list = materialized(body.events).map((e) => e.event);
      const text = JSON.stringify({ events: list });
      const poison =
        body.where === 'envelope'
          ? text.replace(/^\{/, '{"__proto__":{"isAdmin":true},')
          : body.where === 'event'
            ? text.replace(/^\{"events":\[/, '{"events":[{"eventId":"rej-proto","eventType":"PAGEVIEW","sessionId":"s","timestamp":1,"properties":{"__proto__":{"polluted":1}}},')
            : text.replace(/^\{"events":\[/, '{"events":[{"eventId":"rej-ctor","eventType":"PAGEVIEW","sessionId":"s","timestamp":1,"properties":{"constructor":{"prototype":{"polluted":1}}}},');
      payload = Buffer.from(poison);
      clean = { statuses: payload.length > LIMITS.MAX_BODY_BYTES ? [413] : [400], message: /"__proto__" key/ };
      break;
    }
    case 'malformed': {
      const text = JSON.stringify({ events: materialized(body.events).map((e) => e.event) });
      payload = Buffer.from(text.slice(0, Math.floor(body.cut * text.length)));
      clean = { statuses: payload.length > LIMITS.MAX_BODY_BYTES ? [413] : [400], message: /not valid JSON|empty/ };
      break;
    }
    case 'text':
      payload = Buffer.from(body.text);
      clean = { statuses: [400] };
      break;
    case 'bytes':
      payload = Buffer.from(body.bytes);
      clean = { statuses: [400] };
      break;
    case 'nested': {
      const nested = `${'['.repeat(body.levels)}${']'.repeat(body.levels)}`;
      payload = Buffer.from(body.inEvents ? `{"events":[${nested}]}` : nested);
      clean = { statuses: payload.length > LIMITS.MAX_BODY_BYTES ? [413] : [400] };
      break;
    }
  }

  // Encoding.
  let wire = payload;
  switch (encoding.kind) {
    case 'gzip':
      wire = gzipSync(payload);
      break;
    case 'deflate':
      wire = deflateSync(payload);
      break;
    case 'truncated':
      wire = gzipSync(payload).subarray(0, Math.max(1, Math.floor(gzipSync(payload).length / 2)));
      break;
    case 'garbage':
      wire = Buffer.concat([Buffer.from([0x78, 0x9c, 0xff, 0x00]), payload]);
      break;
    case 'bomb':
      wire = gzipSync(Buffer.alloc(LIMITS.MAX_BODY_BYTES * 4, ' '));
      break;
  }
  let encodingVerdict = ENCODING_VERDICT[encoding.kind];
  if (wire.length > LIMITS.MAX_BODY_BYTES) encodingVerdict = [...(encodingVerdict ?? []), 413];
  // A lying header over an empty body: nothing to inflate, so an empty body.
  if (encoding.kind === 'lying' && payload.length === 0) encodingVerdict = [400];

  const headers: Record<string, string> = {};
  const authorization = key.header(keys);
  if (authorization !== undefined) headers.authorization = authorization;
  if (contentType.value !== undefined) headers['content-type'] = contentType.value;
  if (encoding.header !== undefined) headers['content-encoding'] = encoding.header;
  for (const [name, value] of Object.entries(noise.headers)) {
    if (name === '__lengthDelta') headers['content-length'] = String(Math.max(0, wire.length + Number(value)));
    else headers[name] = value;
  }
  // Content-Length 0 with an empty body matches; with a body of 1 byte and delta -1 the body is cut to nothing.
  let noiseVerdict = noise.verdict;
  if (headers['content-length'] === String(wire.length)) noiseVerdict = undefined;

  // What the request as a whole deserves.
  const onRoute = target.verdict === undefined;
  let expectation: Expectation;
  if (!onRoute) {
    expectation = { statuses: target.verdict! };
  } else if (key.kind === 'refused') {
    // The key is checked before the body is read, whatever the body.
    expectation = { statuses: [401] };
  } else {
    // Without a body there is nothing to parse: Fastify skips the content type and the envelope check says the body is missing.
    const typeVerdict = contentType.verdict && wire.length === 0 ? [...contentType.verdict, 400] : contentType.verdict;
    const broken = [typeVerdict, encodingVerdict, noiseVerdict].filter((v): v is readonly number[] => v !== undefined);
    if (broken.length === 0) {
      expectation = { ...clean, project: key.kind, exact: true };
    } else {
      // One or more broken parts: any of their statuses, or the body's own refusal (the order
      // Fastify checks them in is its own); a part that "may be fine" (202) lets a 202 through.
      const statuses = new Set(broken.flat());
      const mayBeFine = statuses.has(202);
      for (const status of clean.statuses) if (status !== 202 || mayBeFine) statuses.add(status);
      if (!mayBeFine) statuses.delete(202);
      expectation = { statuses: [...statuses], project: key.kind, accepted: clean.accepted, rejectedIndexes: clean.rejectedIndexes };
    }
  }
  return { inject: { method: target.method, url: target.url, headers, payload: wire }, expectation, sentValid, onRoute };
}

// ---------------------------------------------------------------- the test

describe('the ingest API under thousands of hostile requests', () => {
  let fixture: Fixture;
  let app: IngestApp;
  let keys: Keys;
  /** eventId → project and event, for every event a 202 accepted. */
  const accepted = new Map<string, { project: 'A' | 'B'; event: Record<string, unknown> }>();
  /** eventIds of valid events in requests that were refused. */
  const refusedValid = new Set<string>();
  const statuses = new Map<number, number>();

  beforeAll(async () => {
    fixture = await createFixture();
    keys = { a: fixture.keys, b: await createProject(fixture.database.db, 'foreign'), unknown: generateKey('write') };
    app = await fixture.build({ QUEUE_PREFIX: fixture.prefix.prefix, ...LIMITS });
  });
  afterAll(() => fixture?.cleanup());

  it('never answers 5xx, explains every 4xx, and accepts exactly the valid events', async () => {
    await fc.assert(
      fc.asyncProperty(hostileRequest, async (request) => {
        const { inject, expectation, sentValid, onRoute } = prepare(request, keys);
        const response = await app.inject({ ...inject, method: inject.method as 'POST' });
        const status = response.statusCode;
        statuses.set(status, (statuses.get(status) ?? 0) + 1);

        expect(status, response.body).toBeLessThan(500);
        expect(expectation.statuses, `status ${status}: ${response.body.slice(0, 300)}`).toContain(status);
        const answer = response.json();
        expect(response.body).not.toMatch(/\n\s+at |node_modules|\.ts:\d+|Internal error/);

        if (status === 202) {
          expect(answer).toEqual({ accepted: expectation.accepted!.length, rejected: expect.any(Array) });
          expect(answer.rejected.map((r: { index: number }) => r.index)).toEqual(expectation.rejectedIndexes);
          for (const rejection of answer.rejected as { errors: string[] }[]) {
            expect(rejection.errors.length).toBeGreaterThan(0);
            for (const error of rejection.errors) expect(error).toMatch(/^.+: .{5,}/s);
          }
          for (const event of expectation.accepted!) accepted.set(event.eventId as string, { project: expectation.project!, event });
          return;
        }
        for (const event of sentValid) refusedValid.add(event.eventId as string);
        expect(answer).toMatchObject({ statusCode: status, error: expect.any(String), message: expect.any(String) });
        expect(answer.error.length).toBeGreaterThan(2);
        expect(answer.message.length).toBeGreaterThan(10);
        if (onRoute) {
          expect(answer.accepted).toBe(0);
          expect(Array.isArray(answer.rejected)).toBe(true);
          if (expectation.exact && expectation.message) expect(answer.message).toMatch(expectation.message);
          if (expectation.exact && status === 400 && expectation.rejectedIndexes) {
            expect(answer.rejected.map((r: { index: number }) => r.index)).toEqual(expectation.rejectedIndexes);
          }
        }
      }),
      { numRuns: RUNS, seed: process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined },
    );
    // The run covered every kind of answer.
    for (const status of [202, 400, 401, 404, 413, 415]) expect(statuses.get(status) ?? 0, `${status} answers`).toBeGreaterThan(0);
  }, 180_000);

  it('queued exactly the accepted events, under the key’s project, and nothing of a rejected event', async () => {
    const jobs = await fixture.jobs();
    const projectIds = { A: keys.a.projectId, B: keys.b.projectId };
    const queued = new Map<string, StoredEvent>();
    for (const job of jobs) {
      const batch = await fixture.batchOf(job);
      for (const event of batch.events) {
        expect(event.eventId).toMatch(/^ok-/);
        expect(refusedValid.has(event.eventId)).toBe(false);
        const sent = accepted.get(event.eventId);
        expect(sent, `queued event ${event.eventId} was never accepted`).toBeDefined();
        expect(batch.projectId).toBe(projectIds[sent!.project]);
        expect(queued.has(event.eventId)).toBe(false);
        queued.set(event.eventId, event);
      }
    }
    expect(queued.size).toBe(accepted.size);
    // Stored as sent: the hostile strings and property keys unchanged.
    for (const [eventId, { event }] of accepted) {
      const stored = queued.get(eventId)!;
      const legacyVariant = (event.properties as Record<string, unknown> | undefined)?.variantKey;
      expect(stored).toMatchObject({
        eventType: event.eventType,
        sessionId: event.sessionId,
        viewId: event.viewId ?? null,
        experimentId: event.experimentId ?? null,
        variantKey: event.variantKey ?? (event.eventType === 'EXPOSURE' ? legacyVariant : null) ?? null,
        goal: event.goal ?? null,
        properties: event.properties === undefined ? null : JSON.parse(JSON.stringify(event.properties)),
        clientTimestamp: typeof event.timestamp === 'number' ? event.timestamp : Date.parse(event.timestamp as string),
      });
    }
  });

  it('leaves nothing the worker would refuse: every queued batch inserts, and only the accepted events are stored', async () => {
    // Their rows, as the worker stores them.
    for (const job of await fixture.jobs()) {
      const { rows, count } = await fixture.batchOf(job);
      await insertEventRows(fixture.database.db, rows, count);
    }
    const { rows } = await fixture.database.db.$client.query<{ event_id: string }>('SELECT event_id FROM analytics_events');
    expect(rows.length).toBe(accepted.size);
    expect(new Set(rows.map((row) => row.event_id))).toEqual(new Set(accepted.keys()));
    expect(rows.filter((row) => row.event_id.startsWith('rej-'))).toEqual([]);
  });

  it('is still up and takes a valid batch', async () => {
    expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
    const response = await app.inject({
      method: 'POST',
      url: '/v1/batch',
      headers: { authorization: `Bearer ${keys.a.writeKey}`, 'content-type': 'application/json' },
      payload: { events: [{ eventId: 'final', eventType: 'PAGEVIEW', sessionId: 's', timestamp: NOW - HOUR }] },
    });
    expect(response.statusCode).toBe(202);
    expect(response.json()).toEqual({ accepted: 1, rejected: [] });
  });
});
