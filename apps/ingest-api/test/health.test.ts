import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFixture, post, validEvents, type Fixture, type IngestApp } from './fixture.js';

describe('health, readiness and metrics', () => {
  let fixture: Fixture;
  let app: IngestApp;

  beforeAll(async () => {
    fixture = await createFixture();
    app = await fixture.build({ QUEUE_PREFIX: fixture.prefix.prefix });
  });
  afterAll(() => fixture?.cleanup());

  it('says it is alive on /healthz', async () => {
    const response = await app.inject({ url: '/healthz' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ status: 'ok' });
  });

  it('says it is ready on /readyz when Redis answers, and how Postgres is', async () => {
    const response = await app.inject({ url: '/readyz' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ status: 'ready', checks: { redis: 'ok', postgres: 'ok' } });
  });

  it('counts accepted and rejected events and batches by outcome on /metrics', async () => {
    const [exposure, pageview, conversion] = validEvents();
    await post(app, fixture, { events: [exposure, pageview, conversion] });
    await post(app, fixture, { events: [exposure, { ...pageview, sessionId: '' }] });
    await post(app, fixture, { events: [{}, {}] });
    await post(app, fixture, { events: [exposure] }, { key: null });
    await post(app, fixture, 'nope', { headers: { 'content-type': 'text/plain' } });

    const response = await app.inject({ url: '/metrics' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/plain/);
    const metric = (name: string) => {
      const line = response.body.split('\n').find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
      return line === undefined ? undefined : Number(line.split(' ').at(-1));
    };
    expect(metric('tally_ingest_events_accepted_total')).toBe(4);
    expect(metric('tally_ingest_events_rejected_total')).toBe(3);
    expect(metric('tally_ingest_batches_total{outcome="accepted",app="ingest-api"}')).toBe(1);
    expect(metric('tally_ingest_batches_total{outcome="partial",app="ingest-api"}')).toBe(1);
    expect(metric('tally_ingest_batches_total{outcome="invalid",app="ingest-api"}')).toBe(1);
    expect(metric('tally_ingest_batches_total{outcome="unauthorized",app="ingest-api"}')).toBe(1);
    expect(metric('tally_ingest_batches_total{outcome="unsupported",app="ingest-api"}')).toBe(1);
    expect(metric('tally_ingest_batches_total{outcome="unavailable",app="ingest-api"}')).toBe(0);
    expect(response.body).toMatch(/http_request_duration_seconds_count\{[^}]*route="\/v1\/batch"/);
  });

  it('does not ask for a key on probes', async () => {
    expect((await app.inject({ url: '/metrics' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/readyz' })).statusCode).toBe(200);
  });
});
