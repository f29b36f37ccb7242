import { InvalidArgumentError, Option, type Command } from 'commander';
import type { CommandContext } from '../context.js';
import { CliError, explain } from '../errors.js';
import { processIo } from '../io.js';
import { projectId, wholeNumber } from '../options.js';
import { describeSkipReason, UNIT_NAMES } from './import-legacy-rows.js';
import {
  importLegacy,
  ImportUsageError,
  sum,
  type ImportCounts,
  type ImportLegacyOptions,
  type ImportPlan,
  type ImportProgress,
  type ImportReport,
  type LegacyProjectMapping,
} from './import-legacy-run.js';
import { DEFAULT_ROLLUP_WINDOW } from './rollup-run.js';

interface CommandOptions {
  from: string;
  table: string;
  project?: string;
  batch: number;
  timestampUnit?: 's' | 'ms';
  goalProperty: string;
  limit?: number;
  restart?: boolean;
  progress: boolean;
  json?: boolean;
}

export function registerImportLegacy(program: Command, context: CommandContext): void {
  program
    .command('import-legacy')
    .description(
      "import the events of a database in the legacy schema (Prisma AnalyticsEvent) into Tally's tables and summaries; " +
        'resumable and idempotent: run it again to continue or to check, nothing is stored twice',
    )
    .requiredOption('--from <url>', 'connection string of the legacy database (postgres://user@host:port/database)', postgresUrl)
    .option('--table <name>', 'the legacy table, optionally schema.table', tableName, 'analytics_events')
    .option('--project <id>', 'put every event into this Tally project (default: a project per legacy projectId, created if missing)', projectId)
    .option('--batch <n>', 'rows read, stored and checkpointed at a time', wholeNumber(1, 100_000), 5_000)
    .addOption(
      new Option('--timestamp-unit <unit>', 'what the timestamp column counts, instead of detecting it: s (epoch seconds) or ms').choices(['s', 'ms']),
    )
    .option('--goal-property <key>', "the key of properties that names a CONVERSION's goal", goalProperty, 'goal')
    .option('--limit <n>', 'read at most this many rows in this run; the next run continues after them', wholeNumber(1, Number.MAX_SAFE_INTEGER))
    .option('--restart', 'read the table from its first row again instead of continuing after the checkpoint (nothing is stored twice)')
    .option('--no-progress', 'no progress line on stderr')
    .option('--json', 'print one line of JSON at the end (with the keys of the projects created) and nothing else on stdout')
    .action(async (options: CommandOptions, command: Command) => {
      const importOptions: ImportLegacyOptions = {
        from: options.from,
        table: options.table,
        project: options.project,
        batch: options.batch,
        timestampUnit: options.timestampUnit,
        goalProperty: options.goalProperty,
        limit: options.limit,
        restart: options.restart ?? false,
        rollupWindow: DEFAULT_ROLLUP_WINDOW,
      };
      const created: LegacyProjectMapping[] = [];
      const progress = progressPrinter(context, options.progress);
      let report: ImportReport;
      try {
        report = await importLegacy(context.database(), importOptions, context.logger(), {
          onPlan: (plan) => {
            if (!options.json) printPlan(context, plan);
          },
          onProjectCreated: (mapping) => {
            created.push(mapping);
            progress.end();
            if (!options.json) printCreated(context, mapping);
          },
          onProgress: progress.batch,
          onRollupWindow: progress.rollup,
        });
      } catch (error) {
        progress.end();
        if (error instanceof ImportUsageError) command.error(error.message, { exitCode: 2, code: 'tally.importLegacy.usage' });
        // In JSON mode the keys of projects made so far would be printed only at the end, which this run will not reach.
        if (options.json && created.length > 0) {
          const ids = created.map((m) => `${m.projectId} (legacy ${m.legacyProjectId})`).join(', ');
          throw new CliError(
            `${explain(error, context.config().DATABASE_URL).replace(/\.$/, '')}. Projects made before the failure, whose keys were not shown: ` +
              `${ids}; give them keys with \`pnpm tally project rotate-key\`.`,
          );
        }
        throw error;
      }
      progress.end();
      context.logger().debug({ run: report.run, total: report.total, complete: report.complete }, 'legacy import done');
      if (options.json) {
        context.print(JSON.stringify(report));
        return;
      }
      printReport(context, report, options.limit);
    });
}

function printPlan(context: CommandContext, plan: ImportPlan): void {
  const where = `${plan.table} of ${plan.source}`;
  if (plan.resumedAfter === null) {
    context.print(`Importing ${where}: ${plural(plan.rows, 'row')}.`);
  } else if (plan.remaining === 0) {
    context.print(`Nothing new in ${where}: an earlier run imported every row up to id ${plan.resumedAfter}.`);
  } else {
    context.print(`Continuing the import of ${where} after id ${plan.resumedAfter}: ${plan.remaining} of ${plural(plan.rows, 'row')} left.`);
  }
  const range = plan.timeRange.from === null ? '' : `, from ${plan.timeRange.from} to ${plan.timeRange.to}`;
  const why = {
    detected: `detected: every whole-number value is ${plan.timestampUnit === 's' ? 'below' : 'at least'} 10^11`,
    option: 'as --timestamp-unit says',
    checkpoint: 'as the earlier runs of this import read them',
    none: 'no row has a whole-number timestamp',
  }[plan.timestampUnitFrom];
  context.print(`Timestamps read as ${UNIT_NAMES[plan.timestampUnit]} (${why})${range}.`);
  if (plan.variantsFrom === 'properties') {
    context.print('No variantKey column (the table predates it): exposures take their variant from properties.variantKey.');
  }
  if (!plan.viewIds) context.print('No viewId column: events are imported without a view.');
}

