import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addJob } from '@tally/queue';
import type { RunningWorker } from '../src/app.js';
import { byEventId, createFixture, makeEvents, settled, storedEvents, type Fixture } from './fixtures.js';

describe('ingest-batch jobs', () => {
  let fx: Fixture;
  let worker: RunningWorker;

  beforeAll(async () => {
    fx = await createFixture();
    worker = await fx.start();
  });
  afterAll(() => fx?.cleanup());

  it('stores every event of a batch exactly as queued', async () => {
    const projectId = randomUUID();
    const events = makeEvents(300);
    const job = await addJob(fx.queues, 'ingest-batch', { projectId, receivedAt: Date.now(), events });

    const done = await settled(fx.queues.ingest, job.id);
    expect(await done.getState()).toBe('completed');
    expect(done.returnvalue).toEqual({ inserted: 300, duplicates: 0 });
    expect(await storedEvents(fx.database, projectId)).toEqual(byEventId(events));
  });

  it('stores a batch enqueued twice only once, and says so in the second result', async () => {
    const projectId = randomUUID();
    const events = makeEvents(50);
    const payload = { projectId, receivedAt: Date.now(), events };

    const first = await settled(fx.queues.ingest, (await addJob(fx.queues, 'ingest-batch', payload)).id);
    const second = await settled(fx.queues.ingest, (await addJob(fx.queues, 'ingest-batch', payload)).id);

    expect(first.returnvalue).toEqual({ inserted: 50, duplicates: 0 });
    expect(second.returnvalue).toEqual({ inserted: 0, duplicates: 50 });
    expect(await storedEvents(fx.database, projectId)).toEqual(byEventId(events));
  });

  it('counts events partly seen before as duplicates and stores the rest', async () => {
    const projectId = randomUUID();
    const events = makeEvents(20);
    await settled(fx.queues.ingest, (await addJob(fx.queues, 'ingest-batch', { projectId, receivedAt: Date.now(), events: events.slice(0, 12) })).id);
    const overlapping = await settled(
      fx.queues.ingest,
      (await addJob(fx.queues, 'ingest-batch', { projectId, receivedAt: Date.now(), events: events.slice(8) })).id,
    );

    expect(overlapping.returnvalue).toEqual({ inserted: 8, duplicates: 4 });
    expect(await storedEvents(fx.database, projectId)).toEqual(byEventId(events));
  });

  it('keeps one row for an event repeated inside one batch', async () => {
    const projectId = randomUUID();
    const [event] = makeEvents(1);
    const done = await settled(
      fx.queues.ingest,
      (await addJob(fx.queues, 'ingest-batch', { projectId, receivedAt: Date.now(), events: [event!, event!] })).id,
    );

    expect(done.returnvalue).toEqual({ inserted: 1, duplicates: 1 });
    expect(await storedEvents(fx.database, projectId)).toEqual([event]);
  });

  it('keeps the same event id at two client times, and the same id in two projects, apart', async () => {
    const [a, b] = [randomUUID(), randomUUID()];
    const [event] = makeEvents(1);
    const later = { ...event!, clientTimestamp: event!.clientTimestamp + 1, timestamp: event!.timestamp + 1 };
    await settled(fx.queues.ingest, (await addJob(fx.queues, 'ingest-batch', { projectId: a, receivedAt: Date.now(), events: [event!, later] })).id);
    await settled(fx.queues.ingest, (await addJob(fx.queues, 'ingest-batch', { projectId: b, receivedAt: Date.now(), events: [event!] })).id);

    expect(await storedEvents(fx.database, a)).toHaveLength(2);
    expect(await storedEvents(fx.database, b)).toEqual([event]);
  });

  it('reports what it did in the Prometheus metrics', async () => {
    const metrics = await worker.registry.metrics();
    // 300 + 50 + 8 + 12 + 1 + 3 stored; 50 + 4 + 1 skipped, by the tests above.
    expect(metrics).toMatch(/^tally_worker_events_inserted_total 374$/m);
    expect(metrics).toMatch(/^tally_worker_events_duplicate_total 55$/m);
    expect(metrics).toMatch(/^tally_worker_jobs_completed_total\{name="ingest-batch"\} 8$/m);
    expect(metrics).toMatch(/^tally_worker_insert_duration_seconds_count 8$/m);
    expect(metrics).toMatch(/^tally_queue_jobs\{queue="ingest",state="waiting"\} 0$/m);
  });
});
