import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProject, rotateKey, type ProjectKeys } from '@tally/db';
import { createTestDatabase, type TestDatabase } from '@tally/testing';
import { bearer, testApp } from './fixture.js';

let database: TestDatabase;
let keys: ProjectKeys;
let adminKey: string;
let app: Awaited<ReturnType<typeof testApp>>;

beforeAll(async () => {
  database = await createTestDatabase();
  keys = await createProject(database.db, 'settings errors');
  adminKey = (await rotateKey(database.db, keys.projectId, 'admin'))!;
  app = await testApp(database.db);
});

afterAll(async () => {
  await app?.close();
  await database?.drop();
});

const manyWeights = Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`v${i}`, 1]));

describe('invalid settings', () => {
  it.each([
    ['a negative weight', { weights: { a: -1, b: 1 } }, 'body: weights.a must be at least 0.'],
    ['a weight beyond the bound', { weights: { a: 2e9 } }, 'body: weights.a must be at most 1000000000.'],
    ['a weight that is not a number', { weights: { a: '1' } }, 'body: weights.a must be a number.'],
    ['a weight of a variant key that is no plain name', { weights: { 'a/b': -1 } }, 'body: weights["a/b"] must be at least 0.'],
    ['weights that are all zero', { weights: { a: 0, b: 0 } }, 'body: weights: at least one weight must be above 0 (a 0 weight means "should get no traffic").'],
    ['empty weights', { weights: {} }, 'body: weights must have at least 1 entry.'],
    ['too many weights', { weights: manyWeights }, 'body: weights must have at most 100 entries.'],
    ['weights as a string', { weights: 'a=1,b=1' }, 'body: weights must be an object or null.'],
    [
      'a variant key that is too long',
      { weights: { ['v'.repeat(129)]: 1 } },
      'body: weights: a variant key must have 1 to 128 characters, not 129.',
    ],
    [
      'a control outside the weights',
      { control: 'c', weights: { a: 1, b: 1 } },
      'body: control "c" is not one of the weighted variants ("a", "b"): give it a weight, or choose another control.',
    ],
    [
      'a control weighted 0',
      { control: 'a', weights: { a: 0, b: 1 } },
      'body: control "a" has weight 0, so it should get no traffic: a control needs a weight above 0.',
    ],
    ['an empty control', { control: '' }, 'body: control must not be empty.'],
    ['a control of 129 characters', { control: 'c'.repeat(129) }, 'body: control must be at most 128 characters long.'],
    ['an empty name', { name: '' }, 'body: name must not be empty.'],
    ['a blank name', { name: '   ' }, 'body: name must not be empty (send null to remove it).'],
    ['a name of 201 characters', { name: 'n'.repeat(201) }, 'body: name must be at most 200 characters long.'],
    ['a name that is a number', { name: 5 }, 'body: name must be a string or null.'],
    ['a misspelt field', { nmae: 'x' }, 'body: nmae is not a known field.'],
    ['an array', [], 'body: must be a JSON object.'],
  ])('answers 400 with a sentence for %s', async (_case, payload, message) => {
    const response = await app.inject({ method: 'PUT', url: '/v1/experiments/checkout/settings', headers: bearer(adminKey), payload });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toEqual({ statusCode: 400, error: 'Bad Request', message });
    // Nothing was stored.
    const stored = await app.inject({ url: '/v1/experiments/checkout/settings', headers: bearer(adminKey) });
    expect(stored.json().updatedAt).toBeNull();
  });

  it('lists every broken rule at once', async () => {
    const response = await app.inject({
      method: 'PUT',
      url: '/v1/experiments/checkout/settings',
      headers: bearer(adminKey),
      payload: { name: ' ', control: 'z', weights: { a: 0 } },
    });
    expect(response.json().message).toBe(
      'body: name must not be empty (send null to remove it). weights: at least one weight must be above 0 ' +
        '(a 0 weight means "should get no traffic"). control "z" is not one of the weighted variants ("a"): give it a weight, or choose another control.',
    );
  });

  it('answers 400 for a body that is not JSON, or missing', async () => {
    const broken = await app.inject({
      method: 'PUT',
      url: '/v1/experiments/checkout/settings',
      headers: { ...bearer(adminKey), 'content-type': 'application/json' },
      payload: '{"name": ',
    });
    expect(broken.statusCode).toBe(400);
    expect(broken.json().message).toMatch(/JSON/);
    const missing = await app.inject({ method: 'PUT', url: '/v1/experiments/checkout/settings', headers: bearer(adminKey) });
    expect(missing.statusCode).toBe(400);
    expect(missing.json().message).toBe('body: must be a JSON object.');
  });

  it('answers 400 for an experiment id the other routes refuse too', async () => {
    const response = await app.inject({ method: 'PUT', url: `/v1/experiments/${'e'.repeat(129)}/settings`, headers: bearer(adminKey), payload: {} });
    expect(response.statusCode).toBe(400);
    expect(response.json().message).toBe('params: experimentId must be at most 128 characters long.');
  });
});
