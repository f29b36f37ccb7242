import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '@tally/contracts';
import {
  COPY_FROM_EVENTS,
  createProject,
  encodeEventRows,
  insertEvents,
  insertRowsByCopy,
  insertRowsByUnnest,
  type Database,
} from '@tally/db';
import { createTestDatabase, type TestDatabase } from '@tally/testing';

/** Text that COPY's format or array literals give a meaning to, and text they do not. */
const AWKWARD = ['tab\there', 'pipe|here', 'octal \\174', 'back\\slash', 'line\nbreak\r\n', '"quoted", {braced}', 'NULL', '\\N', 'ünïcödé 🎉', ''];

/** Each method, given the events as the ingest API would encode them. */
const insertEventsByCopy = (db: Database, projectId: string, receivedAt: number, batch: StoredEvent[]) =>
  insertRowsByCopy(db, encodeEventRows(projectId, receivedAt, batch));
const insertEventsByUnnest = (db: Database, projectId: string, receivedAt: number, batch: StoredEvent[]) =>
  insertRowsByUnnest(db, encodeEventRows(projectId, receivedAt, batch));

function events(prefix: string, n: number): StoredEvent[] {
  const t = Date.UTC(2026, 10, 24, 12);
  return Array.from({ length: n }, (_, i): StoredEvent => {
    const text = AWKWARD[i % AWKWARD.length]!;
    return {
      eventId: `${prefix}-${i}-${text}`,
      eventType: i % 2 === 0 ? 'PAGEVIEW' : 'CONVERSION',
      sessionId: `s-${text}`,
      viewId: i % 3 === 0 ? null : `v-${text}`,
      experimentId: null,
      variantKey: null,
      goal: i % 2 === 0 ? null : text,
      properties: i % 4 === 0 ? null : { text, nested: { list: [text, 1, true, null] } },
      timestamp: t + i,
      clientTimestamp: t + i - 5,
    };
  });
}

describe('storing a batch', () => {
  let database: TestDatabase;
  let projectId: string;

  beforeAll(async () => {
    database = await createTestDatabase();
    ({ projectId } = await createProject(database.db, 'insert'));
  });
  afterAll(() => database?.drop());

  const stored = async (prefix: string) => {
    const { rows } = await database.pool.query(
      `SELECT event_id, event_type::text, session_id, view_id, goal, properties,
         (extract(epoch FROM event_time) * 1000)::bigint AS event_ms, (extract(epoch FROM client_time) * 1000)::bigint AS client_ms
       FROM analytics_events WHERE project_id = $1 AND event_id LIKE $2 ORDER BY client_time`,
      [projectId, `${prefix}-%`],
    );
    return rows.map((r) => ({
      eventId: r.event_id,
      eventType: r.event_type,
      sessionId: r.session_id,
      viewId: r.view_id,
      goal: r.goal,
      properties: r.properties,
      timestamp: Number(r.event_ms),
      clientTimestamp: Number(r.client_ms),
    }));
  };

  const expected = (batch: StoredEvent[]) =>
    batch.map(({ eventId, eventType, sessionId, viewId, goal, properties, timestamp, clientTimestamp }) => ({
      eventId, eventType, sessionId, viewId, goal, properties, timestamp, clientTimestamp,
    }));

  for (const [name, insert] of [
    ['COPY', insertEventsByCopy],
    ['unnest', insertEventsByUnnest],
  ] as const) {
    it(`${name}: keeps every value exactly, awkward text included`, async () => {
      const batch = events(`${name}-exact`, 40);
      expect(await insert(database.db, projectId, Date.now(), batch)).toBe(40);
      expect(await stored(`${name}-exact`)).toEqual(expected(batch));
    });

    it(`${name}: stores a batch sent again, whole or in part, once`, async () => {
      const batch = events(`${name}-again`, 20);
      expect(await insert(database.db, projectId, Date.now(), batch.slice(0, 10))).toBe(10);
      // A retry with a different receive time: same (event id, client time), so nothing new.
      expect(await insert(database.db, projectId, Date.now() + 5_000, batch)).toBe(10);
      expect(await insert(database.db, projectId, Date.now(), batch)).toBe(0);
      expect(await stored(`${name}-again`)).toEqual(expected(batch));
    });
  }

  it('COPY: a batch holding the same event twice, or one already stored, is stored once and counted once', async () => {
    const batch = events('twice', 30);
    const received = Date.UTC(2026, 10, 24, 13, 0, 0, 123);
    expect(await insertEventsByCopy(database.db, projectId, received, [...batch, batch[7]!, batch[8]!])).toBe(30);
    expect(await stored('twice')).toEqual(expected(batch));
    const more = events('twice-more', 5);
    expect(await insertEventsByCopy(database.db, projectId, received, [...more, batch[0]!])).toBe(5);
    const { rows } = await database.pool.query(
      `SELECT count(*)::int AS n, count(DISTINCT seq)::int AS seqs, min(received_at) = max(received_at) AS same,
         (extract(epoch FROM min(received_at)) * 1000)::bigint AS received_ms
       FROM analytics_events WHERE project_id = $1 AND event_id LIKE 'twice%'`,
      [projectId],
    );
    expect(rows[0]).toEqual({ n: 35, seqs: 35, same: true, received_ms: String(received) });
  });

  it('COPY: a row the table refuses for another reason fails the batch, storing none of it', async () => {
    const batch = events('refused', 10);
    // An exposure must name its experiment and variant (a CHECK constraint): not a duplicate, so no fallback.
    const bad: StoredEvent = { ...batch[3]!, eventType: 'EXPOSURE', experimentId: null, variantKey: null };
    await expect(insertEventsByCopy(database.db, projectId, Date.now(), [...batch.slice(0, 3), bad])).rejects.toMatchObject({ code: '23514' });
    expect(await stored('refused')).toEqual([]);
  });

  it('goes through either method by batch size, with the same result', async () => {
    const small = events('small', COPY_FROM_EVENTS - 1);
    const large = events('large', COPY_FROM_EVENTS);
    expect(await insertEvents(database.db, projectId, Date.now(), small)).toBe(small.length);
    expect(await insertEvents(database.db, projectId, Date.now(), large)).toBe(large.length);
    expect(await stored('small')).toEqual(expected(small));
    expect(await stored('large')).toEqual(expected(large));
    expect(await insertEvents(database.db, projectId, Date.now(), [])).toBe(0);
  });
});
