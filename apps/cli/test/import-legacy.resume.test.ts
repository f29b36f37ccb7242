import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type Database } from '@tally/db';
import { createTestDatabase, type TestDatabase } from '@tally/testing';
import { importLegacy, type ImportLegacyOptions, type ImportReport } from '../src/commands/import-legacy-run.js';
import { createCliLogger } from '../src/logger.js';
import { asLegacyRow, createLegacyDatabase, legacyHistory, legacyProjectMap, lines, servedNumbers, tally, type LegacyDatabase } from './helpers.js';

/**
 * An import that stops part way (told to, crashed, or cut off from the legacy
 * database) continues from its checkpoint and ends exactly where one run would.
 */
describe('tally import-legacy, interrupted and resumed', () => {
  const ROWS = 500;
  const BATCH = 60;
  let legacy: LegacyDatabase;
  let single: TestDatabase;
  const databases: TestDatabase[] = [];

  beforeAll(async () => {
    legacy = await createLegacyDatabase('current');
    const events = legacyHistory({ count: ROWS, seed: 11, projects: ['lp-r1', 'lp-r2', 'lp-r3'] });
    const rows = events.map((e) => asLegacyRow(e, { unit: 'ms', variantColumn: true }));
    // A row to skip, so that skipped counts must survive the interruption too.
    rows.push({ ...rows[0]!, id: 'c-no-variant', eventType: 'EXPOSURE', experimentId: 'exp-a', variantKey: null, properties: {} });
    await legacy.insert(rows);

    // The reference: the same import done in one go.
    single = await tallyDatabase();
    const report = await importJson(single, []);
    expect(report.run).toEqual({ read: ROWS + 1, imported: ROWS, alreadyPresent: 0, skipped: { 'exposure-without-variant': 1 } });
  });
  afterAll(async () => {
    for (const database of databases) await database.drop();
    await legacy?.drop();
  });

  async function tallyDatabase(): Promise<TestDatabase> {
    const database = await createTestDatabase();
    databases.push(database);
    return database;
  }

  async function importJson(database: TestDatabase, args: string[]): Promise<ImportReport> {
    const result = await tally(['import-legacy', '--from', legacy.url, '--batch', String(BATCH), '--json', ...args], { DATABASE_URL: database.url });
    expect(result.code, result.stderr).toBe(0);
    return JSON.parse(result.stdout) as ImportReport;
  }

  /** The nth row in the order the import reads them (the database's own order of ids). */
  const nthId = async (n: number) =>
    (await legacy.handle.pool.query('SELECT id FROM analytics_events ORDER BY id OFFSET $1 LIMIT 1', [n - 1])).rows[0].id as string;

  const storedEvents = (db: Database, projectId: string) =>
    db.$client
      .query(
        `SELECT event_id, event_type, session_id, view_id, experiment_id, variant_key, goal, properties, event_time, client_time
           FROM analytics_events WHERE project_id = $1 ORDER BY event_id`,
        [projectId],
      )
      .then((r) => r.rows);

  /** Same projects (one per legacy project), same raw events, same served numbers as the single run. */
  async function expectIdenticalToSingleRun(database: TestDatabase): Promise<void> {
    const mine = await legacyProjectMap(database.db);
    const theirs = await legacyProjectMap(single.db);
    expect([...mine.keys()].sort()).toEqual([...theirs.keys()].sort());
    for (const [legacyProject, projectId] of mine) {
      const other = theirs.get(legacyProject)!;
      expect(await storedEvents(database.db, projectId)).toEqual(await storedEvents(single.db, other));
      expect(await servedNumbers(database.db, projectId)).toEqual(await servedNumbers(single.db, other));
    }
    const projects = await database.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM projects');
    expect(projects.rows[0]!.n).toBe(theirs.size);
  }

  it('stopped by --limit, continues after its checkpoint on the next run and ends identical to a single run', async () => {
    const database = await tallyDatabase();
    const env = { DATABASE_URL: database.url };

    const first = await tally(['import-legacy', '--from', legacy.url, '--batch', String(BATCH), '--limit', '150', '--no-progress'], env);
    expect(first.code, first.stderr).toBe(0);
    expect(lines(first.stdout)).toContain(`Stopped after 150 rows (--limit); ${ROWS + 1 - 150} left: run the command again to continue.`);

    const second = await importJson(database, ['--limit', '100']);
    expect(second).toMatchObject({ resumedAfter: await nthId(150), remaining: ROWS + 1 - 150, complete: false, timestampUnitFrom: 'checkpoint' });
    expect(second.run.read).toBe(100);

    const rest = await importJson(database, []);
    expect(rest).toMatchObject({ resumedAfter: await nthId(250), remaining: ROWS + 1 - 250, complete: true });
    // Projects made by the first run are reused, never made again.
    expect(rest.projects.every((p) => !p.created)).toBe(true);
    expect(rest.total).toEqual({ read: ROWS + 1, imported: ROWS, alreadyPresent: 0, skipped: { 'exposure-without-variant': 1 } });
    await expectIdenticalToSingleRun(database);
  });

  it('after a crash between storing a batch and saving its checkpoint, the next run stores nothing twice and ends identical to a single run', async () => {
    const database = await tallyDatabase();
    const handle = createDb(database.url, { max: 2 });
    const options: ImportLegacyOptions = { from: legacy.url, table: 'analytics_events', batch: BATCH, goalProperty: 'goal', restart: false };
    try {
      const crashed = importLegacy(handle, options, createCliLogger('silent', () => {}), {
        afterBatchStored: (batch) => {
          if (batch === 3) throw new Error('simulated crash');
        },
      });
      await expect(crashed).rejects.toThrow('simulated crash');
    } finally {
      await handle.close();
    }
    // Three batches are stored, two are checkpointed.
    const { rows } = await database.pool.query('SELECT last_id, rows_read FROM legacy_import_checkpoints');
    expect(rows).toEqual([{ last_id: await nthId(2 * BATCH), rows_read: String(2 * BATCH) }]);

    const resumed = await importJson(database, []);
    expect(resumed.resumedAfter).toBe(await nthId(2 * BATCH));
    expect(resumed.run.read).toBe(ROWS + 1 - 2 * BATCH);
    // The third batch is read again, and found already stored (less the row skipped, if it was in that batch).
    expect(resumed.total.read).toBe(ROWS + 1);
    expect(resumed.total.imported + resumed.total.alreadyPresent).toBe(ROWS);
    expect(resumed.total.alreadyPresent).toBeGreaterThanOrEqual(BATCH - 1);
    expect(resumed.total.alreadyPresent).toBeLessThanOrEqual(BATCH);
    await expectIdenticalToSingleRun(database);
  });

  it('cut off from the legacy database mid-import, says how far it got, and the next run continues from there', async () => {
    const database = await tallyDatabase();
    const handle = createDb(database.url, { max: 2 });
    const options: ImportLegacyOptions = { from: legacy.url, table: 'analytics_events', batch: BATCH, goalProperty: 'goal', restart: false };
    try {
      const cutOff = importLegacy(handle, options, createCliLogger('silent', () => {}), {
        afterBatchStored: async (batch) => {
          if (batch !== 2) return;
          await legacy.handle.pool.query(
            `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'tally-import-legacy'`,
            [legacy.name],
          );
        },
      });
      await expect(cutOff).rejects.toThrow(
        new RegExp(
          `^Lost the legacy database at 127\\.0\\.0\\.1:5432 \\(.+\\) after this run stored ${2 * BATCH} rows \\(up to id ${await nthId(2 * BATCH)}\\); ` +
            'run the same command again to continue from there\\.$',
        ),
      );
    } finally {
      await handle.close();
    }

    const resumed = await importJson(database, []);
    expect(resumed).toMatchObject({ resumedAfter: await nthId(2 * BATCH), complete: true });
    expect(resumed.total).toEqual({ read: ROWS + 1, imported: ROWS, alreadyPresent: 0, skipped: { 'exposure-without-variant': 1 } });
    await expectIdenticalToSingleRun(database);
  });
});
