import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { savePartitionSettings } from '@tally/db';
import { createTestDatabase, type TestDatabase } from '@tally/testing';
import { utcDay, type PartitionStatus } from '../src/commands/partitions-status.js';
import { expectOneSentenceError, lines, tally } from './helpers.js';

describe('tally partitions', () => {
  let database: TestDatabase;
  let env: Record<string, string>;

  beforeAll(async () => {
    database = await createTestDatabase();
    env = { DATABASE_URL: database.url };
  });
  afterAll(() => database?.drop());

  const status = async () => {
    const result = await tally(['partitions', 'status', '--json'], env);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    return JSON.parse(result.stdout) as PartitionStatus;
  };

  it('ensure makes the missing days up to N ahead, and says how many were new', async () => {
    const before = await status();
    expect(before.todayCovered).toBe(true);
    const result = await tally(['partitions', 'ensure', '--days-ahead', String(before.daysAhead + 5), '--json'], env);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ made: 5, from: utcDay(-1), to: utcDay(before.daysAhead + 5) });

    const after = await status();
    expect(after.partitions).toHaveLength(before.partitions.length + 5);
    expect(after).toMatchObject({ daysAhead: before.daysAhead + 5, last: utcDay(before.daysAhead + 5), gaps: [] });
  });

  it('ensure a second time makes nothing, and says every day already had one', async () => {
    const result = await tally(['partitions', 'ensure'], env);
    expect(result.code).toBe(0);
    expect(lines(result.stdout)).toEqual([`Every day from ${utcDay(-1)} to ${utcDay(7)} already had a partition.`]);
  });

  it('status tells an operator about gaps, days ahead and rows waiting in the default partition', async () => {
    const gap = utcDay(3);
    await database.pool.query(`DROP TABLE analytics_events_p${gap.replaceAll('-', '')}`);
    await database.pool.query(
      `INSERT INTO analytics_events (project_id, event_id, event_type, session_id, event_time, client_time, received_at)
       VALUES (gen_random_uuid(), 'e1', 'PAGEVIEW', 's1', $1, $1, now())`,
      [`${gap}T12:00:00Z`],
    );
    expect(await status()).toMatchObject({ todayCovered: true, daysAhead: 2, gaps: [{ from: gap, to: gap }], defaultRows: 1 });

    const text = await tally(['partitions', 'status'], env);
    expect(text.stdout).toContain(`Days without a partition: ${gap}.`);
    expect(text.stdout).toContain('Made ahead: 2 days after today.');
    expect(text.stdout).toContain('Default partition: 1 row');

    // Making the day's partition moves its rows out of the default one.
    expect(JSON.parse((await tally(['partitions', 'ensure', '--json'], env)).stdout)).toMatchObject({ made: 1 });
    expect(await status()).toMatchObject({ gaps: [], defaultRows: 0 });
  });

  it('status lists each partition with its range, size on disk and estimated rows, "unknown" until analyzed', async () => {
    const day = utcDay(1);
    const name = `analytics_events_p${day.replaceAll('-', '')}`;
    await database.pool.query(
      `INSERT INTO analytics_events (project_id, event_id, event_type, session_id, event_time, client_time, received_at)
       SELECT gen_random_uuid(), 'e' || i, 'PAGEVIEW', 's1', t, t, now() FROM generate_series(1, 500) i, (SELECT $1::timestamptz AS t) x`,
      [`${day}T08:00:00Z`],
    );
    const unanalyzed = (await status()).partitions.find((row) => row.name === name)!;
    expect(unanalyzed).toMatchObject({ from: `${day}T00:00:00.000Z`, to: `${utcDay(2)}T00:00:00.000Z`, estimatedRows: null, expired: false });
    expect(unanalyzed.bytes).toBeGreaterThan(8_192);
    expect((await tally(['partitions', 'status'], env)).stdout).toMatch(new RegExp(`  ${day}\\s+${name}\\s+\\d+ kB  rows unknown \\(never analyzed\\)`));

    await database.pool.query(`ANALYZE ${name}`);
    const analyzed = await status();
    expect(analyzed.partitions.find((row) => row.name === name)!.estimatedRows).toBe(500);
    // An empty partition has no rows, analyzed or not.
    expect(analyzed.partitions.find((row) => row.name === `analytics_events_p${utcDay(5).replaceAll('-', '')}`)!.estimatedRows).toBe(0);
    expect((await tally(['partitions', 'status'], env)).stdout).toMatch(new RegExp(`  ${day}\\s+${name}\\s+\\d+ kB  ~500 rows\\n`));
  });

  it('status shows the interval and retention the worker last applied, and which partitions are past it', async () => {
    expect(await status()).toMatchObject({ interval: 'day', retentionDays: null, horizon: null, maintainedAt: null });
    expect((await tally(['partitions', 'status'], env)).stdout).toContain('Retention: none yet; the worker has not run partition maintenance');

    await savePartitionSettings(database.db, { interval: 'day', retentionDays: 30 });
    // A partition of a day 40 days ago, as a late event would have made it.
    await database.pool.query('SELECT tally_ensure_partition($1::date)', [utcDay(-40)]);
    const withRetention = await status();
    expect(withRetention).toMatchObject({ retentionDays: 30, maintainedAt: expect.any(String) });
    expect(Date.parse(withRetention.horizon!)).toBeCloseTo(Date.now() - 30 * 86_400_000, -4);
    expect(withRetention.partitions.filter((row) => row.expired).map((row) => row.name)).toEqual([
      `analytics_events_p${utcDay(-40).replaceAll('-', '')}`,
    ]);
    // A far-past partition leaves a run of days without one, named by its ends.
    expect(withRetention.gaps).toEqual([{ from: utcDay(-39), to: utcDay(-2) }]);

    const text = (await tally(['partitions', 'status'], env)).stdout;
    expect(text).toContain(`${utcDay(-40)}`);
    expect(text).toContain('past the retention, to be dropped');
    expect(text).toContain(`Days without a partition: ${utcDay(-39)} to ${utcDay(-2)}.`);
    expect(text).toMatch(/Retention: 30 days; partitions entirely before \S+Z are dropped, experiment results stay whole \(1 partition past it now\)\./);
  });

  it('status --json prints exactly one line', async () => {
    const result = await tally(['partitions', 'status', '--json'], env);
    expect(result.code).toBe(0);
    expect(result.stdout.endsWith('\n')).toBe(true);
    expect(lines(result.stdout)).toHaveLength(1);
  });

  it.each([
    [['partitions', 'ensure', '--days-ahead', '-1']],
    [['partitions', 'ensure', '--days-ahead', 'soon']],
    [['partitions', 'ensure', '--days-ahead', '367']],
  ])('refuses `tally %s` as a usage error', async (argv) => {
    expectOneSentenceError(await tally(argv, env), /--days-ahead/, 2);
  });
});
