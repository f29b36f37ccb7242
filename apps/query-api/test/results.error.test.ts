import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProject, type ProjectKeys } from '@tally/db';
import { createTestDatabase, type TestDatabase } from '@tally/testing';
import { bearer, exposure, store, testApp } from './fixture.js';

let database: TestDatabase;
let keys: ProjectKeys;
let app: Awaited<ReturnType<typeof testApp>>;

const longId = 'e'.repeat(128);

beforeAll(async () => {
  database = await createTestDatabase();
  keys = await createProject(database.db, 'errors');
  await store(database.db, keys.projectId, [
    exposure('s1', 0, 'checkout', 'control'),
    exposure('s2', 0, 'checkout', 'treatment'),
    exposure('s3', 0, 'mixed', 'x'),
    exposure('s3', 1, 'mixed', 'y'),
    exposure('s4', 0, longId, 'v'),
    exposure('s5', 0, 'ümlaut/ünïcode', 'v'),
  ]);
  app = await testApp(database.db);
});

afterAll(async () => {
  await app?.close();
  await database?.drop();
});

async function get(url: string) {
  const response = await app.inject({ method: 'GET', url, headers: bearer(keys.readKey) });
  return { status: response.statusCode, body: response.json() as { statusCode: number; error: string; message: string }, raw: response.body, headers: response.headers };
}

function expectNoInternals(raw: string) {
  expect(raw).not.toMatch(/\n\s+at |\.ts:\d+|node_modules|SELECT|analytics_events|experiment_|rollup|stack/i);
}

describe('errors of the results route', () => {
  it('answers 404 with a clear message for an experiment without exposures', async () => {
    const { status, body, raw } = await get('/v1/experiments/nope/results');
    expect(status).toBe(404);
    expect(body).toEqual({
      statusCode: 404,
      error: 'Not Found',
      message: expect.stringMatching(/^No experiment "nope" in this project.*GET \/v1\/experiments/),
    });
    expectNoInternals(raw);
  });

  it('answers 400 naming the variants when the control is not one of them', async () => {
    const { status, body } = await get('/v1/experiments/checkout/results?control=baseline');
    expect(status).toBe(400);
    expect(body.message).toBe(
      'control: "baseline" is not a variant of experiment "checkout"; its variants are "control", "treatment".',
    );
  });

  it('answers 400 for a control when every session was excluded, and says so', async () => {
    const { status, body } = await get('/v1/experiments/mixed/results?control=x');
    expect(status).toBe(400);
    expect(body.message).toMatch(/"x" is not a variant of experiment "mixed"; it has no assigned session yet/);
  });

  it('answers 404, not 400, for an unknown experiment even with a control', async () => {
    expect((await get('/v1/experiments/nope/results?control=control')).status).toBe(404);
  });

  it.each([
    ['an empty goal', '/v1/experiments/checkout/results?goal=', 'querystring: goal must not be empty.'],
    ['an empty control', '/v1/experiments/checkout/results?control=', 'querystring: control must not be empty.'],
    [
      'a goal of 129 characters',
      `/v1/experiments/checkout/results?goal=${'g'.repeat(129)}`,
      'querystring: goal must be at most 128 characters long.',
    ],
    [
      'a control of 129 characters',
      `/v1/experiments/checkout/results?control=${'c'.repeat(129)}`,
      'querystring: control must be at most 128 characters long.',
    ],
    [
      'an experiment id of 129 characters',
      `/v1/experiments/${'e'.repeat(129)}/results`,
      'params: experimentId must be at most 128 characters long.',
    ],
    ['an empty experiment id', '/v1/experiments//results', 'params: experimentId must not be empty.'],
    ['a misspelt parameter', '/v1/experiments/checkout/results?goals=purchase', 'querystring: goals is not a known query parameter.'],
    ['a goal given twice', '/v1/experiments/checkout/results?goal=a&goal=b', 'querystring: goal must be a single string (give it once).'],
    ['a parameter the list does not take', '/v1/experiments?goal=purchase', 'querystring: goal is not a known query parameter.'],
    [
      'a path that is not valid percent-encoding',
      '/v1/experiments/%E0%A4%A/results',
      'The URL path is not valid percent-encoding: encode the experiment id once, as encodeURIComponent does.',
    ],
    [
      'an experiment id far too long for the router',
      `/v1/experiments/${'e'.repeat(5_000)}/results`,
      'A path segment is too long: an experiment id has at most 128 characters.',
    ],
  ])('answers 400 with a sentence for %s', async (_case, url, message) => {
    const { status, body, raw, headers } = await get(url);
    expect(status).toBe(400);
    expect(body).toEqual({ statusCode: 400, error: 'Bad Request', message });
    expect(headers['x-content-type-options']).toBe('nosniff');
    expectNoInternals(raw);
  });

  it('accepts an experiment id of exactly 128 characters', async () => {
    const { status } = await get(`/v1/experiments/${longId}/results`);
    expect(status).toBe(200);
  });

  it('accepts a percent-encoded experiment id with a slash and non-ASCII characters', async () => {
    const { status, raw } = await get(`/v1/experiments/${encodeURIComponent('ümlaut/ünïcode')}/results`);
    expect(status).toBe(200);
    expect(JSON.parse(raw).experimentId).toBe('ümlaut/ünïcode');
  });

  it('answers 404 with the usual body for a route that does not exist', async () => {
    const { status, body } = await get('/v1/experiments/checkout/nothing');
    expect(status).toBe(404);
    expect(body.message).toBe('No route GET /v1/experiments/checkout/nothing');
  });

  it('answers 500 without stack, SQL or table names when the database fails', async () => {
    const broken = await database.pool.connect();
    try {
      // Renaming the table every answer reads its asOf from is a real failure of the database, undone below.
      await broken.query('ALTER TABLE rollup_state RENAME TO rollup_state_away');
      for (const url of ['/v1/experiments', '/v1/experiments/checkout/results', '/v1/experiments/checkout/timeseries']) {
        const { status, body, raw } = await get(url);
        expect({ url, status }).toEqual({ url, status: 500 });
        expect(body).toEqual({ statusCode: 500, error: 'Internal Server Error', message: 'Internal error' });
        expectNoInternals(raw);
      }
    } finally {
      await broken.query('ALTER TABLE rollup_state_away RENAME TO rollup_state');
      broken.release();
    }
    expect((await get('/v1/experiments/checkout/results')).status).toBe(200);
  });
});

