import type { IngestLimits, StoredEvent } from '@tally/contracts';
import {
  EVERY_LEGACY_PROJECT,
  findLegacyCheckpoint,
  insertEvents,
  LegacySource,
  lockLegacyImport,
  mapLegacyProject,
  partitionSettings,
  projectExists,
  restartLegacyCheckpoint,
  rollUpPending,
  saveLegacyCheckpoint,
  startLegacyCheckpoint,
  type DbHandle,
  type LegacyField,
  type LegacyImportKey,
  type LegacyTable,
} from '@tally/db';
import type { Logger } from '@tally/logger';
import { CliError, hostOf } from '../errors.js';
import { detectUnit, mapLegacyRow, timeRange, UNIT_NAMES, type TimestampUnit } from './import-legacy-rows.js';
import { DEFAULT_ROLLUP_WINDOW, type RollupSummary } from './rollup-run.js';

export interface ImportLegacyOptions {
  /** Connection string of the legacy database. */
  from: string;
  table: string;
  /** One Tally project for every row; without it, one per legacy project. */
  project?: string;
  /** Rows per batch: read, stored, then checkpointed. */
  batch: number;
  /** Forces the unit of the timestamp column instead of detecting it. */
  timestampUnit?: TimestampUnit;
  goalProperty: string;
  /** Reads at most this many rows in this run. */
  limit?: number;
  /** Reads the table from its first row again, ignoring the checkpoint. */
  restart: boolean;
  rollupWindow?: number;
}

export interface ImportCounts {
  read: number;
  imported: number;
  /** Valid rows whose event Tally already held (from an earlier or crashed run). */
  alreadyPresent: number;
  skipped: Record<string, number>;
}

export interface LegacyProjectMapping {
  legacyProjectId: string;
  projectId: string;
  /** Created by this run: its keys are here, and nowhere else ever again. */
  created: boolean;
  writeKey?: string;
  readKey?: string;
}

/** What an import is about to do, known before the first row is read. */
export interface ImportPlan {
  /** `host:port/database` of the legacy database. */
  source: string;
  table: string;
  /** A project id, or '*': a Tally project per legacy project. */
  target: string;
  rows: number;
  /** Rows after the checkpoint: what this run has left to read. */
  remaining: number;
  /** The last row an earlier run stored, when this run continues after it. */
  resumedAfter: string | null;
  /** When an earlier run read the whole table. */
  completedBefore: string | null;
  timestampUnit: TimestampUnit;
  /** Where the unit came from: the data, --timestamp-unit, the earlier runs of this import, or nowhere (no row has a usable timestamp). */
  timestampUnitFrom: 'detected' | 'option' | 'checkpoint' | 'none';
  timeRange: { from: string | null; to: string | null };
  /** Whether the table has the variantKey column, or predates it (variants then come from properties.variantKey). */
  variantsFrom: 'column' | 'properties';
  viewIds: boolean;
}

export interface ImportReport extends ImportPlan {
  /** Whether every row of the table is now read (by this run or earlier ones). */
  complete: boolean;
  run: ImportCounts;
  /** Over every run of this import since it started (or was restarted). */
  total: ImportCounts;
  projects: LegacyProjectMapping[];
  rollup: RollupSummary;
}

export interface ImportProgress {
  read: number;
  remaining: number;
  imported: number;
  alreadyPresent: number;
  skipped: number;
  elapsedMs: number;
}

export interface ImportHooks {
  onPlan?: (plan: ImportPlan) => void;
  /** Called as soon as a project is made, so its keys are shown even if the import fails later. */
  onProjectCreated?: (mapping: LegacyProjectMapping) => void;
  onProgress?: (progress: ImportProgress, final: boolean) => void;
  onRollupWindow?: (eventsFolded: number) => void;
  /**
   * After a batch is stored, before its checkpoint is saved: where a crash leaves
   * the most to reconcile. Tests make one happen here.
   */
  afterBatchStored?: (batch: number) => void | Promise<void>;
}

/** A command line that cannot be carried out as given: the caller must choose (exit 2). */
export class ImportUsageError extends Error {
  override name = 'ImportUsageError';
}

