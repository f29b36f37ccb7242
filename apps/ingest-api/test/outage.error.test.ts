import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, generateKey, type DbHandle } from '@tally/db';
import { createRedis } from '@tally/queue';
import { startTcpProxy, waitFor, type TcpProxy } from '@tally/testing';
import { createFixture, post, validEvents, type Fixture, type IngestApp } from './fixture.js';

describe('the ingest API when Redis cannot be reached at all', () => {
  let fixture: Fixture;
  let app: IngestApp;

  beforeAll(async () => {
    fixture = await createFixture();
    // Nothing listens on port 1: every connection attempt is refused.
    app = await fixture.build({ QUEUE_PREFIX: fixture.prefix.prefix }, { redis: createRedis('redis://127.0.0.1:1', 'producer') });
  });
  afterAll(() => fixture?.cleanup());

  it('answers 503 with Retry-After instead of hanging, batch after batch', async () => {
    for (let i = 0; i < 3; i++) {
      const response = await post(app, fixture, { events: validEvents() });
      expect(response.statusCode).toBe(503);
      expect(response.headers['retry-after']).toBeDefined();
      expect(response.json()).toMatchObject({ accepted: 0, message: expect.stringMatching(/queue is unreachable.*send the same batch again/) });
    }
    expect(await fixture.jobs()).toEqual([]);
  });

  it('still checks the key and the body first', async () => {
    expect((await post(app, fixture, { events: validEvents() }, { key: null })).statusCode).toBe(401);
    expect((await post(app, fixture, { events: [{}] })).statusCode).toBe(400);
  });

  it('reports not ready, naming Redis, and stays alive', async () => {
    const ready = await app.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json().checks).toMatchObject({ postgres: 'ok' });
    expect(ready.json().checks.redis).not.toBe('ok');
    expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
  });
});

describe('the ingest API when Redis goes away and comes back', () => {
  let fixture: Fixture;
  let proxy: TcpProxy;
  let app: IngestApp;

  beforeAll(async () => {
    fixture = await createFixture();
    proxy = await startTcpProxy(fixture.prefix.redisUrl, 6379);
    app = await fixture.build({ QUEUE_PREFIX: fixture.prefix.prefix }, { redis: createRedis(proxy.url, 'producer') });
  });
  afterAll(async () => {
    await proxy?.cut();
    await fixture?.cleanup();
  });

  it('answers 503 during the outage and 202 again once Redis is back', async () => {
    const send = () => post(app, fixture, { events: validEvents() });
    await waitFor(async () => ((await send()).statusCode === 202 ? true : undefined), { what: 'a first batch to be accepted' });

    await proxy.cut();
    const during = await send();
    expect(during.statusCode).toBe(503);
    expect(await fixture.jobs()).toHaveLength(1);

    await proxy.restore();
    await waitFor(async () => ((await send()).statusCode === 202 ? true : undefined), {
      intervalMs: 200,
      what: 'batches to be accepted again',
    });
    expect(await fixture.jobs()).toHaveLength(2);
  });
});

describe('the ingest API when Postgres goes away', () => {
  let fixture: Fixture;
  let proxy: TcpProxy;
  let database: DbHandle;
  let app: IngestApp;

  beforeAll(async () => {
    fixture = await createFixture();
    proxy = await startTcpProxy(fixture.database.url, 5432);
    database = createDb(proxy.url, { max: 2 });
    // The cache TTL is 0: every batch asks Postgres, so only the outage fallback can answer.
    app = await fixture.build({ QUEUE_PREFIX: fixture.prefix.prefix, KEY_CACHE_TTL_SECONDS: 0, KEY_NEGATIVE_CACHE_SECONDS: 60 }, { db: database.db });
  });
  afterAll(async () => {
    await proxy?.cut();
    await fixture?.cleanup();
    await database?.close();
  });

  it('keeps accepting batches with a key it has seen, refuses an unseen key with 503, and remembers unknown keys', async () => {
    const unknownKey = generateKey('write');
    expect((await post(app, fixture, { events: validEvents() })).statusCode).toBe(202);
    expect((await post(app, fixture, { events: validEvents() }, { key: unknownKey })).statusCode).toBe(401);

    await proxy.cut();
    expect((await post(app, fixture, { events: validEvents() })).statusCode).toBe(202);
    expect((await post(app, fixture, { events: validEvents() }, { key: unknownKey })).statusCode).toBe(401);

    const unseen = await post(app, fixture, { events: validEvents() }, { key: generateKey('write') });
    expect(unseen.statusCode).toBe(503);
    expect(unseen.headers['retry-after']).toBeDefined();
    expect(unseen.json()).toMatchObject({ accepted: 0, message: expect.stringMatching(/cannot be checked right now/) });

    // Still ready (it accepts batches for the keys it knows), but it says Postgres is away.
    const ready = await app.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json().checks).toMatchObject({ redis: 'ok' });
    expect(ready.json().checks.postgres).not.toBe('ok');

    expect((await fixture.jobs()).map((job) => job.data.projectId)).toEqual([fixture.keys.projectId, fixture.keys.projectId]);
    await proxy.restore();
    expect((await app.inject({ url: '/readyz' })).statusCode).toBe(200);
    // Postgres answers again: an unseen key is looked up and found unknown.
    expect((await post(app, fixture, { events: validEvents() }, { key: generateKey('write') })).statusCode).toBe(401);
    expect((await post(app, fixture, { events: validEvents() })).statusCode).toBe(202);
  });
});