describe('an invalid alpha', () => {
  it.each([
    ['0', 'querystring: alpha must be greater than 0.'],
    ['-0.1', 'querystring: alpha must be greater than 0.'],
    ['0.5', 'querystring: alpha must be less than 0.5.'],
    ['1', 'querystring: alpha must be less than 0.5.'],
    ['Infinity', 'querystring: alpha must be greater than 0 and less than 0.5.'],
    ['-Infinity', 'querystring: alpha must be greater than 0 and less than 0.5.'],
    ['1e999', 'querystring: alpha must be greater than 0 and less than 0.5.'],
    ['abc', 'querystring: alpha must be one number, such as 0.05.'],
    ['', 'querystring: alpha must be one number, such as 0.05.'],
    ['0.1&alpha=0.2', 'querystring: alpha must be one number, such as 0.05.'],
  ])('answers 400 for alpha=%s', async (alpha, message) => {
    const response = await app.inject({ url: `/v1/experiments/checkout/results?alpha=${alpha}`, headers: bearer(keys.readKey) });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toEqual({ statusCode: 400, error: 'Bad Request', message });
  });
});

describe('errors of the timeseries route', () => {
  it('answers 404 with the same message as the results for an experiment without exposures', async () => {
    const timeseries = await get('/v1/experiments/nope/timeseries?interval=hour');
    const results = await get('/v1/experiments/nope/results');
    expect(timeseries.status).toBe(404);
    expect(timeseries.body).toEqual(results.body);
    expectNoInternals(timeseries.raw);
  });

  it.each([
    ['an interval other than hour or day', '/v1/experiments/checkout/timeseries?interval=week', 'querystring: interval must be one of "hour", "day".'],
    ['an interval in capitals', '/v1/experiments/checkout/timeseries?interval=HOUR', 'querystring: interval must be one of "hour", "day".'],
    ['an empty interval', '/v1/experiments/checkout/timeseries?interval=', 'querystring: interval must be one of "hour", "day".'],
    ['an interval given twice', '/v1/experiments/checkout/timeseries?interval=hour&interval=day', 'querystring: interval must be a single string (give it once).'],
    ['an empty goal', '/v1/experiments/checkout/timeseries?goal=', 'querystring: goal must not be empty.'],
    ['a control, which only the results take', '/v1/experiments/checkout/timeseries?control=control', 'querystring: control is not a known query parameter.'],
    ['a misspelt parameter', '/v1/experiments/checkout/timeseries?intervals=day', 'querystring: intervals is not a known query parameter.'],
    [
      'an experiment id of 129 characters',
      `/v1/experiments/${'e'.repeat(129)}/timeseries`,
      'params: experimentId must be at most 128 characters long.',
    ],
  ])('answers 400 with a sentence for %s', async (_case, url, message) => {
    const { status, body, raw } = await get(url);
    expect(status).toBe(400);
    expect(body).toEqual({ statusCode: 400, error: 'Bad Request', message });
    expectNoInternals(raw);
  });

  it('answers 400 for a bad interval even for an experiment that does not exist', async () => {
    expect((await get('/v1/experiments/nope/timeseries?interval=week')).status).toBe(400);
  });

  it('takes the same experiment ids as the results', async () => {
    expect((await get(`/v1/experiments/${longId}/timeseries`)).status).toBe(200);
    const { status, raw } = await get(`/v1/experiments/${encodeURIComponent('ümlaut/ünïcode')}/timeseries`);
    expect(status).toBe(200);
    expect(JSON.parse(raw).experimentId).toBe('ümlaut/ünïcode');
  });
});