/** How the ingest API checks events (its defaults); retention is added from what the worker applies. */
const LIMITS = { maxEventBytes: 65_536, maxFutureMs: 24 * 3_600_000 };

/**
 * Events older than the retention the worker applies would be dropped with their
 * partition at its next run, after the rollup had counted them: a later re-import
 * (`--restart`) would then store and count them a second time. They are refused,
 * as the ingest API refuses them.
 */
async function importLimits(db: DbHandle['db']): Promise<IngestLimits> {
  const { retentionDays } = await partitionSettings(db);
  return retentionDays ? { ...LIMITS, maxAgeMs: retentionDays * 86_400_000 } : LIMITS;
}

/**
 * Imports a legacy table into Tally: rows in id order through a cursor, a batch at
 * a time, each stored with the idempotent `insertEvents` and then checkpointed, so
 * that a crash at any point loses nothing and stores nothing twice when the same
 * command runs again. Ends with a rollup so that results include what was imported.
 */
export async function importLegacy(
  database: DbHandle,
  options: ImportLegacyOptions,
  logger: Logger,
  hooks: ImportHooks = {},
): Promise<ImportReport> {
  const { db } = database;
  const sourceName = `${hostOf(options.from, 5432)}/${databaseName(options.from)}`;
  const source = await fromSource(options.from, () => LegacySource.connect(options.from));
  try {
    const identity = await fromSource(options.from, () => source.identity());
    const table = await fromSource(options.from, () => source.findTable(options.table));
    if (!table) throw new CliError(`The legacy database ${sourceName} has no table ${options.table} (give another with --table).`);
    if (table.missing.length > 0) {
      throw new CliError(
        `Table ${table.name} in ${sourceName} lacks ${table.missing.length === 1 ? 'the column' : 'the columns'} ` +
          `${table.missing.map(columnNames).join(', ')} that the legacy schema (Prisma AnalyticsEvent) has; nothing was imported.`,
      );
    }
    if (options.project !== undefined && !(await projectExists(db, options.project))) {
      throw new CliError(`No project with id ${options.project}; \`pnpm tally project list\` shows the projects.`);
    }

    const key: LegacyImportKey = { source: identity, sourceTable: table.name, target: options.project ?? EVERY_LEGACY_PROJECT };
    const lock = await lockLegacyImport(db, key);
    if (!lock) {
      throw new CliError(`Another run is importing ${table.name} from ${sourceName} into the same target; let it finish, then run this again.`);
    }
    try {
      return await importTable(database, source, table, key, sourceName, options, logger, hooks);
    } finally {
      await lock.release();
    }
  } finally {
    await source.close();
  }
}

