import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProject, type ProjectKeys } from '@tally/db';
import { createTestDatabase, type TestDatabase } from '@tally/testing';
import { at, bearer, event, exposure, pageview, store, testApp } from './fixture.js';

/**
 * The ingest API refuses an exposure without a variant, but data imported from the
 * legacy schema can hold some. Such a session is exposed and names no variant.
 *
 *   s1 exposed to `legacy` a at 0                 → a: 1 session, 1 pageview (+1)
 *   s2 exposed at 0 without a variant, only       → exposed, named no variant: excluded
 *   s3 exposed to a at +5, and without a variant at +2 → a; first exposure +2,
 *      so its pageview at +3 counts               → a: 2 sessions, 2 pageviews
 */

let database: TestDatabase;
let keys: ProjectKeys;
let app: Awaited<ReturnType<typeof testApp>>;

beforeAll(async () => {
  database = await createTestDatabase();
  keys = await createProject(database.db, 'imported');
  await store(database.db, keys.projectId, [
    exposure('s1', 0, 'legacy', 'a'),
    pageview('s1', 1),
    event('EXPOSURE', 's2', 0, { experimentId: 'legacy' }),
    exposure('s3', 5, 'legacy', 'a'),
    event('EXPOSURE', 's3', 2, { experimentId: 'legacy' }),
    pageview('s3', 3),
    // Nothing can be said of an exposure without an experiment: it is in no experiment.
    event('EXPOSURE', 's4', 0, { variantKey: 'a' }),
  ]);
  app = await testApp(database.db);
});

afterAll(async () => {
  await app?.close();
  await database?.drop();
});

describe('exposures without a variant, as imported data may hold', () => {
  it('count their session as exposed, once, and in no variant of the list', async () => {
    const response = await app.inject({ url: '/v1/experiments', headers: bearer(keys.readKey) });
    expect(response.statusCode).toBe(200);
    expect(response.json().experiments).toEqual([
      {
        experimentId: 'legacy',
        exposedSessions: 3,
        firstExposureAt: new Date(at(0)).toISOString(),
        lastExposureAt: new Date(at(5)).toISOString(),
        variants: [{ variantKey: 'a', exposedSessions: 2 }],
      },
    ]);
  });

  it('leave a session that named no variant out of every variant', async () => {
    const response = await app.inject({ url: '/v1/experiments/legacy/results', headers: bearer(keys.readKey) });
    expect(response.json()).toMatchObject({
      excludedSessions: 1,
      variants: [
        { variantKey: 'a', sessions: 2, pageviewSessions: 2, pageviews: 2, convertedSessions: 0, conversions: 0, conversionRate: 0 },
      ],
    });
  });
});
