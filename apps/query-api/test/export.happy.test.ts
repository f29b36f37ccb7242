import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import type { StoredEvent } from '@tally/contracts';
import { createProject, type ProjectKeys } from '@tally/db';
import { createTestDatabase, type TestDatabase } from '@tally/testing';
import {
  at,
  bearer,
  canonicalOrder,
  csvRows,
  event,
  exposure,
  insertOnly,
  parseCsv,
  parseNdjson,
  storedRows,
  testApp,
  type ExportRow,
} from './fixture.js';

/**
 * Project A holds a big experiment `big` (SESSIONS exposed sessions, some also
 * exposed to `other`, some to both variants), sessions never exposed to it, and a
 * small experiment `awkward` whose text is as hard on CSV and JSON as text gets.
 */

const SESSIONS = 3_000;
const UNEXPOSED = 400;

let database: TestDatabase;
let a: ProjectKeys;
let app: Awaited<ReturnType<typeof testApp>>;
let total = 0;

/** A small deterministic generator, so a failure can be replayed. */
function random(seed: number) {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

function bigExperiment(): StoredEvent[] {
  const next = random(42);
  const events: StoredEvent[] = [];
  const hours = (h: number) => h * 3_600;
  for (let s = 0; s < SESSIONS; s++) {
    const session = `s-${s}`;
    const start = Math.floor(next() * hours(72));
    events.push(pageview(session, start - 30, { path: `/landing/${s}` }));
    events.push(exposure(session, start, 'big', s % 2 === 0 ? 'control' : 'treatment'));
    if (s % 10 === 0) events.push(exposure(session, start + 5, 'big', s % 2 === 0 ? 'treatment' : 'control'));
    if (s % 3 === 0) events.push(exposure(session, start + 2, 'other', 'x'));
    const views = 2 + Math.floor(next() * 6);
    for (let v = 0; v < views; v++) events.push(pageview(session, start + 10 * (v + 1), v % 2 ? null : { step: v, ok: true }));
    if (next() < 0.4) events.push(event('CONVERSION', session, start + 200, { goal: 'purchase', properties: { amount: 12.5 } }));
    if (next() < 0.2) events.push(event('CONVERSION', session, start + 250, { goal: null }));
  }
  for (let s = 0; s < UNEXPOSED; s++) {
    events.push(pageview(`u-${s}`, s, null));
    events.push(exposure(`u-${s}`, s + 1, 'other', 'y'));
  }
  return events;
}

function pageview(sessionId: string, seconds: number, properties: Record<string, unknown> | null): StoredEvent {
  return event('PAGEVIEW', sessionId, seconds, { viewId: `${sessionId}-v${seconds}`, properties });
}

/** Text that breaks naive CSV writers, JSON writers or spreadsheets. */
const AWKWARD = [
  'plain',
  'with,comma',
  'with "quotes"',
  'line\nbreak',
  'carriage\r\nreturn',
  '=HYPERLINK("http://evil.example","click")',
  '+1+2',
  '-3',
  '@SUM(A1:A2)',
  '\tTabbed',
  '\rcr first',
  "'already quoted",
  "''",
  'ünïcödé ✓ 日本語 🎉',
  '"',
  ' ',
  '\\backslash\\',
  'null',
  '',
];

function awkwardEvents(): StoredEvent[] {
  return AWKWARD.flatMap((text, i) => [
    exposure(`awk-${i}-${text}`, i, 'awkward', text === '' ? 'empty-variant' : text),
    event('CONVERSION', `awk-${i}-${text}`, i + 1, {
      goal: text,
      viewId: text,
      properties: { text, nested: { list: [text, 1, null, true] } },
    }),
  ]).concat(exposure('odd-name-session', 0, ODD_NAME, 'a'));
}

const ODD_NAME = 'Q4 "promo"/ü';

beforeAll(async () => {
  database = await createTestDatabase();
  a = await createProject(database.db, 'A');
  const events = [...bigExperiment(), ...awkwardEvents()];
  for (let i = 0; i < events.length; i += 10_000) total += await insertOnly(database.db, a.projectId, events.slice(i, i + 10_000));
  // A number no double can hold, as an import or a manual fix could store it.
  await database.db.execute(sql`
    UPDATE analytics_events SET properties = '{"precise": 0.10000000000000000000001}'
    WHERE project_id = ${a.projectId} AND session_id = 'awk-0-plain' AND event_type = 'CONVERSION'`);
  app = await testApp(database.db);
});

afterAll(async () => {
  await app?.close();
  await database?.drop();
});

async function download(url: string) {
  const response = await app.inject({ method: 'GET', url, headers: bearer(a.readKey) });
  expect(response.statusCode, response.body.slice(0, 500)).toBe(200);
  return response;
}

const ndjson = async (url: string) => parseNdjson((await download(url)).body);
const csv = async (url: string) => csvRows(parseCsv((await download(url)).body));

const experimentRows = (experimentId: string) =>
  storedRows(
    database.db,
    sql`e.project_id = ${a.projectId}
      AND EXISTS (SELECT 1 FROM analytics_events x WHERE x.project_id = e.project_id AND x.session_id = e.session_id
        AND x.event_type = 'EXPOSURE' AND x.experiment_id = ${experimentId})
      AND (e.event_type <> 'EXPOSURE' OR e.experiment_id = ${experimentId})`,
  );

/** Sessions come one after another, each in timestamp order (then eventId). */
function expectGroupedBySessionInTimeOrder(rows: ExportRow[]) {
  const seen = new Set<string>();
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    const previous = rows[i - 1];
    if (previous?.sessionId === row.sessionId) {
      expect(previous.timestamp <= row.timestamp).toBe(true);
      if (previous.timestamp === row.timestamp) expect(previous.eventId < row.eventId).toBe(true);
    } else {
      expect(seen.has(row.sessionId), `session ${row.sessionId} comes back after another session`).toBe(false);
      seen.add(row.sessionId);
    }
  }
}

