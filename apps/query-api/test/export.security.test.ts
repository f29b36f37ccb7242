import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProject, generateKey, rotateKey, type ProjectKeys } from '@tally/db';
import { createTestDatabase, type TestDatabase } from '@tally/testing';
import { bearer, conversion, exposure, insertOnly, pageview, parseNdjson, testApp } from './fixture.js';

/**
 * A and B both run an experiment called `shared-name` with sessions called s1, and
 * B has one A must never see. Mixing them up anywhere would show in the rows.
 */

let database: TestDatabase;
let a: ProjectKeys;
let b: ProjectKeys;
let app: Awaited<ReturnType<typeof testApp>>;

beforeAll(async () => {
  database = await createTestDatabase();
  a = await createProject(database.db, 'A');
  b = await createProject(database.db, 'B');
  await insertOnly(database.db, a.projectId, [
    exposure('s1', 0, 'shared-name', 'control'),
    pageview('s1', 1),
    conversion('s1', 2, 'a-goal'),
  ]);
  await insertOnly(database.db, b.projectId, [
    exposure('s1', 0, 'shared-name', 'treatment'),
    pageview('s1', 3),
    conversion('s1', 4, 'b-goal'),
    exposure('s2', 0, 'b-secret-experiment', 'x'),
  ]);
  app = await testApp(database.db, 0);
});

afterAll(async () => {
  await app?.close();
  await database?.drop();
});

const get = (url: string, headers: Record<string, string> = {}) => app.inject({ method: 'GET', url, headers });
const RANGE = 'from=2025-01-01T00:00:00Z&to=2025-02-01T00:00:00Z';
const URLS = ['/v1/experiments/shared-name/export?format=csv', `/v1/export?format=ndjson&${RANGE}`];

describe('the read key on the exports', () => {
  it.each(URLS)('is required on %s: 401 with WWW-Authenticate', async (url) => {
    const response = await get(url);
    expect(response.statusCode).toBe(401);
    expect(response.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(response.headers['content-disposition']).toBeUndefined();
  });

  it.each(URLS)('refuses an unknown key on %s with 401', async (url) => {
    expect((await get(url, bearer(generateKey('read')))).statusCode).toBe(401);
  });

  it.each(URLS)("refuses the project's write key on %s with 403", async (url) => {
    const response = await get(url, bearer(a.writeKey));
    expect(response.statusCode).toBe(403);
    expect(response.json().message).toMatch(/needs the project's read key/);
  });

  it('is checked before the parameters', async () => {
    expect((await get('/v1/experiments/x/export?format=xlsx')).statusCode).toBe(401);
    expect((await get('/v1/export')).statusCode).toBe(401);
  });

  it('stops working once rotated', async () => {
    const c = await createProject(database.db, 'C');
    await insertOnly(database.db, c.projectId, [exposure('s1', 0, 'c-exp', 'v')]);
    expect((await get('/v1/experiments/c-exp/export?format=csv', bearer(c.readKey))).statusCode).toBe(200);
    await rotateKey(database.db, c.projectId, 'read');
    expect((await get('/v1/experiments/c-exp/export?format=csv', bearer(c.readKey))).statusCode).toBe(401);
  });
});

describe('a key exports only its own project', () => {
  it("gives each project only its own rows of an experiment id both use", async () => {
    const rowsA = parseNdjson((await get('/v1/experiments/shared-name/export?format=ndjson', bearer(a.readKey))).body);
    const rowsB = parseNdjson((await get('/v1/experiments/shared-name/export?format=ndjson', bearer(b.readKey))).body);
    expect(rowsA.map((r) => [r.eventType, r.variantKey ?? r.goal])).toEqual([
      ['EXPOSURE', 'control'],
      ['PAGEVIEW', null],
      ['CONVERSION', 'a-goal'],
    ]);
    expect(rowsB.map((r) => [r.eventType, r.variantKey ?? r.goal])).toEqual([
      ['EXPOSURE', 'treatment'],
      ['PAGEVIEW', null],
      ['CONVERSION', 'b-goal'],
    ]);
  });

  it("answers 404 for another project's experiment, exactly as for one that does not exist", async () => {
    const other = await get('/v1/experiments/b-secret-experiment/export?format=csv', bearer(a.readKey));
    const none = await get('/v1/experiments/no-such-experiment/export?format=csv', bearer(a.readKey));
    expect(other.statusCode).toBe(404);
    expect(other.json().message).toBe(none.json().message.replace('no-such-experiment', 'b-secret-experiment'));
  });

  it("leaves every other project's events out of the project export", async () => {
    const rows = parseNdjson((await get(`/v1/export?format=ndjson&${RANGE}`, bearer(a.readKey))).body);
    expect(rows).toHaveLength(3);
    expect(rows.some((r) => r.goal === 'b-goal' || r.variantKey === 'treatment' || r.sessionId === 's2')).toBe(false);
  });
});
