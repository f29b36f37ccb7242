import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProject, generateKey, rotateKey, type ProjectKeys } from '@tally/db';
import { createTestDatabase, type TestDatabase } from '@tally/testing';
import { bearer, exposure, store, testApp } from './fixture.js';

let database: TestDatabase;
let a: ProjectKeys;
let b: ProjectKeys;
let adminA: string;
let adminB: string;
let app: Awaited<ReturnType<typeof testApp>>;

beforeAll(async () => {
  database = await createTestDatabase();
  a = await createProject(database.db, 'A');
  b = await createProject(database.db, 'B');
  adminA = (await rotateKey(database.db, a.projectId, 'admin'))!;
  adminB = (await rotateKey(database.db, b.projectId, 'admin'))!;
  await store(database.db, a.projectId, [exposure('s1', 0, 'checkout', 'control')]);
  app = await testApp(database.db);
});

afterAll(async () => {
  await app?.close();
  await database?.drop();
});

const url = '/v1/experiments/checkout/settings';
const put = (headers: Record<string, string>, payload: object = { name: 'Changed' }) =>
  app.inject({ method: 'PUT', url, headers, payload });
const get = (path: string, headers: Record<string, string>) => app.inject({ url: path, headers });

describe('changing settings needs the admin key', () => {
  it("refuses the project's read key with 403, saying which key is needed", async () => {
    const response = await put(bearer(a.readKey));
    expect(response.statusCode).toBe(403);
    expect(response.json().message).toBe(
      "This is the project's read key, which can only read results and settings. Changing experiment settings needs " +
        "the project's admin key (it starts with tly_a_).",
    );
  });

  it("refuses the project's write key with 403", async () => {
    const response = await put(bearer(a.writeKey));
    expect(response.statusCode).toBe(403);
    expect(response.json().message).toMatch(/^This is the project's write key, which can only send events\. Changing experiment settings needs the project's admin key/);
  });

  it.each([
    ['no key', {}, /^Send the project's admin key in the header `Authorization: Bearer <admin key>`\.$/],
    ['an admin key nobody has', bearer(generateKey('admin')), /^Unknown admin key\..*rotate-key --project <id> --kind admin/],
    ['a string that is no key', bearer('hunter2'), /^Unknown admin key/],
    ['a very long string', bearer('x'.repeat(5_000)), /^Unknown admin key/],
  ])('refuses %s with 401', async (_case, headers, message) => {
    const response = await put(headers);
    expect(response.statusCode).toBe(401);
    expect(response.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(response.json().message).toMatch(message);
  });

  it('checks the key before the body, so a refused request learns nothing about it', async () => {
    expect((await put(bearer(a.readKey), { weights: 'nonsense' })).statusCode).toBe(403);
    expect((await put({}, { weights: 'nonsense' })).statusCode).toBe(401);
  });

  it("changes only its own project's settings", async () => {
    expect((await put(bearer(adminB), { name: 'B only' })).statusCode).toBe(200);
    expect((await get(url, bearer(a.readKey))).json().name).toBeNull();
    expect((await get(url, bearer(b.readKey))).json().name).toBe('B only');
  });

  it('stops working at once when rotated (admin keys are never remembered)', async () => {
    const project = await createProject(database.db, 'rotating');
    const first = (await rotateKey(database.db, project.projectId, 'admin'))!;
    expect((await put(bearer(first))).statusCode).toBe(200);
    const second = (await rotateKey(database.db, project.projectId, 'admin'))!;
    expect((await put(bearer(first))).statusCode).toBe(401);
    expect((await put(bearer(second))).statusCode).toBe(200);
  });

  it('does not exist for a project until rotate-key makes one', async () => {
    const fresh = await createProject(database.db, 'no admin yet');
    const { rows } = await database.pool.query('SELECT admin_key_hash FROM projects WHERE id = $1', [fresh.projectId]);
    expect(rows[0].admin_key_hash).toBeNull();
  });
});

describe('what else each key may do', () => {
  it('lets the read key and the admin key read settings, and refuses the write key', async () => {
    expect((await get(url, bearer(a.readKey))).statusCode).toBe(200);
    expect((await get(url, bearer(adminA))).statusCode).toBe(200);
    const write = await get(url, bearer(a.writeKey));
    expect(write.statusCode).toBe(403);
    expect(write.json().message).toMatch(/write key.*Reading experiment settings needs the project's read key \(it starts with tly_r_\)/);
  });

  it.each(['/v1/experiments', '/v1/experiments/checkout/results', '/v1/experiments/checkout/timeseries', '/v1/experiments/checkout/export?format=csv'])(
    'refuses the admin key on %s with 403: results need the read key',
    async (path) => {
      const response = await get(path, bearer(adminA));
      expect(response.statusCode).toBe(403);
      expect(response.json().message).toBe(
        "This is the project's admin key, which can only read and change experiment settings. Reading results needs " +
          "the project's read key (it starts with tly_r_).",
      );
      expect(response.body).not.toContain(adminA);
    },
  );

  it('never echoes a key, whatever the answer', async () => {
    for (const key of [a.readKey, a.writeKey, adminA]) {
      const response = await put(bearer(key), { weights: { x: -1 } });
      expect(response.body).not.toContain(key);
    }
  });
});
