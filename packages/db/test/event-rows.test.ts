import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '@tally/contracts';
import { EVENT_ROW_COLUMNS, EventRowsError, decodeEventRows, encodeEventRowBytes, encodeEventRows, eventRowBytes, eventsOfRows } from '@tally/db';

const PROJECT = '0d5c1f9e-8a44-4a57-9d0a-3f1e2b7c6a10';
const RECEIVED = Date.UTC(2026, 11, 1, 12, 0, 0, 250);

/** Any text, with what COPY's format gives a meaning to (the delimiter, `\N` for NULL, escapes) much more often than chance would. */
const text = fc.oneof(
  fc.string({ unit: 'grapheme', minLength: 1 }),
  fc.array(fc.constantFrom('\\', '|', '\t', '\n', '\r', 'N', '\\N', '174', 'a', '{', '"', 'é', '🎉'), { minLength: 1, maxLength: 12 }).map((parts) => parts.join('')),
);
const optional = fc.option(text, { nil: null });
const properties = fc.dictionary(
  text.filter((key) => key !== '__proto__'),
  fc.jsonValue({ maxDepth: 2 }),
  { maxKeys: 4 },
);

const storedEvent: fc.Arbitrary<StoredEvent> = fc.record({
  eventId: text,
  eventType: fc.constantFrom('PAGEVIEW', 'EXPOSURE', 'CONVERSION'),
  sessionId: text,
  viewId: optional,
  experimentId: optional,
  variantKey: optional,
  goal: optional,
  properties: fc.option(properties, { nil: null }),
  timestamp: fc.integer({ min: 0, max: Date.UTC(2100, 0, 1) }),
  clientTimestamp: fc.integer({ min: 0, max: Date.UTC(2100, 0, 1) }),
});

describe('event rows', () => {
  it('decode to exactly the events encoded, one line per event, whatever their text', () => {
    fc.assert(
      fc.property(fc.array(storedEvent, { minLength: 1, maxLength: 20 }), (events) => {
        const rows = encodeEventRows(PROJECT, RECEIVED, events);
        expect(rows.split('\n')).toHaveLength(events.length + 1);
        // JSON.stringify drops what JSON cannot hold (undefined, -0 as 0): compare with what a JSON round trip keeps.
        const expected = events.map((e) => ({ ...e, properties: e.properties === null ? null : JSON.parse(JSON.stringify(e.properties)) }));
        expect(eventsOfRows(rows)).toEqual({ projectId: PROJECT, receivedAt: RECEIVED, events: expected });
      }),
      { numRuns: 300 },
    );
  });

  it('encode to the same UTF-8 bytes as the text, however far the first buffer must grow', () => {
    // Long properties of multi-byte text make rows far larger than the buffer's first guess per row.
    const large = fc.record({ note: fc.string({ unit: 'grapheme', minLength: 200, maxLength: 2_000 }) });
    const event = fc.tuple(storedEvent, fc.option(large, { nil: null })).map(([e, p]) => (p === null ? e : { ...e, properties: p }));
    fc.assert(
      fc.property(fc.array(event, { minLength: 1, maxLength: 20 }), fc.integer({ min: 0, max: 3 }), (events, expected) => {
        const text = Buffer.from(encodeEventRows(PROJECT, RECEIVED, events));
        expect(encodeEventRowBytes(PROJECT, RECEIVED, events).equals(text)).toBe(true);
        // Told to expect fewer rows than it gets, too.
        const rows = eventRowBytes(PROJECT, RECEIVED, expected);
        events.forEach(rows.add);
        expect(rows.bytes().equals(text)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('decode into one array per column, NULL as null', () => {
    const rows = encodeEventRows(PROJECT, RECEIVED, [
      {
        eventId: 'e|1\t',
        eventType: 'PAGEVIEW',
        sessionId: 's\\1',
        viewId: null,
        experimentId: null,
        variantKey: null,
        goal: null,
        properties: { line: 'a\nb' },
        timestamp: RECEIVED - 1,
        clientTimestamp: RECEIVED - 2,
      },
    ]);
    const columns = decodeEventRows(rows);
    expect(columns).toHaveLength(EVENT_ROW_COLUMNS.length);
    expect(Object.fromEntries(EVENT_ROW_COLUMNS.map((name, i) => [name, columns[i]![0]]))).toEqual({
      project_id: PROJECT,
      event_id: 'e|1\t',
      event_type: 'PAGEVIEW',
      session_id: 's\\1',
      view_id: null,
      experiment_id: null,
      variant_key: null,
      goal: null,
      properties: '{"line":"a\\nb"}',
      event_time: '2026-12-01T12:00:00.249Z',
      client_time: '2026-12-01T12:00:00.248Z',
      received_at: '2026-12-01T12:00:00.250Z',
    });
  });

  it('write every time as toISOString does, minute and year edges included', () => {
    const edges = [0, 59_999, 60_000, Date.UTC(2026, 11, 31, 23, 59, 59, 999), Date.UTC(2027, 0, 1), Date.UTC(9999, 11, 31, 23, 59, 59, 999)];
    const times = [...edges, ...fc.sample(fc.integer({ min: 0, max: Date.UTC(9999, 11, 31) }), 500)];
    const event = { eventId: 'e', eventType: 'PAGEVIEW', sessionId: 's', viewId: null, experimentId: null, variantKey: null, goal: null, properties: null } as const;
    const events = times.map((t, i): StoredEvent => ({ ...event, timestamp: t, clientTimestamp: times[(i + 1) % times.length]! }));
    const columns = decodeEventRows(encodeEventRows(PROJECT, RECEIVED, events));
    const [eventTime, clientTime] = [EVENT_ROW_COLUMNS.indexOf('event_time'), EVENT_ROW_COLUMNS.indexOf('client_time')];
    expect(columns[eventTime]).toEqual(events.map((e) => new Date(e.timestamp).toISOString()));
    expect(columns[clientTime]).toEqual(events.map((e) => new Date(e.clientTimestamp).toISOString()));
  });

  it('refuse rows that are not what the encoder makes, saying where', () => {
    const good = encodeEventRows(PROJECT, RECEIVED, [
      { eventId: 'e', eventType: 'PAGEVIEW', sessionId: 's', viewId: null, experimentId: null, variantKey: null, goal: null, properties: null, timestamp: 1, clientTimestamp: 1 },
    ]);
    expect(() => decodeEventRows(`${good}too|few\n`)).toThrow(new EventRowsError('row 2 has 2 fields, not 12'));
    expect(() => decodeEventRows(good.replace('|e|', '|e\\q|'))).toThrow(/unknown escape \\q in "e\\\\q"/);
    expect(() => decodeEventRows(good.replace('|e|', '|e\\|'))).toThrow(EventRowsError);
  });
});
