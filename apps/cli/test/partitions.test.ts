import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
    expect(after).toMatchObject({ partitions: before.partitions + 5, daysAhead: before.daysAhead + 5, last: utcDay(before.daysAhead + 5), missingDays: [] });
  });

  it('ensure a second time makes nothing, and says every day already had one', async () => {
    const result = await tally(['partitions', 'ensure'], env);
    expect(result.code).toBe(0);
    expect(lines(result.stdout)).toEqual([`Every daily partition from ${utcDay(-1)} to ${utcDay(7)} already existed.`]);
  });

  it('status tells an operator about gaps, days ahead and rows waiting in the default partition', async () => {
    const gap = utcDay(3);
    await database.pool.query(`DROP TABLE analytics_events_p${gap.replaceAll('-', '')}`);
    await database.pool.query(
      `INSERT INTO analytics_events (project_id, event_id, event_type, session_id, event_time, client_time, received_at)
       VALUES (gen_random_uuid(), 'e1', 'PAGEVIEW', 's1', $1, $1, now())`,
      [`${gap}T12:00:00Z`],
    );
    expect(await status()).toMatchObject({ todayCovered: true, daysAhead: 2, missingDays: [gap], defaultRows: 1 });

    const text = await tally(['partitions', 'status'], env);
    expect(text.stdout).toContain(`Days without a partition: ${gap}.`);
    expect(text.stdout).toContain('Made ahead: 2 days after today.');
    expect(text.stdout).toContain('Default partition: 1 row');

    // Making the day's partition moves its rows out of the default one.
    expect(JSON.parse((await tally(['partitions', 'ensure', '--json'], env)).stdout)).toMatchObject({ made: 1 });
    expect(await status()).toMatchObject({ missingDays: [], defaultRows: 0 });
  });

  it.each([
    [['partitions', 'ensure', '--days-ahead', '-1']],
    [['partitions', 'ensure', '--days-ahead', 'soon']],
    [['partitions', 'ensure', '--days-ahead', '367']],
  ])('refuses `tally %s` as a usage error', async (argv) => {
    expectOneSentenceError(await tally(argv, env), /--days-ahead/, 2);
  });
});
