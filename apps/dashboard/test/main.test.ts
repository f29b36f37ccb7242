import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestQueuePrefix, freePort, spawnApp, waitFor, type TestQueuePrefix } from '@tally/testing';
import { basic } from './fixture.js';

const start = (env: Record<string, string>) => spawnApp('dashboard', env);

describe('the dashboard process', () => {
  let prefix: TestQueuePrefix;

  beforeAll(() => {
    prefix = createTestQueuePrefix();
  });
  afterAll(() => prefix?.remove());

  it('refuses to start in production without credentials, and says what to set', async () => {
    const { exited, output } = start({ QUEUE_PREFIX: prefix.prefix });
    expect(await exited).toBe(1);
    expect(output()).toMatch(/DASHBOARD_USER and DASHBOARD_PASSWORD/);
    expect(output()).not.toMatch(/\n\s+at /);
  });

  it('serves the board behind its login, and exits cleanly on SIGTERM', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const app = start({
      REDIS_URL: prefix.redisUrl,
      QUEUE_PREFIX: prefix.prefix,
      HOST: '127.0.0.1',
      PORT: String(port),
      DASHBOARD_USER: 'ops',
      DASHBOARD_PASSWORD: 'process-secret',
    });
    try {
      await waitFor(
        async () => {
          if (app.child.exitCode !== null) throw new Error(`dashboard exited with ${app.child.exitCode}: ${app.output()}`);
          return (await fetch(`${url}/readyz`)).status === 200 ? true : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 200, what: 'the dashboard to be ready' },
      );
      expect((await fetch(`${url}/api/queues`)).status).toBe(401);
      const response = await fetch(`${url}/api/queues`, { headers: { authorization: basic('ops', 'process-secret') } });
      expect(response.status).toBe(200);
    } finally {
      if (app.child.exitCode === null) app.child.kill('SIGTERM');
    }
    expect(await app.exited).toBe(0);
    expect(app.output()).not.toMatch(/"level":(50|60)/);
  });

  it('starts without credentials on a development machine, warning loudly', async () => {
    const port = await freePort();
    const app = start({
      TALLY_ENV: 'development',
      REDIS_URL: prefix.redisUrl,
      QUEUE_PREFIX: prefix.prefix,
      HOST: '127.0.0.1',
      PORT: String(port),
    });
    try {
      await waitFor(
        async () => {
          if (app.child.exitCode !== null) throw new Error(`dashboard exited with ${app.child.exitCode}: ${app.output()}`);
          return (await fetch(`http://127.0.0.1:${port}/api/queues`)).status === 200 ? true : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 200, what: 'the open dashboard to serve' },
      );
      expect(app.output()).toMatch(/DASHBOARD IS OPEN/);
    } finally {
      if (app.child.exitCode === null) app.child.kill('SIGTERM');
    }
    expect(await app.exited).toBe(0);
  });
});
