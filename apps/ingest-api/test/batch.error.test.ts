import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createFixture, metricValue, post, validEvents, type Fixture, type IngestApp } from './fixture.js';

/** Every refusal has the batch response's shape, nothing accepted, and a sentence. */
function expectRefusal(response: { statusCode: number; json: () => any }, statusCode: number, message: RegExp) {
  expect(response.statusCode).toBe(statusCode);
  const body = response.json();
  expect(body).toMatchObject({ statusCode, accepted: 0, rejected: expect.any(Array) });
  expect(body.message).toMatch(message);
  return body;
}

describe('POST /v1/batch refuses bad requests with a 4xx that says what to fix, and queues nothing', () => {
  let fixture: Fixture;
  let app: IngestApp;

  beforeAll(async () => {
    fixture = await createFixture();
    app = await fixture.build({
      QUEUE_PREFIX: fixture.prefix.prefix,
      MAX_BODY_BYTES: 64 * 1024,
      MAX_EVENTS_PER_BATCH: 10,
      MAX_EVENT_BYTES: 1_024,
    });
  });
  afterAll(() => fixture?.cleanup());
  afterEach(async () => {
    expect(await fixture.jobs()).toEqual([]);
  });

  it('answers 400 listing every event’s errors when no event is valid', async () => {
    const [exposure, pageview] = validEvents();
    const response = await post(app, fixture, {
      events: [{ ...exposure, variantKey: undefined }, { ...pageview, eventType: 'CLICK' }, 42],
    });
    const body = expectRefusal(response, 400, /None of the 3 events is valid/);
    expect(body.rejected).toEqual([
      { index: 0, errors: ['variantKey: is required for EXPOSURE'] },
      { index: 1, errors: ['eventType: must be one of PAGEVIEW, EXPOSURE, CONVERSION'] },
      { index: 2, errors: ['event: must be a JSON object'] },
    ]);
  });

  it('answers 400 for a body that is not JSON', async () => {
    expectRefusal(await post(app, fixture, '{"events": [', {}), 400, /not valid JSON/);
  });

  it('answers 400 naming the refused key for a body with a __proto__ or constructor.prototype key, which is valid JSON', async () => {
    const [, pageview] = validEvents();
    const event = JSON.stringify(pageview).replace(/^\{/, '{"properties":{"__proto__":{"isAdmin":true}},');
    expectRefusal(await post(app, fixture, `{"events":[${event}]}`), 400, /"__proto__" key .*rename the key/);
    const ctor = JSON.stringify(pageview).replace(/^\{/, '{"properties":{"constructor":{"prototype":{"x":1}}},');
    expectRefusal(await post(app, fixture, `{"events":[${ctor}]}`), 400, /"constructor" key holding "prototype"/);
    // A key named constructor is fine as data.
    const fine = await post(app, fixture, { events: [{ ...pageview, properties: { constructor: 'x' } }] });
    expect(fine.statusCode).toBe(202);
    await fixture.clearJobs();
  });

  it('answers 400 with the usual body for a URL that is not valid percent-encoding', async () => {
    const response = await app.inject({ method: 'POST', url: '/v1/%E0%A4%A', headers: { authorization: `Bearer ${fixture.keys.writeKey}` } });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toEqual({ statusCode: 400, error: 'Bad Request', message: expect.stringMatching(/not valid percent-encoding/) });
  });

  it('answers 400 for an empty body', async () => {
    expectRefusal(await post(app, fixture, ''), 400, /empty/);
  });

  it('answers 400 for an envelope without events, with an empty list, or with something else', async () => {
    expectRefusal(await post(app, fixture, { sentAt: Date.now() }), 400, /events: is required/);
    expectRefusal(await post(app, fixture, { events: [] }), 400, /events: must be an array of at least one event/);
    // No coercion: a string is not taken for a one-element array.
    expectRefusal(await post(app, fixture, { events: 'x' }), 400, /events: must be an array/);
    expectRefusal(await post(app, fixture, { events: validEvents(), extra: 1 }), 400, /extra: is not a known field/);
    expectRefusal(await post(app, fixture, { events: validEvents(), sentAt: 'yesterday' }), 400, /sentAt: must be epoch milliseconds or an ISO-8601/);
    expectRefusal(await post(app, fixture, validEvents()), 400, /body: must be a JSON object/);
  });

  it('answers 415 for a body that is not declared as JSON', async () => {
    const body = JSON.stringify({ events: validEvents() });
    expectRefusal(await post(app, fixture, body, { headers: { 'content-type': 'text/plain' } }), 415, /Content-Type: application\/json \(got "text\/plain"\)/);
    expectRefusal(
      await post(app, fixture, body, { headers: { 'content-type': 'application/x-www-form-urlencoded' } }),
      415,
      /application\/json/,
    );
  });

  it('answers 415 for a Content-Encoding it cannot decode', async () => {
    const body = gzipSync(JSON.stringify({ events: validEvents() }));
    expectRefusal(await post(app, fixture, body, { headers: { 'content-encoding': 'br' } }), 415, /Content-Encoding "br" is not supported/);
    expectRefusal(await post(app, fixture, body, { headers: { 'content-encoding': 'gzip, gzip' } }), 415, /not supported/);
  });

  it('answers 413 for more events than a batch may hold', async () => {
    const events = Array.from({ length: 4 }, () => validEvents()).flat().slice(0, 11);
    expectRefusal(await post(app, fixture, { events }), 413, /11 events; at most 10/);
  });

  it('answers 413 for a body over the limit', async () => {
    const padding = 'x'.repeat(65 * 1024);
    expectRefusal(await post(app, fixture, { events: [{ padding }] }), 413, /larger than the limit of 65536 bytes/);
  });

  it('answers 413 for a small gzip body that inflates past the limit (a gzip bomb)', async () => {
    const bomb = gzipSync(Buffer.alloc(10 * 1024 * 1024, ' '));
    expect(bomb.length).toBeLessThan(64 * 1024);
    expectRefusal(await post(app, fixture, bomb, { headers: { 'content-encoding': 'gzip' } }), 413, /inflates to more than the limit of 65536 bytes/);
  });

  it('answers 400 for a body that is not the gzip its Content-Encoding says', async () => {
    const json = JSON.stringify({ events: validEvents() });
    expectRefusal(await post(app, fixture, json, { headers: { 'content-encoding': 'gzip' } }), 400, /not valid gzip data/);
    expectRefusal(await post(app, fixture, randomBytes(200), { headers: { 'content-encoding': 'gzip' } }), 400, /not valid gzip data/);
  });

  it('answers 400 for a truncated gzip body', async () => {
    const gzip = gzipSync(JSON.stringify({ events: validEvents() }));
    const truncated = gzip.subarray(0, gzip.length - 12);
    expectRefusal(await post(app, fixture, truncated, { headers: { 'content-encoding': 'gzip' } }), 400, /not valid gzip data/);
  });

  it('rejects, on its own, an event over the per-event size limit', async () => {
    const [exposure, pageview] = validEvents();
    const response = await post(app, fixture, { events: [{ ...exposure, properties: { note: 'x'.repeat(2_000) } }, pageview] });
    expect(response.statusCode).toBe(202);
    expect(response.json().rejected).toEqual([{ index: 0, errors: [expect.stringMatching(/^event: is \d+ bytes, more than the limit of 1024$/)] }]);
    await fixture.clearJobs();
  });

  it('rejects events nested too deep instead of failing the request', async () => {
    const big = await fixture.build({ QUEUE_PREFIX: fixture.prefix.prefix, MAX_EVENT_BYTES: 100_000 });
    const [exposure] = validEvents();
    // Written out by hand: JSON.stringify itself cannot go this deep.
    const deep = `${'['.repeat(20_000)}1${']'.repeat(20_000)}`;
    const event = JSON.stringify({ ...exposure, properties: {} }).replace('"properties":{}', `"properties":{"deep":${deep}}`);
    const body = expectRefusal(await post(big, fixture, `{"events":[${event}]}`), 400, /^The event is not valid, so nothing was accepted/);
    expect(body.rejected[0].errors[0]).toMatch(/^properties\.deep: nests objects or arrays more than 32 levels deep$/);
  });
});

describe('POST /v1/batch when the queue is too deep', () => {
  let fixture: Fixture;

  beforeAll(async () => {
    fixture = await createFixture();
  });
  afterAll(() => fixture?.cleanup());

  it('answers 429 with Retry-After and queues nothing more', async () => {
    const app = await fixture.build({ QUEUE_PREFIX: fixture.prefix.prefix, MAX_QUEUE_DEPTH: 2 });
    expect((await post(app, fixture, { events: validEvents() })).statusCode).toBe(202);
    expect((await post(app, fixture, { events: validEvents() })).statusCode).toBe(202);
    // A fresh app samples the depth at once; the first one may still hold its sample of a second ago.
    const later = await fixture.build({ QUEUE_PREFIX: fixture.prefix.prefix, MAX_QUEUE_DEPTH: 2 });
    const response = await post(later, fixture, { events: validEvents() });
    expectRefusal(response, 429, /queue holds 2 or more batches waiting/);
    expect(Number(response.headers['retry-after'])).toBeGreaterThan(0);
    expect(await fixture.jobs()).toHaveLength(2);
    expect(await metricValue(later, 'tally_ingest_refusals_total{reason="queue_depth",app="ingest-api"}')).toBe(1);
    expect(await metricValue(later, 'tally_ingest_refusals_total{reason="rate_limit",app="ingest-api"}')).toBe(0);
  });
});
