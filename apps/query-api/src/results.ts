import {
  experimentResultsAsOf,
  experimentTimeseriesAsOf,
  listExperimentsAsOf,
  type Database,
  type ExperimentCounts,
  type ExperimentListItem,
  type ExperimentTimeseries,
} from '@tally/db';

export type Interval = ExperimentTimeseries['interval'];

type Fresh<T> = T & { asOf: Date };

/**
 * Where the routes get their numbers. The routes only know this interface; every
 * answer carries `asOf`: every event whose insert committed before it is counted.
 */
export interface ResultsSource {
  listExperiments: (projectId: string) => Promise<Fresh<{ experiments: ExperimentListItem[] }>>;
  /** Undefined when the project has no exposure to the experiment. */
  experimentResults: (projectId: string, experimentId: string, goal: string | null) => Promise<Fresh<ExperimentCounts> | undefined>;
  /** Undefined when the project has no exposure to the experiment. */
  experimentTimeseries: (
    projectId: string,
    experimentId: string,
    interval: Interval,
    goal: string | null,
  ) => Promise<Fresh<ExperimentTimeseries> | undefined>;
}

/**
 * Numbers from the summaries the rollup keeps (`tally_rollup`): a few rows per
 * experiment, whatever the number of raw events. Raw events are never read here.
 *
 * Each answer reads `rollup_state` and the summaries in one statement, so in one
 * snapshot. The rollup updates both in one transaction, so `asOf` is exactly the
 * state the numbers are from, and a rollup committing meanwhile cannot tear an
 * answer (say, a session counted both in a variant and in `excludedSessions`). One
 * round trip each, where a read-only REPEATABLE READ transaction took four or five.
 */
export function summaryResultsSource(db: Database): ResultsSource {
  return {
    listExperiments: async (projectId) => {
      const { experiments, asOf } = await listExperimentsAsOf(db, projectId);
      const sorted = experiments.map((e) => ({ ...e, variants: byKey(e.variants, (v) => v.variantKey) }));
      return { experiments: byKey(sorted, (e) => e.experimentId), asOf };
    },

    experimentResults: (projectId, experimentId, goal) => experimentResultsAsOf(db, projectId, experimentId, goal),

    experimentTimeseries: async (projectId, experimentId, interval, goal) => {
      const found = await experimentTimeseriesAsOf(db, projectId, experimentId, interval, goal);
      return found && { ...found, variants: byKey(found.variants, (v) => v.variantKey) };
    },
  };
}

/** Code-point order, whatever the database's collation, as the results route orders variants. */
function byKey<T>(items: readonly T[], key: (item: T) => string): T[] {
  return [...items].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}
