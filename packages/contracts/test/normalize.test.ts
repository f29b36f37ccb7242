import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_EVENT_DEPTH, normalizeBatch, normalizeEvent, parseTimestamp, type IngestLimits } from '../src/index.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const limits: IngestLimits = { maxEventBytes: 65_536, maxFutureMs: 24 * HOUR };
const receivedAt = Date.UTC(2024, 10, 25, 12, 0, 0);

const pageview = { eventId: 'e-1', eventType: 'PAGEVIEW', sessionId: 's-1', timestamp: receivedAt - 1_000 };
const exposure = { ...pageview, eventType: 'EXPOSURE', experimentId: 'checkout-button', variantKey: 'treatment' };

/** The errors of one event, or [] when it is accepted. */
function errorsOf(event: unknown, options: { sentAt?: number | string; limits?: IngestLimits } = {}): string[] {
  const { rejected } = normalizeBatch([event], options.sentAt, receivedAt, options.limits ?? limits);
  return rejected[0]?.errors ?? [];
}

function accepted(event: unknown, sentAt?: number | string) {
  const { events, rejected } = normalizeBatch([event], sentAt, receivedAt, limits);
  expect(rejected).toEqual([]);
  return events[0]!;
}

describe('event validation', () => {
  it('stores a valid pageview with every optional field null', () => {
    expect(accepted(pageview)).toEqual({
      eventId: 'e-1',
      eventType: 'PAGEVIEW',
      sessionId: 's-1',
      viewId: null,
      experimentId: null,
      variantKey: null,
      goal: null,
      properties: null,
      timestamp: receivedAt - 1_000,
      clientTimestamp: receivedAt - 1_000,
    });
  });

  it.each(['eventId', 'eventType', 'sessionId', 'timestamp'])('requires %s', (field) => {
    const { [field as keyof typeof pageview]: _removed, ...event } = pageview;
    expect(errorsOf(event)).toEqual([`${field}: is required`]);
  });

  it('names every missing field at once', () => {
    expect(errorsOf({})).toEqual(['eventId: is required', 'eventType: is required', 'sessionId: is required', 'timestamp: is required']);
  });

  it('refuses empty and overlong identifiers', () => {
    expect(errorsOf({ ...pageview, eventId: '' })).toEqual(['eventId: must be a string of 1 to 128 characters']);
    expect(errorsOf({ ...pageview, sessionId: 's'.repeat(257) })).toEqual(['sessionId: must be a string of 1 to 256 characters']);
    expect(errorsOf({ ...pageview, sessionId: 42 })).toEqual(['sessionId: must be a string of 1 to 256 characters']);
  });

  it('refuses an unknown event type, naming the known ones', () => {
    expect(errorsOf({ ...pageview, eventType: 'CLICK' })).toEqual(['eventType: must be one of PAGEVIEW, EXPOSURE, CONVERSION']);
  });

  it('requires experimentId and variantKey on an EXPOSURE', () => {
    expect(accepted(exposure)).toMatchObject({ experimentId: 'checkout-button', variantKey: 'treatment' });
    const { experimentId: _e, variantKey: _v, ...bare } = exposure;
    expect(errorsOf(bare)).toEqual(['experimentId: is required for EXPOSURE', 'variantKey: is required for EXPOSURE']);
    expect(errorsOf({ ...exposure, experimentId: undefined })).toEqual(['experimentId: is required for EXPOSURE']);
  });

  it('takes the variant of a legacy exposure from properties.variantKey', () => {
    const { variantKey: _v, ...legacy } = exposure;
    expect(accepted({ ...legacy, properties: { variantKey: 'control' } })).toMatchObject({
      variantKey: 'control',
      properties: { variantKey: 'control' },
    });
    // The field wins over the legacy property.
    expect(accepted({ ...exposure, properties: { variantKey: 'control' } }).variantKey).toBe('treatment');
    expect(errorsOf({ ...legacy, properties: { variantKey: 7 } })).toEqual(['variantKey: is required for EXPOSURE']);
  });

  it('allows goal on a CONVERSION only', () => {
    expect(accepted({ ...pageview, eventType: 'CONVERSION', goal: 'purchase' }).goal).toBe('purchase');
    expect(accepted({ ...pageview, eventType: 'CONVERSION' }).goal).toBeNull();
    expect(errorsOf({ ...pageview, goal: 'purchase' })).toEqual(['goal: is only allowed on CONVERSION']);
  });

  it('refuses a field it does not know', () => {
    expect(errorsOf({ ...pageview, userId: 'u-1' })).toEqual(['userId: is not a known field']);
  });

  it('wants properties to be an object', () => {
    expect(accepted({ ...pageview, properties: { path: '/cart', n: 1, nested: { ok: [true] } } }).properties).toEqual({
      path: '/cart',
      n: 1,
      nested: { ok: [true] },
    });
    expect(errorsOf({ ...pageview, properties: ['a'] })).toEqual(['properties: must be a JSON object']);
    expect(errorsOf({ ...pageview, properties: 'a' })).toEqual(['properties: must be a JSON object']);
  });

  it('refuses what is not an object', () => {
    for (const event of [null, 'event', 42, [pageview]]) expect(errorsOf(event)).toEqual(['event: must be a JSON object']);
  });
});

