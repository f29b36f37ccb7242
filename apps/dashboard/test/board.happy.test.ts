import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUEUES } from '@tally/queue';
import { basic, createFixture, failJob, PASSWORD, USER, type DashboardApp, type Fixture, type QueuesResponse } from './fixture.js';

describe('the queue board', () => {
  let fixture: Fixture;
  let app: DashboardApp;
  const authorization = basic(USER, PASSWORD);

  beforeAll(async () => {
    fixture = await createFixture();
    app = await fixture.build();
    await fixture.queues.ingest.add('ingest-batch', { marker: 'board-test' }, { jobId: 'job-on-the-board' });
  });
  afterAll(() => fixture?.cleanup());

  it('lists every Tally queue, under the configured prefix, with the jobs in it', async () => {
    const response = await app.inject({
      url: '/api/queues?activeQueue=ingest&status=waiting&page=1',
      headers: { authorization },
    });
    expect(response.statusCode).toBe(200);
    const body = response.json<QueuesResponse>();
    expect(body.queues.map((queue) => queue.name).sort()).toEqual(Object.values(QUEUES).sort());
    const ingest = body.queues.find((queue) => queue.name === 'ingest');
    expect(ingest?.counts.waiting).toBe(1);
    expect(ingest?.jobs).toEqual([expect.objectContaining({ id: 'job-on-the-board', name: 'ingest-batch', data: { marker: 'board-test' } })]);
    expect(body.queues.find((queue) => queue.name === 'maintenance')?.counts.waiting).toBe(0);
  });

  it('serves the Bull Board page at the root', async () => {
    const response = await app.inject({ url: '/', headers: { authorization } });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/text\/html/);
    expect(response.body).toContain('Tally queues');
  });

  it("serves the page's scripts and styles to the logged-in operator", async () => {
    const page = await app.inject({ url: '/', headers: { authorization } });
    const assets = [...page.body.matchAll(/(?:src|href)="(static\/[^"]+\.(?:js|css))"/g)].map((match) => match[1]!);
    expect(assets.length).toBeGreaterThan(1);
    for (const asset of assets) {
      expect((await app.inject({ url: `/${asset}`, headers: { authorization } })).statusCode).toBe(200);
      expect((await app.inject({ url: `/${asset}` })).statusCode).toBe(401);
    }
  });

  it('lets an operator retry a failed job from the board', async () => {
    const job = await failJob(fixture, 'maintenance', 'failed-on-the-board');
    expect(await fixture.queues.maintenance.getJobState(job.id!)).toBe('failed');

    const response = await app.inject({
      method: 'PUT',
      url: `/api/queues/maintenance/${job.id}/retry`,
      headers: { authorization },
    });
    expect(response.statusCode).toBe(204);
    expect(await fixture.queues.maintenance.getJobState(job.id!)).toBe('waiting');
  });
});

describe('the queue board in read-only mode', () => {
  let fixture: Fixture;

  beforeAll(async () => {
    fixture = await createFixture();
  });
  afterAll(() => fixture?.cleanup());

  it('shows the queues but refuses to change jobs', async () => {
    const app = await fixture.build({ DASHBOARD_READ_ONLY: true });
    const authorization = basic(USER, PASSWORD);
    const list = await app.inject({ url: '/api/queues', headers: { authorization } });
    expect(list.statusCode).toBe(200);
    expect(list.json<QueuesResponse>().queues.every((queue) => queue.readOnlyMode)).toBe(true);

    await fixture.queues.ingest.add('ingest-batch', {}, { jobId: 'kept' });
    const clean = await app.inject({ method: 'PUT', url: '/api/queues/ingest/empty', headers: { authorization } });
    expect(clean.statusCode).toBe(405);
    expect(await fixture.queues.ingest.getJobState('kept')).toBe('waiting');
  });
});
