import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eq } from 'drizzle-orm';
import { createProject, generateKey, hashKey, rotateKey, type ProjectKeys } from '@tally/db';
import { projects } from '@tally/db/schema';
import { createTestDatabase, type TestDatabase } from '@tally/testing';
import { bearer, exposure, store, testApp } from './fixture.js';

let database: TestDatabase;
let a: ProjectKeys;
let b: ProjectKeys;
let app: Awaited<ReturnType<typeof testApp>>;

beforeAll(async () => {
  database = await createTestDatabase();
  a = await createProject(database.db, 'A');
  b = await createProject(database.db, 'B');
  await store(database.db, a.projectId, [exposure('s1', 0, 'shared-name', 'control')]);
  await store(database.db, b.projectId, [
    exposure('s1', 0, 'shared-name', 'treatment'),
    exposure('s2', 0, 'b-secret-experiment', 'x'),
  ]);
  app = await testApp(database.db);
});

afterAll(async () => {
  await app?.close();
  await database?.drop();
});

const get = (url: string, headers: Record<string, string> = {}) => app.inject({ method: 'GET', url, headers });

describe('the read key', () => {
  it.each([
    ['no Authorization header', {}],
    ['another scheme', { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }],
    ['a bearer without a key', { authorization: 'Bearer ' }],
  ])('is required: %s answers 401 saying how to send it', async (_case, headers) => {
    const response = await get('/v1/experiments', headers);
    expect(response.statusCode).toBe(401);
    expect(response.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(response.json()).toEqual({
      statusCode: 401,
      error: 'Unauthorized',
      message: "Send the project's read key in the header `Authorization: Bearer <read key>`.",
    });
  });

  it.each([
    ['a well-formed read key nobody has', generateKey('read')],
    ['a well-formed write key nobody has', generateKey('write')],
    ['a string that is no key at all', 'hunter2'],
    ['a very long string', 'x'.repeat(5_000)],
  ])('refuses %s with 401', async (_case, key) => {
    const response = await get('/v1/experiments', bearer(key));
    expect(response.statusCode).toBe(401);
    expect(response.json().message).toMatch(/^Unknown read key/);
  });

  it.each(['/v1/experiments', '/v1/experiments/shared-name/results', '/v1/experiments/shared-name/timeseries'])(
    "refuses the project's write key on %s with 403, saying a read key is needed",
    async (url) => {
      const response = await get(url, bearer(a.writeKey));
      expect(response.statusCode).toBe(403);
      expect(response.json()).toEqual({
        statusCode: 403,
        error: 'Forbidden',
        message: expect.stringMatching(/write key.*needs the project's read key/),
      });
      expect(response.body).not.toContain(a.writeKey);
    },
  );

  it('takes the scheme name in any case', async () => {
    expect((await get('/v1/experiments', { authorization: `bearer ${a.readKey}` })).statusCode).toBe(200);
  });

  it('is checked before the parameters, so nothing is said about a request without one', async () => {
    expect((await get('/v1/experiments//results?goal=')).statusCode).toBe(401);
    expect((await get('/v1/experiments/x/timeseries?interval=week')).statusCode).toBe(401);
  });

  it('answers with no-store and nosniff even when refused', async () => {
    const response = await get('/v1/experiments');
    expect(response.headers['cache-control']).toBe('no-store');
    expect(response.headers['x-content-type-options']).toBe('nosniff');
  });
});

describe('a key sees only its own project', () => {
  it("does not list another project's experiments", async () => {
    const listed = (await get('/v1/experiments', bearer(a.readKey))).json().experiments;
    expect(listed.map((e: { experimentId: string }) => e.experimentId)).toEqual(['shared-name']);
    expect(listed[0]).toMatchObject({ exposedSessions: 1, excludedSessions: 0, variants: [{ variantKey: 'control', sessions: 1 }] });
  });

  it("finds no experiment of another project, exactly as if it did not exist", async () => {
    const foreign = await get('/v1/experiments/b-secret-experiment/results', bearer(a.readKey));
    const missing = await get('/v1/experiments/b-nothing-at-all/results', bearer(a.readKey));
    expect(foreign.statusCode).toBe(404);
    expect(missing.statusCode).toBe(404);
    expect(foreign.json().message.replace('b-secret-experiment', 'X')).toBe(missing.json().message.replace('b-nothing-at-all', 'X'));
  });

  it("finds no time series of another project's experiment, exactly as if it did not exist", async () => {
    const foreign = await get('/v1/experiments/b-secret-experiment/timeseries', bearer(a.readKey));
    const missing = await get('/v1/experiments/b-nothing-at-all/timeseries', bearer(a.readKey));
    expect(foreign.statusCode).toBe(404);
    expect(missing.statusCode).toBe(404);
    expect(foreign.json().message.replace('b-secret-experiment', 'X')).toBe(missing.json().message.replace('b-nothing-at-all', 'X'));
  });

  it('counts only its own sessions for an experiment id both projects use', async () => {
    const ofA = (await get('/v1/experiments/shared-name/results', bearer(a.readKey))).json();
    const ofB = (await get('/v1/experiments/shared-name/results', bearer(b.readKey))).json();
    expect(ofA).toMatchObject({ excludedSessions: 0, variants: [{ variantKey: 'control', sessions: 1 }] });
    expect(ofB).toMatchObject({ excludedSessions: 0, variants: [{ variantKey: 'treatment', sessions: 1 }] });
    const seriesOfA = (await get('/v1/experiments/shared-name/timeseries', bearer(a.readKey))).json();
    expect(seriesOfA.variants).toMatchObject([{ variantKey: 'control', points: [{ sessions: 1, cumulativeSessions: 1 }] }]);
  });
});

describe('key rotation', () => {
  it('refuses a rotated read key at once when keys are not remembered', async () => {
    const project = await createProject(database.db, 'rotating');
    const uncached = await testApp(database.db, 0);
    try {
      expect((await uncached.inject({ url: '/v1/experiments', headers: bearer(project.readKey) })).statusCode).toBe(200);
      const newKey = await rotateKey(database.db, project.projectId, 'read');
      expect((await uncached.inject({ url: '/v1/experiments', headers: bearer(project.readKey) })).statusCode).toBe(401);
      expect((await uncached.inject({ url: '/v1/experiments', headers: bearer(newKey!) })).statusCode).toBe(200);
    } finally {
      await uncached.close();
    }
  });

  it('remembers a read key it found for the configured time, so a rotated key lasts at most that long', async () => {
    const project = await createProject(database.db, 'remembered');
    const cached = await testApp(database.db, 300_000);
    try {
      expect((await cached.inject({ url: '/v1/experiments', headers: bearer(project.readKey) })).statusCode).toBe(200);
      const newKey = await rotateKey(database.db, project.projectId, 'read');
      expect((await cached.inject({ url: '/v1/experiments', headers: bearer(project.readKey) })).statusCode).toBe(200);
      // A key the process has not seen is looked up, never refused from memory.
      expect((await cached.inject({ url: '/v1/experiments', headers: bearer(newKey!) })).statusCode).toBe(200);
    } finally {
      await cached.close();
    }
  });

  it('does not remember a refused key: once it becomes a read key it works at once', async () => {
    const cached = await testApp(database.db, 300_000);
    try {
      const project = await createProject(database.db, 'late');
      const key = generateKey('read');
      expect((await cached.inject({ url: '/v1/experiments', headers: bearer(key) })).statusCode).toBe(401);
      await database.db.update(projects).set({ readKeyHash: hashKey(key) }).where(eq(projects.id, project.projectId));
      expect((await cached.inject({ url: '/v1/experiments', headers: bearer(key) })).statusCode).toBe(200);
    } finally {
      await cached.close();
    }
  });
});

describe('open routes', () => {
  it.each(['/healthz', '/readyz', '/metrics', '/openapi.json', '/docs'])('%s needs no key', async (url) => {
    const response = await get(url);
    expect(response.statusCode).toBe(200);
  });
});
