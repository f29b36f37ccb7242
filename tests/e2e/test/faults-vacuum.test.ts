import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '@tally/contracts';
import { createProject, insertEvents, runRollup, type ProjectKeys } from '@tally/db';
import { createTestDatabase, type TestDatabase } from '@tally/testing';

/**
 * VACUUM and ANALYZE (and autovacuum) hold SHARE UPDATE EXCLUSIVE on the partition
 * they work on. The rollup waits for in-flight inserts with an EXCLUSIVE lock on
 * analytics_events; taken on every partition as well, it would queue behind the
 * VACUUM of any partition, however old, and every new insert behind the rollup:
 * vacuuming yesterday's partition would stop ingestion for as long as it ran, and
 * autovacuum would be cancelled over and over (Postgres interrupts an autovacuum
 * that blocks a lock request). The rollup locks the parent only
 * (drizzle/0008_rollup_waits_for_inserts_only.sql), which still waits for every
 * insert made through it; this test shows that it leaves the partitions to VACUUM.
 */

const VACUUM_MS = 3_000;

function event(id: string, at: number): StoredEvent {
  return {
    eventId: id,
    eventType: 'PAGEVIEW',
    sessionId: 's-1',
    viewId: null,
    experimentId: null,
    variantKey: null,
    goal: null,
    properties: null,
    timestamp: at,
    clientTimestamp: at,
  };
}

describe('maintenance of an old partition while events come in', () => {
  let database: TestDatabase;
  let keys: ProjectKeys;
  let other: string;
  const now = Date.now();

  // Set up outside the test, so that the measurement is all it times.
  beforeAll(async () => {
    database = await createTestDatabase();
    keys = await createProject(database.db, 'faults-vacuum');
    // An event the rollup has not folded yet: its next run takes the lock.
    await insertEvents(database.db, keys.projectId, now, [event('before', now)]);
    // Any partition but the one today's events go to: yesterday's, or one made ahead.
    const { rows } = await database.db.$client.query<{ name: string }>(
      `SELECT i.inhrelid::regclass::text AS name FROM pg_inherits i
       WHERE i.inhparent = 'analytics_events'::regclass
         AND i.inhrelid <> 'analytics_events_default'::regclass
         AND i.inhrelid <> (SELECT tableoid FROM analytics_events WHERE event_id = 'before')
       LIMIT 1`,
    );
    if (!rows[0]) throw new Error('no partition besides today’s');
    other = rows[0].name;
  });
  afterAll(() => database?.drop());

  it('neither the rollup nor new inserts wait for a VACUUM of another partition', async () => {
    // What VACUUM holds on the partition it works on, for as long as it runs.
    const vacuum = await database.pool.connect();
    try {
      await vacuum.query('BEGIN');
      await vacuum.query(`LOCK TABLE ${other} IN SHARE UPDATE EXCLUSIVE MODE`);
      const released = new Promise((resolve) => setTimeout(resolve, VACUUM_MS)).then(() => vacuum.query('COMMIT'));

      const rollup = runRollup(database.db);
      await new Promise((resolve) => setTimeout(resolve, 200));
      const started = Date.now();
      await insertEvents(database.db, keys.projectId, now, [event('during', now)]);
      const insertMs = Date.now() - started;
      await rollup;
      await released;
      expect(insertMs, 'an insert into today’s partition waited for the VACUUM of another').toBeLessThan(1_000);
    } finally {
      await vacuum.query('ROLLBACK').catch(() => {});
      vacuum.release();
    }
  }, 30_000);
});
