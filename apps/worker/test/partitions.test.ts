import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addJob, JOBS } from '@tally/queue';
import { waitFor } from '@tally/testing';
import { PARTITIONS_SCHEDULER_ID } from '../src/app.js';
import { byEventId, createFixture, DAY, makeEvents, settled, storedEvents, type Fixture } from './fixtures.js';

describe('partition maintenance', () => {
  let fx: Fixture;
  const config = () => ({ QUEUE_PREFIX: fx.prefix.prefix, WORKER_CONCURRENCY: 2, PARTITION_PREMAKE_DAYS: 12 });

  beforeAll(async () => {
    fx = await createFixture();
  });
  afterAll(() => fx?.cleanup());

  /** Partition holding each of the project's rows. */
  const partitionsOf = async (projectId: string) =>
    (
      await fx.database.pool.query<{ partition: string }>(
        'SELECT DISTINCT tableoid::regclass::text AS partition FROM analytics_events WHERE project_id = $1',
        [projectId],
      )
    ).rows.map((row) => row.partition);

  const partitionExists = async (daysFromToday: number) => {
    const { rows } = await fx.database.pool.query<{ exists: boolean }>(
      `SELECT to_regclass(tally_partition_name((now() AT TIME ZONE 'UTC')::date + $1::int)) IS NOT NULL AS exists`,
      [daysFromToday],
    );
    return rows[0]!.exists;
  };

  it('makes partitions PARTITION_PREMAKE_DAYS ahead as soon as it starts', async () => {
    // The migration premakes a week; twelve days ahead is the job's doing.
    expect(await partitionExists(12)).toBe(false);
    await fx.start({ config: config() });

    await waitFor(async () => ((await fx.queues.maintenance.getCompletedCount()) >= 1 ? true : undefined), {
      what: 'a maintain-partitions job to complete',
    });
    for (const day of [-1, 0, 1, 7, 12]) expect(await partitionExists(day)).toBe(true);
    expect(await partitionExists(13)).toBe(false);
  });

  it('registers one hourly job scheduler, however many workers start', async () => {
    await fx.start({ config: config() });

    expect(await fx.queues.maintenance.getJobSchedulersCount()).toBe(1);
    const scheduler = await fx.queues.maintenance.getJobScheduler(PARTITIONS_SCHEDULER_ID);
    expect(scheduler).toMatchObject({ name: 'maintain-partitions', every: JOBS['maintain-partitions'].everyMs });
    // The next run waits (delayed, or waiting when due); the scheduler makes the one after when it starts.
    const scheduled = (await fx.queues.maintenance.getJobs(['delayed', 'waiting', 'prioritized'])).filter(
      (job) => job.repeatJobKey === PARTITIONS_SCHEDULER_ID,
    );
    expect(scheduled).toHaveLength(1);
  });

  it('reports how many partitions a run made', async () => {
    const job = await addJob(fx.queues, 'maintain-partitions', {});
    const done = await settled(fx.queues.maintenance, job.id);
    expect(await done.getState()).toBe('completed');
    expect(done.returnvalue).toEqual({ created: 0, movedOut: 0, rowsMovedOut: 0, dropped: [], kept: [] });
  });

  it('keeps events of a day without a partition in the default one, and moves them out when the day is made', async () => {
    const projectId = randomUUID();
    // Noon of a day forty days ago: the five events stay within that day.
    const at = Math.floor(Date.now() / DAY - 40) * DAY + DAY / 2;
    const events = makeEvents(5, at);
    const day = new Date(at).toISOString().slice(0, 10);

    const done = await settled(fx.queues.ingest, (await addJob(fx.queues, 'ingest-batch', { projectId, receivedAt: Date.now(), events })).id);
    expect(done.returnvalue).toEqual({ inserted: 5, duplicates: 0 });
    expect(await partitionsOf(projectId)).toEqual(['analytics_events_default']);

    const { rows } = await fx.database.pool.query<{ made: boolean }>('SELECT tally_ensure_partition($1::date) AS made', [day]);
    expect(rows[0]!.made).toBe(true);

    expect(await partitionsOf(projectId)).toEqual([`analytics_events_p${day.replaceAll('-', '')}`]);
    expect(await storedEvents(fx.database, projectId)).toEqual(byEventId(events));
    // The moved rows still count as already stored.
    const again = await settled(fx.queues.ingest, (await addJob(fx.queues, 'ingest-batch', { projectId, receivedAt: Date.now(), events })).id);
    expect(again.returnvalue).toEqual({ inserted: 0, duplicates: 5 });
  });
});
