import type { Command } from 'commander';
import type { CommandContext } from '../context.js';

const DAY_MS = 86_400_000;

/** `YYYY-MM-DD` of today (UTC) plus `offset` days. */
export function utcDay(offset = 0): string {
  return new Date(Date.now() + offset * DAY_MS).toISOString().slice(0, 10);
}

export interface PartitionStatus {
  partitions: number;
  first: string | null;
  last: string | null;
  todayCovered: boolean;
  /** Days after today that already have a partition, counting from tomorrow until the first gap. */
  daysAhead: number;
  /** Days between the first and the last partition that have none. */
  missingDays: string[];
  /** Rows in the default partition: events whose day had no partition when they arrived. */
  defaultRows: number;
}

export function registerPartitionsStatus(partitions: Command, context: CommandContext): void {
  partitions
    .command('status')
    .description('show which days have event partitions and how many rows wait in the default partition')
    .option('--json', 'print one line of JSON')
    .action(async (options: { json?: boolean }) => {
      const status = await partitionStatus(context);
      if (options.json) {
        context.print(JSON.stringify(status));
        return;
      }
      if (status.partitions === 0) {
        context.print('No daily partitions yet; make them with `pnpm tally partitions ensure`.');
      } else {
        context.print(`${status.partitions} daily partitions, ${status.first} to ${status.last} (UTC).`);
        context.print(
          !status.todayCovered
            ? `Today (${utcDay()}) has no partition: run \`pnpm tally partitions ensure\`, and check that the worker is running.`
            : `Made ahead: ${status.daysAhead} day${status.daysAhead === 1 ? '' : 's'} after today.`,
        );
        if (status.missingDays.length > 0) context.print(`Days without a partition: ${status.missingDays.join(', ')}.`);
      }
      context.print(
        `Default partition: ${status.defaultRows} row${status.defaultRows === 1 ? '' : 's'}` +
          (status.defaultRows > 0 ? ' (moved out when their day\'s partition is made).' : '.'),
      );
    });
}

async function partitionStatus(context: CommandContext): Promise<PartitionStatus> {
  const pool = context.database().pool;
  // Partition names carry their UTC day (tally_partition_name in the migrations).
  const { rows } = await pool.query<{ day: string }>(
    `SELECT to_char(to_date(substring(c.relname FROM 'analytics_events_p(\\d{8})$'), 'YYYYMMDD'), 'YYYY-MM-DD') AS day
       FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent = 'analytics_events'::regclass AND c.relname ~ '^analytics_events_p\\d{8}$'
      ORDER BY 1`,
  );
  const { rows: counted } = await pool.query<{ rows: number }>('SELECT count(*)::int AS rows FROM analytics_events_default');
  const days = rows.map((row) => row.day);
  const present = new Set(days);
  const missingDays: string[] = [];
  if (days.length > 0) {
    for (let t = Date.parse(days[0]!); t <= Date.parse(days.at(-1)!); t += DAY_MS) {
      const day = new Date(t).toISOString().slice(0, 10);
      if (!present.has(day)) missingDays.push(day);
    }
  }
  let daysAhead = 0;
  while (present.has(utcDay(daysAhead + 1))) daysAhead++;
  return {
    partitions: days.length,
    first: days[0] ?? null,
    last: days.at(-1) ?? null,
    todayCovered: present.has(utcDay()),
    daysAhead,
    missingDays,
    defaultRows: counted[0]?.rows ?? 0,
  };
}
