import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createProject, generateKey, rotateKey } from '@tally/db';
import { createFixture, post, validEvents, type Fixture, type IngestApp } from './fixture.js';

describe('POST /v1/batch only takes a live write key', () => {
  let fixture: Fixture;
  let app: IngestApp;

  beforeAll(async () => {
    fixture = await createFixture();
    app = await fixture.build({ QUEUE_PREFIX: fixture.prefix.prefix });
  });
  afterAll(() => fixture?.cleanup());
  afterEach(async () => {
    expect(await fixture.jobs()).toEqual([]);
  });

  const refused = async (key: string | null, headers: Record<string, string> = {}) => {
    const response = await post(app, fixture, { events: validEvents() }, { key, headers });
    expect(response.statusCode).toBe(401);
    expect(response.headers['www-authenticate']).toMatch(/^Bearer /);
    expect(response.json()).toMatchObject({ statusCode: 401, error: 'Unauthorized', accepted: 0, rejected: [] });
    return response.json().message as string;
  };

  it('asks for the write key when there is no Authorization header', async () => {
    expect(await refused(null)).toMatch(/Authorization: Bearer <write key>/);
  });

  it('explains the header format when it is not a bearer token', async () => {
    expect(await refused(null, { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` })).toMatch(/must read `Bearer <write key>`/);
    expect(await refused(null, { authorization: 'Bearer' })).toMatch(/Bearer <write key>/);
  });

  it('refuses a well-formed key that belongs to no project', async () => {
    expect(await refused(generateKey('write'))).toMatch(/Unknown write key/);
  });

  it('refuses garbage and oversized keys without looking them up', async () => {
    expect(await refused('not-a-key')).toMatch(/Unknown write key/);
    expect(await refused(`tly_w_${'a'.repeat(500)}`)).toMatch(/Unknown write key/);
    expect(await refused("tly_w_'OR'1'='1")).toMatch(/Unknown write key/);
  });

  it('refuses the project’s read key, saying a write key is needed', async () => {
    expect(await refused(fixture.keys.readKey)).toMatch(/read key.*write key/);
  });

  it('refuses a batch with a bad key before reading its body', async () => {
    // A body that would be a 400 (or a 413) with a good key is never looked at without one.
    const response = await post(app, fixture, '{"events": [', { key: generateKey('write') });
    expect(response.statusCode).toBe(401);
  });
});

describe('write keys after rotation', () => {
  let fixture: Fixture;

  beforeAll(async () => {
    fixture = await createFixture();
  });
  afterAll(() => fixture?.cleanup());

  it('stops taking the old key and takes the new one once the cached answer expires', async () => {
    const app = await fixture.build({ QUEUE_PREFIX: fixture.prefix.prefix, KEY_CACHE_TTL_SECONDS: 0 });
    expect((await post(app, fixture, { events: validEvents() })).statusCode).toBe(202);

    const newKey = await rotateKey(fixture.database.db, fixture.keys.projectId, 'write');
    expect((await post(app, fixture, { events: validEvents() })).statusCode).toBe(401);
    expect((await post(app, fixture, { events: validEvents() }, { key: newKey! })).statusCode).toBe(202);

    const jobs = await fixture.jobs();
    expect(jobs.map((job) => job.data.projectId)).toEqual([fixture.keys.projectId, fixture.keys.projectId]);
  });

  it('keeps taking a key it has just seen, within the cache TTL', async () => {
    const keys = await createProject(fixture.database.db, 'cached');
    const app = await fixture.build({ QUEUE_PREFIX: fixture.prefix.prefix, KEY_CACHE_TTL_SECONDS: 60 });
    expect((await post(app, fixture, { events: validEvents() }, { key: keys.writeKey })).statusCode).toBe(202);
    await rotateKey(fixture.database.db, keys.projectId, 'write');
    expect((await post(app, fixture, { events: validEvents() }, { key: keys.writeKey })).statusCode).toBe(202);
  });
});

describe('POST /v1/batch from a browser on another origin', () => {
  let fixture: Fixture;
  let app: IngestApp;

  beforeAll(async () => {
    fixture = await createFixture();
    app = await fixture.build({ QUEUE_PREFIX: fixture.prefix.prefix });
  });
  afterAll(() => fixture?.cleanup());

  it('answers the CORS preflight without a key', async () => {
    const response = await app.inject({
      method: 'OPTIONS',
      url: '/v1/batch',
      headers: { origin: 'https://shop.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
    });
    expect(response.statusCode).toBe(204);
    expect(response.headers['access-control-allow-origin']).toBe('*');
    expect(response.headers['access-control-allow-methods']).toContain('POST');
    expect(String(response.headers['access-control-allow-headers'])).toMatch(/authorization.*content-type/);
  });

  it('lets the page read the answer, a refusal included', async () => {
    const origin = { origin: 'https://shop.example' };
    const accepted = await post(app, fixture, { events: validEvents() }, { headers: origin });
    expect(accepted.statusCode).toBe(202);
    expect(accepted.headers['access-control-allow-origin']).toBe('*');
    const refused = await post(app, fixture, { events: validEvents() }, { key: null, headers: origin });
    expect(refused.statusCode).toBe(401);
    expect(refused.headers['access-control-allow-origin']).toBe('*');
  });
});
