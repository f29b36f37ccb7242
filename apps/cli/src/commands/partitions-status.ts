import type { Command } from 'commander';
import { DAY_MS } from '@tally/config';
import { defaultPartitionUsage, listPartitions, partitionSettings, type PartitionInterval } from '@tally/db';
import type { CommandContext } from '../context.js';

/** `YYYY-MM-DD` of today (UTC) plus `offset` days. */
export function utcDay(offset = 0): string {
  return new Date(Date.now() + offset * DAY_MS).toISOString().slice(0, 10);
}

const dayOf = (time: Date) => time.toISOString().slice(0, 10);

export interface PartitionRow {
  name: string;
  /** Inclusive, ISO-8601. */
  from: string;
  /** Exclusive, ISO-8601. */
  to: string;
  /** On disk, with indexes (pg_total_relation_size). */
  bytes: number;
  /** Postgres' estimate; null when the partition was never analyzed. */
  estimatedRows: number | null;
  /** Entirely before the retention horizon: the worker drops it once the rollup has folded its rows. */
  expired: boolean;
}

export interface PartitionStatus {
  /** Size of the partitions made from now on, as the worker last recorded it (PARTITION_INTERVAL). */
  interval: PartitionInterval;
  /** RETENTION_DAYS as the worker last applied it; null: raw events are kept for ever. */
  retentionDays: number | null;
  /** Partitions entirely before this instant are dropped; null without retention. */
  horizon: string | null;
  /** When the worker's partition maintenance last ran; null if it never has. */
  maintainedAt: string | null;
  partitions: PartitionRow[];
  /** First and last UTC day with a partition. */
  first: string | null;
  last: string | null;
  todayCovered: boolean;
  /** Days after today that already have a partition, counting from tomorrow until the first gap. */
  daysAhead: number;
  /** Runs of days, between the first and the last partition, that have none (first and last day of each run). */
  gaps: { from: string; to: string }[];
  /** Rows in the default partition (counted exactly): events whose day had no partition when they arrived. */
  defaultRows: number;
  defaultBytes: number;
}

export function registerPartitionsStatus(partitions: Command, context: CommandContext): void {
  partitions
    .command('status')
    .description('show the event partitions (range, size, estimated rows), rows waiting in the default partition, and the retention')
    .option('--json', 'print one line of JSON')
    .action(async (options: { json?: boolean }) => {
      const status = await partitionStatus(context);
      if (options.json) {
        context.print(JSON.stringify(status));
        return;
      }
      for (const line of describe(status)) context.print(line);
    });
}

async function partitionStatus(context: CommandContext): Promise<PartitionStatus> {
  const { db } = context.database();
  const [settings, list, usage] = await Promise.all([partitionSettings(db), listPartitions(db), defaultPartitionUsage(db)]);
  const horizon = settings.retentionDays === null ? null : new Date(Date.now() - settings.retentionDays * DAY_MS);

  const covered = (day: string) => {
    const t = Date.parse(day);
    return list.some((partition) => partition.from.getTime() <= t && t < partition.to.getTime());
  };
  const gaps: PartitionStatus['gaps'] = [];
  for (const [i, partition] of list.entries()) {
    const next = list[i + 1];
    if (next && next.from.getTime() > partition.to.getTime()) {
      gaps.push({ from: dayOf(partition.to), to: dayOf(new Date(next.from.getTime() - DAY_MS)) });
    }
  }
  let daysAhead = 0;
  while (covered(utcDay(daysAhead + 1))) daysAhead++;

  return {
    interval: settings.interval,
    retentionDays: settings.retentionDays,
    horizon: horizon?.toISOString() ?? null,
    maintainedAt: settings.maintainedAt?.toISOString() ?? null,
    partitions: list.map((partition) => ({
      name: partition.name,
      from: partition.from.toISOString(),
      to: partition.to.toISOString(),
      bytes: partition.bytes,
      estimatedRows: partition.estimatedRows,
      expired: horizon !== null && partition.to.getTime() <= horizon.getTime(),
    })),
    first: list[0] ? dayOf(list[0].from) : null,
    last: list.length > 0 ? dayOf(new Date(list.at(-1)!.to.getTime() - 1)) : null,
    todayCovered: covered(utcDay()),
    daysAhead,
    gaps,
    defaultRows: usage.rows,
    defaultBytes: usage.bytes,
  };
}

const plural = (n: number, word: string) => `${n.toLocaleString('en-US')} ${word}${n === 1 ? '' : 's'}`;

export function formatBytes(bytes: number): string {
  const units = ['bytes', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** The days a partition holds: one day, or first – last. */
function rangeOf(row: PartitionRow): string {
  const first = row.from.slice(0, 10);
  const last = dayOf(new Date(Date.parse(row.to) - 1));
  return first === last ? first : `${first} – ${last}`;
}

function describe(status: PartitionStatus): string[] {
  const lines: string[] = [];
  const by = { day: 'daily', week: 'weekly', month: 'monthly' }[status.interval];
  if (status.partitions.length === 0) {
    lines.push('No partitions yet; make them with `pnpm tally partitions ensure`.');
  } else {
    lines.push(`${plural(status.partitions.length, 'partition')}, ${status.first} to ${status.last} (UTC); new ones are made ${by}.`);
    const ranges = status.partitions.map(rangeOf);
    const width = Math.max(...ranges.map((range) => range.length));
    const nameWidth = Math.max(...status.partitions.map((row) => row.name.length));
    for (const [i, row] of status.partitions.entries()) {
      const rows =
        row.estimatedRows === null ? 'rows unknown (never analyzed)' : `${row.estimatedRows === 0 ? '' : '~'}${plural(row.estimatedRows, 'row')}`;
      const expired = row.expired ? '  past the retention, to be dropped' : '';
      lines.push(`  ${ranges[i]!.padEnd(width)}  ${row.name.padEnd(nameWidth)}  ${formatBytes(row.bytes).padStart(9)}  ${rows}${expired}`);
    }
    lines.push(
      !status.todayCovered
        ? `Today (${utcDay()}) has no partition: run \`pnpm tally partitions ensure\`, and check that the worker is running.`
        : `Made ahead: ${plural(status.daysAhead, 'day')} after today.`,
    );
    if (status.gaps.length > 0) {
      const gaps = status.gaps.map((gap) => (gap.from === gap.to ? gap.from : `${gap.from} to ${gap.to}`));
      lines.push(`Days without a partition: ${gaps.join(', ')}.`);
    }
  }
  lines.push(
    `Default partition: ${plural(status.defaultRows, 'row')}` +
      (status.defaultRows > 0 ? ` (${formatBytes(status.defaultBytes)}), moved into partitions of their own by the worker's next maintenance run.` : '.'),
  );
  if (status.maintainedAt === null) {
    lines.push('Retention: none yet; the worker has not run partition maintenance on this database (nothing is dropped until it does).');
  } else {
    const expired = status.partitions.filter((row) => row.expired).length;
    lines.push(
      status.retentionDays === null
        ? 'Retention: none, raw events are kept for ever (RETENTION_DAYS is unset on the worker).'
        : `Retention: ${plural(status.retentionDays, 'day')}; partitions entirely before ${status.horizon} are dropped, ` +
            `experiment results stay whole (${plural(expired, 'partition')} past it now).`,
    );
    lines.push(`The worker last ran partition maintenance at ${status.maintainedAt}.`);
  }
  return lines;
}