async function importTable(
  database: DbHandle,
  source: LegacySource,
  table: LegacyTable,
  key: LegacyImportKey,
  sourceName: string,
  options: ImportLegacyOptions,
  logger: Logger,
  hooks: ImportHooks,
): Promise<ImportReport> {
  const { db } = database;
  let checkpoint = await findLegacyCheckpoint(db, key);
  // The time is part of an event's idempotency key: another unit would store every
  // event again, at other times. Checked before anything changes, --restart included.
  if (checkpoint && options.timestampUnit !== undefined && options.timestampUnit !== checkpoint.timestampUnit) {
    throw new ImportUsageError(
      `This import stored its events reading timestamps as ${UNIT_NAMES[checkpoint.timestampUnit]}; reading them as ` +
        `${UNIT_NAMES[options.timestampUnit]} now would store every event a second time, at other times. Leave out --timestamp-unit.`,
    );
  }
  if (checkpoint && options.restart) {
    await restartLegacyCheckpoint(db, key);
    checkpoint = await findLegacyCheckpoint(db, key);
  }

  await fromSource(options.from, () => source.begin());
  const stats = await fromSource(options.from, () => source.timestampStats(table, checkpoint?.lastId ?? null));

  let unit: TimestampUnit;
  let unitFrom: ImportPlan['timestampUnitFrom'];
  if (checkpoint) {
    unit = checkpoint.timestampUnit;
    unitFrom = 'checkpoint';
  } else if (options.timestampUnit !== undefined) {
    unit = options.timestampUnit;
    unitFrom = 'option';
  } else {
    const detected = detectUnit(stats);
    if ('mixed' in detected) {
      throw new ImportUsageError(
        `Column timestamp of ${table.name} mixes epoch seconds (${detected.mixed.seconds} rows) and epoch milliseconds ` +
          `(${detected.mixed.milliseconds} rows): say which to import with --timestamp-unit s|ms (rows in the other unit are skipped).`,
      );
    }
    unit = detected.unit ?? 's';
    unitFrom = detected.unit === undefined ? 'none' : 'detected';
  }

  const plan: ImportPlan = {
    source: sourceName,
    table: table.name,
    target: key.target,
    rows: stats.rows,
    remaining: stats.remaining,
    resumedAfter: checkpoint?.lastId ?? null,
    completedBefore: checkpoint?.completedAt?.toISOString() ?? null,
    timestampUnit: unit,
    timestampUnitFrom: unitFrom,
    timeRange: timeRange(stats, unit),
    variantsFrom: table.columns.variantKey === undefined ? 'properties' : 'column',
    viewIds: table.columns.viewId !== undefined,
  };
  hooks.onPlan?.(plan);
  logger.debug({ ...plan, key }, 'legacy import planned');

  // An empty table leaves no checkpoint: the unit of rows added later is still open.
  if (!checkpoint && stats.rows > 0) checkpoint = await startLegacyCheckpoint(db, key, unit);

  const limits = await importLimits(db);
  const run: ImportCounts = { read: 0, imported: 0, alreadyPresent: 0, skipped: {} };
  const before: ImportCounts = {
    read: checkpoint?.rowsRead ?? 0,
    imported: checkpoint?.imported ?? 0,
    alreadyPresent: checkpoint?.alreadyPresent ?? 0,
    skipped: checkpoint?.skipped ?? {},
  };
  const projects = new Map<string, LegacyProjectMapping>();
  let lastId = checkpoint?.lastId ?? null;
  const started = Date.now();
  const progress = (): ImportProgress => ({
    read: run.read,
    remaining: stats.remaining,
    imported: run.imported,
    alreadyPresent: run.alreadyPresent,
    skipped: sum(run.skipped),
    elapsedMs: Date.now() - started,
  });
  const skip = (reason: string, id: string, detail: string) => {
    // The first of each reason is logged, to find the rows; the rest are only counted.
    if (run.skipped[reason] === undefined && before.skipped[reason] === undefined) {
      logger.debug({ legacyId: id, reason, detail }, 'legacy row skipped');
    }
    run.skipped[reason] = (run.skipped[reason] ?? 0) + 1;
  };

  if (stats.remaining > 0 && (options.limit === undefined || options.limit > 0)) {
    const batches = source.batches(table, lastId);
    try {
      for (let batchNo = 1; ; batchNo++) {
        const want = options.limit === undefined ? options.batch : Math.min(options.batch, options.limit - run.read);
        if (want <= 0) break;
        const rows = await fromSource(options.from, () => batches.read(want), () => stoppedAfter(run, lastId));
        if (rows.length === 0) break;

        const now = Date.now();
        const byProject = new Map<string, StoredEvent[]>();
        for (const row of rows) {
          let projectId = options.project;
          if (projectId === undefined) {
            if (row.projectId === null || row.projectId === '') {
              skip('project-missing', row.id, 'projectId is empty');
              continue;
            }
            projectId = projects.get(row.projectId)?.projectId;
          }
          const mapped = mapLegacyRow(row, { unit, goalProperty: options.goalProperty, now, limits });
          if ('skip' in mapped) {
            skip(mapped.skip, row.id, mapped.detail);
            continue;
          }
          if (projectId === undefined) {
            const mapping = await mapProject(db, key.source, row.projectId!);
            projects.set(row.projectId!, mapping);
            if (mapping.created) hooks.onProjectCreated?.(mapping);
            projectId = mapping.projectId;
          }
          let events = byProject.get(projectId);
          if (!events) byProject.set(projectId, (events = []));
          events.push(mapped.event);
        }

        for (const [projectId, events] of byProject) {
          const stored = await insertEvents(db, projectId, now, events);
          run.imported += stored;
          run.alreadyPresent += events.length - stored;
        }
        run.read += rows.length;
        lastId = rows.at(-1)!.id;
        await hooks.afterBatchStored?.(batchNo);
        await saveLegacyCheckpoint(db, key, { lastId, ...totalsOf(before, run) });
        hooks.onProgress?.(progress(), false);
      }
    } finally {
      await batches.close().catch(() => {});
    }
  }

  // Same snapshot as the count: reading `remaining` rows means reading them all.
  const complete = run.read === stats.remaining;
  if (checkpoint && complete && (run.read > 0 || checkpoint.completedAt === null)) {
    await saveLegacyCheckpoint(db, key, { lastId, ...totalsOf(before, run) }, true);
  }
  hooks.onProgress?.(progress(), true);

  const rolled = await rollUpPending(db, {
    windowEvents: options.rollupWindow ?? DEFAULT_ROLLUP_WINDOW,
    onWindow: (_, n) => hooks.onRollupWindow?.(n),
  });
  const rollup: RollupSummary = { events: rolled.events, windows: rolled.windows, lastSeq: rolled.lastSeq, asOf: rolled.asOf?.toISOString() ?? null };

  const totals = totalsOf(before, run);
  return {
    ...plan,
    complete,
    run,
    total: { read: totals.rowsRead, imported: totals.imported, alreadyPresent: totals.alreadyPresent, skipped: totals.skipped },
    projects: [...projects.values()],
    rollup,
  };
}

