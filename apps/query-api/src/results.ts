import { sql } from 'drizzle-orm';
import {
  rawExperimentResults,
  rawListExperiments,
  type Database,
  type ExperimentCounts,
  type ExperimentSummary,
} from '@tally/db';

/**
 * Where the routes get their numbers. The routes only know this interface, so
 * serving from the rollup's summaries instead of raw events changes this file
 * alone.
 */
export interface ResultsSource {
  listExperiments: (projectId: string) => Promise<{ experiments: ExperimentSummary[]; asOf: Date }>;
  /** Undefined when the project has no exposure to the experiment. */
  experimentResults: (
    projectId: string,
    experimentId: string,
    goal: string | null,
  ) => Promise<(ExperimentCounts & { asOf: Date }) | undefined>;
}

/**
 * Numbers computed from the raw events at each request. `asOf` is the database's
 * clock read just before the computation: every event committed before it is
 * counted (the computation's snapshot is taken later, so it can only see more).
 */
export function rawResultsSource(db: Database): ResultsSource {
  const databaseNow = async (): Promise<Date> => {
    const { rows } = await db.execute<{ now: Date }>(sql`SELECT now() AS now`);
    return new Date(rows[0]!.now);
  };
  return {
    async listExperiments(projectId) {
      const asOf = await databaseNow();
      return { experiments: await rawListExperiments(db, projectId), asOf };
    },
    async experimentResults(projectId, experimentId, goal) {
      const asOf = await databaseNow();
      const results = await rawExperimentResults(db, projectId, experimentId, goal);
      return results && { ...results, asOf };
    },
  };
}
