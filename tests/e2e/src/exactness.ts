import type { Queue } from 'bullmq';
import { expect } from 'vitest';
import {
  experimentResults,
  listExperiments,
  rawExperimentList,
  rawExperimentResults,
  rollupAsOf,
  type Database,
  type ExperimentCounts,
} from '@tally/db';
import { waitFor } from '@tally/testing';
import { TRAFFIC_EXPERIMENTS, TRAFFIC_GOALS } from './traffic.js';

/**
 * The check every fault test ends with: once the stream is over, the queue is
 * drained and the rollup has caught up, every experiment's results, for every
 * goal, equal one SQL query over the raw events, and the raw events are exactly
 * the distinct events that were accepted: nothing lost, nothing counted twice.
 */

/** Results as served: by the query API over HTTP, or straight from the summaries. */
export type ResultsReader = (experimentId: string, goal: string | null) => Promise<ExperimentCounts | undefined>;

export function summaryResults(db: Database, projectId: string): ResultsReader {
  return (experimentId, goal) => experimentResults(db, projectId, experimentId, goal);
}

export function queryApiResults(url: string, readKey: string): ResultsReader {
  return async (experimentId, goal) => {
    const query = goal === null ? '' : `?goal=${encodeURIComponent(goal)}`;
    const response = await fetch(`${url}/v1/experiments/${encodeURIComponent(experimentId)}/results${query}`, {
      headers: { authorization: `Bearer ${readKey}` },
    });
    if (response.status === 404) return undefined;
    if (response.status !== 200) throw new Error(`results of ${experimentId}: ${response.status} ${await response.text()}`);
    // The counts the oracle knows; `asOf` and whatever the API derives from the counts are left out.
    const body = (await response.json()) as ExperimentCounts;
    return {
      experimentId: body.experimentId,
      goal: body.goal,
      excludedSessions: body.excludedSessions,
      variants: body.variants.map((v) => ({
        variantKey: v.variantKey,
        sessions: v.sessions,
        pageviewSessions: v.pageviewSessions,
        pageviews: v.pageviews,
        convertedSessions: v.convertedSessions,
        conversions: v.conversions,
        conversionRate: v.conversionRate,
      })),
    };
  };
}

/** Waits until no ingest job is waiting, running or backing off, then until a rollup has started after that. */
export async function settle(ingest: Queue, db: Database, { timeoutMs = 60_000 } = {}): Promise<void> {
  await waitFor(
    async () => {
      const counts = await ingest.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'paused', 'waiting-children');
      return Object.values(counts).every((n) => n === 0) ? true : undefined;
    },
    { timeoutMs, intervalMs: 200, what: 'every ingest job to be done' },
  );
  // The rollup waits for inserts still in flight, so one that started after the last insert has folded it.
  const insertedBy = new Date();
  await waitFor(async () => ((await rollupAsOf(db)) > insertedBy ? true : undefined), {
    timeoutMs,
    intervalMs: 100,
    what: 'the rollup to pass the last insert',
  });
}

export async function storedEvents(db: Database, projectId: string): Promise<number> {
  const { rows } = await db.$client.query<{ n: string }>('SELECT count(*) AS n FROM analytics_events WHERE project_id = $1', [
    projectId,
  ]);
  return Number(rows[0]!.n);
}

export interface ExactnessCheck {
  db: Database;
  projectId: string;
  /** Distinct events the API accepted (202) for the project. */
  acceptedEvents: number;
  read: ResultsReader;
  experiments?: readonly string[];
  goals?: readonly (string | null)[];
}

export async function expectExactResults({
  db,
  projectId,
  acceptedEvents,
  read,
  experiments = [...TRAFFIC_EXPERIMENTS, 'never-exposed'],
  goals = [null, ...TRAFFIC_GOALS, 'never-converted'],
}: ExactnessCheck): Promise<void> {
  expect(await storedEvents(db, projectId), 'stored rows = distinct accepted events').toBe(acceptedEvents);
  expect(await listExperiments(db, projectId)).toEqual(await rawExperimentList(db, projectId));
  for (const experimentId of experiments) {
    for (const goal of goals) {
      const expected = await rawExperimentResults(db, projectId, experimentId, goal);
      expect(await read(experimentId, goal), `${experimentId}, goal ${goal ?? '(any)'}`).toEqual(expected);
    }
  }
}

/** What the completed ingest jobs report, summed: events new to the table, and events it already held. */
export async function rowsInsertedByJobs(ingest: Queue): Promise<{ jobs: number; inserted: number; duplicates: number }> {
  const jobs = await ingest.getCompleted(0, -1);
  let inserted = 0;
  let duplicates = 0;
  for (const job of jobs) {
    const result = job.returnvalue as { inserted: number; duplicates: number };
    inserted += result.inserted;
    duplicates += result.duplicates;
  }
  return { jobs: jobs.length, inserted, duplicates };
}
