import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '@tally/contracts';
import { createProject, experimentResults, insertEvents, rawExperimentResults, runRollup } from '@tally/db';
import { createTestDatabase, type TestDatabase } from '@tally/testing';

/**
 * Inserters commit out of order: one holds low sequence numbers uncommitted while
 * a later one is already visible. The rollup must neither skip the slow one's rows
 * nor count anything twice.
 */

const exposure = (id: string, session: string, variant: string, ts: number): StoredEvent => ({
  eventId: id,
  eventType: 'EXPOSURE',
  sessionId: session,
  viewId: null,
  experimentId: 'exp',
  variantKey: variant,
  goal: null,
  properties: null,
  timestamp: ts,
  clientTimestamp: ts,
});

describe('rollup with concurrent inserters', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database?.drop();
  });

  it('waits for an insert that drew earlier sequence numbers but commits later', async () => {
    const { projectId } = await createProject(database.db, 'p');
    const now = Date.now();

    // A slow writer: inserts (drawing sequence numbers) and holds its transaction open.
    const slow = await database.pool.connect();
    await slow.query('BEGIN');
    await slow.query(
      `INSERT INTO analytics_events (project_id, event_id, event_type, session_id, experiment_id, variant_key,
         event_time, client_time, received_at)
       VALUES ($1, 'slow', 'EXPOSURE', 's-slow', 'exp', 'control', now(), now(), now())`,
      [projectId],
    );
    // A fast writer commits later numbers at once.
    await insertEvents(database.db, projectId, now, [exposure('fast', 's-fast', 'treatment', now)]);

    // The rollup starts while the slow writer is open, and must wait for it.
    const rollup = runRollup(database.db);
    const settled = await Promise.race([rollup.then(() => 'done'), new Promise((r) => setTimeout(() => r('waiting'), 300))]);
    expect(settled).toBe('waiting');
    await slow.query('COMMIT');
    slow.release();
    const run = await rollup;
    expect(run.events).toBe(2);

    const results = await experimentResults(database.db, projectId, 'exp');
    expect(results?.variants.map((v) => [v.variantKey, v.sessions])).toEqual([
      ['control', 1],
      ['treatment', 1],
    ]);
  });

  it('stays exact with several writers inserting while rollups run', async () => {
    const { projectId } = await createProject(database.db, 'q');
    const base = Date.now() - 3_600_000;
    const writers = Array.from({ length: 4 }, async (_, w) => {
      for (let b = 0; b < 25; b++) {
        const events = Array.from({ length: 20 }, (_, i) => {
          const n = w * 10_000 + b * 100 + i;
          return exposure(`w${n}`, `s${n % 300}`, n % 7 === 0 ? 'treatment' : 'control', base + n);
        });
        await insertEvents(database.db, projectId, Date.now(), events);
      }
    });
    let writing = true;
    const rollups = (async () => {
      let runs = 0;
      while (writing) {
        await runRollup(database.db);
        runs += 1;
      }
      return runs;
    })();
    await Promise.all(writers);
    writing = false;
    expect(await rollups).toBeGreaterThan(0);
    await runRollup(database.db);

    expect(await experimentResults(database.db, projectId, 'exp')).toEqual(
      await rawExperimentResults(database.db, projectId, 'exp'),
    );
  });
});
