import fc from 'fast-check';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '@tally/contracts';
import {
  createProject,
  experimentResults,
  experimentTimeseries,
  insertEvents,
  listExperiments,
  rawExperimentList,
  rawExperimentResults,
  rawExperimentTimeseries,
  rebuildExperiment,
  runRollup,
  type Database,
} from '@tally/db';
import {
  createTestDatabase,
  generatedEventArb,
  HISTORY_EXPERIMENTS,
  HISTORY_GOALS,
  type GeneratedEvent,
  type TestDatabase,
} from '@tally/testing';

/**
 * Random histories (any arrival order, duplicates, late exposures, sessions that
 * see two variants, several goals, two projects sharing ids), inserted in random
 * batches with rollups between them: every number served from the summaries must
 * equal one SQL query over the raw events.
 */

const BASE = Date.UTC(2026, 10, 20, 10, 0, 0);
const EXPERIMENTS = HISTORY_EXPERIMENTS;
const GOALS = HISTORY_GOALS;
const eventArb = generatedEventArb;

const historyArb = fc
  .array(eventArb, { minLength: 1, maxLength: 60 })
  // Every event once plus some sent again (client retries), in any arrival order.
  .chain((events) =>
    fc.array(fc.nat({ max: events.length - 1 }), { maxLength: 10 }).map((retried) => ({
      events,
      arrivals: [...events.keys(), ...retried],
    })),
  )
  .chain(({ events, arrivals }) =>
    fc.record({
      events: fc.constant(events),
      arrivals: fc.shuffledSubarray(arrivals, { minLength: arrivals.length, maxLength: arrivals.length }),
      batchSizes: fc.array(fc.integer({ min: 1, max: 15 }), { minLength: 1, maxLength: 20 }),
      rollupAfter: fc.array(fc.boolean(), { minLength: 20, maxLength: 20 }),
      rebuildAt: fc.nat({ max: 12 }),
    }),
  );

function toStored(e: GeneratedEvent, index: number): StoredEvent {
  const ts = BASE + e.minute * 60_000 + index;
  return {
    eventId: `ev-${index}`,
    eventType: e.kind as StoredEvent['eventType'],
    sessionId: `s-${e.session}`,
    viewId: null,
    experimentId: e.kind === 'EXPOSURE' ? e.experiment : null,
    variantKey: e.kind === 'EXPOSURE' ? e.variant : null,
    goal: e.kind === 'CONVERSION' ? e.goal : null,
    properties: null,
    timestamp: ts,
    clientTimestamp: ts,
  };
}

describe('summaries equal the raw-event oracle', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database?.drop();
  });

  it('for random histories, arrival orders, duplicates and rollup timings', async () => {
    await fc.assert(
      fc.asyncProperty(historyArb, async (history) => {
        const db = database.db;
        const projects = [await createProject(db, 'p0'), await createProject(db, 'p1')];
        const stored = history.events.map(toStored);
        const arrivals = history.arrivals;
        let cursor = 0;
        let step = 0;
        while (cursor < arrivals.length) {
          const size = history.batchSizes[step % history.batchSizes.length]!;
          const batch = arrivals.slice(cursor, cursor + size);
          cursor += size;
          for (const p of [0, 1]) {
            const events = batch.filter((i) => history.events[i]!.project === p).map((i) => stored[i]!);
            if (events.length > 0) await insertEvents(db, projects[p]!.projectId, Date.now(), events);
          }
          if (history.rollupAfter[step % history.rollupAfter.length]) await runRollup(db);
          // A rebuild from raw events, even with events not yet rolled up, must change nothing.
          if (step === history.rebuildAt) {
            for (const { projectId } of projects) {
              for (const experimentId of EXPERIMENTS) await rebuildExperiment(db, projectId, experimentId);
            }
          }
          step += 1;
        }
        await runRollup(db);

        for (const { projectId } of projects) {
          expect(await listExperiments(db, projectId)).toEqual(await rawExperimentList(db, projectId));
          for (const experimentId of EXPERIMENTS) {
            for (const goal of GOALS) {
              const expected = await rawExperimentResults(db, projectId, experimentId, goal);
              expect(await experimentResults(db, projectId, experimentId, goal)).toEqual(expected);
              for (const interval of ['hour', 'day'] as const) {
                expect(await experimentTimeseries(db, projectId, experimentId, interval, goal)).toEqual(
                  await rawExperimentTimeseries(db, projectId, experimentId, interval, goal),
                );
              }
            }
          }
        }
      }),
      { numRuns: Number(process.env.PROPERTY_RUNS ?? 40) },
    );
  }, 240_000);
});
