import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IngestBatchRows, StoredEvent } from '@tally/contracts';
import { encodeEventRows } from '@tally/db';
import { addJob } from '@tally/queue';
import type { RunningWorker } from '../src/app.js';
import { waitFor } from '@tally/testing';
import { byEventId, createFixture, makeEvents, settled, storedEvents, type Fixture } from './fixtures.js';

/** A batch as the ingest API queues it. */
function rowsOf(projectId: string, events: StoredEvent[], receivedAt = Date.now()): IngestBatchRows {
  return { projectId, receivedAt, count: events.length, rows: encodeEventRows(projectId, receivedAt, events) };
}

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
    const job = await addJob(fx.queues, 'ingest-batch', rowsOf(projectId, events));

    const done = await settled(fx.queues.ingest, job.id);
    expect(await done.getState()).toBe('completed');
    expect(done.returnvalue).toEqual({ inserted: 300, duplicates: 0 });
    expect(await storedEvents(fx.database, projectId)).toEqual(byEventId(events));
  });

  it('stores a batch enqueued twice only once, and says so in the second result', async () => {
    const projectId = randomUUID();
    const events = makeEvents(50);
    const payload = rowsOf(projectId, events);

    const first = await settled(fx.queues.ingest, (await addJob(fx.queues, 'ingest-batch', payload)).id);
    const second = await settled(fx.queues.ingest, (await addJob(fx.queues, 'ingest-batch', payload)).id);

    expect(first.returnvalue).toEqual({ inserted: 50, duplicates: 0 });
    expect(second.returnvalue).toEqual({ inserted: 0, duplicates: 50 });
    expect(await storedEvents(fx.database, projectId)).toEqual(byEventId(events));
  });

  it('counts events partly seen before as duplicates and stores the rest', async () => {
    const projectId = randomUUID();
    const events = makeEvents(20);
    await settled(fx.queues.ingest, (await addJob(fx.queues, 'ingest-batch', rowsOf(projectId, events.slice(0, 12)))).id);
    const overlapping = await settled(
      fx.queues.ingest,
      (await addJob(fx.queues, 'ingest-batch', rowsOf(projectId, events.slice(8)))).id,
    );

    expect(overlapping.returnvalue).toEqual({ inserted: 8, duplicates: 4 });
    expect(await storedEvents(fx.database, projectId)).toEqual(byEventId(events));
  });

  it('keeps one row for an event repeated inside one batch', async () => {
    const projectId = randomUUID();
    const [event] = makeEvents(1);
    const done = await settled(
      fx.queues.ingest,
      (await addJob(fx.queues, 'ingest-batch', rowsOf(projectId, [event!, event!]))).id,
    );

    expect(done.returnvalue).toEqual({ inserted: 1, duplicates: 1 });
    expect(await storedEvents(fx.database, projectId)).toEqual([event]);
  });

  it('keeps the same event id at two client times, and the same id in two projects, apart', async () => {
    const [a, b] = [randomUUID(), randomUUID()];
    const [event] = makeEvents(1);
    const later = { ...event!, clientTimestamp: event!.clientTimestamp + 1, timestamp: event!.timestamp + 1 };
    await settled(fx.queues.ingest, (await addJob(fx.queues, 'ingest-batch', rowsOf(a, [event!, later]))).id);
    await settled(fx.queues.ingest, (await addJob(fx.queues, 'ingest-batch', rowsOf(b, [event!]))).id);

    expect(await storedEvents(fx.database, a)).toHaveLength(2);
    expect(await storedEvents(fx.database, b)).toEqual([event]);
  });

  it('stores a batch of COPY size, and one sent again whole or in part, once', async () => {
    const projectId = randomUUID();
    const events = makeEvents(1_500);
    const first = await settled(fx.queues.ingest, (await addJob(fx.queues, 'ingest-batch', rowsOf(projectId, events.slice(0, 1_200)))).id);
    const again = await settled(fx.queues.ingest, (await addJob(fx.queues, 'ingest-batch', rowsOf(projectId, events))).id);

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

  it('reports what it did in the Prometheus metrics', async () => {
    const metrics = await worker.registry.metrics();
    // 300 + 50 + 8 + 12 + 1 + 3 + 1,500 + 40 stored; 50 + 4 + 1 + 1,200 skipped, by the tests above.
    expect(metrics).toMatch(/^tally_worker_events_inserted_total 1914$/m);
    expect(metrics).toMatch(/^tally_worker_events_duplicate_total 1255$/m);
    expect(metrics).toMatch(/^tally_worker_jobs_completed_total\{name="ingest-batch"\} 11$/m);
    expect(metrics).toMatch(/^tally_worker_insert_duration_seconds_count 11$/m);
    expect(metrics).toMatch(/^tally_queue_jobs\{queue="ingest",state="waiting"\} 0$/m);
  });

  // After the metrics above, which count this file's jobs.
  it('keeps only the counts of a completed job in Redis, not its rows', async () => {
    const projectId = randomUUID();
    const events = makeEvents(1_200);
    const payload = rowsOf(projectId, events);
    // The queues run on an ioredis connection (createQueues), which BullMQ's type does not say.
    const redis = (await fx.queues.ingest.client) as unknown as Redis;
    // Paused while the queued job is weighed: the worker may otherwise have stored it already.
    await fx.queues.ingest.pause();
    let job: Awaited<ReturnType<typeof addJob>>;
    let jobKey: string;
    let queuedBytes: number;
    try {
      job = await addJob(fx.queues, 'ingest-batch', payload);
      jobKey = `${fx.prefix.prefix}:ingest:${job.id}`;
      queuedBytes = Number(await redis.memory('USAGE', jobKey));
    } finally {
      await fx.queues.ingest.resume();
    }

    await settled(fx.queues.ingest, job.id);
    const done = await waitFor(async () => {
      const read = await fx.queues.ingest.getJob(job.id!);
      return read && !('rows' in read.data) ? read : undefined;
    }, { what: 'the stored rows to leave the completed job' });

    expect(done.data).toEqual({ projectId, receivedAt: payload.receivedAt, count: 1_200 });
    expect(done.returnvalue).toEqual({ inserted: 1_200, duplicates: 0 });
    expect(payload.rows.length).toBeGreaterThan(200_000);
    expect(queuedBytes).toBeGreaterThan(payload.rows.length);
    expect(Number(await redis.memory('USAGE', jobKey))).toBeLessThan(4_096);
    expect(await storedEvents(fx.database, projectId)).toEqual(byEventId(events));
  });

  it('refuses to run a completed job again, as it no longer holds its rows, and changes nothing', async () => {
    const projectId = randomUUID();
    const events = makeEvents(10);
    const job = await addJob(fx.queues, 'ingest-batch', rowsOf(projectId, events));
    await settled(fx.queues.ingest, job.id);
    const done = await waitFor(async () => {
      const read = await fx.queues.ingest.getJob(job.id!);
      return read && !('rows' in read.data) ? read : undefined;
    }, { what: 'the stored rows to leave the completed job' });

    await done.retry('completed');
    const again = await settled(fx.queues.ingest, job.id);
    expect(await again.getState()).toBe('failed');
    expect(again.failedReason).toMatch(/^Invalid ingest-batch payload: .*rows/);
    expect(await storedEvents(fx.database, projectId)).toEqual(byEventId(events));
  });
});
