import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@tally/testing';
import { expectOneSentenceError, tally } from './helpers.js';

describe('tally project, used wrongly', () => {
  let database: TestDatabase;
  let env: Record<string, string>;

  beforeAll(async () => {
    database = await createTestDatabase();
    env = { DATABASE_URL: database.url };
  });
  afterAll(() => database?.drop());

  const projectCount = async () => (await database.pool.query('SELECT count(*)::int AS n FROM projects')).rows[0].n as number;

  it.each([
    [['project', 'create'], /--name/],
    [['project', 'create', '--json'], /--name/],
    [['project', 'create', '--name', '   '], /needs a name/],
    [['project', 'create', '--name', 'x'.repeat(201)], /at most 200/],
    [['project', 'rotate-key', '--kind', 'write'], /--project/],
    [['project', 'rotate-key', '--project', 'not-a-uuid', '--kind', 'write'], /UUID/],
    [['project', 'rotate-key', '--project', '00000000-0000-4000-8000-000000000000'], /--kind/],
    [['project', 'rotate-key', '--project', '00000000-0000-4000-8000-000000000000', '--kind', 'owner'], /write, read, admin/],
    [['project', 'delete'], /unknown command/],
  ])('refuses `tally %s` as a usage error and changes nothing', async (argv, pattern) => {
    expectOneSentenceError(await tally(argv, env), pattern, 2);
    expect(await projectCount()).toBe(0);
  });

  it('says when the project to rotate a key of does not exist', async () => {
    const result = await tally(['project', 'rotate-key', '--project', '00000000-0000-4000-8000-000000000000', '--kind', 'read', '--json'], env);
    expectOneSentenceError(result, /^No project with id 00000000-0000-4000-8000-000000000000; .*project list/);
  });
});
