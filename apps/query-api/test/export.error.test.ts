import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProject, type ProjectKeys } from '@tally/db';
import { createTestDatabase, type TestDatabase } from '@tally/testing';
import { bearer, exportTestApp, exposure, insertOnly, pageview, testApp } from './fixture.js';

let database: TestDatabase;
let keys: ProjectKeys;
let app: Awaited<ReturnType<typeof testApp>>;

beforeAll(async () => {
  database = await createTestDatabase();
  keys = await createProject(database.db, 'errors');
  // Stored but not rolled up: the export reads raw events, so it finds them at once.
  await insertOnly(database.db, keys.projectId, [exposure('s1', 0, 'checkout', 'control'), pageview('s1', 1), pageview('s2', 2)]);
  await insertOnly(database.db, keys.projectId, [
    exposure('long', 0, 'long', 'a'),
    ...Array.from({ length: 1_000 }, (_, i) => pageview('long', i)),
  ]);
  app = await testApp(database.db);
});

afterAll(async () => {
  await app?.close();
  await database?.drop();
});

async function get(url: string) {
  const response = await app.inject({ method: 'GET', url, headers: bearer(keys.readKey) });
  return { status: response.statusCode, headers: response.headers, body: response.json() as { statusCode: number; error: string; message: string } };
}

/**
 * No pooled connection stays checked out. Polled: an export that just completed
 * gives its connection back after its last byte (once the transaction has ended).
 */
async function expectPoolIdle() {
  await expect.poll(() => database.pool.idleCount === database.pool.totalCount).toBe(true);
}