describe('timestamps', () => {
  it('takes epoch milliseconds and ISO-8601 with a zone', () => {
    expect(accepted({ ...pageview, timestamp: 1_732_499_999_000 }).timestamp).toBe(1_732_499_999_000);
    expect(accepted({ ...pageview, timestamp: '2024-11-25T01:59:59.500Z' }).timestamp).toBe(Date.UTC(2024, 10, 25, 1, 59, 59, 500));
    expect(accepted({ ...pageview, timestamp: '2024-11-25T02:59:59+01:00' }).timestamp).toBe(Date.UTC(2024, 10, 25, 1, 59, 59));
    expect(accepted({ ...pageview, timestamp: '2024-11-25T02:59:59+0100' }).timestamp).toBe(Date.UTC(2024, 10, 25, 1, 59, 59));
    expect(accepted({ ...pageview, timestamp: '2024-11-25t01:59:59z' }).timestamp).toBe(Date.UTC(2024, 10, 25, 1, 59, 59));
    expect(accepted({ ...pageview, timestamp: '2024-11-25T01:59:59.123456789Z' }).timestamp).toBe(Date.UTC(2024, 10, 25, 1, 59, 59, 123));
  });

  it('refuses times without a zone, other formats, and fractions of a millisecond', () => {
    const shape = 'timestamp: must be epoch milliseconds or an ISO-8601 date-time with a time zone';
    for (const timestamp of ['2024-11-25T01:59:59', '2024-11-25', 'yesterday', 'Mon, 25 Nov 2024 01:59:59 GMT', 1.5, -1, true, null]) {
      expect(errorsOf({ ...pageview, timestamp })).toEqual([shape]);
    }
  });

  it('refuses dates that do not exist instead of rolling them over', () => {
    expect(parseTimestamp('2024-02-29T00:00:00Z')).toBe(Date.UTC(2024, 1, 29));
    for (const timestamp of ['2023-02-29T00:00:00Z', '2024-02-30T00:00:00Z', '2024-04-31T00:00:00Z', '2024-13-01T00:00:00Z', '2024-11-25T25:00:00Z']) {
      expect(errorsOf({ ...pageview, timestamp })).toEqual(['timestamp: is not a valid date']);
    }
    expect(errorsOf({ ...pageview, timestamp: 9e15 })).toEqual(['timestamp: is not a valid date']);
  });

  it('corrects client clock skew with sentAt the way the Segment spec does', () => {
    // The client's clock is 2 hours ahead: it sent at (its) 14:00 what happened at (its) 13:59:30.
    const sentAt = receivedAt + 2 * HOUR;
    const clientTimestamp = sentAt - 30_000;
    const event = accepted({ ...pageview, timestamp: clientTimestamp }, sentAt);
    expect(event.timestamp).toBe(receivedAt - (sentAt - clientTimestamp));
    expect(event.timestamp).toBe(receivedAt - 30_000);
    expect(event.clientTimestamp).toBe(clientTimestamp);
  });

  it('takes sentAt as ISO-8601 too, and corrects a clock that is behind', () => {
    const sentAt = receivedAt - 10 * HOUR;
    const event = accepted({ ...pageview, timestamp: new Date(sentAt - 5_000).toISOString() }, new Date(sentAt).toISOString());
    expect(event.timestamp).toBe(receivedAt - 5_000);
  });

  it('leaves timestamps alone without sentAt', () => {
    expect(accepted({ ...pageview, timestamp: receivedAt - 5 * HOUR }).timestamp).toBe(receivedAt - 5 * HOUR);
  });

  it('refuses an event more than 24 h in the future, after correction', () => {
    expect(accepted({ ...pageview, timestamp: receivedAt + 23 * HOUR }).timestamp).toBe(receivedAt + 23 * HOUR);
    expect(errorsOf({ ...pageview, timestamp: receivedAt + 25 * HOUR })).toEqual([
      `timestamp: ${new Date(receivedAt + 25 * HOUR).toISOString()} is more than 24 h in the future`,
    ]);
    // 25 h ahead by the client's clock, but so is its sentAt: after correction it is in the past.
    expect(accepted({ ...pageview, timestamp: receivedAt + 25 * HOUR }, receivedAt + 25 * HOUR + 1_000).timestamp).toBe(receivedAt - 1_000);
  });

  it('refuses an event older than the retention period, when there is one', () => {
    const withRetention = { ...limits, maxAgeMs: 30 * DAY };
    expect(accepted({ ...pageview, timestamp: receivedAt - 29 * DAY })).toBeDefined();
    expect(errorsOf({ ...pageview, timestamp: receivedAt - 29 * DAY }, { limits: withRetention })).toEqual([]);
    expect(errorsOf({ ...pageview, timestamp: receivedAt - 31 * DAY }, { limits: withRetention })).toEqual([
      `timestamp: ${new Date(receivedAt - 31 * DAY).toISOString()} is more than 30 days in the past; events older than the retention period are not kept`,
    ]);
    // Without retention, any age is accepted.
    expect(errorsOf({ ...pageview, timestamp: receivedAt - 3_650 * DAY })).toEqual([]);
  });

  it('judges age by the client time too, which is what the row is partitioned and dropped by', () => {
    const withRetention = { ...limits, maxAgeMs: 30 * DAY };
    // A client clock 40 days behind: corrected, the event is recent, but its row would sit in a dropped day.
    const sentAt = receivedAt - 40 * DAY;
    expect(errorsOf({ ...pageview, timestamp: sentAt - 1_000 }, { sentAt, limits: withRetention })).toEqual([
      `timestamp: ${new Date(sentAt - 1_000).toISOString()} as sent (before clock-skew correction) is more than 30 days in the past; events older than the retention period are not kept`,
    ]);
    // A client clock 40 days ahead, correcting an old timestamp into the window, is judged by the corrected time.
    const ahead = receivedAt + 40 * DAY;
    expect(errorsOf({ ...pageview, timestamp: ahead - 31 * DAY }, { sentAt: ahead, limits: withRetention })).toEqual([
      expect.stringMatching(/^timestamp: \S+Z is more than 30 days in the past/),
    ]);
  });

  it('refuses times before 1970, which Postgres may not even store, instead of failing the batch later', () => {
    expect(errorsOf({ ...pageview, timestamp: '1969-12-31T23:59:59.999Z' })).toEqual([
      'timestamp: 1969-12-31T23:59:59.999Z is before 1970-01-01T00:00:00.000Z',
    ]);
    // Corrected by a sentAt far ahead, year 0 lands before 4713 BC, where Postgres stops.
    expect(errorsOf({ ...pageview, timestamp: '0000-01-01T00:00:00Z' }, { sentAt: '9999-12-31T23:59:59Z' })).toEqual([
      expect.stringMatching(/^timestamp: -\d{6}-.*Z is before 1970-01-01/),
    ]);
    expect(errorsOf({ ...pageview, timestamp: '1969-12-31T23:59:59Z' }, { sentAt: '1969-12-31T23:59:59Z' })).toEqual([
      'timestamp: 1969-12-31T23:59:59.000Z as sent (before clock-skew correction) is before 1970-01-01T00:00:00.000Z',
    ]);
    // Past what a JavaScript date can hold, even when sentAt corrects it back to now.
    expect(errorsOf({ ...pageview, timestamp: 9_000_000_000_000_000 }, { sentAt: 9_000_000_000_000_000 })).toEqual([
      'timestamp: is not a valid date',
    ]);
    expect(accepted({ ...pageview, timestamp: 0 }).clientTimestamp).toBe(0);
  });
});

