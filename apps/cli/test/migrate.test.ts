import { afterAll, describe, expect, it } from 'vitest';
import { createDb } from '@tally/db';
import { dropDatabase, TEST_POSTGRES_URL, uniqueName } from '@tally/testing';
import { lines, tally } from './helpers.js';

describe('tally migrate', () => {
  // A database that does not exist yet: migrate creates it.
  const name = uniqueName('db');
  const url = Object.assign(new URL(TEST_POSTGRES_URL), { pathname: `/${name}` }).toString();
  afterAll(() => dropDatabase(name));

  it('creates the database, applies every migration, and says so', async () => {
    const result = await tally(['migrate'], { DATABASE_URL: url });
    expect(result).toMatchObject({ code: 0, stderr: '' });
    const [created, applied] = lines(result.stdout);
    expect(created).toBe(`Created database "${name}" on 127.0.0.1:5432.`);
    expect(applied).toMatch(/^Applied (\d+) migrations to database .*; it is up to date \((\d+) of \1\)\.$/);

    const handle = createDb(url, { max: 1 });
    try {
      const { rows } = await handle.pool.query(
        `SELECT to_regclass('projects') IS NOT NULL AND to_regclass('analytics_events') IS NOT NULL AS migrated`,
      );
      expect(rows[0]).toEqual({ migrated: true });
    } finally {
      await handle.close();
    }
  });

  it('does nothing the second time, and says the database was up to date', async () => {
    const result = await tally(['migrate'], { DATABASE_URL: url });
    expect(result.code).toBe(0);
    expect(lines(result.stdout)).toEqual([expect.stringMatching(/^Database "[^"]+" on 127\.0\.0\.1:5432 was already up to date \((\d+) of \1 migrations\)\.$/)]);
  });
});