describe('errors of the exports', () => {
  it('answers 404, as /results does, for an experiment the project has no exposure to', async () => {
    const { status, body } = await get('/v1/experiments/nope/export?format=csv');
    expect(status).toBe(404);
    expect(body).toEqual({
      statusCode: 404,
      error: 'Not Found',
      message: expect.stringMatching(/^No experiment "nope" in this project.*GET \/v1\/experiments/),
    });
    const results = await get('/v1/experiments/nope/results');
    expect(body.message).toBe(results.body.message);
    await expectPoolIdle();
  });

  it('exports an experiment whose exposures the rollup has not folded in yet', async () => {
    const response = await app.inject({ method: 'GET', url: '/v1/experiments/checkout/export?format=ndjson', headers: bearer(keys.readKey) });
    expect(response.statusCode).toBe(200);
    expect(response.body.trim().split('\n')).toHaveLength(2);
  });

  it('answers 404 for a name events carry only as a session id', async () => {
    expect((await get('/v1/experiments/s2/export?format=csv')).status).toBe(404);
  });

  it.each([
    ['/v1/experiments/checkout/export', 'querystring: format is a required query parameter.'],
    ['/v1/experiments/checkout/export?format=xlsx', 'querystring: format must be one of "ndjson", "csv".'],
    ['/v1/experiments/checkout/export?format=csv&format=ndjson', 'querystring: format must be a single string (give it once).'],
    ['/v1/experiments/checkout/export?format=csv&limit=10', 'querystring: limit is not a known query parameter.'],
    [
      '/v1/experiments/checkout/export?format=csv&from=yesterday',
      'querystring: from must be a date-time with a time zone, as 2025-01-10T00:00:00Z (RFC 3339).',
    ],
    [
      '/v1/experiments/checkout/export?format=csv&to=2025-01-10T00:00:00',
      'querystring: to must be a date-time with a time zone, as 2025-01-10T00:00:00Z (RFC 3339).',
    ],
    [
      '/v1/experiments/checkout/export?format=csv&from=2025-02-30T00:00:00Z',
      'querystring: from must be a date-time with a time zone, as 2025-01-10T00:00:00Z (RFC 3339).',
    ],
    [
      '/v1/experiments/checkout/export?format=csv&from=2025-01-10T00:00:00Z&to=2025-01-10T00:00:00Z',
      'querystring: to (2025-01-10T00:00:00.000Z) must be later than from (2025-01-10T00:00:00.000Z); the export takes events with from <= timestamp < to.',
    ],
    [
      '/v1/experiments/checkout/export?format=csv&from=2025-01-10T02:00:00%2B02:00&to=2025-01-09T23:00:00Z',
      'querystring: to (2025-01-09T23:00:00.000Z) must be later than from (2025-01-10T00:00:00.000Z); the export takes events with from <= timestamp < to.',
    ],
    [`/v1/experiments/${'e'.repeat(129)}/export?format=csv`, 'params: experimentId must be at most 128 characters long.'],
    ['/v1/export?format=csv', 'querystring: from is a required query parameter.'],
    ['/v1/export?format=csv&from=2025-01-10T00:00:00Z', 'querystring: to is a required query parameter.'],
    ['/v1/export?from=2025-01-10T00:00:00Z&to=2025-01-11T00:00:00Z', 'querystring: format is a required query parameter.'],
    [
      '/v1/export?format=csv&from=2025-01-11T00:00:00Z&to=2025-01-10T00:00:00Z',
      'querystring: to (2025-01-10T00:00:00.000Z) must be later than from (2025-01-11T00:00:00.000Z); the export takes events with from <= timestamp < to.',
    ],
    ['/v1/export?format=csv&from=2025-01-10&to=2025-01-11', 'querystring: from must be a date-time with a time zone, as 2025-01-10T00:00:00Z (RFC 3339).'],
    ['/v1/export?format=csv&from=2025-01-10T00:00:00Z&to=2025-01-11T00:00:00Z&experimentId=x', 'querystring: experimentId is not a known query parameter.'],
  ])('refuses %s with 400 before anything is streamed', async (url, message) => {
    const { status, body, headers } = await get(url);
    expect(status).toBe(400);
    expect(body).toEqual({ statusCode: 400, error: 'Bad Request', message });
    expect(headers['content-type']).toMatch(/^application\/json/);
    expect(headers['content-disposition']).toBeUndefined();
    await expectPoolIdle();
  });

  it('takes every RFC 3339 form of a date-time: lower-case t and z, a space, an offset without colon, a leap second', async () => {
    for (const [from, to] of [
      ['2025-01-10t00:00:00z', '2025-01-11 00:00:00.123456Z'],
      ['2025-01-10T00:00:00+0100', '2025-12-31T23:59:60Z'],
      // Instants Postgres cannot hold (year 0, past year 9999) bound nothing.
      ['0000-01-01T00:00:00Z', '9999-12-31T23:59:60Z'],
      ['0000-01-01T00:00:00+01:00', '9999-12-31T23:59:59.999-01:00'],
    ]) {
      const response = await app.inject({
        method: 'GET',
        url: `/v1/export?format=csv&from=${encodeURIComponent(from!)}&to=${encodeURIComponent(to!)}`,
        headers: bearer(keys.readKey),
      });
      expect(response.statusCode, `${from} .. ${to}: ${response.body}`).toBe(200);
    }
  });

  it('has no HEAD route, which would read the whole export to send no body', async () => {
    const response = await app.inject({ method: 'HEAD', url: '/v1/experiments/long/export?format=csv', headers: bearer(keys.readKey) });
    expect(response.statusCode).toBe(404);
    await expectPoolIdle();
  });

  it('answers 429 with Retry-After when as many exports run as allowed, and takes the next one once they end', async () => {
    // Small batches: an export the client does not read stays open.
    const limited = await exportTestApp(database.db, { batchSize: 10 });
    // The fixture's pool has 5 connections: half of them, rounded down, may export.
    const open = async () =>
      limited.inject({
        method: 'GET',
        url: '/v1/experiments/long/export?format=ndjson',
        headers: bearer(keys.readKey),
        payloadAsStream: true,
      });
    try {
      const first = await open();
      const second = await open();
      expect([first.statusCode, second.statusCode]).toEqual([200, 200]);
      const third = await limited.inject({ method: 'GET', url: '/v1/experiments/checkout/export?format=ndjson', headers: bearer(keys.readKey) });
      expect(third.statusCode).toBe(429);
      expect(third.headers['retry-after']).toBe('5');
      expect(third.json().message).toMatch(/^2 exports are running/);

      for (const response of [first, second]) {
        const stream = response.stream();
        for await (const _ of stream) {
          // Drain: the export ends and gives its connection back.
        }
      }
      await expect.poll(() => database.pool.idleCount === database.pool.totalCount).toBe(true);
      const fourth = await limited.inject({ method: 'GET', url: '/v1/experiments/checkout/export?format=ndjson', headers: bearer(keys.readKey) });
      expect(fourth.statusCode).toBe(200);
    } finally {
      await limited.close();
    }
  });

  it('lets a request at the limit wait a moment for a slot: one export after another is never refused', async () => {
    const limited = await exportTestApp(database.db, { batchSize: 10 });
    const open = () =>
      limited.inject({ method: 'GET', url: '/v1/experiments/long/export?format=ndjson', headers: bearer(keys.readKey), payloadAsStream: true });
    try {
      const [first, second] = [await open(), await open()];
      const third = limited.inject({ method: 'GET', url: '/v1/experiments/checkout/export?format=ndjson', headers: bearer(keys.readKey) });
      // The third waits; the first ends (read to its end), and the third takes its slot.
      for await (const _ of first.stream()) {
        // Drain.
      }
      expect((await third).statusCode).toBe(200);
      for await (const _ of second.stream()) {
        // Drain.
      }
      // Back to back, each starting as soon as the previous one's last byte is read.
      for (let i = 0; i < 10; i += 1) {
        const response = await limited.inject({ method: 'GET', url: '/v1/experiments/checkout/export?format=ndjson', headers: bearer(keys.readKey) });
        expect(response.statusCode).toBe(200);
      }
    } finally {
      await limited.close();
    }
  });
});
