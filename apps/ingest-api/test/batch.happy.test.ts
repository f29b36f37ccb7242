import { deflateSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createFixture, post, validEvents, type Fixture, type IngestApp } from './fixture.js';

describe('POST /v1/batch with valid events', () => {
  let fixture: Fixture;
  let app: IngestApp;

  beforeAll(async () => {
    fixture = await createFixture();
    app = await fixture.build({ QUEUE_PREFIX: fixture.prefix.prefix });
  });
  afterAll(() => fixture?.cleanup());
  beforeEach(() => fixture.clearJobs());

  const onlyJob = async () => {
    const jobs = await fixture.jobs();
    expect(jobs).toHaveLength(1);
    return { name: jobs[0]!.name, data: await fixture.batchOf(jobs[0]!), opts: jobs[0]!.opts };
  };

  it('answers 202 and queues one ingest job for the key’s project, with every event normalized', async () => {
    const events = validEvents();
    const before = Date.now();
    const response = await post(app, fixture, { events });
    expect(response.statusCode).toBe(202);
    expect(response.json()).toEqual({ accepted: 3, rejected: [] });

    const job = await onlyJob();
    expect(job.name).toBe('ingest-batch');
    expect(job.opts.attempts).toBe(10);
    expect(job.data.projectId).toBe(fixture.keys.projectId);
    expect(job.data.receivedAt).toBeGreaterThanOrEqual(before);
    expect(job.data.receivedAt).toBeLessThanOrEqual(Date.now());
    const at = events[0]!.timestamp as number;
    expect(job.data.events).toEqual([
      {
        eventId: events[0]!.eventId,
        eventType: 'EXPOSURE',
        sessionId: events[0]!.sessionId,
        viewId: 'v-1',
        experimentId: 'checkout-button',
        variantKey: 'treatment',
        goal: null,
        properties: { path: '/cart' },
        timestamp: at,
        clientTimestamp: at,
      },
      {
        eventId: events[1]!.eventId,
        eventType: 'PAGEVIEW',
        sessionId: events[1]!.sessionId,
        viewId: 'v-1',
        experimentId: null,
        variantKey: null,
        goal: null,
        properties: null,
        timestamp: at + 500,
        clientTimestamp: at + 500,
      },
      {
        eventId: events[2]!.eventId,
        eventType: 'CONVERSION',
        sessionId: events[2]!.sessionId,
        viewId: null,
        experimentId: null,
        variantKey: null,
        goal: 'purchase',
        properties: null,
        timestamp: at + 1_000,
        clientTimestamp: at + 1_000,
      },
    ]);
  });

  it('corrects the client clock with sentAt: timestamp = receivedAt - (sentAt - timestamp)', async () => {
    // The client's clock is one hour ahead.
    const clientNow = Date.now() + 3_600_000;
    const events = validEvents(clientNow - 5_000);
    const response = await post(app, fixture, { sentAt: clientNow, events });
    expect(response.statusCode).toBe(202);

    const { data } = await onlyJob();
    for (const [i, event] of data.events.entries()) {
      expect(event.clientTimestamp).toBe(clientNow - 5_000 + i * 500);
      expect(event.timestamp).toBe(data.receivedAt - (clientNow - event.clientTimestamp));
    }
  });

  it('accepts the variant of a legacy exposure from properties.variantKey', async () => {
    const [exposure] = validEvents();
    const { variantKey: _omitted, ...legacy } = exposure!;
    const response = await post(app, fixture, { events: [{ ...legacy, properties: { variantKey: 'control' } }] });
    expect(response.statusCode).toBe(202);
    const { data } = await onlyJob();
    expect(data.events[0]).toMatchObject({ eventType: 'EXPOSURE', variantKey: 'control', properties: { variantKey: 'control' } });
  });

  it('accepts the valid events of a mixed batch and names each invalid one by index', async () => {
    const [exposure, pageview, conversion] = validEvents();
    const events = [
      exposure,
      { ...pageview, sessionId: undefined },
      conversion,
      { ...exposure, experimentId: undefined, variantKey: undefined },
      'not an event',
    ];
    const response = await post(app, fixture, { events });
    expect(response.statusCode).toBe(202);
    expect(response.json()).toEqual({
      accepted: 2,
      rejected: [
        { index: 1, errors: ['sessionId: is required'] },
        { index: 3, errors: ['experimentId: is required for EXPOSURE', 'variantKey: is required for EXPOSURE'] },
        { index: 4, errors: ['event: must be a JSON object'] },
      ],
    });
    const { data } = await onlyJob();
    expect(data.events.map((event) => event.eventId)).toEqual([exposure!.eventId, conversion!.eventId]);
  });

  it('inflates a gzip body', async () => {
    const events = validEvents();
    const response = await post(app, fixture, gzipSync(JSON.stringify({ events })), { headers: { 'content-encoding': 'gzip' } });
    expect(response.statusCode).toBe(202);
    expect(response.json()).toEqual({ accepted: 3, rejected: [] });
    const { data } = await onlyJob();
    expect(data.events.map((event) => event.eventId)).toEqual(events.map((event) => event.eventId));
  });

  it('inflates a deflate body', async () => {
    const response = await post(app, fixture, deflateSync(JSON.stringify({ events: validEvents() })), {
      headers: { 'content-encoding': 'deflate' },
    });
    expect(response.statusCode).toBe(202);
    expect((await onlyJob()).data.events).toHaveLength(3);
  });

  it('takes a JSON content type with a charset and a key after a lower-case "bearer"', async () => {
    const response = await post(app, fixture, { events: validEvents() }, {
      key: null,
      headers: { 'content-type': 'application/json; charset=utf-8', authorization: `bearer ${fixture.keys.writeKey}` },
    });
    expect(response.statusCode).toBe(202);
    expect(await fixture.jobs()).toHaveLength(1);
  });

  it('accepts a batch exactly at the event limit', async () => {
    const limited = await fixture.build({ QUEUE_PREFIX: fixture.prefix.prefix, MAX_EVENTS_PER_BATCH: 3 });
    const response = await post(limited, fixture, { events: validEvents() });
    expect(response.statusCode).toBe(202);
  });

  it('documents the route and the IncomingEvent schema in the OpenAPI document', async () => {
    const response = await app.inject({ url: '/openapi.json' });
    expect(response.statusCode).toBe(200);
    const document = response.json();
    const route = document.paths['/v1/batch'].post;
    expect(Object.keys(route.responses)).toEqual(expect.arrayContaining(['202', '400', '401', '413', '415', '429', '503']));
    expect(route.requestBody.content['application/json'].schema.properties).toHaveProperty('events');
    const schemas = Object.values(document.components.schemas) as { title?: string; properties?: object }[];
    expect(schemas.find((schema) => schema.title === 'IncomingEvent')?.properties).toHaveProperty('eventType');
  });
});
