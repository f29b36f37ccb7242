import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '@tally/contracts';
import {
  createProject,
  dropExpiredPartitions,
  ensurePartitions,
  experimentResults,
  experimentTimeseries,
  insertEvents,
  listExperiments,
  listPartitions,
  moveOutDefaultPartition,
  runRollup,
  savePartitionSettings,
  type Database,
} from '@tally/db';
import { createTestDatabase, waitFor, type TestDatabase } from '@tally/testing';

const MINUTE = 60_000;
const DAY = 86_400_000;
/** Noon (UTC) of the day `days` from today, plus `minutes`: events stay within their day. */
const noon = (days: number, minutes = 0) => (Math.floor(Date.now() / DAY) + days) * DAY + DAY / 2 + minutes * MINUTE;
const dayOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const partitionName = (ms: number) => `analytics_events_p${dayOf(ms).replaceAll('-', '')}`;

let n = 0;
function event(
  eventType: StoredEvent['eventType'],
  sessionId: string,
  at: number,
  extra: Partial<Pick<StoredEvent, 'experimentId' | 'variantKey' | 'goal'>> = {},
): StoredEvent {
  return {
    eventId: `e-${++n}`,
    eventType,
    sessionId,
    viewId: null,
    experimentId: extra.experimentId ?? null,
    variantKey: extra.variantKey ?? null,
    goal: extra.goal ?? null,
    properties: null,
    timestamp: at,
    clientTimestamp: at,
  };
}
const exposure = (sessionId: string, at: number, variantKey: string, experimentId = 'exp') =>
  event('EXPOSURE', sessionId, at, { experimentId, variantKey });

/** Every answer the query API can give about the project, from the summaries. */
async function everyResult(db: Database, projectId: string) {
  const experiments = await listExperiments(db, projectId);
  const answers: unknown[] = [experiments];
  for (const { experimentId } of experiments) {
    for (const goal of [null, 'purchase', 'signup']) {
      answers.push(await experimentResults(db, projectId, experimentId, goal));
      for (const interval of ['hour', 'day'] as const) answers.push(await experimentTimeseries(db, projectId, experimentId, interval, goal));
    }
  }
  return answers;
}

