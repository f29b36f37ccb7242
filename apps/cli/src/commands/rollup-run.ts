import type { Command } from 'commander';
import { rollUpPending, type DbHandle } from '@tally/db';
import type { Logger } from '@tally/logger';
import type { CommandContext } from '../context.js';
import { wholeNumber } from '../options.js';

/** Events per rollup transaction: the worker's default window. */
export const DEFAULT_ROLLUP_WINDOW = 250_000;

export interface RollupSummary {
  /** Events folded by this command, over every window. */
  events: number;
  windows: number;
  lastSeq: number;
  /** Every event whose insert committed before this instant is in the summaries; null until a run first catches up. */
  asOf: string | null;
}

export function registerRollupRun(rollup: Command, context: CommandContext): void {
  rollup
    .command('run')
    .description('fold every event inserted since the last rollup into the summaries now (after a worker outage, or in scripts)')
    .option('--window <n>', 'fold at most this many events per transaction', wholeNumber(1, 10_000_000), DEFAULT_ROLLUP_WINDOW)
    .option('--json', 'print one line {"events","windows","lastSeq","asOf"}')
    .action(async (options: { window: number; json?: boolean }) => {
      const summary = await rollUpEverything(context.database(), options.window, context.logger());
      if (options.json) {
        context.print(JSON.stringify(summary));
        return;
      }
      context.print(
        summary.events === 0
          ? `Nothing to fold: the summaries already held every event (last sequence number ${summary.lastSeq}).`
          : `Folded ${summary.events} event${summary.events === 1 ? '' : 's'} into the summaries ` +
              `in ${summary.windows} window${summary.windows === 1 ? '' : 's'} (last sequence number ${summary.lastSeq}).`,
      );
      if (summary.asOf !== null) context.print(`The summaries hold every event stored before ${summary.asOf}.`);
    });
}

/** Folds every event stored when this starts; events stored meanwhile are left to the worker. */
export async function rollUpEverything(database: DbHandle, window: number, logger: Logger): Promise<RollupSummary> {
  const { events, windows, lastSeq, asOf } = await rollUpPending(database.db, {
    windowEvents: window,
    onWindow: (run, n) => logger.debug({ window: n, events: run.events, lastSeq: run.lastSeq }, 'rollup window folded'),
  });
  return { events, windows, lastSeq, asOf: asOf?.toISOString() ?? null };
}