describe('what Postgres could not store', () => {
  it('refuses an event larger than the per-event limit', () => {
    const event = { ...pageview, properties: { note: 'x'.repeat(2_000) } };
    const bytes = Buffer.byteLength(JSON.stringify(event));
    expect(errorsOf(event, { limits: { ...limits, maxEventBytes: 1_000 } })).toEqual([
      `event: is ${bytes} bytes, more than the limit of 1000`,
    ]);
    expect(errorsOf(event, { limits: { ...limits, maxEventBytes: bytes } })).toEqual([]);
  });

  it('holds the limit to the byte for any properties: accepted at their exact size, refused one byte below', () => {
    // Any JSON, including text JSON escapes (control characters, quotes, backslashes) and
    // characters of 2, 3 and 4 UTF-8 bytes, where a size estimate could go wrong.
    const text = fc.string({ unit: fc.constantFrom('a', '"', '\\', '\n', '\u0001', '\u001f', 'é', '€', '😀', '\u2028') });
    const properties = fc.dictionary(text, fc.jsonValue({ maxDepth: 4 }).chain((v) => fc.oneof(fc.constant(v), text)), { maxKeys: 8 });
    fc.assert(
      fc.property(properties, (props) => {
        // Through JSON, as the API receives it (no -0, no undefined).
        const event = JSON.parse(JSON.stringify({ ...pageview, properties: props })) as typeof pageview;
        const bytes = Buffer.byteLength(JSON.stringify(event));
        expect(errorsOf(event, { limits: { ...limits, maxEventBytes: bytes } })).toEqual([]);
        expect(errorsOf(event, { limits: { ...limits, maxEventBytes: bytes - 1 } })).toEqual([
          `event: is ${bytes} bytes, more than the limit of ${bytes - 1}`,
        ]);
      }),
      { numRuns: 300 },
    );
  });

  it('measures the limit in UTF-8 bytes, not characters', () => {
    const event = { ...pageview, properties: { note: 'é'.repeat(600) } };
    expect(errorsOf(event, { limits: { ...limits, maxEventBytes: 1_000 } })).toEqual([expect.stringMatching(/^event: is \d+ bytes/)]);
  });

  it('refuses a NUL character in a value or a field name, naming where it is', () => {
    expect(errorsOf({ ...pageview, sessionId: 's\u0000' })).toEqual(['sessionId: contains a NUL character, which cannot be stored']);
    expect(errorsOf({ ...pageview, properties: { list: ['ok', 'a\u0000b'] } })).toEqual([
      'properties.list[1]: contains a NUL character, which cannot be stored',
    ]);
    expect(errorsOf({ ...pageview, properties: { 'a\u0000': 1 } })).toEqual([
      'properties: the field name "a\\0" contains a NUL character, which cannot be stored',
    ]);
  });

  it('refuses an unpaired UTF-16 surrogate, but takes a paired one', () => {
    expect(errorsOf({ ...pageview, properties: { emoji: '\ud83d' } })).toEqual([
      'properties.emoji: contains an unpaired UTF-16 surrogate, which cannot be stored',
    ]);
    expect(errorsOf({ ...pageview, properties: { emoji: '\ude00 trailing' } })).toHaveLength(1);
    expect(accepted({ ...pageview, properties: { emoji: '\ud83d\ude00' } }).properties).toEqual({ emoji: '😀' });
  });

  it(`refuses properties nested more than ${MAX_EVENT_DEPTH} levels deep, however deep`, () => {
    const nest = (levels: number) => {
      let value: unknown = 1;
      for (let i = 0; i < levels; i++) value = { a: value };
      return value;
    };
    expect(errorsOf({ ...pageview, properties: nest(MAX_EVENT_DEPTH - 1) })).toEqual([]);
    expect(errorsOf({ ...pageview, properties: nest(MAX_EVENT_DEPTH) })).toEqual([
      `properties.a: nests objects or arrays more than ${MAX_EVENT_DEPTH} levels deep`,
    ]);
    // Deep enough to overflow any recursive walk.
    const deep = JSON.parse(`{"a":${'['.repeat(200_000)}${']'.repeat(200_000)}}`);
    expect(errorsOf({ ...pageview, properties: deep }, { limits: { ...limits, maxEventBytes: 1_000_000 } })).toEqual([
      `properties.a: nests objects or arrays more than ${MAX_EVENT_DEPTH} levels deep`,
    ]);
  });
});

