import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basic, createFixture, PASSWORD, USER, type DashboardApp, type Fixture } from './fixture.js';

describe('dashboard login', () => {
  let fixture: Fixture;
  let app: DashboardApp;

  beforeAll(async () => {
    fixture = await createFixture();
    app = await fixture.build();
  });
  afterAll(() => fixture?.cleanup());

  const board = ['/', '/api/queues', '/queue/ingest', '/static/images/logo.svg'];

  it.each(board)('asks for a login on %s when none is sent', async (url) => {
    const response = await app.inject({ url });
    expect(response.statusCode).toBe(401);
    expect(response.headers['www-authenticate']).toMatch(/^Basic realm="Tally dashboard"/);
    expect(response.json()).toMatchObject({ error: 'Unauthorized', message: expect.stringMatching(/DASHBOARD_USER/) });
  });

  it.each([
    ['a wrong password', USER, 'correct horse battery stapl'],
    ['a wrong user', 'admin', PASSWORD],
    ['both wrong', 'admin', 'admin'],
    ['an empty password', USER, ''],
  ])('refuses %s', async (_case, user, password) => {
    const response = await app.inject({ url: '/api/queues', headers: { authorization: basic(user, password) } });
    expect(response.statusCode).toBe(401);
    expect(response.json()).toMatchObject({ message: 'Wrong user or password.' });
    expect(response.body).not.toContain('ingest');
  });

  it('refuses a credential that is not basic auth', async () => {
    const response = await app.inject({ url: '/api/queues', headers: { authorization: `Bearer ${PASSWORD}` } });
    expect(response.statusCode).toBe(401);
  });

  it('lets the right user and password in', async () => {
    const response = await app.inject({ url: '/api/queues', headers: { authorization: basic(USER, PASSWORD) } });
    expect(response.statusCode).toBe(200);
  });

  it('keeps health, readiness and metrics open for probes and Prometheus', async () => {
    expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
    const ready = await app.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: 'ready', checks: { redis: 'ok' } });
    const metrics = await app.inject({ url: '/metrics' });
    expect(metrics.statusCode).toBe(200);
    expect(metrics.body).toContain('http_request_duration_seconds');
  });
});
