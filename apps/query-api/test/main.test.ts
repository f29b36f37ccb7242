import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProject, type ProjectKeys } from '@tally/db';
import { createTestDatabase, freePort, spawnApp, waitFor, type TestDatabase } from '@tally/testing';
import { exposure, store } from './fixture.js';

const start = (env: Record<string, string>) => spawnApp('query-api', env);

describe('the query-api process', () => {
  let database: TestDatabase;
  let keys: ProjectKeys;

  beforeAll(async () => {
    database = await createTestDatabase();
    keys = await createProject(database.db, 'process');
    await store(database.db, keys.projectId, [exposure('s1', 0, 'checkout', 'control')]);
  });
  afterAll(() => database?.drop());

  it('refuses to start with an invalid setting, and says which', async () => {
    const { exited, output } = start({ DATABASE_URL: database.url, PORT: 'three thousand' });
    expect(await exited).toBe(1);
    expect(output()).toMatch(/Invalid configuration:\n\s+PORT/);
    expect(output()).not.toMatch(/\n\s+at /);
  });

  it('serves results and time series to a read key, and exits cleanly on SIGTERM', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const app = start({ DATABASE_URL: database.url, HOST: '127.0.0.1', PORT: String(port) });
    try {
      await waitFor(
        async () => {
          if (app.child.exitCode !== null) throw new Error(`query-api exited with ${app.child.exitCode}: ${app.output()}`);
          return (await fetch(`${url}/readyz`)).status === 200 ? true : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 200, what: 'the query API to be ready' },
      );
      const response = await fetch(`${url}/v1/experiments/checkout/results`, {
        headers: { authorization: `Bearer ${keys.readKey}` },
      });
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({ variants: [{ variantKey: 'control', sessions: 1 }] });
      const timeseries = await fetch(`${url}/v1/experiments/checkout/timeseries?interval=hour`, {
        headers: { authorization: `Bearer ${keys.readKey}` },
      });
      expect(timeseries.status).toBe(200);
      expect(await timeseries.json()).toMatchObject({
        interval: 'hour',
        variants: [{ variantKey: 'control', points: [{ bucket: '2025-01-10T12:00:00.000Z', cumulativeSessions: 1 }] }],
      });
    } finally {
      if (app.child.exitCode === null) app.child.kill('SIGTERM');
    }
    expect(await app.exited).toBe(0);
    expect(app.output()).not.toMatch(/"level":(50|60)/);
  });
});