describe('errors', () => {
  it('are sentences that name the field: "<field>: <what is wrong>"', () => {
    const { rejected } = normalizeBatch(
      [{}, { ...pageview, eventType: 'CLICK', extra: 1, timestamp: 'soon' }, { ...exposure, variantKey: '' }],
      undefined,
      receivedAt,
      limits,
    );
    const errors = rejected.flatMap((rejection) => rejection.errors);
    expect(errors.length).toBeGreaterThan(5);
    for (const error of errors) {
      expect(error).toMatch(/^[A-Za-z.[\]0-9]+: [a-z]/);
      expect(error).not.toMatch(/Expected|\/|undefined|\[object/);
    }
  });
});

describe('normalizeBatch', () => {
  it('accepts the valid events and reports each invalid one by its index', () => {
    const { events, rejected } = normalizeBatch([pageview, {}, exposure, 'x'], undefined, receivedAt, limits);
    expect(events.map((event) => event.eventType)).toEqual(['PAGEVIEW', 'EXPOSURE']);
    expect(rejected.map((rejection) => rejection.index)).toEqual([1, 3]);
  });

  it('never throws, and accounts for every input once, whatever JSON it is given', () => {
    const arbitraryEvent = fc.oneof(
      fc.jsonValue(),
      fc.record(
        {
          eventId: fc.oneof(fc.string(), fc.jsonValue()),
          eventType: fc.constantFrom('PAGEVIEW', 'EXPOSURE', 'CONVERSION', 'OTHER'),
          sessionId: fc.string(),
          experimentId: fc.string(),
          variantKey: fc.string(),
          goal: fc.string(),
          properties: fc.dictionary(fc.string(), fc.jsonValue()),
          timestamp: fc.oneof(
            fc.integer({ min: 0, max: 4_000_000_000_000 }),
            fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
            fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
            fc.string(),
          ),
        },
        { requiredKeys: [] },
      ),
    );
    fc.assert(
      fc.property(
        fc.array(arbitraryEvent, { maxLength: 20 }),
        fc.option(fc.oneof(fc.integer({ min: 0, max: 4_000_000_000_000 }), fc.integer()), { nil: undefined }),
        fc.option(fc.integer({ min: 1, max: 3_650 }), { nil: undefined }),
        (events, sentAt, retentionDays) => {
        const maxAgeMs = retentionDays === undefined ? undefined : retentionDays * DAY;
        const batch = normalizeBatch(events, sentAt, receivedAt, { ...limits, maxAgeMs });
        expect(batch.events.length + batch.rejected.length).toBe(events.length);
        for (const rejection of batch.rejected) expect(rejection.errors.length).toBeGreaterThan(0);
        for (const event of batch.events) {
          expect(Number.isSafeInteger(event.timestamp)).toBe(true);
          expect(event.timestamp).toBeLessThanOrEqual(receivedAt + limits.maxFutureMs);
          // Both times storable by Postgres and, with a retention, within it.
          const oldest = maxAgeMs === undefined ? 0 : receivedAt - maxAgeMs;
          expect(Math.min(event.timestamp, event.clientTimestamp)).toBeGreaterThanOrEqual(oldest);
          expect(Number.isNaN(new Date(event.clientTimestamp).getTime())).toBe(false);
          if (event.eventType === 'EXPOSURE') expect(event.experimentId && event.variantKey).toBeTruthy();
        }
      },
      ),
    );
  });

  it('checks each event with the same rules as normalizeEvent', () => {
    expect(normalizeEvent(pageview, receivedAt, 0, limits)).toEqual({ event: accepted(pageview) });
  });
});