describe('the experiment export', () => {
  it('has every event of every exposed session, and nothing else, in NDJSON', async () => {
    const expected = await experimentRows('big');
    expect(expected.length).toBeGreaterThan(20_000);
    const rows = await ndjson('/v1/experiments/big/export?format=ndjson');
    expect(rows.length).toBe(expected.length);
    expect(canonicalOrder(rows)).toEqual(expected);
    expectGroupedBySessionInTimeOrder(rows);
    // The rows are the exposed sessions' exposures to `big`, pageviews and conversions.
    expect(new Set(rows.map((r) => r.sessionId)).size).toBe(SESSIONS);
    expect(rows.some((r) => r.experimentId === 'other')).toBe(false);
    expect(rows.some((r) => r.sessionId.startsWith('u-'))).toBe(false);
    expect(new Set(rows.map((r) => r.eventType))).toEqual(new Set(['EXPOSURE', 'PAGEVIEW', 'CONVERSION']));
  });

  it('has the same rows in CSV, in the same order, every field round-tripping', async () => {
    const fromNdjson = await ndjson('/v1/experiments/big/export?format=ndjson');
    const fromCsv = await csv('/v1/experiments/big/export?format=csv');
    expect(fromCsv).toEqual(fromNdjson);
    expect(canonicalOrder(fromCsv)).toEqual(await experimentRows('big'));
  });

  it('is an attachment with the content type of its format', async () => {
    const n = await download('/v1/experiments/big/export?format=ndjson');
    expect(n.headers['content-type']).toBe('application/x-ndjson');
    expect(n.headers['content-disposition']).toBe('attachment; filename="big-events.ndjson"');
    expect(n.headers['cache-control']).toBe('no-store');
    const c = await download('/v1/experiments/big/export?format=csv');
    expect(c.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(c.headers['content-disposition']).toBe('attachment; filename="big-events.csv"');
    expect(c.body.startsWith('eventId,eventType,sessionId,viewId,experimentId,variantKey,goal,timestamp,clientTimestamp,receivedAt,properties\r\n')).toBe(true);
  });

  it('round-trips quotes, commas, line breaks, unicode, empty strings and formula-like text in both formats', async () => {
    const expected = await experimentRows('awkward');
    expect(expected.length).toBe(AWKWARD.length * 2);
    const rows = await ndjson('/v1/experiments/awkward/export?format=ndjson');
    expect(canonicalOrder(rows)).toEqual(expected);
    expect(canonicalOrder(await csv('/v1/experiments/awkward/export?format=csv'))).toEqual(expected);
    const goals = rows.filter((r) => r.eventType === 'CONVERSION').map((r) => r.goal);
    expect(new Set(goals)).toEqual(new Set(AWKWARD));
    // Numbers in properties come out as Postgres stored them, not rounded through a double and back.
    const body = (await download('/v1/experiments/awkward/export?format=ndjson')).body;
    expect(body).toContain('"precise": 0.10000000000000000000001');
  });

  it('writes formula-like cells with a leading apostrophe, and no cell starts a formula', async () => {
    const body = (await download('/v1/experiments/awkward/export?format=csv')).body;
    const cells = parseCsv(body).flat();
    for (const cell of cells) {
      if (cell !== null) expect(cell, `cell ${JSON.stringify(cell)}`).not.toMatch(/^[=+\-@\t\r]/);
    }
    expect(cells).toContain(`'=HYPERLINK("http://evil.example","click")`);
    expect(cells).toContain("'+1+2");
    expect(cells).toContain("'-3");
    expect(cells).toContain("'@SUM(A1:A2)");
    expect(cells).toContain("'\tTabbed");
    expect(cells).toContain("''already quoted");
    // Null and the empty string stay apart: an empty field and "".
    expect(body).toMatch(/,"",/);
  });

  it('names a file for an experiment id with characters a file name cannot have', async () => {
    const response = await download(`/v1/experiments/${encodeURIComponent(ODD_NAME)}/export?format=csv`);
    expect(response.headers['content-disposition']).toBe(
      `attachment; filename="Q4_promo_-events.csv"; filename*=UTF-8''Q4%20%22promo%22%2F%C3%BC-events.csv`,
    );
    expect(csvRows(parseCsv(response.body))).toMatchObject([{ sessionId: 'odd-name-session', experimentId: ODD_NAME }]);
  });

  it('filters by timestamp: from inclusive, to exclusive, and consecutive ranges add up to the whole', async () => {
    const all = await ndjson('/v1/experiments/big/export?format=ndjson');
    const cut = '2025-01-11T12:00:00.000Z';
    const before = await ndjson(`/v1/experiments/big/export?format=ndjson&to=${cut}`);
    const after = await ndjson(`/v1/experiments/big/export?format=ndjson&from=${cut}`);
    expect(before.length).toBeGreaterThan(0);
    expect(after.length).toBeGreaterThan(0);
    expect(before.every((r) => r.timestamp < cut)).toBe(true);
    expect(after.every((r) => r.timestamp >= cut)).toBe(true);
    expect(canonicalOrder([...before, ...after])).toEqual(canonicalOrder(all));

    const from = '2025-01-10T18:00:00Z';
    const to = '2025-01-11T06:00:00+00:00';
    const window = await csv(`/v1/experiments/big/export?format=csv&from=${from}&to=${encodeURIComponent(to)}`);
    const expected = all.filter((r) => r.timestamp >= '2025-01-10T18:00:00.000Z' && r.timestamp < '2025-01-11T06:00:00.000Z');
    expect(canonicalOrder(window)).toEqual(canonicalOrder(expected));
  });

  it('counts an event exactly at `from` and leaves one exactly at `to` out', async () => {
    const rows = await ndjson('/v1/experiments/awkward/export?format=ndjson');
    const first = rows.map((r) => r.timestamp).sort()[0]!;
    const exact = await ndjson(`/v1/experiments/awkward/export?format=ndjson&from=${first}&to=${new Date(Date.parse(first) + 1).toISOString()}`);
    expect(exact.length).toBeGreaterThan(0);
    expect(exact.every((r) => r.timestamp === first)).toBe(true);
    expect(await ndjson(`/v1/experiments/awkward/export?format=ndjson&to=${first}`)).toEqual([]);
  });

  it('takes time zones and offsets in from/to as the instants they name', async () => {
    const utc = await ndjson('/v1/experiments/big/export?format=ndjson&from=2025-01-11T00:00:00Z&to=2025-01-11T01:00:00Z');
    const offset = await ndjson(
      `/v1/experiments/big/export?format=ndjson&from=${encodeURIComponent('2025-01-11T02:00:00+02:00')}&to=${encodeURIComponent('2025-01-10T20:00:00-05:00')}`,
    );
    expect(utc.length).toBeGreaterThan(0);
    expect(offset).toEqual(utc);
  });

  it('gives an empty range as an empty NDJSON body and a CSV with just its header', async () => {
    const range = 'from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z';
    expect((await download(`/v1/experiments/big/export?format=ndjson&${range}`)).body).toBe('');
    const body = (await download(`/v1/experiments/big/export?format=csv&${range}`)).body;
    expect(parseCsv(body)).toHaveLength(1);
  });

  it('sends values as stored: ISO times in UTC with milliseconds, properties as JSON, nulls as null', async () => {
    const rows = await ndjson('/v1/experiments/big/export?format=ndjson');
    const exposureRow = rows.find((r) => r.sessionId === 's-1' && r.eventType === 'EXPOSURE')!;
    expect(exposureRow).toMatchObject({ experimentId: 'big', variantKey: 'treatment', goal: null, properties: null });
    expect(exposureRow.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const view = rows.find((r) => r.sessionId === 's-1' && r.eventType === 'PAGEVIEW' && r.properties !== null)!;
    expect(view.properties).toEqual({ path: '/landing/1' });
    expect(view.viewId).toMatch(/^s-1-v/);
  });
});

describe('the project export', () => {
  const range = (from: string, to: string) => `from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`;

  it("has every event of the project in the range, whatever its type or experiment, in both formats", async () => {
    const from = '2025-01-10T00:00:00Z';
    const to = '2025-01-14T00:00:00Z';
    const expected = await storedRows(
      database.db,
      sql`e.project_id = ${a.projectId} AND e.event_time >= ${from}::timestamptz AND e.event_time < ${to}::timestamptz`,
    );
    expect(expected.length).toBeGreaterThan(20_000);
    const rows = await ndjson(`/v1/export?format=ndjson&${range(from, to)}`);
    expect(canonicalOrder(rows)).toEqual(expected);
    expectGroupedBySessionInTimeOrder(rows);
    expect(rows.some((r) => r.sessionId.startsWith('u-'))).toBe(true);
    expect(rows.some((r) => r.experimentId === 'other')).toBe(true);
    expect(await csv(`/v1/export?format=csv&${range(from, to)}`)).toEqual(rows);
  });

  it('holds every stored event when the range spans them all', async () => {
    const rows = await ndjson(`/v1/export?format=ndjson&${range('2000-01-01T00:00:00Z', '2100-01-01T00:00:00Z')}`);
    expect(rows.length).toBe(total);
  });

  it('names its file after the range', async () => {
    const response = await download(`/v1/export?format=csv&${range('2025-01-10T00:00:00Z', '2025-01-11T00:00:00.5Z')}`);
    expect(response.headers['content-disposition']).toBe('attachment; filename="events-20250110T000000Z-20250111T000000Z.csv"');
  });

  it('cuts ranges at from (inclusive) and to (exclusive)', async () => {
    const t = new Date(at(3_600)).toISOString();
    const before = await ndjson(`/v1/export?format=ndjson&${range('2025-01-01T00:00:00Z', t)}`);
    const after = await ndjson(`/v1/export?format=ndjson&${range(t, '2025-02-01T00:00:00Z')}`);
    expect(before.every((r) => r.timestamp < t) && after.every((r) => r.timestamp >= t)).toBe(true);
    expect(before.length + after.length).toBe(total);
  });
});

describe('the OpenAPI document', () => {
  it('describes both exports: parameters, the rows they hold, both content types and their errors', async () => {
    const doc = (await app.inject({ url: '/openapi.json' })).json();
    const experiment = doc.paths['/v1/experiments/{experimentId}/export'].get;
    const project = doc.paths['/v1/export'].get;
    for (const route of [experiment, project]) {
      expect(Object.keys(route.responses['200'].content)).toEqual(['application/x-ndjson', 'text/csv']);
      expect(route.responses['200'].content['application/x-ndjson'].schema.required).toHaveLength(11);
      expect(route.description).toMatch(/apostrophe/);
      expect(route.parameters.find((p: { name: string }) => p.name === 'format')).toMatchObject({ required: true });
      expect(Object.keys(route.responses)).toEqual(expect.arrayContaining(['200', '400', '401', '403', '429']));
    }
    expect(experiment.description).toMatch(/exposures to other experiments are left out/);
    expect(experiment.responses).toHaveProperty('404');
    expect(project.parameters.filter((p: { required: boolean }) => p.required).map((p: { name: string }) => p.name).sort()).toEqual(['format', 'from', 'to']);
  });
});
