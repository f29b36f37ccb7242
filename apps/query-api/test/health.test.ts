import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type DbHandle } from '@tally/db';
import { createTestDatabase, TEST_POSTGRES_URL, uniqueName, type TestDatabase } from '@tally/testing';
import { testApp } from './fixture.js';

let database: TestDatabase;
let app: Awaited<ReturnType<typeof testApp>>;

beforeAll(async () => {
  database = await createTestDatabase();
  app = await testApp(database.db);
});

afterAll(async () => {
  await app?.close();
  await database?.drop();
});

describe('health and metrics', () => {
  it('says it is alive and ready when Postgres answers', async () => {
    expect((await app.inject({ url: '/healthz' })).json()).toEqual({ status: 'ok' });
    const ready = await app.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: 'ready', checks: { postgres: 'ok' } });
  });

  it('says it is not ready when its database cannot be reached', async () => {
    // A database that was never made: every connection attempt is refused by the real server.
    const url = new URL(TEST_POSTGRES_URL);
    url.pathname = `/${uniqueName('missing')}`;
    const missing: DbHandle = createDb(url.toString(), { max: 1 });
    const orphan = await testApp(missing.db);
    try {
      const ready = await orphan.inject({ url: '/readyz' });
      expect(ready.statusCode).toBe(503);
      expect(ready.json().status).toBe('not ready');
      expect(ready.json().checks.postgres).not.toBe('ok');
    } finally {
      await orphan.close();
      await missing.close();
    }
  });

  it('serves Prometheus metrics, with request durations by route', async () => {
    await app.inject({ url: '/v1/experiments' });
    const metrics = await app.inject({ url: '/metrics' });
    expect(metrics.statusCode).toBe(200);
    expect(metrics.body).toMatch(/http_request_duration_seconds_count\{[^}]*route="\/v1\/experiments"[^}]*status="401"/);
    expect(metrics.body).toContain('app="query-api"');
  });
});

describe('the OpenAPI document', () => {
  it('describes the list and results routes with their parameters, limits and answers', async () => {
    const response = await app.inject({ url: '/openapi.json' });
    expect(response.statusCode).toBe(200);
    const doc = response.json();
    expect(doc.components.securitySchemes.bearer).toEqual({ type: 'http', scheme: 'bearer' });

    const list = doc.paths['/v1/experiments'].get;
    expect(Object.keys(list.responses)).toEqual(expect.arrayContaining(['200', '401', '403']));
    const listed = list.responses['200'].content['application/json'].schema.properties.experiments.items;
    expect(Object.keys(listed.properties)).toEqual([
      'experimentId',
      'exposedSessions',
      'excludedSessions',
      'firstExposureAt',
      'lastExposureAt',
      'variants',
    ]);
    expect(Object.keys(listed.properties.variants.items.properties)).toEqual(['variantKey', 'sessions']);

    const results = doc.paths['/v1/experiments/{experimentId}/results'].get;
    const parameters = Object.fromEntries(
      results.parameters.map((p: { name: string; in: string; schema: object }) => [`${p.in}:${p.name}`, p.schema]),
    );
    for (const name of ['path:experimentId', 'query:goal', 'query:control']) {
      expect(parameters[name]).toMatchObject({ type: 'string', minLength: 1, maxLength: 128 });
    }
    expect(parameters['query:alpha']).toMatchObject({ type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 0.5, default: 0.05 });
    expect(Object.keys(results.responses)).toEqual(expect.arrayContaining(['200', '400', '401', '403', '404']));
    const body = results.responses['200'].content['application/json'].schema;
    expect(body.properties.asOf.description).toMatch(/every event stored before this instant is counted/i);
    expect(Object.keys(body.properties.variants.items.properties)).toEqual([
      'variantKey',
      'sessions',
      'pageviewSessions',
      'pageviews',
      'convertedSessions',
      'conversions',
      'conversionRate',
      'comparison',
      'comparisonReason',
    ]);
    expect(Object.keys(body.properties)).toEqual([
      'experimentId',
      'goal',
      'control',
      'asOf',
      'excludedSessions',
      'variants',
      'alpha',
      'minimums',
      'baseline',
      'srm',
      'multipleExposure',
    ]);
  });

  it('describes every statistic of the results and every field of the settings', async () => {
    const doc = (await app.inject({ url: '/openapi.json' })).json();
    const results = doc.paths['/v1/experiments/{experimentId}/results'].get.responses['200'].content['application/json'].schema;
    const settings = doc.paths['/v1/experiments/{experimentId}/settings'];
    const undescribed: string[] = [];
    // Every property has a description, down to the leaves; bounds of an interval and keys speak for themselves.
    const walk = (schema: Record<string, any>, path: string) => {
      for (const branch of schema.anyOf ?? []) walk(branch, path);
      if (schema.items) walk(schema.items, `${path}[]`);
      for (const [name, property] of Object.entries<Record<string, any>>(schema.properties ?? {})) {
        if (!property.description && !['lower', 'upper', 'variantKey', 'experimentId'].includes(name)) undescribed.push(`${path}.${name}`);
        walk(property, `${path}.${name}`);
      }
    };
    for (const name of ['alpha', 'minimums', 'baseline', 'srm', 'multipleExposure']) walk({ properties: { [name]: results.properties[name] } }, 'results');
    walk(results.properties.variants.items.properties.comparison, 'results.variants[].comparison');
    walk(settings.put.requestBody.content['application/json'].schema, 'settings body');
    walk(settings.get.responses['200'].content['application/json'].schema, 'settings');
    expect(undescribed).toEqual([]);
    expect(results.properties.variants.items.properties.comparison.anyOf[0].properties.decision).toMatchObject({ type: 'string' });
    expect(results.properties.variants.items.properties.comparison.anyOf[0].properties.decision.enum).toEqual([
      'win',
      'lose',
      'inconclusive',
      'not enough data',
    ]);
  });

  it('describes the timeseries route: its interval, the buckets and the running totals', async () => {
    const doc = (await app.inject({ url: '/openapi.json' })).json();
    const timeseries = doc.paths['/v1/experiments/{experimentId}/timeseries'].get;
    const parameters = Object.fromEntries(
      timeseries.parameters.map((p: { name: string; in: string; schema: object }) => [`${p.in}:${p.name}`, p.schema]),
    );
    expect(parameters['query:interval']).toMatchObject({ type: 'string', enum: ['hour', 'day'], default: 'day' });
    expect(parameters['query:goal']).toMatchObject({ type: 'string', minLength: 1, maxLength: 128 });
    expect(parameters['path:experimentId']).toMatchObject({ type: 'string', minLength: 1, maxLength: 128 });
    expect(Object.keys(timeseries.responses)).toEqual(expect.arrayContaining(['200', '400', '401', '403', '404']));

    const body = timeseries.responses['200'].content['application/json'].schema;
    expect(Object.keys(body.properties)).toEqual(['experimentId', 'interval', 'goal', 'asOf', 'variants']);
    const point = body.properties.variants.items.properties.points.items;
    expect(Object.keys(point.properties)).toEqual([
      'bucket',
      'sessions',
      'convertedSessions',
      'cumulativeSessions',
      'cumulativeConvertedSessions',
      'cumulativeConversionRate',
    ]);
    expect(point.properties.bucket.description).toMatch(/UTC hour or day .* first exposed/);
    for (const property of Object.values(point.properties) as { description?: string }[]) {
      expect(property.description).toBeTruthy();
    }
  });

  it('is browsable at /docs', async () => {
    const response = await app.inject({ url: '/docs' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/text\/html/);
  });
});
