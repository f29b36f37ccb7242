import type { Command } from 'commander';
import { ensurePartitions } from '@tally/db';
import type { CommandContext } from '../context.js';
import { wholeNumber } from '../options.js';
import { utcDay } from './partitions-status.js';

export function registerPartitionsEnsure(partitions: Command, context: CommandContext): void {
  partitions
    .command('ensure')
    .description('make the event partitions (of the size the worker uses: day, week or month) covering yesterday to N days ahead (UTC) that do not exist yet')
    .option('--days-ahead <n>', 'how many days after today', wholeNumber(0, 366), 7)
    .option('--json', 'print one line {"made","from","to"}')
    .action(async (options: { daysAhead: number; json?: boolean }) => {
      const daysBack = 1;
      const made = await ensurePartitions(context.database().db, daysBack, options.daysAhead);
      const from = utcDay(-daysBack);
      const to = utcDay(options.daysAhead);
      context.logger().debug({ made, from, to }, 'partitions ensured');
      if (options.json) {
        context.print(JSON.stringify({ made, from, to }));
        return;
      }
      context.print(
        made === 0
          ? `Every day from ${from} to ${to} already had a partition.`
          : `Made ${made} partition${made === 1 ? '' : 's'}; every day from ${from} to ${to} now has one.`,
      );
    });
}
