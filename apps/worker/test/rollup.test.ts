import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '@tally/contracts';
import { createProject, experimentResults, insertEvents, rawExperimentResults, rollupAsOf, type Database } from '@tally/db';
import { addJob, JOBS } from '@tally/queue';
import { waitFor } from '@tally/testing';
import { ROLLUP_SCHEDULER_ID } from '../src/app.js';
import { createFixture, settled, type Fixture } from './fixtures.js';

const GOALS = [null, 'purchase', 'signup'] as const;
const EXPERIMENTS = ['exp-a', 'exp-b'];

/** A small deterministic generator, so a failure can be replayed. */
function random(seed: number) {
  let state = seed;
  return (n: number) => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state % n;
  };
}

/**
 * `count` events over 300 sessions and two days: exposures to several variants
 * (so some sessions are excluded), pageviews and conversions before and after them.
 */
function history(count: number, seed: number): StoredEvent[] {
  const pick = random(seed);
  const start = Date.now() - 2 * 86_400_000;
  return Array.from({ length: count }, (_, i): StoredEvent => {
    const kind = (['EXPOSURE', 'PAGEVIEW', 'CONVERSION'] as const)[pick(3)]!;
    const timestamp = start + pick(2 * 86_400) * 1_000;
    return {
      eventId: `e-${seed}-${i}`,
      eventType: kind,
      sessionId: `s-${pick(300)}`,
      viewId: null,
      experimentId: kind === 'EXPOSURE' ? EXPERIMENTS[pick(2)]! : null,
      variantKey: kind === 'EXPOSURE' ? ['control', 'treatment', 'other'][pick(10) < 8 ? pick(2) : 2]! : null,
      goal: kind === 'CONVERSION' ? GOALS[pick(3)]! : null,
      properties: null,
      timestamp,
      clientTimestamp: timestamp,
    };
  });
}

/** Summaries equal one query over the raw events, for every experiment and goal. */
async function expectExact(db: Database, projectId: string): Promise<void> {
  for (const experimentId of EXPERIMENTS) {
    for (const goal of GOALS) {
      expect(await experimentResults(db, projectId, experimentId, goal), `${experimentId} / ${goal}`).toEqual(
        await rawExperimentResults(db, projectId, experimentId, goal),
      );
    }
  }
}

describe('the rollup job', () => {
  let fx: Fixture;
  let projectId: string;

  beforeAll(async () => {
    fx = await createFixture();
    ({ projectId } = await createProject(fx.database.db, 'rollup'));
  });
  afterAll(() => fx?.cleanup());

  const start = (overrides: { ROLLUP_INTERVAL_MS?: number; ROLLUP_WINDOW_EVENTS?: number; WORKER_CONCURRENCY?: number } = {}) =>
    fx.start({
      config: { QUEUE_PREFIX: fx.prefix.prefix, WORKER_CONCURRENCY: 2, PARTITION_PREMAKE_DAYS: 7, ...overrides },
    });

  it('makes inserted batches visible in the summaries within a few rollup intervals', async () => {
    await start({ ROLLUP_INTERVAL_MS: 200 });
    const events = history(400, 1);
    const before = await rollupAsOf(fx.database.db);
    const job = await addJob(fx.queues, 'ingest-batch', { projectId, receivedAt: Date.now(), events });
    const inserted = await settled(fx.queues.ingest, job.id);
    expect(inserted.returnvalue).toEqual({ inserted: 400, duplicates: 0 });

    // asOf passes the insert's completion only once a rollup has folded it.
    const insertedAt = new Date(inserted.finishedOn!);
    await waitFor(async () => ((await rollupAsOf(fx.database.db)) > insertedAt ? true : undefined), {
      what: 'the rollup to pass the insert',
    });
    expect((await rollupAsOf(fx.database.db)).getTime()).toBeGreaterThan(before.getTime());
    await expectExact(fx.database.db, projectId);
  });

  it('registers one scheduler with the configured interval, however many workers start', async () => {
    await start({ ROLLUP_INTERVAL_MS: 200 });
    expect(await fx.queues.rollup.getJobScheduler(ROLLUP_SCHEDULER_ID)).toMatchObject({ name: 'rollup', every: 200 });
    expect(await fx.queues.rollup.getJobSchedulersCount()).toBe(1);
    expect(JOBS.rollup.queue).toBe('rollup');
  });

  it('works off a backlog larger than its window in one job, window after window', async () => {
    // With no worker running, events pile up unrolled.
    await fx.stopAll();
    const seen = new Set((await fx.queues.rollup.getCompleted()).map((job) => job.id));
    await insertEvents(fx.database.db, projectId, Date.now(), history(3_500, 2));

    await start({ ROLLUP_INTERVAL_MS: 60_000, ROLLUP_WINDOW_EVENTS: 1_000 });
    const job = await waitFor(
      async () => (await fx.queues.rollup.getCompleted()).find((j) => !seen.has(j.id) && j.returnvalue.events > 0),
      { what: 'a rollup job that folds the backlog' },
    );
    expect(job.returnvalue).toMatchObject({ events: 3_500, windows: 4 });
    await expectExact(fx.database.db, projectId);
  });
});

describe('several workers inserting while the rollup runs', () => {
  let fx: Fixture;
  let projectId: string;

  beforeAll(async () => {
    fx = await createFixture();
    ({ projectId } = await createProject(fx.database.db, 'concurrent'));
  });
  afterAll(() => fx?.cleanup());

  it('folds every event exactly once, whatever order the inserts commit in', async () => {
    // Two processes' worth of workers, four inserts at a time each, and a rollup
    // every 100 ms with small windows, over batches of 40: windows constantly meet uncommitted inserts.
    for (let i = 0; i < 2; i += 1) {
      await fx.start({
        config: {
          QUEUE_PREFIX: fx.prefix.prefix,
          WORKER_CONCURRENCY: 4,
          PARTITION_PREMAKE_DAYS: 7,
          ROLLUP_INTERVAL_MS: 100,
          ROLLUP_WINDOW_EVENTS: 1_000,
        },
      });
    }
    const events = history(12_000, 3);
    // Each event twice, in different batches: retries must not count twice either.
    const arrivals = [...events, ...events.filter((_, i) => i % 4 === 0)];
    const jobs = [];
    for (let i = 0; i < arrivals.length; i += 40) {
      jobs.push(
        await addJob(fx.queues, 'ingest-batch', { projectId, receivedAt: Date.now(), events: arrivals.slice(i, i + 40) }),
      );
    }
    let lastFinished = 0;
    let inserted = 0;
    for (const job of jobs) {
      const done = await settled(fx.queues.ingest, job.id);
      expect(done.failedReason).toBeUndefined();
      inserted += (done.returnvalue as { inserted: number }).inserted;
      lastFinished = Math.max(lastFinished, done.finishedOn!);
    }
    expect(inserted).toBe(events.length);

    await waitFor(async () => ((await rollupAsOf(fx.database.db)).getTime() > lastFinished ? true : undefined), {
      what: 'the rollup to pass the last insert',
      timeoutMs: 60_000,
    });
    const { rows } = await fx.database.pool.query<{ n: string }>('SELECT count(*) AS n FROM rollup_state');
    expect(Number(rows[0]!.n)).toBe(1);
    await expectExact(fx.database.db, projectId);
  });
});
