import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '@tally/contracts';
import { createProject, experimentResults, insertEvents, rawExperimentResults, rollupAsOf } from '@tally/db';
import { addJob } from '@tally/queue';
import { waitFor } from '@tally/testing';
import { createFixture, makeEvents, type Fixture } from './fixtures.js';

describe('the rollup while ingest jobs wait', () => {
  let fx: Fixture;
  let projectId: string;

  beforeAll(async () => {
    fx = await createFixture();
    ({ projectId } = await createProject(fx.database.db, 'yield'));
  });
  afterAll(() => fx?.cleanup());

  const start = (yieldMaxMs: number) =>
    fx.start({
      config: {
        QUEUE_PREFIX: fx.prefix.prefix,
        WORKER_CONCURRENCY: 1,
        PARTITION_PREMAKE_DAYS: 7,
        ROLLUP_INTERVAL_MS: 100,
        ROLLUP_YIELD_MAX_MS: yieldMaxMs,
      },
    });

  /** Two ingest jobs left waiting: no worker takes a job of the paused queue. */
  const backlog = async () => {
    await fx.queues.ingest.pause();
    for (let i = 0; i < 2; i += 1) await addJob(fx.queues, 'ingest-batch', { projectId, receivedAt: Date.now(), events: makeEvents(3) });
    expect(await fx.queues.ingest.getWaitingCount()).toBe(2);
  };

  /** Rollup turns finished after `since`, by what they returned. */
  const turnsSince = async (since: number) => {
    const done = (await fx.queues.rollup.getCompleted()).filter((job) => job.finishedOn! > since);
    return {
      yielded: done.filter((job) => 'yielded' in job.returnvalue),
      folded: done.filter((job) => (job.returnvalue as { events?: number }).events! > 0),
    };
  };

  /** Events stored by another route than the queue, as an import does. */
  const storeEvents = async (events: StoredEvent[]) => {
    const storedAt = Date.now();
    await insertEvents(fx.database.db, projectId, storedAt, events);
    return storedAt;
  };

  /** `n` sessions' first exposures (makeEvents starts each session with one). */
  const exposures = (n: number) => Array.from({ length: n }, () => makeEvents(1)[0]!);

  it('skips its turns while inserting is behind, yet never leaves the results older than ROLLUP_YIELD_MAX_MS', async () => {
    const worker = await start(5_000);
    await waitFor(async () => ((await rollupAsOf(fx.database.db)).getTime() > 0 ? true : undefined), { what: 'a first rollup' });
    await backlog();
    const storedAt = await storeEvents(exposures(50));

    // Turns come every 100 ms; the ones before the results are 5 s old fold nothing.
    await waitFor(async () => ((await turnsSince(storedAt)).yielded.length >= 3 ? true : undefined), { what: 'skipped turns' });
    const early = await turnsSince(storedAt);
    expect(early.folded).toEqual([]);
    expect(early.yielded[0]!.returnvalue).toMatchObject({ yielded: true, waitingJobs: 2 });
    expect((await rollupAsOf(fx.database.db)).getTime()).toBeLessThan(storedAt);

    // Then a turn folds them, though the jobs still wait.
    await waitFor(async () => ((await rollupAsOf(fx.database.db)).getTime() > storedAt ? true : undefined), {
      timeoutMs: 15_000,
      what: 'the rollup to fold the events once the results are 5 s old',
    });
    expect(await fx.queues.ingest.getWaitingCount()).toBe(2);
    expect((await turnsSince(storedAt)).folded.length).toBeGreaterThan(0);
    expect(await worker.registry.metrics()).toMatch(/^tally_rollup_yielded_total [1-9]\d*$/m);

    // Once the jobs are stored, everything is folded, exactly.
    await fx.queues.ingest.resume();
    await waitFor(async () => ((await fx.queues.ingest.getWaitingCount()) === 0 ? true : undefined), { what: 'the backlog to go' });
    const drainedAt = Date.now();
    await waitFor(async () => ((await rollupAsOf(fx.database.db)).getTime() > drainedAt ? true : undefined), {
      what: 'the rollup to catch up',
    });
    const results = await experimentResults(fx.database.db, projectId, 'checkout-button', null);
    expect(results).toEqual(await rawExperimentResults(fx.database.db, projectId, 'checkout-button', null));
    expect(results!.variants.reduce((n, variant) => n + variant.sessions, 0)).toBe(52);
    await fx.stopAll();
  });

  it('never skips a turn with ROLLUP_YIELD_MAX_MS=0', async () => {
    await start(0);
    await backlog();
    const storedAt = await storeEvents(exposures(10));

    await waitFor(async () => ((await rollupAsOf(fx.database.db)).getTime() > storedAt ? true : undefined), {
      timeoutMs: 5_000,
      what: 'the next turns to fold the events',
    });
    expect((await turnsSince(storedAt)).yielded).toEqual([]);
    await fx.queues.ingest.resume();
  });
});
