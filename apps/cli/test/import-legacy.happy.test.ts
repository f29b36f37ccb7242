import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { normalizeBatch } from '@tally/contracts';
import { createProject, findProjectIdByKey, insertEvents, rollUpPending, savePartitionSettings, type Database } from '@tally/db';
import { createTestDatabase, type TestDatabase } from '@tally/testing';
import type { ImportReport } from '../src/commands/import-legacy-run.js';
import {
  asIngestEvent,
  asLegacyRow,
  createLegacyDatabase,
  legacyHistory,
  legacyProjectMap,
  lines,
  servedNumbers,
  tally,
  type LegacyDatabase,
  type LegacyRowInput,
  type LogicalEvent,
} from './helpers.js';

/**
 * `tally import-legacy` against real databases: a throwaway one in the seed's
 * schema, read by the command, and a Tally one it writes to. The reference for
 * every number is the same events taken in the way the ingest API takes them.
 */

const LIMITS = { maxEventBytes: 65_536, maxFutureMs: 24 * 3_600_000 };

describe('tally import-legacy', () => {
  let database: TestDatabase;
  let env: Record<string, string>;
  const legacies: LegacyDatabase[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
    env = { DATABASE_URL: database.url };
  });
  afterAll(async () => {
    for (const legacy of legacies) await legacy.drop();
    await database?.drop();
  });

  const legacyDatabase = async (...args: Parameters<typeof createLegacyDatabase>) => {
    const legacy = await createLegacyDatabase(...args);
    legacies.push(legacy);
    return legacy;
  };

  /**
   * The ingest path for the same events: validated and normalized by the ingest
   * API's own code (legacy clients' properties.variantKey included), stored as the
   * worker stores a batch, then rolled up. One new project per legacy project.
   */
  async function ingestReference(events: LogicalEvent[], variantColumn: boolean): Promise<Map<string, string>> {
    const projects = new Map<string, string>();
    for (const legacyProject of new Set(events.map((e) => e.project))) {
      const { projectId } = await createProject(database.db, `ingest ${legacyProject}`);
      const wire = events.filter((e) => e.project === legacyProject).map((e) => asIngestEvent(e, { variantColumn }));
      const receivedAt = Date.now();
      const batch = normalizeBatch(wire, undefined, receivedAt, LIMITS);
      expect(batch.rejected).toEqual([]);
      await insertEvents(database.db, projectId, receivedAt, batch.events);
      projects.set(legacyProject, projectId);
    }
    await rollUpPending(database.db);
    return projects;
  }

  const json = (result: { code: number; stdout: string; stderr: string }): ImportReport => {
    expect(result.code, result.stderr).toBe(0);
    expect(lines(result.stdout)).toHaveLength(1);
    return JSON.parse(result.stdout) as ImportReport;
  };

  const eventCount = async (db: Database, projectId: string) =>
    Number((await db.$client.query('SELECT count(*) AS n FROM analytics_events WHERE project_id = $1', [projectId])).rows[0].n);

  async function expectSameNumbers(imported: Map<string, string>, reference: Map<string, string>, referenceDb: Database = database.db) {
    expect([...imported.keys()].sort()).toEqual([...reference.keys()].sort());
    for (const [legacyProject, projectId] of imported) {
      const other = reference.get(legacyProject)!;
      expect(await eventCount(database.db, projectId)).toBe(await eventCount(referenceDb, other));
      expect(await servedNumbers(database.db, projectId)).toEqual(await servedNumbers(referenceDb, other));
    }
  }

  it('imports a seed-schema database, a project per legacy project, with the same results as the same events through ingest', async () => {
    const legacy = await legacyDatabase('current');
    const events = legacyHistory({ count: 400, seed: 1, projects: ['lp-one', 'lp-two'] });
    await legacy.insert(events.map((e) => asLegacyRow(e, { unit: 'ms', variantColumn: true })));
    const reference = await ingestReference(events, true);

    const result = await tally(['import-legacy', '--from', legacy.url, '--batch', '50'], env);
    expect(result.code, result.stderr).toBe(0);
    const out = lines(result.stdout);
    const times = events.map((e) => e.timestamp);
    expect(out[0]).toBe(`Importing public.analytics_events of 127.0.0.1:5432/${legacy.name}: 400 rows.`);
    expect(out[1]).toBe(
      'Timestamps read as epoch milliseconds (detected: every whole-number value is at least 10^11), ' +
        `from ${new Date(Math.min(...times)).toISOString()} to ${new Date(Math.max(...times)).toISOString()}.`,
    );
    expect(out.slice(-2)).toEqual([
      'Read 400 rows: imported 400 events, 0 already in Tally, skipped 0.',
      expect.stringMatching(/^Folded 400 events into the summaries \(last sequence number \d+\): results include the imported events\.$/),
    ]);

    // Each created project's keys are printed once, and they work.
    const imported = await legacyProjectMap(database.db);
    for (const [legacyProject, projectId] of imported) {
      const at = out.indexOf(`Created project "legacy ${legacyProject}" (${projectId}) for legacy project ${legacyProject}.`);
      expect(at).toBeGreaterThan(0);
      const writeKey = /tly_w_\S+/.exec(out[at + 1]!)![0];
      const readKey = /tly_r_\S+/.exec(out[at + 2]!)![0];
      expect(await findProjectIdByKey(database.db, 'write', writeKey)).toBe(projectId);
      expect(await findProjectIdByKey(database.db, 'read', readKey)).toBe(projectId);
    }
    // A progress line on stderr: rows read, imported, skipped, rate.
    expect(lines(result.stderr).at(-1)).toMatch(/^import-legacy: read 400 of 400 rows \(100%\), imported 400, already in Tally 0, skipped 0, \d+ rows\/s$/);

    await expectSameNumbers(imported, reference);
  });

  it('takes exposures\' variant from properties.variantKey when the table predates the variantKey column', async () => {
    const legacy = await legacyDatabase('before-variant-column');
    const events = legacyHistory({ count: 300, seed: 2, projects: ['lp-old'], wholeSeconds: true });
    await legacy.insert(events.map((e) => asLegacyRow(e, { unit: 's', variantColumn: false })));
    const reference = await ingestReference(events, false);

    const text = await tally(['import-legacy', '--from', legacy.url, '--no-progress'], env);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stderr).toBe('');
    expect(lines(text.stdout)).toContain('No variantKey column (the table predates it): exposures take their variant from properties.variantKey.');
    const imported = new Map([['lp-old', (await legacyProjectMap(database.db)).get('lp-old')!]]);
    await expectSameNumbers(imported, reference);
  });

  it('detects epoch seconds and milliseconds from the data, says which it used, and stores the same times either way', async () => {
    const events = legacyHistory({ count: 200, seed: 3, projects: ['lp-units'], wholeSeconds: true });
    const seconds = await legacyDatabase('current');
    await seconds.insert(events.map((e) => asLegacyRow(e, { unit: 's', variantColumn: true })));
    // Prisma's table name when the model has no @@map: capitals, found as written.
    const millis = await legacyDatabase('current', 'AnalyticsEvent');
    await millis.insert(events.map((e) => asLegacyRow(e, { unit: 'ms', variantColumn: true })));
    const inSeconds = await createProject(database.db, 'from seconds');
    const inMillis = await createProject(database.db, 'from milliseconds');
    const reference = await ingestReference(events, true);

    const range = {
      from: new Date(Math.min(...events.map((e) => e.timestamp))).toISOString(),
      to: new Date(Math.max(...events.map((e) => e.timestamp))).toISOString(),
    };
    const s = json(await tally(['import-legacy', '--from', seconds.url, '--project', inSeconds.projectId, '--json'], env));
    expect(s).toMatchObject({ timestampUnit: 's', timestampUnitFrom: 'detected', timeRange: range, target: inSeconds.projectId, projects: [] });
    const ms = json(await tally(['import-legacy', '--from', millis.url, '--table', 'AnalyticsEvent', '--project', inMillis.projectId, '--json'], env));
    expect(ms).toMatchObject({ timestampUnit: 'ms', timestampUnitFrom: 'detected', timeRange: range, table: 'public.AnalyticsEvent' });

    const times = (projectId: string) =>
      database.pool
        .query('SELECT event_id, event_time, client_time FROM analytics_events WHERE project_id = $1 ORDER BY event_id', [projectId])
        .then((r) => r.rows.map(({ event_id, event_time, client_time }) => ({ event_id, event_time, client_time })));
    expect(await times(inSeconds.projectId)).toEqual(await times(inMillis.projectId));
    expect(await times(inSeconds.projectId)).toEqual(await times(reference.get('lp-units')!));
    await expectSameNumbers(new Map([['lp-units', inSeconds.projectId]]), reference);
    await expectSameNumbers(new Map([['lp-units', inMillis.projectId]]), reference);
  });

  it('with --timestamp-unit, imports a table that mixes units in that unit and skips the rows in the other', async () => {
    const legacy = await legacyDatabase('current');
    const events = legacyHistory({ count: 60, seed: 4, projects: ['lp-mixed'], wholeSeconds: true });
    const inMs = new Set(events.slice(0, 7).map((e) => e.id));
    await legacy.insert(events.map((e) => asLegacyRow(e, { unit: inMs.has(e.id) ? 'ms' : 's', variantColumn: true })));
    const target = await createProject(database.db, 'mixed units');

    const report = json(await tally(['import-legacy', '--from', legacy.url, '--project', target.projectId, '--timestamp-unit', 's', '--json'], env));
    expect(report).toMatchObject({ timestampUnit: 's', timestampUnitFrom: 'option', run: { read: 60, imported: 53, skipped: { 'timestamp-other-unit': 7 } } });
    const reference = await ingestReference(events.filter((e) => !inMs.has(e.id)), true);
    await expectSameNumbers(new Map([['lp-mixed', target.projectId]]), reference);
  });

  it('importing twice changes nothing, whether the second run continues or starts over with --restart', async () => {
    const legacy = await legacyDatabase('current');
    const events = legacyHistory({ count: 250, seed: 5, projects: ['lp-twice-a', 'lp-twice-b'] });
    const rows = events.map((e) => asLegacyRow(e, { unit: 'ms', variantColumn: true }));
    // Two rows Tally cannot store, so that skipping is repeated too.
    rows.push({ ...rows[0]!, id: 'zz-no-experiment', eventType: 'EXPOSURE', experimentId: null }, { ...rows[1]!, id: 'zz-no-session', sessionId: '' });
    await legacy.insert(rows);

    const first = json(await tally(['import-legacy', '--from', legacy.url, '--batch', '40', '--json'], env));
    expect(first.run).toEqual({ read: 252, imported: 250, alreadyPresent: 0, skipped: { 'exposure-without-experiment': 1, 'invalid-sessionId': 1 } });
    expect(first.projects.map((p) => p.created)).toEqual([true, true]);
    const mapped = await legacyProjectMap(database.db);
    const state = async () => ({
      projects: (await database.pool.query('SELECT id, name FROM projects ORDER BY id')).rows,
      numbers: await Promise.all(['lp-twice-a', 'lp-twice-b'].map((p) => servedNumbers(database.db, mapped.get(p)!))),
      events: (await database.pool.query('SELECT count(*)::int AS n FROM analytics_events')).rows[0].n,
    });
    const after = await state();

    const again = json(await tally(['import-legacy', '--from', legacy.url, '--json'], env));
    expect(again).toMatchObject({ resumedAfter: expect.any(String), remaining: 0, complete: true, projects: [] });
    expect(again.run).toEqual({ read: 0, imported: 0, alreadyPresent: 0, skipped: {} });
    expect(again.total).toEqual({ ...first.run });
    expect(await state()).toEqual(after);

    const restarted = json(await tally(['import-legacy', '--from', legacy.url, '--restart', '--batch', '1000', '--json'], env));
    expect(restarted).toMatchObject({ resumedAfter: null, remaining: 252, complete: true });
    expect(restarted.run).toEqual({ read: 252, imported: 0, alreadyPresent: 250, skipped: first.run.skipped });
    expect(restarted.projects).toEqual([
      expect.objectContaining({ created: false }),
      expect.objectContaining({ created: false }),
    ]);
    expect(restarted.projects.every((p) => p.writeKey === undefined)).toBe(true);
    expect(await state()).toEqual(after);
  });

  it('--project puts every legacy project\'s events into that project and creates none', async () => {
    const legacy = await legacyDatabase('current');
    const events = legacyHistory({ count: 120, seed: 6, projects: ['lp-x', 'lp-y'] });
    await legacy.insert(events.map((e) => asLegacyRow(e, { unit: 'ms', variantColumn: true })));
    const target = await createProject(database.db, 'everything');
    const projectsBefore = (await database.pool.query('SELECT count(*)::int AS n FROM projects')).rows[0].n;

    const text = await tally(['import-legacy', '--from', legacy.url, '--project', target.projectId.toUpperCase()], env);
    expect(text.code, text.stderr).toBe(0);
    expect(lines(text.stdout)).toContain(`Every event went into project ${target.projectId}.`);
    expect(text.stdout).not.toMatch(/tly_[wr]_/);
    expect((await database.pool.query('SELECT count(*)::int AS n FROM projects')).rows[0].n).toBe(projectsBefore);

    const merged = events.map((e) => ({ ...e, project: 'all' }));
    const reference = await ingestReference(merged, true);
    await expectSameNumbers(new Map([['all', target.projectId]]), reference);
  });

  it('skips the rows Tally cannot store, counts them by reason, and imports the rest', async () => {
    const legacy = await legacyDatabase('loose');
    const now = Date.now();
    const good = legacyHistory({ count: 40, seed: 7, projects: ['lp-loose'], wholeSeconds: true });
    const rows = good.map((e) => asLegacyRow(e, { unit: 's', variantColumn: true }));
    // Lower-case and padded event types are how some legacy clients wrote them: accepted.
    rows[0] = { ...rows[0]!, eventType: rows[0]!.eventType!.toLowerCase() };
    rows[1] = { ...rows[1]!, eventType: ` ${rows[1]!.eventType!.toLowerCase()} ` };
    const base = { projectId: 'lp-loose', sessionId: 's-bad', properties: {}, timestamp: Math.floor(now / 1000) - 60, eventType: null };
    const bad: [string, Partial<LegacyRowInput>][] = [
      ['event-type', { eventType: 'CLICK' }],
      ['event-type', { eventType: null }],
      ['exposure-without-experiment', { eventType: 'EXPOSURE', variantKey: 'a' }],
      ['exposure-without-experiment', { eventType: 'exposure', experimentId: '', variantKey: 'a' }],
      ['exposure-without-variant', { eventType: 'EXPOSURE', experimentId: 'exp-a', properties: { variantKey: 42 } }],
      ['exposure-without-variant', { eventType: 'EXPOSURE', experimentId: 'exp-a', variantKey: '' }],
      ['timestamp', { eventType: 'PAGEVIEW', timestamp: 'yesterday' }],
      ['timestamp', { eventType: 'PAGEVIEW', timestamp: null }],
      ['timestamp', { eventType: 'PAGEVIEW', timestamp: '-5' }],
      ['timestamp-in-future', { eventType: 'PAGEVIEW', timestamp: Math.floor(now / 1000) + 3 * 86_400 }],
      ['properties-invalid', { eventType: 'PAGEVIEW', properties: '[1, 2]' }],
      ['properties-invalid', { eventType: 'PAGEVIEW', properties: '{not json' }],
      ['invalid-sessionId', { eventType: 'PAGEVIEW', sessionId: null }],
      ['invalid-sessionId', { eventType: 'PAGEVIEW', sessionId: 'x'.repeat(257) }],
      ['project-missing', { eventType: 'PAGEVIEW', projectId: '' }],
    ];
    bad.forEach(([, fields], i) => rows.push({ ...base, ...fields, id: `bad-${String(i).padStart(2, '0')}` }));
    await legacy.insert(rows);

    const result = await tally(['import-legacy', '--from', legacy.url, '--batch', '7', '--json'], env);
    const report = json(result);
    const expected: Record<string, number> = {};
    for (const [reason] of bad) expected[reason] = (expected[reason] ?? 0) + 1;
    expect(report.run).toEqual({ read: rows.length, imported: 40, alreadyPresent: 0, skipped: expected });
    expect(report.complete).toBe(true);
    const reference = await ingestReference(good, true);
    await expectSameNumbers(new Map([['lp-loose', (await legacyProjectMap(database.db)).get('lp-loose')!]]), reference);

    // In words, most frequent first, on a run that starts over.
    const text = await tally(['import-legacy', '--from', legacy.url, '--restart', '--no-progress'], env);
    expect(lines(text.stdout)).toEqual(
      expect.arrayContaining([
        `Read ${rows.length} rows: imported 0 events, 40 already in Tally, skipped 15.`,
        '  skipped 3: timestamp missing, not a whole number, or not a date [timestamp]',
        '  skipped 2: EXPOSURE without experimentId [exposure-without-experiment]',
        '  skipped 2: sessionId cannot be stored [invalid-sessionId]',
        '  skipped 1: projectId is empty [project-missing]',
      ]),
    );
  });
  it('refuses rows older than the retention the worker applies, as the ingest API does', async () => {
    const legacy = await legacyDatabase('current');
    const now = Math.floor(Date.now() / 1000);
    const base = { projectId: 'lp-retained', sessionId: 's-old', properties: {}, eventType: 'PAGEVIEW' };
    await legacy.insert([
      { ...base, id: 'r-1', timestamp: now - 60 },
      { ...base, id: 'r-2', timestamp: now - 29 * 86_400 },
      { ...base, id: 'r-3', timestamp: now - 31 * 86_400 },
      { ...base, id: 'r-4', timestamp: now - 400 * 86_400 },
    ]);
    // The worker records its RETENTION_DAYS where the CLI reads it.
    await savePartitionSettings(database.db, { interval: 'day', retentionDays: 30 });
    try {
      const report = json(await tally(['import-legacy', '--from', legacy.url, '--json'], env));
      expect(report.run).toEqual({ read: 4, imported: 2, alreadyPresent: 0, skipped: { 'timestamp-too-old': 2 } });
    } finally {
      await savePartitionSettings(database.db, { interval: 'day', retentionDays: 0 });
    }
  });
});