function printCreated(context: CommandContext, mapping: LegacyProjectMapping): void {
  context.print(`Created project "legacy ${mapping.legacyProjectId}" (${mapping.projectId}) for legacy project ${mapping.legacyProjectId}.`);
  context.print(`  write key (ingest, POST /v1/batch):   ${mapping.writeKey}`);
  context.print(`  read key (results, /v1/experiments): ${mapping.readKey}`);
  context.print('  Store both now: only their hashes are kept, so they cannot be shown again (rotate a lost key).');
}

function printReport(context: CommandContext, report: ImportReport, limit: number | undefined): void {
  const { run } = report;
  if (run.read > 0 || report.remaining > 0) context.print(`Read ${plural(run.read, 'row')}: ${counts(run)}.`);
  for (const line of skippedLines(run.skipped)) context.print(line);
  for (const mapping of report.projects.filter((m) => !m.created)) {
    context.print(`Legacy project ${mapping.legacyProjectId} went into project ${mapping.projectId}, made by an earlier run.`);
  }
  if (report.target !== '*') context.print(`Every event went into project ${report.target}.`);
  if (!report.complete) {
    const left = report.remaining - run.read;
    context.print(
      `Stopped after ${plural(run.read, 'row')}${limit !== undefined ? ' (--limit)' : ''}; ${left} left: run the command again to continue.`,
    );
  }
  if (report.resumedAfter !== null && report.total.read > run.read) {
    context.print(`Over every run of this import: read ${plural(report.total.read, 'row')}: ${counts(report.total)}.`);
  }
  const { rollup } = report;
  context.print(
    rollup.events === 0
      ? `The summaries already held every event (last sequence number ${rollup.lastSeq}).`
      : `Folded ${plural(rollup.events, 'event')} into the summaries (last sequence number ${rollup.lastSeq}): results include the imported events.`,
  );
}

function counts(c: ImportCounts): string {
  const skipped = sum(c.skipped);
  return `imported ${plural(c.imported, 'event')}, ${c.alreadyPresent} already in Tally, skipped ${skipped}`;
}

function skippedLines(skipped: Record<string, number>): string[] {
  return Object.entries(skipped)
    .sort(([a, x], [b, y]) => y - x || a.localeCompare(b))
    .map(([reason, n]) => `  skipped ${n}: ${describeSkipReason(reason)} [${reason}]`);
}

/**
 * The progress line on stderr: rewritten in place on a terminal, else a line now
 * and then (logs and CI keep every line), and always a last one.
 */
function progressPrinter(context: CommandContext, enabled: boolean) {
  const tty = context.io === processIo && process.stderr.isTTY === true;
  const every = tty ? 500 : 10_000;
  let last = 0;
  let open = false;
  const write = (line: string, final: boolean) => {
    if (tty) {
      context.io.stderr(`\r${line}\x1b[K${final ? '\n' : ''}`);
      open = !final;
    } else {
      context.io.stderr(`${line}\n`);
    }
  };
  return {
    batch: (p: ImportProgress, final: boolean) => {
      // Nothing to read: the plan says so, a progress line would only repeat it.
      if (!enabled || p.remaining === 0 || (!final && Date.now() - last < every)) return;
      last = Date.now();
      const rate = p.elapsedMs > 0 ? Math.round((p.read * 1000) / p.elapsedMs) : 0;
      const percent = p.remaining > 0 ? ` (${Math.floor((p.read * 100) / p.remaining)}%)` : '';
      write(
        `import-legacy: read ${p.read} of ${p.remaining} rows${percent}, imported ${p.imported}, ` +
          `already in Tally ${p.alreadyPresent}, skipped ${p.skipped}, ${rate} rows/s`,
        final,
      );
    },
    rollup: (windows: number) => {
      if (enabled && tty) write(`import-legacy: folding into the summaries, window ${windows}`, false);
    },
    /** Ends a line left open on a terminal, before an error is printed. */
    end: () => {
      if (open) context.io.stderr('\n');
      open = false;
    },
  };
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

function postgresUrl(value: string): string {
  if (!/^postgres(ql)?:\/\//.test(value) || !URL.canParse(value)) {
    throw new InvalidArgumentError('Expected a Postgres connection string, postgres://user@host:port/database.');
  }
  if (new URL(value).pathname.length <= 1) throw new InvalidArgumentError('The connection string names no database.');
  return value;
}

function tableName(value: string): string {
  if (!/^[A-Za-z_][\w$]*(\.[A-Za-z_][\w$]*)?$/.test(value)) {
    throw new InvalidArgumentError('Expected a table name, or schema.table (letters, digits, _ and $).');
  }
  return value;
}

function goalProperty(value: string): string {
  if (value.length === 0 || value.length > 128) throw new InvalidArgumentError('Expected a key of 1 to 128 characters.');
  return value;
}
