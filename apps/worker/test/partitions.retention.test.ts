import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { experimentResults, experimentTimeseries, listExperiments, listPartitions, partitionSettings, runRollup } from '@tally/db';
import { addJob } from '@tally/queue';
import { waitFor } from '@tally/testing';
import { ROLLUP_SCHEDULER_ID, type StartWorkerOptions } from '../src/app.js';
import { byEventId, createFixture, DAY, makeEvents, settled, storedEvents, type Fixture } from './fixtures.js';

describe('partition maintenance: rows of far days, retention and interval', () => {
  let fx: Fixture;

  beforeAll(async () => {
    fx = await createFixture();
  });
  afterEach(() => fx.stopAll());
  afterAll(() => fx?.cleanup());

  /** Starts a worker and waits until its maintenance run at start is done, so that runs the test adds are the only ones. */
  const start = async (config: Partial<StartWorkerOptions['config']> = {}) => {
    const worker = await fx.start({ config: { QUEUE_PREFIX: fx.prefix.prefix, WORKER_CONCURRENCY: 2, PARTITION_PREMAKE_DAYS: 7, ...config } });
    await waitFor(
      async () => {
        const counts = await fx.queues.maintenance.getJobCounts('waiting', 'active', 'prioritized', 'completed');
        return counts.completed! >= 1 && counts.waiting! + counts.active! + counts.prioritized! === 0 ? true : undefined;
      },
      { what: 'the maintenance run at start to finish' },
    );
    return worker;
  };
  const ingest = async (projectId: string, events: ReturnType<typeof makeEvents>) => {
    const done = await settled(fx.queues.ingest, (await addJob(fx.queues, 'ingest-batch', { projectId, receivedAt: Date.now(), events })).id);
    expect(done.returnvalue).toMatchObject({ inserted: events.length });
  };
  const maintain = async () => {
    const done = await settled(fx.queues.maintenance, (await addJob(fx.queues, 'maintain-partitions', {})).id);
    expect(await done.getState()).toBe('completed');
    return done.returnvalue;
  };
  const partitionsOf = async (projectId: string) =>
    (
      await fx.database.pool.query<{ partition: string }>(
        'SELECT DISTINCT tableoid::regclass::text AS partition FROM analytics_events WHERE project_id = $1 ORDER BY 1',
        [projectId],
      )
    ).rows.map((row) => row.partition);

  it('stores events of a far past and a far future day in the default partition, and moves them out; nothing is dropped without RETENTION_DAYS', async () => {
    await start();
    const projectId = randomUUID();
    const past = makeEvents(3, Date.UTC(2003, 6, 15, 9, 30));
    const future = makeEvents(2, Date.UTC(2061, 10, 2, 12));
    await ingest(projectId, [...past, ...future]);
    expect(await partitionsOf(projectId)).toEqual(['analytics_events_default']);
    await runRollup(fx.database.db);

    expect(await maintain()).toEqual({ created: 0, movedOut: 2, rowsMovedOut: 5, dropped: [], kept: [] });
    expect(await partitionsOf(projectId)).toEqual(['analytics_events_p20030715', 'analytics_events_p20611102']);
    expect(await storedEvents(fx.database, projectId)).toEqual(byEventId([...past, ...future]));
    expect(await partitionSettings(fx.database.db)).toMatchObject({ interval: 'day', retentionDays: null });
  });

  it('with RETENTION_DAYS, drops exactly the partitions entirely past it, counts them, and leaves results unchanged', async () => {
    const worker = await start({ RETENTION_DAYS: 30 });
    const projectId = randomUUID();
    // Noon 45 days ago, and 2 days ago: three sessions' worth each, one experiment.
    const old = makeEvents(6, (Math.floor(Date.now() / DAY) - 45) * DAY + DAY / 2);
    const recent = makeEvents(6, (Math.floor(Date.now() / DAY) - 2) * DAY + DAY / 2);
    await ingest(projectId, [...old, ...recent]);
    await runRollup(fx.database.db);
    const results = async () => [
      await listExperiments(fx.database.db, projectId),
      await experimentResults(fx.database.db, projectId, 'checkout-button'),
      await experimentResults(fx.database.db, projectId, 'checkout-button', 'purchase'),
      await experimentTimeseries(fx.database.db, projectId, 'checkout-button', 'hour'),
      await experimentTimeseries(fx.database.db, projectId, 'checkout-button', 'day', 'purchase'),
    ];
    const before = await results();
    expect(before[1]).toMatchObject({ variants: [{ variantKey: 'treatment', sessions: 2 }] });

    const horizon = Date.now() - 30 * DAY;
    const run = await maintain();
    // The old day's rows waited in the default partition (as did the recent day's): moved out, then dropped.
    const oldDay = `analytics_events_p${new Date(old[0]!.clientTimestamp).toISOString().slice(0, 10).replaceAll('-', '')}`;
    expect(run).toEqual({ created: 0, movedOut: 2, rowsMovedOut: 12, dropped: [oldDay], kept: [] });
    // The 2003 partition the test above left went at the worker's start, in its first run.
    const names = (await listPartitions(fx.database.db)).map((partition) => partition.name);
    expect(names).not.toContain('analytics_events_p20030715');
    expect(names).toContain('analytics_events_p20611102');
    for (const partition of await listPartitions(fx.database.db)) expect(partition.to.getTime()).toBeGreaterThan(horizon);

    expect(await storedEvents(fx.database, projectId)).toEqual(byEventId(recent));
    expect(await results()).toEqual(before);

    const metrics = await worker.registry.metrics();
    expect(metrics).toMatch(/^tally_partitions_dropped_total 2$/m); // with the 2003 one, at start
    expect(Number(/^tally_partition_dropped_bytes_total (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThan(2 * 8_192);
    expect(metrics).toMatch(/^tally_partition_rows_moved_out_total 12$/m);
    expect(metrics).toMatch(/^tally_partitions_created_total\{reason="move_out"\} 2$/m);
    expect(metrics).toMatch(/^tally_partitions_created_total\{reason="premake"\} 0$/m);
    expect(metrics).toMatch(/^tally_partitions_expired_kept 0$/m);
    expect(await partitionSettings(fx.database.db)).toMatchObject({ retentionDays: 30, maintainedAt: expect.any(Date) });
  });

  it('keeps a partition past the retention while the rollup has not folded its rows', async () => {
    const worker = await start({ RETENTION_DAYS: 30 });
    // No scheduled rollup may fold the rows before the maintenance run looks at them.
    await fx.queues.rollup.removeJobScheduler(ROLLUP_SCHEDULER_ID);
    await waitFor(async () => ((await fx.queues.rollup.getJobCountByTypes('waiting', 'active', 'delayed', 'prioritized')) === 0 ? true : undefined), {
      what: 'no rollup job to be left',
    });
    const projectId = randomUUID();
    await runRollup(fx.database.db);
    const old = makeEvents(2, (Math.floor(Date.now() / DAY) - 50) * DAY + DAY / 2);
    await ingest(projectId, old);

    const run = await maintain();
    expect(run).toMatchObject({ movedOut: 1, dropped: [], kept: [{ partition: expect.stringMatching(/^analytics_events_p/), reason: 'waiting for the rollup' }] });
    expect(await worker.registry.metrics()).toMatch(/^tally_partitions_expired_kept 1$/m);
    expect(await storedEvents(fx.database, projectId)).toHaveLength(2);

    await runRollup(fx.database.db);
    expect(await maintain()).toMatchObject({ dropped: [run.kept[0]!.partition], kept: [] });
  });

  it('records PARTITION_INTERVAL, and makes partitions of that size from then on', async () => {
    await start({ PARTITION_INTERVAL: 'month', PARTITION_PREMAKE_DAYS: 60 });
    expect(await partitionSettings(fx.database.db)).toMatchObject({ interval: 'month', retentionDays: null });
    // 45 days ahead lies in a month that starts after every daily partition made so far.
    const day = new Date(Date.now() + 45 * DAY);
    const monthStart = Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), 1);
    const partition = (await listPartitions(fx.database.db)).find((p) => p.from.getTime() <= day.getTime() && day.getTime() < p.to.getTime());
    expect(partition).toMatchObject({
      from: new Date(monthStart),
      to: new Date(Date.UTC(day.getUTCFullYear(), day.getUTCMonth() + 1, 1)),
    });
  });
});
