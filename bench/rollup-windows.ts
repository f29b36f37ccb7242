/**
 * What one rollup window costs as the stored events grow. For each `--events`
 * size the generated traffic (bench/generate.ts) is COPYed into a fresh Tally
 * database without ANALYZE, as a partition stands before autovacuum first reaches
 * it (or on a server with autovacuum off), and then rolled up in windows of
 * `--window` events, as the worker's rollup, every second, folds what arrived in
 * that second. Every event is stored before the first window, so a window that
 * costs more at a larger size reads history it does not need.
 *
 * Reports each size's whole rollup, the mean window of the first and of the last
 * tenth, the sizes of the events table, of its `seq` index and of
 * `rolled_up_sessions`, and whether every experiment's summaries equal the SQL
 * over the raw events.
 *
 *   pnpm exec tsx bench/rollup-windows.ts [--events 1000000,3000000] [--window 25000] [--lanes 2]
 *
 * Makes its databases and removes them, also when it fails or is interrupted.
 * Prints a markdown section on stdout; progress on stderr.
 */
import { parseArgs } from 'node:util';
import { experimentResults, rawExperimentResults } from '@tally/db';
import { createTestDatabase } from '@tally/testing';
import { DEFAULT_TRAFFIC, EXPERIMENTS, fmt, loadTally, mb } from './generate.js';
import { acquire, logger, measureEachSize, runScenario } from './harness.js';

const { values: args } = parseArgs({
  options: {
    events: { type: 'string', default: '1000000,3000000' },
    window: { type: 'string', default: '25000' },
    lanes: { type: 'string', default: '2' },
  },
});
const SIZES = args.events.split(',').map(Number);
const WINDOW = Number(args.window);
const log = logger('rollup-windows');

interface Measured {
  events: number;
  windows: number;
  rollupSeconds: number;
  firstTenthMs: number;
  lastTenthMs: number;
  rawBytes: number;
  seqIndexBytes: number;
  sessions: number;
  sessionBytes: number;
  exact: boolean;
}

const mean = (values: number[]) => values.reduce((sum, v) => sum + v, 0) / values.length;

async function measure(events: number): Promise<Measured> {
  const database = await acquire(createTestDatabase(), (d) => d.drop());
  const { db } = database;
  const load = await loadTally(database, { ...DEFAULT_TRAFFIC, events }, { lanes: Number(args.lanes), log, analyze: false, windowEvents: WINDOW });

  let exact = true;
  for (const experiment of EXPERIMENTS) {
    const summaries = await experimentResults(db, load.projectId, experiment.id);
    const raw = await rawExperimentResults(db, load.projectId, experiment.id);
    if (JSON.stringify(summaries) !== JSON.stringify(raw)) exact = false;
  }

  const { rows } = await db.$client.query<{ seq_index: string; sessions: string; session_bytes: string }>(`
    SELECT (SELECT sum(pg_relation_size(inhrelid)) FROM pg_inherits WHERE inhparent = 'analytics_events_seq_idx'::regclass) AS seq_index,
      (SELECT count(*) FROM rolled_up_sessions) AS sessions,
      pg_total_relation_size('rolled_up_sessions') AS session_bytes`);
  const tenth = Math.max(1, Math.floor(load.windowMs.length / 10));
  return {
    events,
    windows: load.rollupWindows,
    rollupSeconds: load.rollupSeconds,
    firstTenthMs: mean(load.windowMs.slice(0, tenth)),
    lastTenthMs: mean(load.windowMs.slice(-tenth)),
    rawBytes: load.rawBytes,
    seqIndexBytes: Number(rows[0]!.seq_index),
    sessions: Number(rows[0]!.sessions),
    sessionBytes: Number(rows[0]!.session_bytes),
    exact,
  };
}

function report(results: Measured[]): string {
  const command = `pnpm exec tsx bench/rollup-windows.ts --events ${SIZES.join(',')} --window ${WINDOW} --lanes ${args.lanes}`;
  return [
    '### Rollup: the cost of a window as stored events grow',
    '',
    `\`${command}\``,
    '',
    `The generated traffic COPYed into a fresh database without \`ANALYZE\`, then rolled up in windows of ${fmt(WINDOW)} events, every event stored before the first window.`,
    '',
    '| events | whole rollup | windows | window, first tenth / last tenth (mean) | events table / its `seq` index | `rolled_up_sessions` | summaries = raw SQL |',
    '|---|---|---|---|---|---|---|',
    ...results.map(
      (r) =>
        `| ${fmt(r.events)} | ${fmt(r.rollupSeconds, 1)} s (${fmt(r.events / r.rollupSeconds)} events/s) | ${r.windows} | ${fmt(r.firstTenthMs)} / ${fmt(r.lastTenthMs)} ms | ${mb(r.rawBytes)} / ${mb(r.seqIndexBytes)} | ${fmt(r.sessions)} sessions, ${mb(r.sessionBytes)} | ${r.exact ? 'yes' : 'NO'} |`,
    ),
  ].join('\n');
}

await runScenario(async () => {
  console.log(report(await measureEachSize(SIZES, measure)));
});
