import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createProject, experimentResults, insertEvents, rawExperimentResults, runRollup, type ProjectKeys } from '@tally/db';
import { createTestDatabase, type TestDatabase } from '@tally/testing';
import type { RollupSummary } from '../src/commands/rollup-run.js';
import { experimentHistory, lines, tally } from './helpers.js';

const GOALS = [null, 'purchase', 'signup'];

describe('tally rollup', () => {
  let database: TestDatabase;
  let env: Record<string, string>;
  let project: ProjectKeys;

  // A database per test: each starts from an empty rollup state.
  beforeEach(async () => {
    database = await createTestDatabase();
    env = { DATABASE_URL: database.url };
    project = await createProject(database.db, 'shop');
  });
  afterEach(() => database?.drop());

  const insert = (projectId: string, events: ReturnType<typeof experimentHistory>) =>
    insertEvents(database.db, projectId, Date.now(), events);

  /** Every number served from the summaries equals the one query over the raw events. */
  const expectSummariesExact = async (projectId: string, experimentId: string) => {
    for (const goal of GOALS) {
      const served = await experimentResults(database.db, projectId, experimentId, goal);
      expect(served).toBeDefined();
      expect(served).toEqual(await rawExperimentResults(database.db, projectId, experimentId, goal));
    }
  };

  const json = <T>(result: { code: number; stdout: string; stderr: string }): T => {
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(lines(result.stdout)).toHaveLength(1);
    return JSON.parse(result.stdout) as T;
  };

  const corrupt = (projectId: string, experimentId: string) =>
    database.pool.query(
      `UPDATE experiment_variant_totals SET sessions = sessions + 5, conversions = conversions + 2
        WHERE project_id = $1 AND experiment_id = $2`,
      [projectId, experimentId],
    );

  describe('run', () => {
    it('folds every event inserted since the last rollup, after which results equal the raw events', async () => {
      const events = experimentHistory('checkout');
      await insert(project.projectId, events);
      expect(await experimentResults(database.db, project.projectId, 'checkout')).toBeUndefined();

      const summary = json<RollupSummary>(await tally(['rollup', 'run', '--json'], env));
      expect(summary).toMatchObject({ events: events.length, windows: 1, lastSeq: events.length });
      expect(Date.parse(summary.asOf!)).toBeGreaterThan(Date.now() - 60_000);
      await expectSummariesExact(project.projectId, 'checkout');
      expect(await rawExperimentResults(database.db, project.projectId, 'checkout')).toMatchObject({
        excludedSessions: 1,
        variants: [expect.objectContaining({ variantKey: 'control', sessions: 2 }), expect.objectContaining({ variantKey: 'treatment', sessions: 2 })],
      });
    });

    it('folds only what the last rollup left, and says when there was nothing to fold', async () => {
      await insert(project.projectId, experimentHistory('checkout').slice(0, 8));
      await runRollup(database.db);
      await insert(project.projectId, experimentHistory('checkout').slice(8));

      const text = await tally(['rollup', 'run'], env);
      expect(text).toMatchObject({ code: 0, stderr: '' });
      expect(lines(text.stdout)).toEqual([
        `Folded 8 events into the summaries in 1 window (last sequence number 16).`,
        expect.stringMatching(/^The summaries hold every event stored before \d{4}-\d\d-\d\dT/),
      ]);
      await expectSummariesExact(project.projectId, 'checkout');

      const again = await tally(['rollup', 'run'], env);
      expect(lines(again.stdout)[0]).toBe('Nothing to fold: the summaries already held every event (last sequence number 16).');
    });

    it('works through a backlog window by window, past sequence numbers that duplicate inserts used up', async () => {
      const events = experimentHistory('checkout');
      const [first, rest] = [events.slice(0, 10), events.slice(10)];
      await insert(project.projectId, first);
      // A retried batch stores nothing, yet draws sequence numbers 11 to 20: the
      // third window of 5 holds no event at all, though more wait behind it.
      expect(await insert(project.projectId, first)).toBe(0);
      await insert(project.projectId, rest);

      const summary = json<RollupSummary>(await tally(['rollup', 'run', '--window', '5', '--json'], env));
      expect(summary).toMatchObject({ events: events.length, lastSeq: 20 + rest.length });
      expect(summary.windows).toBeGreaterThanOrEqual(4);
      expect(summary.asOf).not.toBeNull();
      await expectSummariesExact(project.projectId, 'checkout');
    });
  });

  describe('rebuild', () => {
    it('folds pending events first, then recomputes the experiment from them: results equal the raw events', async () => {
      await insert(project.projectId, experimentHistory('checkout'));

      const result = json<Record<string, unknown>>(await tally(['rollup', 'rebuild', '--experiment', 'checkout', '--json'], env));
      // s1 to s5 were exposed; s3 saw both variants and is excluded, but still exposed.
      expect(result).toEqual({ projectId: project.projectId, experimentId: 'checkout', sessions: 5, foldedEvents: 16 });
      await expectSummariesExact(project.projectId, 'checkout');
    });

    it('repairs summary rows that no longer match the raw events', async () => {
      await insert(project.projectId, experimentHistory('checkout'));
      await runRollup(database.db);
      await corrupt(project.projectId, 'checkout');
      expect(await experimentResults(database.db, project.projectId, 'checkout')).not.toEqual(
        await rawExperimentResults(database.db, project.projectId, 'checkout'),
      );

      const text = await tally(['rollup', 'rebuild', '--experiment', 'checkout'], env);
      expect(text).toMatchObject({ code: 0, stderr: '' });
      expect(lines(text.stdout)).toEqual([`Rebuilt experiment "checkout" of project ${project.projectId} from its raw events: 5 exposed sessions.`]);
      await expectSummariesExact(project.projectId, 'checkout');
    });

    it('with --project, rebuilds the experiment in that project only', async () => {
      const other = await createProject(database.db, 'blog');
      await insert(project.projectId, experimentHistory('checkout'));
      await insert(other.projectId, experimentHistory('checkout').slice(0, 9));
      await runRollup(database.db);
      await corrupt(project.projectId, 'checkout');
      await corrupt(other.projectId, 'checkout');
      const otherBefore = await experimentResults(database.db, other.projectId, 'checkout');

      const result = json<Record<string, unknown>>(
        await tally(['rollup', 'rebuild', '--experiment', 'checkout', '--project', other.projectId.toUpperCase(), '--json'], env),
      );
      expect(result).toEqual({ projectId: other.projectId, experimentId: 'checkout', sessions: 3, foldedEvents: 0 });
      await expectSummariesExact(other.projectId, 'checkout');
      expect(otherBefore).not.toEqual(await experimentResults(database.db, other.projectId, 'checkout'));

      // The same experiment id in the first project is another experiment, left as it was.
      expect(await experimentResults(database.db, project.projectId, 'checkout')).not.toEqual(
        await rawExperimentResults(database.db, project.projectId, 'checkout'),
      );
    });

    it('a later rollup neither misses nor counts twice what was inserted after a rebuild', async () => {
      const events = experimentHistory('checkout');
      await insert(project.projectId, events.slice(0, 6));
      expect((await tally(['rollup', 'rebuild', '--experiment', 'checkout'], env)).code).toBe(0);
      await insert(project.projectId, events.slice(6));

      expect(json<RollupSummary>(await tally(['rollup', 'run', '--json'], env))).toMatchObject({ events: events.length - 6 });
      await expectSummariesExact(project.projectId, 'checkout');
    });
  });
});
