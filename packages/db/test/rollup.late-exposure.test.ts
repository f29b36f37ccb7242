import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '@tally/contracts';
import { createProject, experimentResults, insertEvents, rawExperimentResults, runRollup } from '@tally/db';
import { createTestDatabase, type TestDatabase } from '@tally/testing';

/**
 * An exposure can arrive after events of its session that follow it were already
 * rolled up. The rollup finds those through rolled_up_sessions (the latest event
 * time of each session folded so far) instead of reading the raw events of every
 * newly exposed session, so these cases must come out exact by that route.
 */

const T0 = Date.UTC(2026, 10, 20, 12, 0, 0);
const at = (minute: number) => T0 + minute * 60_000;
let ids = 0;

function event(eventType: StoredEvent['eventType'], sessionId: string, ts: number, extra: Partial<StoredEvent> = {}): StoredEvent {
  ids += 1;
  return {
    eventId: `e-${ids}`,
    eventType,
    sessionId,
    viewId: null,
    experimentId: null,
    variantKey: null,
    goal: null,
    properties: null,
    timestamp: ts,
    clientTimestamp: ts,
    ...extra,
  };
}
const exposure = (sessionId: string, ts: number, variantKey = 'treatment') =>
  event('EXPOSURE', sessionId, ts, { experimentId: 'exp', variantKey });
const pageview = (sessionId: string, ts: number) => event('PAGEVIEW', sessionId, ts);
const conversion = (sessionId: string, ts: number) => event('CONVERSION', sessionId, ts, { goal: 'purchase' });

describe('rollup of exposures that arrive after what follows them', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database?.drop();
  });

  /** Inserts each batch and rolls up after it, so each is its own window. */
  async function foldInTurn(projectId: string, ...batches: StoredEvent[][]) {
    for (const batch of batches) {
      await insertEvents(database.db, projectId, Date.now(), batch);
      await runRollup(database.db);
    }
  }

  async function treatment(projectId: string) {
    const results = await experimentResults(database.db, projectId, 'exp');
    expect(results).toEqual(await rawExperimentResults(database.db, projectId, 'exp'));
    return results?.variants.find((v) => v.variantKey === 'treatment');
  }

  it('counts the earlier-folded events at or after the exposure, and not those before it', async () => {
    const { projectId } = await createProject(database.db, 'late');
    await foldInTurn(
      projectId,
      [pageview('s', at(0)), pageview('s', at(5))],
      // A later window raises the session's latest folded event time past the exposure.
      [pageview('s', at(10)), conversion('s', at(12))],
      [exposure('s', at(7))],
    );
    expect(await treatment(projectId)).toMatchObject({ sessions: 1, pageviews: 1, conversions: 1, convertedSessions: 1 });
  });

  it('counts an earlier-folded event at the very instant of the exposure', async () => {
    const { projectId } = await createProject(database.db, 'same-instant');
    await foldInTurn(projectId, [pageview('s', at(0)), conversion('s', at(5))], [exposure('s', at(5))]);
    expect(await treatment(projectId)).toMatchObject({ sessions: 1, pageviews: 0, conversions: 1 });
  });

  it('counts nothing earlier when every folded event precedes the exposure', async () => {
    const { projectId } = await createProject(database.db, 'in-order');
    await foldInTurn(projectId, [pageview('s', at(0)), pageview('s', at(1))], [exposure('s', at(2)), pageview('s', at(3))]);
    expect(await treatment(projectId)).toMatchObject({ sessions: 1, pageviews: 1, conversions: 0 });
  });

  it('counts the events between a first exposure that moved earlier and the one before, once', async () => {
    const { projectId } = await createProject(database.db, 'moved');
    await foldInTurn(
      projectId,
      [pageview('s', at(0)), pageview('s', at(4)), pageview('s', at(8))],
      [exposure('s', at(6))],
      [exposure('s', at(2))],
      [exposure('s', at(1))],
    );
    expect(await treatment(projectId)).toMatchObject({ sessions: 1, pageviews: 2 });
  });

  it('also for windows folded before rolled_up_sessions knew them', async () => {
    const { projectId } = await createProject(database.db, 'upgraded');
    await foldInTurn(projectId, [pageview('s', at(3)), conversion('s', at(4))]);
    // As right after the upgrade (or after a run of the function as it was before):
    // the folded window's sessions are missing and sessions_seq is behind.
    await database.pool.query('DELETE FROM rolled_up_sessions WHERE project_id = $1', [projectId]);
    await database.pool.query("UPDATE rollup_state SET sessions_seq = 0 WHERE name = 'experiments'");
    await foldInTurn(projectId, [exposure('s', at(2))]);
    expect(await treatment(projectId)).toMatchObject({ sessions: 1, pageviews: 1, conversions: 1 });
    const { rows } = await database.pool.query("SELECT sessions_seq = last_seq AS caught_up FROM rollup_state WHERE name = 'experiments'");
    expect(rows[0].caught_up).toBe(true);
  });
});
