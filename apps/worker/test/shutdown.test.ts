import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addJob } from '@tally/queue';
import { waitFor } from '@tally/testing';
import { byEventId, createFixture, makeEvents, storedEvents, type Fixture } from './fixtures.js';

describe('closing the worker', () => {
  let fx: Fixture;

  beforeAll(async () => {
    fx = await createFixture();
  });
  afterAll(() => fx?.cleanup());

  it('finishes the job in flight before it resolves, and leaves later jobs waiting', async () => {
    const worker = await fx.start();
    // Hold the table so that the insert stays in flight until the test lets it go.
    const blocker = new pg.Client({ connectionString: fx.database.url });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE analytics_events IN ACCESS EXCLUSIVE MODE');

      const projectId = randomUUID();
      const events = makeEvents(40);
      const inFlight = await addJob(fx.queues, 'ingest-batch', { projectId, receivedAt: Date.now(), events });
      await waitFor(
        async () => {
          const { rows } = await fx.database.pool.query(
            `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO analytics_events%'`,
          );
          return rows.length > 0 ? true : undefined;
        },
        { what: 'the insert to wait for the lock' },
      );

      let closed = false;
      const closing = worker.close().then(() => (closed = true));
      await waitFor(async () => (worker.workers.ingest.closing ? true : undefined), { what: 'the worker to start closing' });
      expect(closed).toBe(false);
      expect(await fx.queues.ingest.getJobState(inFlight.id!)).toBe('active');

      await blocker.query('COMMIT');
      await closing;

      expect(await fx.queues.ingest.getJobState(inFlight.id!)).toBe('completed');
      expect(await storedEvents(fx.database, projectId)).toEqual(byEventId(events));
      expect(await fx.queues.ingest.getActiveCount()).toBe(0);

      const later = await addJob(fx.queues, 'ingest-batch', { projectId: randomUUID(), receivedAt: Date.now(), events: makeEvents(3) });
      // Give a worker that had not really stopped the time to take the job.
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(await fx.queues.ingest.getJobState(later.id!)).toBe('waiting');
    } finally {
      await blocker.end();
    }
  });
});
