import { randomUUID } from 'node:crypto';
import type { Job } from 'bullmq';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, encodeEventRows, type DbHandle } from '@tally/db';
import { addIngestBatch, addJob, batchRowsKey, FAILED_BATCH_ROWS_TTL_MS, JOBS } from '@tally/queue';
import { waitFor } from '@tally/testing';
import { byEventId, createFixture, makeEvents, settled, storedEvents, type Fixture } from './fixtures.js';

describe('ingest-batch jobs that cannot or do not succeed at once', () => {
  let fx: Fixture;
  let workerDb: DbHandle;
  const extraPools: DbHandle[] = [];

  beforeAll(async () => {
    fx = await createFixture();
    // A pool of the worker's own, so that killing its connections spares the test's.
    workerDb = createDb(fx.database.url, { max: 4, applicationName: 'tally-worker-under-test' });
    await fx.start({ db: workerDb.db });
  });
  afterAll(async () => {
    await fx?.cleanup();
    await workerDb?.close();
    for (const pool of extraPools) await pool.close();
  });

  const ingestOptions = JOBS['ingest-batch'].options;

  it('fails an invalid payload once, with the reason, although the job allows retries', async () => {
    const job = await fx.queues.ingest.add('ingest-batch', { projectId: 'not-a-uuid', receivedAt: Date.now(), events: [] }, ingestOptions);

    const failed = await settled(fx.queues.ingest, job.id);
    expect(await failed.getState()).toBe('failed');
    expect(failed.attemptsMade).toBe(1);
    expect(failed.opts.attempts).toBe(10);
    expect(failed.failedReason).toMatch(/^Invalid ingest-batch payload: /);
    expect(failed.failedReason).toMatch(/projectId/);
    expect(failed.failedReason).toMatch(/events/);
    expect(await fx.queues.ingest.getFailed()).toEqual(expect.arrayContaining([expect.objectContaining({ id: job.id })]));
  });

  it('names the invalid field of an event in the reason, and stores nothing of the batch', async () => {
    const projectId = randomUUID();
    const [good, bad] = makeEvents(2);
    const job = await fx.queues.ingest.add(
      'ingest-batch',
      { projectId, receivedAt: Date.now(), events: [good, { ...bad, eventType: 'CLICK' }] },
      ingestOptions,
    );

    const failed = await settled(fx.queues.ingest, job.id);
    expect(failed.attemptsMade).toBe(1);
    expect(failed.failedReason).toMatch(/events\.1\.eventType/);
    expect(await storedEvents(fx.database, projectId)).toEqual([]);
  });

  it('fails a job of an unknown name once', async () => {
    const job = await fx.queues.ingest.add('drop-everything', {}, ingestOptions);

    const failed = await settled(fx.queues.ingest, job.id);
    expect(await failed.getState()).toBe('failed');
    expect(failed.attemptsMade).toBe(1);
    expect(failed.failedReason).toBe('No handler for job "drop-everything" on queue "ingest"');
  });

  it('fails a known job sent to the wrong queue once', async () => {
    const job = await fx.queues.ingest.add('maintain-partitions', {}, ingestOptions);

    const failed = await settled(fx.queues.ingest, job.id);
    expect(failed.attemptsMade).toBe(1);
    expect(failed.failedReason).toMatch(/No handler for job "maintain-partitions" on queue "ingest"/);
  });

  it('fails once a batch that Postgres refuses as data, without storing any of it', async () => {
    const projectId = randomUUID();
    const [good, bad] = makeEvents(2);
    const job = await addJob(fx.queues, 'ingest-batch', {
      projectId,
      receivedAt: Date.now(),
      // Valid JSON that jsonb cannot hold.
      events: [good!, { ...bad!, properties: { note: 'nul \u0000 here' } }],
    });

    const failed = await settled(fx.queues.ingest, job.id);
    expect(failed.attemptsMade).toBe(1);
    expect(failed.failedReason).toMatch(/^Postgres refused the batch: /);
    expect(await storedEvents(fx.database, projectId)).toEqual([]);
  });

  it('fails once a batch whose rows are malformed, unnest or COPY size, storing none of it, and keeps the rows while it can be retried', async () => {
    const projectId = randomUUID();
    const receivedAt = Date.now();
    const small = encodeEventRows(projectId, receivedAt, makeEvents(3));
    const large = encodeEventRows(projectId, receivedAt, makeEvents(1_000));
    const jobs = await Promise.all([
      // A field short: the worker decodes small batches itself.
      addIngestBatch(fx.queues, fx.producer, { projectId, receivedAt, count: 4, rows: Buffer.from(`${small}only|two\n`) }),
      // A time that is no time ("yesterday" would be one), in the 1,000th row: COPY refuses the whole batch.
      addIngestBatch(fx.queues, fx.producer, { projectId, receivedAt, count: 1_000, rows: Buffer.from(large.replace(/\|[^|]+\n$/, '|soon\n')) }),
    ]);

    const [unnest, copy] = (await Promise.all(jobs.map((job) => settled(fx.queues.ingest, job.id)))) as [Job, Job];
    expect(unnest.attemptsMade).toBe(1);
    expect(unnest.failedReason).toBe("The batch's rows are malformed: row 4 has 2 fields, not 12");
    expect(copy.attemptsMade).toBe(1);
    expect(copy.failedReason).toMatch(/^Postgres refused the batch: invalid input syntax for type timestamp with time zone: "soon"/);
    expect(await storedEvents(fx.database, projectId)).toEqual([]);
    // Gone a day after BullMQ removes the failed job, not before.
    for (const job of jobs) {
      const ttl = await waitFor(async () => {
        const ms = await fx.producer.pttl(batchRowsKey(fx.prefix.prefix, job.data.rowsId));
        return ms > 0 ? ms : undefined;
      }, { what: "the failed batch's rows to get an expiry" });
      expect(ttl).toBeGreaterThan(FAILED_BATCH_ROWS_TTL_MS - 60_000);
      expect(ttl).toBeLessThanOrEqual(FAILED_BATCH_ROWS_TTL_MS);
      expect(FAILED_BATCH_ROWS_TTL_MS).toBe((ingestOptions.removeOnFail.age + 86_400) * 1_000);
    }
  });

  it('fails once a batch holding an exposure without a variant, which the table refuses', async () => {
    const projectId = randomUUID();
    const [good, exposure] = makeEvents(2);
    // Only a producer that skips validation could send it; the constraint still holds.
    const job = await addJob(fx.queues, 'ingest-batch', {
      projectId,
      receivedAt: Date.now(),
      events: [good!, { ...exposure!, eventType: 'EXPOSURE', experimentId: 'checkout-button', variantKey: null }],
    });

    const failed = await settled(fx.queues.ingest, job.id);
    expect(failed.attemptsMade).toBe(1);
    expect(failed.failedReason).toMatch(/^Postgres refused the batch: .*analytics_events_exposure_names_variant/);
    expect(await storedEvents(fx.database, projectId)).toEqual([]);
  });

  it('retries an insert that failed and stores the batch once the table is back', async () => {
    const projectId = randomUUID();
    const events = makeEvents(25);
    await fx.database.pool.query('ALTER TABLE analytics_events RENAME TO analytics_events_away');
    let renamedBack = false;
    try {
      const job = await addJob(fx.queues, 'ingest-batch', { projectId, receivedAt: Date.now(), events });
      await waitFor(
        async () => ((await fx.queues.ingest.getJob(job.id!))?.attemptsMade ?? 0) >= 1 || undefined,
        { what: 'a first failed attempt' },
      );
      expect(await fx.queues.ingest.getJobState(job.id!)).toMatch(/delayed|waiting/);
      await fx.database.pool.query('ALTER TABLE analytics_events_away RENAME TO analytics_events');
      renamedBack = true;

      const done = await settled(fx.queues.ingest, job.id);
      expect(await done.getState()).toBe('completed');
      expect(done.attemptsMade).toBeGreaterThanOrEqual(2);
      expect(done.returnvalue).toEqual({ inserted: 25, duplicates: 0 });
      expect(await storedEvents(fx.database, projectId)).toEqual(byEventId(events));
    } finally {
      if (!renamedBack) await fx.database.pool.query('ALTER TABLE analytics_events_away RENAME TO analytics_events');
    }
  });

  it('survives Postgres dropping its connections, and goes on storing', async () => {
    const admin = new pg.Client({ connectionString: fx.database.url });
    await admin.connect();
    try {
      const { rows } = await admin.query<{ killed: boolean }>(
        `SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = 'tally-worker-under-test'`,
      );
      expect(rows.length).toBeGreaterThan(0);
    } finally {
      await admin.end();
    }

    const projectId = randomUUID();
    const events = makeEvents(10);
    const done = await settled(fx.queues.ingest, (await addJob(fx.queues, 'ingest-batch', { projectId, receivedAt: Date.now(), events })).id);
    expect(await done.getState()).toBe('completed');
    expect(await storedEvents(fx.database, projectId)).toEqual(byEventId(events));
  });
});

