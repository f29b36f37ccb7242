import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeEventRows } from '@tally/db';
import { addJob, batchRowsKey } from '@tally/queue';
import type { RunningWorker } from '../src/app.js';
import { waitFor } from '@tally/testing';
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
    const job = await fx.queueBatch(projectId, events);

    const done = await settled(fx.queues.ingest, job.id);
    expect(await done.getState()).toBe('completed');
    expect(done.returnvalue).toEqual({ inserted: 300, duplicates: 0 });
    expect(await storedEvents(fx.database, projectId)).toEqual(byEventId(events));
  });

  it('stores a batch enqueued twice only once, and says so in the second result', async () => {
    const projectId = randomUUID();
    const events = makeEvents(50);
    const receivedAt = Date.now();

    const first = await settled(fx.queues.ingest, (await fx.queueBatch(projectId, events, receivedAt)).id);
    const second = await settled(fx.queues.ingest, (await fx.queueBatch(projectId, events, receivedAt)).id);

    expect(first.returnvalue).toEqual({ inserted: 50, duplicates: 0 });
    expect(second.returnvalue).toEqual({ inserted: 0, duplicates: 50 });
    expect(await storedEvents(fx.database, projectId)).toEqual(byEventId(events));
  });

  it('counts events partly seen before as duplicates and stores the rest', async () => {
    const projectId = randomUUID();
    const events = makeEvents(20);
    await settled(fx.queues.ingest, (await fx.queueBatch(projectId, events.slice(0, 12))).id);
    const overlapping = await settled(
      fx.queues.ingest,
      (await fx.queueBatch(projectId, events.slice(8))).id,
    );

    expect(overlapping.returnvalue).toEqual({ inserted: 8, duplicates: 4 });
    expect(await storedEvents(fx.database, projectId)).toEqual(byEventId(events));
  });

  it('keeps one row for an event repeated inside one batch', async () => {
    const projectId = randomUUID();
    const [event] = makeEvents(1);
    const done = await settled(
      fx.queues.ingest,
      (await fx.queueBatch(projectId, [event!, event!])).id,
    );

    expect(done.returnvalue).toEqual({ inserted: 1, duplicates: 1 });
    expect(await storedEvents(fx.database, projectId)).toEqual([event]);
  });

  it('keeps the same event id at two client times, and the same id in two projects, apart', async () => {
    const [a, b] = [randomUUID(), randomUUID()];
    const [event] = makeEvents(1);
    const later = { ...event!, clientTimestamp: event!.clientTimestamp + 1, timestamp: event!.timestamp + 1 };
    await settled(fx.queues.ingest, (await fx.queueBatch(a, [event!, later])).id);
    await settled(fx.queues.ingest, (await fx.queueBatch(b, [event!])).id);

    expect(await storedEvents(fx.database, a)).toHaveLength(2);
    expect(await storedEvents(fx.database, b)).toEqual([event]);
  });

  it('stores a batch of COPY size, and one sent again whole or in part, once', async () => {
    const projectId = randomUUID();
    const events = makeEvents(1_500);
    const first = await settled(fx.queues.ingest, (await fx.queueBatch(projectId, events.slice(0, 1_200))).id);
    const again = await settled(fx.queues.ingest, (await fx.queueBatch(projectId, events)).id);

    expect(first.returnvalue).toEqual({ inserted: 1_200, duplicates: 0 });
    expect(again.returnvalue).toEqual({ inserted: 300, duplicates: 1_200 });
    expect(await storedEvents(fx.database, projectId)).toEqual(byEventId(events));
  });

  it('stores a batch queued as events, as an ingest API before rows queued it (jobs waiting through an upgrade)', async () => {
    const projectId = randomUUID();
    const events = makeEvents(40);
    const done = await settled(fx.queues.ingest, (await addJob(fx.queues, 'ingest-batch', { projectId, receivedAt: Date.now(), events })).id);

    expect(done.returnvalue).toEqual({ inserted: 40, duplicates: 0 });
    expect(await storedEvents(fx.database, projectId)).toEqual(byEventId(events));
  });

  it('stores a batch queued with its rows inside the job, as an earlier version did, then keeps only its counts', async () => {
    const projectId = randomUUID();
    const events = makeEvents(30);
    const receivedAt = Date.now();
    const rows = encodeEventRows(projectId, receivedAt, events);
    const job = await addJob(fx.queues, 'ingest-batch', { projectId, receivedAt, count: 30, rows });
    await settled(fx.queues.ingest, job.id);
    const done = await waitFor(async () => {
      const read = await fx.queues.ingest.getJob(job.id!);
      return read && !('rows' in read.data) ? read : undefined;
    }, { what: 'the stored rows to leave the completed job' });

    expect(done.data).toEqual({ projectId, receivedAt, count: 30 });
    expect(done.returnvalue).toEqual({ inserted: 30, duplicates: 0 });
    expect(await storedEvents(fx.database, projectId)).toEqual(byEventId(events));
  });

  it('reports what it did in the Prometheus metrics', async () => {
    const metrics = await worker.registry.metrics();
    // 300 + 50 + 8 + 12 + 1 + 3 + 1,500 + 40 + 30 stored; 50 + 4 + 1 + 1,200 skipped, by the tests above.
    expect(metrics).toMatch(/^tally_worker_events_inserted_total 1944$/m);
    expect(metrics).toMatch(/^tally_worker_events_duplicate_total 1255$/m);
    expect(metrics).toMatch(/^tally_worker_jobs_completed_total\{name="ingest-batch"\} 12$/m);
    expect(metrics).toMatch(/^tally_worker_insert_duration_seconds_count 12$/m);
    expect(metrics).toMatch(/^tally_queue_jobs\{queue="ingest",state="waiting"\} 0$/m);
  });

  // After the metrics above, which count this file's jobs.
  it("keeps a queued batch's rows beside its job, and deletes them once they are stored", async () => {
    const projectId = randomUUID();
    const events = makeEvents(1_200);
    const redis = fx.producer;
    // Paused while the queued batch is weighed: the worker may otherwise have stored it already.
    await fx.queues.ingest.pause();
    let job: Awaited<ReturnType<typeof fx.queueBatch>>;
    let rowsKey: string;
    let jobBytes: number;
    let rowsBytes: number;
    try {
      job = await fx.queueBatch(projectId, events);
      rowsKey = batchRowsKey(fx.prefix.prefix, job.data.rowsId);
      jobBytes = Number(await redis.memory('USAGE', `${fx.prefix.prefix}:ingest:${job.id}`));
      rowsBytes = Number(await redis.strlen(rowsKey));
    } finally {
      await fx.queues.ingest.resume();
    }
    expect(rowsBytes).toBeGreaterThan(200_000);
    expect(jobBytes).toBeLessThan(4_096);

    const done = await settled(fx.queues.ingest, job.id);
    expect(done.returnvalue).toEqual({ inserted: 1_200, duplicates: 0 });
    await waitFor(async () => (await redis.exists(rowsKey)) === 0 || undefined, { what: "the stored batch's rows to be deleted" });
    expect(done.data).toEqual({ projectId, receivedAt: job.data.receivedAt, count: 1_200, rowsId: job.data.rowsId });
    expect(await storedEvents(fx.database, projectId)).toEqual(byEventId(events));
  });

  it('refuses to run a completed job again, as its rows are gone, and changes nothing', async () => {
    const projectId = randomUUID();
    const events = makeEvents(10);
    const job = await fx.queueBatch(projectId, events);
    const done = await settled(fx.queues.ingest, job.id);
    const rowsKey = batchRowsKey(fx.prefix.prefix, job.data.rowsId);
    await waitFor(async () => (await fx.producer.exists(rowsKey)) === 0 || undefined, { what: "the stored batch's rows to be deleted" });

    await done.retry('completed');
    const again = await settled(fx.queues.ingest, job.id);
    expect(await again.getState()).toBe('failed');
    expect(again.failedReason).toBe(
      `The batch's rows (${job.data.rowsId}) are no longer in Redis: it was stored already, or failed too long ago`,
    );
    expect(await storedEvents(fx.database, projectId)).toEqual(byEventId(events));
  });
});
