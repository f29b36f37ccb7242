import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProject, ensureDatabase, LegacySource, lockLegacyImport } from '@tally/db';
import { createTestDatabase, dropDatabase, TEST_POSTGRES_URL, uniqueName, type TestDatabase } from '@tally/testing';
import { asLegacyRow, createLegacyDatabase, expectOneSentenceError, legacyHistory, tally, type LegacyDatabase } from './helpers.js';

const urlOf = (name: string) => Object.assign(new URL(TEST_POSTGRES_URL), { pathname: `/${name}` }).toString();

describe('tally import-legacy, when it cannot import', () => {
  let database: TestDatabase;
  let env: Record<string, string>;
  let legacy: LegacyDatabase;

  beforeAll(async () => {
    database = await createTestDatabase();
    env = { DATABASE_URL: database.url };
    legacy = await createLegacyDatabase('current');
    await legacy.insert(legacyHistory({ count: 30, seed: 21, projects: ['lp-e'] }).map((e) => asLegacyRow(e, { unit: 'ms', variantColumn: true })));
  });
  afterAll(async () => {
    await legacy?.drop();
    await database?.drop();
  });

  /** Nothing was written to Tally: no project, no event, no checkpoint. */
  const expectNothingImported = async () => {
    const { rows } = await database.pool.query(
      `SELECT (SELECT count(*) FROM projects)::int AS projects, (SELECT count(*) FROM analytics_events)::int AS events,
              (SELECT count(*) FROM legacy_import_checkpoints)::int AS checkpoints`,
    );
    expect(rows[0]).toEqual({ projects: 0, events: 0, checkpoints: 0 });
  };

  it('says the legacy database is unreachable at which host, without printing its password: exit 1', async () => {
    const result = await tally(['import-legacy', '--from', 'postgres://legacy:hunter2@127.0.0.1:1/app'], env);
    expectOneSentenceError(result, /^Cannot reach the legacy database at 127\.0\.0\.1:1 \(ECONNREFUSED\): check the host and port in --from\.$/m);
    expect(result.stderr).not.toContain('hunter2');
    await expectNothingImported();
  });

  it('says the legacy database does not exist: exit 1', async () => {
    const result = await tally(['import-legacy', '--from', urlOf('no_such_legacy_db')], env);
    expectOneSentenceError(result, /^The legacy database "no_such_legacy_db" does not exist on 127\.0\.0\.1:5432: check the name in --from\.$/m);
  });

  it('says there is no such table: exit 1', async () => {
    const result = await tally(['import-legacy', '--from', legacy.url, '--table', 'events'], env);
    expectOneSentenceError(result, new RegExp(`^The legacy database 127\\.0\\.0\\.1:5432/${legacy.name} has no table events \\(give another with --table\\)\\.$`, 'm'));
    await expectNothingImported();
  });

  it('names every column the table lacks: exit 1, nothing imported', async () => {
    await legacy.handle.pool.query('CREATE SCHEMA legacy');
    await legacy.handle.pool.query(`CREATE TABLE legacy.partial ("id" text PRIMARY KEY, "project_id" text, "eventType" text, "viewId" text)`);
    const result = await tally(['import-legacy', '--from', legacy.url, '--table', 'legacy.partial'], env);
    expectOneSentenceError(
      result,
      /^Table legacy\.partial in 127\.0\.0\.1:5432\/\S+ lacks the columns "experimentId" \(or experiment_id\), "sessionId" \(or session_id\), "properties", "timestamp" that the legacy schema \(Prisma AnalyticsEvent\) has; nothing was imported\.$/m,
    );
    await expectNothingImported();
  });

  it('refuses to guess when the timestamps mix seconds and milliseconds: exit 2, nothing imported', async () => {
    await legacy.createTable('mixed_units', 'current');
    const events = legacyHistory({ count: 10, seed: 22, projects: ['lp-e'], wholeSeconds: true });
    await legacy.insert(events.map((e, i) => asLegacyRow(e, { unit: i < 3 ? 'ms' : 's', variantColumn: true })), 'mixed_units');
    const result = await tally(['import-legacy', '--from', legacy.url, '--table', 'mixed_units'], env);
    expectOneSentenceError(
      result,
      /^Column timestamp of public\.mixed_units mixes epoch seconds \(7 rows\) and epoch milliseconds \(3 rows\): say which to import with --timestamp-unit s\|ms/m,
      2,
    );
    await expectNothingImported();
  });

  it('says when the --project does not exist: exit 1', async () => {
    const result = await tally(['import-legacy', '--from', legacy.url, '--project', '00000000-0000-4000-8000-000000000000'], env);
    expectOneSentenceError(result, /^No project with id 00000000-0000-4000-8000-000000000000; .*project list/m);
    await expectNothingImported();
  });

  it('refuses to read timestamps in another unit than the import started with: exit 2', async () => {
    const target = await createProject(database.db, 'units');
    const first = await tally(['import-legacy', '--from', legacy.url, '--project', target.projectId, '--limit', '10', '--json'], env);
    expect(first.code, first.stderr).toBe(0);
    const checkpoint = async () => (await database.pool.query('SELECT last_id, rows_read, timestamp_unit FROM legacy_import_checkpoints')).rows;
    const before = await checkpoint();
    expect(before).toEqual([{ last_id: expect.any(String), rows_read: '10', timestamp_unit: 'ms' }]);
    for (const argv of [[], ['--restart']]) {
      const result = await tally(['import-legacy', '--from', legacy.url, '--project', target.projectId, '--timestamp-unit', 's', ...argv], env);
      expectOneSentenceError(result, /^This import stored its events reading timestamps as epoch milliseconds; .* Leave out --timestamp-unit\.$/m, 2);
      // Refused before anything changed: --restart did not reset the checkpoint either.
      expect(await checkpoint()).toEqual(before);
    }
    const { rows } = await database.pool.query('SELECT count(*)::int AS n FROM analytics_events WHERE project_id = $1', [target.projectId]);
    expect(rows[0].n).toBe(10);
  });

  it('refuses to run beside another run of the same import: exit 1', async () => {
    const source = await LegacySource.connect(legacy.url);
    const identity = await source.identity();
    await source.close();
    const lock = await lockLegacyImport(database.db, { source: identity, sourceTable: 'public.analytics_events', target: '*' });
    try {
      const result = await tally(['import-legacy', '--from', legacy.url], env);
      expectOneSentenceError(result, /^Another run is importing public\.analytics_events from 127\.0\.0\.1:5432\/\S+ into the same target; let it finish/m);
    } finally {
      await lock!.release();
    }
  });

  it('says Tally\'s own database is unreachable, or not migrated, as every command does: exit 1', async () => {
    const unreachable = await tally(['import-legacy', '--from', legacy.url], { DATABASE_URL: 'postgres://tally:hunter2@127.0.0.1:1/tally' });
    expectOneSentenceError(unreachable, /^Cannot reach Postgres at 127\.0\.0\.1:1 \(ECONNREFUSED\)/m);
    expect(unreachable.stderr).not.toContain('hunter2');

    const empty = uniqueName('db');
    try {
      await ensureDatabase(urlOf(empty));
      const result = await tally(['import-legacy', '--from', legacy.url], { DATABASE_URL: urlOf(empty) });
      expectOneSentenceError(result, /is not migrated; run `pnpm tally migrate`/m);
    } finally {
      await dropDatabase(empty);
    }
  });

  it.each([
    [['import-legacy'], /required option '--from <url>'/],
    [['import-legacy', '--from', 'mysql://127.0.0.1/app'], /Expected a Postgres connection string/],
    [['import-legacy', '--from', 'postgres://127.0.0.1:5432'], /names no database/],
    [['import-legacy', '--from', 'postgres://127.0.0.1/app', '--table', 'events; DROP TABLE x'], /Expected a table name/],
    [['import-legacy', '--from', 'postgres://127.0.0.1/app', '--batch', '0'], /whole number from 1/],
    [['import-legacy', '--from', 'postgres://127.0.0.1/app', '--batch', '100001'], /whole number from 1/],
    [['import-legacy', '--from', 'postgres://127.0.0.1/app', '--limit', 'all'], /whole number from 1/],
    [['import-legacy', '--from', 'postgres://127.0.0.1/app', '--timestamp-unit', 'minutes'], /Allowed choices are s, ms/],
    [['import-legacy', '--from', 'postgres://127.0.0.1/app', '--project', 'legacy-1'], /UUID/],
    [['import-legacy', '--from', 'postgres://127.0.0.1/app', '--goal-property', ''], /1 to 128 characters/],
  ])('refuses `tally %s` as a usage error, touching no database', async (argv, pattern) => {
    expectOneSentenceError(await tally(argv, env), pattern, 2);
  });
});