describe('the worker while Postgres is unreachable', () => {
  let fx: Fixture;
  let unreachable: DbHandle;

  beforeAll(async () => {
    fx = await createFixture();
    // Nothing listens on port 1: every connection is refused at once.
    unreachable = createDb('postgres://postgres@127.0.0.1:1/tally', { max: 2 });
  });
  afterAll(async () => {
    await fx?.cleanup();
    await unreachable?.close();
  });

  it('stops taking jobs after a refused connection instead of failing the whole queue in turn', async () => {
    const worker = await fx.start({
      db: unreachable.db,
      config: { QUEUE_PREFIX: fx.prefix.prefix, WORKER_CONCURRENCY: 1, PARTITION_PREMAKE_DAYS: 7 },
      outagePauseMs: 60_000,
    });
    const jobs: Job[] = [];
    for (let i = 0; i < 3; i++) {
      jobs.push(await addJob(fx.queues, 'ingest-batch', { projectId: randomUUID(), receivedAt: Date.now(), events: makeEvents(2) }));
    }

    await waitFor(async () => ((await fx.queues.ingest.getJob(jobs[0]!.id!))?.attemptsMade ?? 0) >= 1 || undefined, {
      what: 'the first job to fail an attempt',
    });
    const first = await fx.queues.ingest.getJob(jobs[0]!.id!);
    expect(first?.failedReason).toMatch(/ECONNREFUSED/);
    expect(worker.workers.ingest.isPaused()).toBe(true);
    for (const job of jobs.slice(1)) {
      const stored = await fx.queues.ingest.getJob(job.id!);
      expect(stored?.attemptsMade).toBe(0);
      expect(await stored?.getState()).toBe('waiting');
    }
  });
});