describe('time partitions of the raw events', () => {
  let database: TestDatabase;
  let db: Database;

  beforeAll(async () => {
    database = await createTestDatabase();
    db = database.db;
  });
  afterAll(() => database?.drop());

  const partitionOf = async (projectId: string, eventId: string) =>
    (
      await database.pool.query<{ partition: string }>(
        'SELECT tableoid::regclass::text AS partition FROM analytics_events WHERE project_id = $1 AND event_id = $2',
        [projectId, eventId],
      )
    ).rows[0]?.partition;
  const rangeOf = async (name: string) => {
    const partition = (await listPartitions(db)).find((p) => p.name === name);
    return partition && [partition.from.toISOString(), partition.to.toISOString()];
  };

  describe('making them', () => {
    it('premakes a partition for every day from yesterday to N days ahead, and counts the new ones', async () => {
      const days = Array.from({ length: 22 }, (_, i) => partitionName(noon(i - 1)));
      const existing = new Set((await listPartitions(db)).map((p) => p.name));
      // The migration made about a week; the rest is new.
      expect(days.filter((name) => existing.has(name)).length).toBeGreaterThanOrEqual(8);
      const made = await ensurePartitions(db, 1, 20);
      expect(made).toBe(days.filter((name) => !existing.has(name)).length);
      const names = new Set((await listPartitions(db)).map((p) => p.name));
      for (const name of days) expect(names.has(name)).toBe(true);
      expect(await ensurePartitions(db, 1, 20)).toBe(0);
    });

    it('never fails an insert that arrives while the partition of its day is being made', async () => {
      const { projectId } = await createProject(db, 'in-flight');
      const day = dayOf(noon(30));
      const insert = (client: { query: (text: string, values: unknown[]) => Promise<unknown> }, eventId: string) =>
        client.query(
          `INSERT INTO analytics_events (project_id, event_id, event_type, session_id, event_time, client_time, received_at)
           VALUES ($1, $2, 'PAGEVIEW', 's', $3, $3, now())`,
          [projectId, eventId, `${day}T12:00:00Z`],
        );
      const waitingForLocks = (n: number) =>
        waitFor(
          async () => {
            const { rows } = await database.pool.query(
              `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
            );
            return rows[0].n >= n ? true : undefined;
          },
          { what: `${n} sessions to wait for a lock` },
        );

      // An insert into the day's (default) partition, in flight.
      const first = await database.pool.connect();
      try {
        await first.query('BEGIN');
        await insert(first, 'in-flight');
        const making = database.pool.query('SELECT tally_ensure_partition($1::date) AS made', [day]);
        await waitingForLocks(1);
        // Another insert of that day arrives while the partition is being made: it must wait, then go to
        // the new partition, not reach the default one with the old partition list and fail.
        const second = insert(database.pool, 'arriving');
        await waitingForLocks(2);
        await first.query('COMMIT');
        expect((await making).rows[0].made).toBe(true);
        await second;
      } finally {
        first.release();
      }
      expect(await partitionOf(projectId, 'in-flight')).toBe(partitionName(noon(30)));
      expect(await partitionOf(projectId, 'arriving')).toBe(partitionName(noon(30)));
    });

    it('does not wait for readers of other partitions', async () => {
      const reader = await database.pool.connect();
      try {
        await reader.query('BEGIN');
        // A read of one day's rows (bounds known when planned) locks that day's partition, not the default one.
        await reader.query(
          `SELECT count(*) FROM analytics_events WHERE client_time >= '${dayOf(Date.now())}T00:00:00Z' AND client_time < '${dayOf(Date.now() + DAY)}T00:00:00Z'`,
        );
        // Any wait for a lock past 100 ms would fail this.
        expect(await ensurePartitions(db, 1, 35, { lockTimeoutMs: 100, attempts: 1 })).toBeGreaterThan(0);
        await reader.query('COMMIT');
      } finally {
        reader.release();
      }
    });

    it('makes weekly (from Monday) or monthly partitions as partition_settings says', async () => {
      await savePartitionSettings(db, { interval: 'week', retentionDays: 0 });
      // Wednesday 2040-03-14: its ISO week starts on Monday the 12th.
      await database.pool.query(`SELECT tally_ensure_partition('2040-03-14')`);
      expect(await rangeOf('analytics_events_p20400312')).toEqual(['2040-03-12T00:00:00.000Z', '2040-03-19T00:00:00.000Z']);

      await savePartitionSettings(db, { interval: 'month', retentionDays: 0 });
      await database.pool.query(`SELECT tally_ensure_partition('2040-05-20')`);
      expect(await rangeOf('analytics_events_p20400501')).toEqual(['2040-05-01T00:00:00.000Z', '2040-06-01T00:00:00.000Z']);
      // Any other day of the month is made already.
      expect((await database.pool.query(`SELECT tally_ensure_partition('2040-05-31') AS made`)).rows[0].made).toBe(false);
      await savePartitionSettings(db, { interval: 'day', retentionDays: 0 });
    });

    it('fills only the free days of a period after the interval changes, leaving the partitions made before', async () => {
      await database.pool.query(`SELECT tally_ensure_partitions('2041-01-01', '2041-01-03')`);
      await savePartitionSettings(db, { interval: 'month', retentionDays: 0 });
      await database.pool.query(`SELECT tally_ensure_partition('2041-01-10')`);
      expect(await rangeOf('analytics_events_p20410103')).toEqual(['2041-01-03T00:00:00.000Z', '2041-01-04T00:00:00.000Z']);
      expect(await rangeOf('analytics_events_p20410104')).toEqual(['2041-01-04T00:00:00.000Z', '2041-02-01T00:00:00.000Z']);

      // And back: a day inside the month is covered, the next month is made by the day.
      await savePartitionSettings(db, { interval: 'day', retentionDays: 0 });
      expect((await database.pool.query(`SELECT tally_ensure_partition('2041-01-20') AS made`)).rows[0].made).toBe(false);
      await database.pool.query(`SELECT tally_ensure_partition('2041-02-01')`);
      expect(await rangeOf('analytics_events_p20410201')).toEqual(['2041-02-01T00:00:00.000Z', '2041-02-02T00:00:00.000Z']);
    });

    it('reads the bounds right whatever the session time zone and date style', async () => {
      const client = await database.pool.connect();
      try {
        await client.query(`SET TimeZone = 'Asia/Kolkata'; SET DateStyle = 'SQL, DMY'`);
        await client.query(`SELECT tally_ensure_partition('2042-02-27')`);
        const { rows } = await client.query<{ lo: string; hi: string }>(
          `SELECT to_char(lo AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS lo, to_char(hi AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS hi
             FROM tally_partitions() WHERE part = 'analytics_events_p20420227'::regclass`,
        );
        expect(rows).toEqual([{ lo: '2042-02-27 00:00', hi: '2042-02-28 00:00' }]);
      } finally {
        await client.query('RESET ALL');
        client.release();
      }
    });
  });

  describe('the default partition', () => {
    it('stores events of far past and far future days, and the move-out gives them partitions of their own', async () => {
      const { projectId } = await createProject(db, 'far');
      const past = Date.UTC(2003, 6, 15, 9, 30);
      const future = Date.UTC(2061, 10, 2, 23, 59);
      const events = [event('PAGEVIEW', 's-far', past), event('PAGEVIEW', 's-far', past + MINUTE), event('PAGEVIEW', 's-far', future)];
      expect(await insertEvents(db, projectId, Date.now(), events)).toBe(3);
      for (const e of events) expect(await partitionOf(projectId, e.eventId)).toBe('analytics_events_default');

      expect(await moveOutDefaultPartition(db)).toEqual({ partitions: 2, rows: 3 });
      expect(await partitionOf(projectId, events[0]!.eventId)).toBe('analytics_events_p20030715');
      expect(await partitionOf(projectId, events[1]!.eventId)).toBe('analytics_events_p20030715');
      expect(await partitionOf(projectId, events[2]!.eventId)).toBe('analytics_events_p20611102');
      expect(await moveOutDefaultPartition(db)).toEqual({ partitions: 0, rows: 0 });
      // Still one row each: a retry of the same batch is a duplicate, not a second row.
      expect(await insertEvents(db, projectId, Date.now(), events)).toBe(0);
    });

    it('moves rows into a partition of the configured size', async () => {
      const { projectId } = await createProject(db, 'far-month');
      await savePartitionSettings(db, { interval: 'month', retentionDays: 0 });
      try {
        const e = event('PAGEVIEW', 's', Date.UTC(2042, 6, 15, 12));
        await insertEvents(db, projectId, Date.now(), [e]);
        expect(await moveOutDefaultPartition(db)).toEqual({ partitions: 1, rows: 1 });
        expect(await partitionOf(projectId, e.eventId)).toBe('analytics_events_p20420701');
        expect(await rangeOf('analytics_events_p20420701')).toEqual(['2042-07-01T00:00:00.000Z', '2042-08-01T00:00:00.000Z']);
      } finally {
        await savePartitionSettings(db, { interval: 'day', retentionDays: 0 });
      }
    });
  });

  describe('retention', () => {
    const horizon = () => new Date(Date.now() - 30 * DAY);

    it('drops whole partitions older than the horizon and leaves every result unchanged', async () => {
      const { projectId } = await createProject(db, 'retention');
      const old = noon(-40);
      const older = noon(-39);
      const recent = noon(-2);
      const history = [
        // Entirely in days about to be dropped.
        event('PAGEVIEW', 'a', old - MINUTE),
        exposure('a', old, 'control'),
        event('PAGEVIEW', 'a', old + MINUTE),
        event('CONVERSION', 'a', old + 2 * MINUTE, { goal: 'purchase' }),
        exposure('b', older, 'treatment'),
        event('CONVERSION', 'b', older + 61 * MINUTE, { goal: 'signup' }),
        exposure('x', old, 'control'),
        exposure('x', older, 'treatment'), // excluded
        exposure('a', old + 5 * MINUTE, 'b', 'exp-other'),
        // Sessions spanning dropped and kept days.
        exposure('c', old, 'treatment'),
        event('PAGEVIEW', 'c', recent),
        event('CONVERSION', 'c', recent + MINUTE, { goal: 'purchase' }),
        // Entirely kept.
        exposure('d', recent, 'control'),
        event('CONVERSION', 'd', recent + 3 * MINUTE, { goal: 'signup' }),
      ];
      await insertEvents(db, projectId, Date.now(), history);
      // The old days had no partition: their rows wait in the default one until moved out.
      expect((await moveOutDefaultPartition(db)).rows).toBeGreaterThanOrEqual(10);
      await runRollup(db);
      const before = await everyResult(db, projectId);
      expect(before[0]).toHaveLength(2);
      const rawRows = async () =>
        Number((await database.pool.query('SELECT count(*) FROM analytics_events WHERE project_id = $1', [projectId])).rows[0].count);
      expect(await rawRows()).toBe(history.length);

      const run = await dropExpiredPartitions(db, horizon());
      expect(run.kept).toEqual([]);
      expect(run.dropped.map((p) => p.name)).toEqual(expect.arrayContaining([partitionName(old), partitionName(older)]));
      for (const dropped of run.dropped) expect(dropped.to.getTime()).toBeLessThanOrEqual(horizon().getTime());
      const names = (await listPartitions(db)).map((p) => p.name);
      expect(names).not.toContain(partitionName(old));
      expect(names).toContain(partitionName(recent));
      expect(await rawRows()).toBe(4);

      expect(await everyResult(db, projectId)).toEqual(before);

      // The summaries carry on from their own state: later events of a session whose
      // exposure was dropped still count for its variant.
      const [treatment] = (await experimentResults(db, projectId, 'exp', 'purchase'))!.variants.filter((v) => v.variantKey === 'treatment');
      await insertEvents(db, projectId, Date.now(), [event('PAGEVIEW', 'b', noon(-1)), event('CONVERSION', 'b', noon(-1, 1), { goal: 'purchase' })]);
      await runRollup(db);
      const after = (await experimentResults(db, projectId, 'exp', 'purchase'))!.variants.find((v) => v.variantKey === 'treatment');
      expect(after).toMatchObject({
        sessions: treatment!.sessions,
        pageviews: treatment!.pageviews + 1,
        pageviewSessions: treatment!.pageviewSessions + 1,
        conversions: treatment!.conversions + 1,
        convertedSessions: treatment!.convertedSessions + 1,
      });
    });

    it('keeps an expired partition until the rollup has folded its rows, then drops it', async () => {
      const { projectId } = await createProject(db, 'unfolded');
      await runRollup(db);
      const late = event('PAGEVIEW', 'late', noon(-50));
      await insertEvents(db, projectId, Date.now(), [late]);
      await moveOutDefaultPartition(db);

      const early = await dropExpiredPartitions(db, horizon());
      expect(early.dropped).toEqual([]);
      expect(early.kept).toEqual([expect.objectContaining({ name: partitionName(late.clientTimestamp), reason: 'waiting for the rollup' })]);

      await runRollup(db);
      expect((await dropExpiredPartitions(db, horizon())).dropped.map((p) => p.name)).toEqual([partitionName(late.clientTimestamp)]);
    });

    it('gives up at once on a table a reader holds, instead of stalling writers, and drops at the next try', async () => {
      const { projectId } = await createProject(db, 'locked');
      await insertEvents(db, projectId, Date.now(), [event('PAGEVIEW', 'l', noon(-60)), event('PAGEVIEW', 'l', noon(-61))]);
      await moveOutDefaultPartition(db);
      await runRollup(db);

      // A long reader, as an export streaming raw events would be.
      const reader = await database.pool.connect();
      try {
        await reader.query('BEGIN');
        await reader.query('SELECT count(*) FROM analytics_events');
        const started = Date.now();
        const run = await dropExpiredPartitions(db, horizon(), { lockTimeoutMs: 200 });
        // One wait, not one per partition.
        expect(Date.now() - started).toBeLessThan(1_000);
        expect(run.dropped).toEqual([]);
        expect(run.kept.map((p) => p.reason)).toEqual(['locked', 'locked']);
        await reader.query('COMMIT');
      } finally {
        reader.release();
      }
      expect((await dropExpiredPartitions(db, horizon())).dropped.map((p) => p.name)).toEqual([
        partitionName(noon(-61)),
        partitionName(noon(-60)),
      ]);
    });

    it('never drops a partition that reaches past the horizon, nor the default partition', async () => {
      const { projectId } = await createProject(db, 'boundary');
      // The day holding the horizon: its first row is older than the horizon, its range is not.
      const dayStart = Math.floor(horizon().getTime() / DAY) * DAY;
      await database.pool.query(`SELECT tally_ensure_partition($1::date)`, [dayOf(dayStart)]);
      const waiting = event('PAGEVIEW', 'h', Date.UTC(1999, 0, 1));
      await insertEvents(db, projectId, Date.now(), [event('PAGEVIEW', 'h', dayStart), waiting]);
      await runRollup(db);

      const run = await dropExpiredPartitions(db, horizon());
      expect(run.dropped).toEqual([]);
      expect((await listPartitions(db)).map((p) => p.name)).toContain(partitionName(dayStart));
      expect(await partitionOf(projectId, waiting.eventId)).toBe('analytics_events_default');
    });
  });
});