async function mapProject(db: DbHandle['db'], source: string, legacyProjectId: string): Promise<LegacyProjectMapping> {
  const { projectId, created } = await mapLegacyProject(db, source, legacyProjectId);
  return created
    ? { legacyProjectId, projectId, created: true, writeKey: created.writeKey, readKey: created.readKey }
    : { legacyProjectId, projectId, created: false };
}

function totalsOf(before: ImportCounts, run: ImportCounts) {
  const skipped = { ...before.skipped };
  for (const [reason, n] of Object.entries(run.skipped)) skipped[reason] = (skipped[reason] ?? 0) + n;
  return {
    rowsRead: before.read + run.read,
    imported: before.imported + run.imported,
    alreadyPresent: before.alreadyPresent + run.alreadyPresent,
    skipped,
  };
}

export function sum(counts: Record<string, number>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

function columnNames(field: LegacyField): string {
  const snake = field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  return snake === field ? `"${field}"` : `"${field}" (or ${snake})`;
}

function databaseName(url: string): string {
  try {
    return decodeURIComponent(new URL(url).pathname.slice(1));
  } catch {
    return '';
  }
}

function stoppedAfter(run: ImportCounts, lastId: string | null): string {
  return run.read === 0
    ? 'before this run stored anything; run the same command again to retry'
    : `after this run stored ${run.read} rows (up to id ${lastId}); run the same command again to continue from there`;
}

const UNREACHABLE = new Set([
  'ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'EPIPE',
  '57P01', '57P02', '57P03', '08000', '08003', '08006',
]);

/** Runs an operation on the legacy database, turning its failure into the one sentence that explains it. */
async function fromSource<T>(url: string, operation: () => Promise<T>, during?: () => string): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    throw new CliError(explainSourceError(error, url, during?.()));
  }
}

function explainSourceError(error: unknown, url: string, during: string | undefined): string {
  const { code, message = String(error) } = (error ?? {}) as { code?: string; message?: string };
  const host = hostOf(url, 5432);
  const suffix = during === undefined ? '' : ` ${during}`;
  // pg reports a connect timeout and a dropped connection without a code.
  if ((code !== undefined && UNREACHABLE.has(code)) || /^Connection terminated/.test(message)) {
    const verb = during === undefined ? 'Cannot reach' : 'Lost';
    return `${verb} the legacy database at ${host} (${code ?? message})${during === undefined ? ': check the host and port in --from' : ''}${suffix}.`;
  }
  if (code === '3D000') return `The legacy database "${databaseName(url)}" does not exist on ${host}: check the name in --from.`;
  if (code === '28P01' || code === '28000') return `The legacy database at ${host} refused the user or password in --from.`;
  if (code === '42501') return `The user in --from may not read the legacy table (${message}): grant it SELECT.`;
  return `Reading the legacy database at ${host} failed: ${message.split('\n')[0]}${suffix}.`;
}
