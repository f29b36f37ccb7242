import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProject, rotateKey, type ProjectKeys } from '@tally/db';
import { createTestDatabase, type TestDatabase } from '@tally/testing';
import { bearer, exposure, store, testApp } from './fixture.js';

let database: TestDatabase;
let keys: ProjectKeys;
let adminKey: string;
let app: Awaited<ReturnType<typeof testApp>>;

beforeAll(async () => {
  database = await createTestDatabase();
  keys = await createProject(database.db, 'settings');
  adminKey = (await rotateKey(database.db, keys.projectId, 'admin'))!;
  await store(database.db, keys.projectId, [exposure('s1', 0, 'checkout', 'control'), exposure('s2', 0, 'checkout', 'treatment')]);
  app = await testApp(database.db);
});

afterAll(async () => {
  await app?.close();
  await database?.drop();
});

const put = (experimentId: string, payload: unknown, key = adminKey) =>
  app.inject({ method: 'PUT', url: `/v1/experiments/${encodeURIComponent(experimentId)}/settings`, headers: bearer(key), payload: payload as object });
const get = (experimentId: string, key = keys.readKey) =>
  app.inject({ url: `/v1/experiments/${encodeURIComponent(experimentId)}/settings`, headers: bearer(key) });

describe('experiment settings', () => {
  it('answers every field null for an experiment never configured', async () => {
    const response = await get('checkout');
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ experimentId: 'checkout', name: null, control: null, weights: null, updatedAt: null });
  });

  it('stores what the admin key puts, and shows it to the read key and the admin key alike', async () => {
    const before = Date.now();
    const response = await put('checkout', { name: 'Checkout button', control: 'control', weights: { treatment: 0.5, control: 0.5 } });
    expect(response.statusCode).toBe(200);
    const stored = response.json();
    expect(stored).toEqual({
      experimentId: 'checkout',
      name: 'Checkout button',
      control: 'control',
      // In variant-key order, whatever order they were sent in.
      weights: { control: 0.5, treatment: 0.5 },
      updatedAt: expect.any(String),
    });
    expect(Date.parse(stored.updatedAt)).toBeGreaterThanOrEqual(before - 1_000);
    expect(Object.keys(stored.weights)).toEqual(['control', 'treatment']);
    expect((await get('checkout')).json()).toEqual(stored);
    expect((await get('checkout', adminKey)).json()).toEqual(stored);
  });

  it('replaces the settings whole: a field left out is removed', async () => {
    await put('replaced', { name: 'First', control: 'a', weights: { a: 1, b: 1 } });
    const second = await put('replaced', { name: 'Second' });
    expect(second.statusCode).toBe(200);
    expect(second.json()).toMatchObject({ name: 'Second', control: null, weights: null });
    const cleared = await put('replaced', {});
    expect(cleared.json()).toMatchObject({ name: null, control: null, weights: null, updatedAt: expect.any(String) });
  });

  it('keeps a zero weight: a variant that should get no traffic', async () => {
    const response = await put('holdout', { control: 'a', weights: { a: 1, b: 0 } });
    expect(response.statusCode).toBe(200);
    expect(response.json().weights).toEqual({ a: 1, b: 0 });
  });

  it('takes settings for an experiment before its first exposure, and any experiment id the API takes', async () => {
    const id = 'ümlaut/ünïcode';
    expect((await put(id, { name: 'Later' })).statusCode).toBe(200);
    expect((await get(id)).json()).toMatchObject({ experimentId: id, name: 'Later' });
  });

  it("keeps each project's settings to itself, for the same experiment id", async () => {
    const other = await createProject(database.db, 'other');
    const otherAdmin = (await rotateKey(database.db, other.projectId, 'admin'))!;
    expect((await put('checkout', { name: 'Theirs' }, otherAdmin)).statusCode).toBe(200);
    expect((await get('checkout', other.readKey)).json().name).toBe('Theirs');
    expect((await get('checkout')).json().name).toBe('Checkout button');
  });

  it('feeds the results: the configured weights drive the SRM test and the control the comparisons', async () => {
    await put('checkout', { control: 'treatment', weights: { control: 1, treatment: 3 } });
    const body = (await app.inject({ url: '/v1/experiments/checkout/results', headers: bearer(keys.readKey) })).json();
    expect(body.baseline).toEqual({ variantKey: 'treatment', source: 'settings', reason: null });
    expect(body.srm.weightsSource).toBe('settings');
    expect(body.srm.variants.map((v: { expectedShare: number }) => v.expectedShare)).toEqual([0.25, 0.75]);
  });

  it('is described in the OpenAPI document with both methods and their answers', async () => {
    const doc = (await app.inject({ url: '/openapi.json' })).json();
    const path = doc.paths['/v1/experiments/{experimentId}/settings'];
    expect(Object.keys(path.put.responses)).toEqual(expect.arrayContaining(['200', '400', '401', '403']));
    expect(Object.keys(path.get.responses)).toEqual(expect.arrayContaining(['200', '400', '401', '403']));
    const body = path.put.requestBody.content['application/json'].schema;
    expect(Object.keys(body.properties)).toEqual(['name', 'control', 'weights']);
    expect(path.put.description).toMatch(/admin key/);
  });
});
