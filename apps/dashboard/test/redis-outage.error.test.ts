import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis } from '@tally/queue';
import { startTcpProxy, waitFor, type TcpProxy } from '@tally/testing';
import { basic, createFixture, PASSWORD, USER, type DashboardApp, type Fixture } from './fixture.js';

const authorization = basic(USER, PASSWORD);

describe('the dashboard when Redis cannot be reached at all', () => {
  let fixture: Fixture;
  let app: DashboardApp;

  beforeAll(async () => {
    fixture = await createFixture();
    // Nothing listens on port 1: every connection attempt is refused.
    app = await fixture.build({}, { connection: createRedis('redis://127.0.0.1:1', 'producer') });
  });
  afterAll(() => fixture?.cleanup());

  it('reports not ready, naming Redis', async () => {
    const response = await app.inject({ url: '/readyz' });
    expect(response.statusCode).toBe(503);
    expect(response.json()).toMatchObject({ status: 'not ready' });
    expect(response.json().checks.redis).not.toBe('ok');
  });

  it('answers board requests with an error saying Redis is unavailable, instead of hanging', async () => {
    for (let i = 0; i < 2; i++) {
      const response = await app.inject({ url: '/api/queues', headers: { authorization } });
      expect(response.statusCode).toBe(503);
      expect(response.json()).toMatchObject({ message: 'Redis is unavailable; retry shortly.' });
    }
    expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
  });

  it('still asks for a login first', async () => {
    expect((await app.inject({ url: '/api/queues' })).statusCode).toBe(401);
  });
});

describe('the dashboard when Redis goes away and comes back', () => {
  let fixture: Fixture;
  let proxy: TcpProxy;
  let app: DashboardApp;

  beforeAll(async () => {
    fixture = await createFixture();
    proxy = await startTcpProxy(fixture.prefix.redisUrl, 6379);
    app = await fixture.build({}, { connection: createRedis(proxy.url, 'producer') });
  });
  afterAll(async () => {
    await proxy?.cut();
    await fixture?.cleanup();
  });

  it('shows errors during the outage and the queues again once Redis is back', async () => {
    const list = () => app.inject({ url: '/api/queues', headers: { authorization } });
    expect((await list()).statusCode).toBe(200);

    await proxy.cut();
    const during = await list();
    expect([500, 503]).toContain(during.statusCode);
    expect(during.json()).toMatchObject({ message: 'Redis is unavailable; retry shortly.' });
    expect((await app.inject({ url: '/readyz' })).statusCode).toBe(503);

    await proxy.restore();
    await waitFor(async () => ((await list()).statusCode === 200 ? true : undefined), {
      timeoutMs: 15_000,
      intervalMs: 200,
      what: 'the board to list the queues again',
    });
  });
});
