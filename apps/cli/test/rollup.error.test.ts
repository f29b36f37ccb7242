import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createProject,
  experimentResults,
  insertEvents,
  rawExperimentResults,
  runRollup,
  savePartitionSettings,
  type ProjectKeys,
} from '@tally/db';
import { createTestDatabase, type TestDatabase } from '@tally/testing';
import { expectOneSentenceError, experimentHistory, tally } from './helpers.js';

describe('tally rollup, used wrongly', () => {
  let database: TestDatabase;
  let env: Record<string, string>;
  let shop: ProjectKeys;

  beforeEach(async () => {
    database = await createTestDatabase();
    env = { DATABASE_URL: database.url };
    shop = await createProject(database.db, 'shop');
    await insertEvents(database.db, shop.projectId, Date.now(), experimentHistory('checkout'));
  });
  afterEach(() => database?.drop());

  const rolledUpSeq = async () =>
    Number((await database.pool.query(`SELECT last_seq FROM rollup_state WHERE name = 'experiments'`)).rows[0].last_seq);

  it('refuses to guess between projects that share an experiment id: exit 2, listing them', async () => {
    const blog = await createProject(database.db, 'blog');
    await insertEvents(database.db, blog.projectId, Date.now(), experimentHistory('checkout'));
    await runRollup(database.db);
    await database.pool.query(`UPDATE experiment_variant_totals SET sessions = sessions + 5 WHERE experiment_id = 'checkout'`);
    const before = await Promise.all([shop, blog].map((p) => experimentResults(database.db, p.projectId, 'checkout')));

    const result = await tally(['rollup', 'rebuild', '--experiment', 'checkout'], env);
    const ids = [shop.projectId, blog.projectId].sort();
    expectOneSentenceError(result, new RegExp(`in 2 projects \\(${ids[0]}, ${ids[1]}\\): say which with --project`), 2);
    // Nothing was rebuilt: neither experiment's (wrong) summaries were touched.
    expect(await Promise.all([shop, blog].map((p) => experimentResults(database.db, p.projectId, 'checkout')))).toEqual(before);
  });

  it('says when no project has exposures to the experiment: exit 1', async () => {
    const result = await tally(['rollup', 'rebuild', '--experiment', 'no-such-test', '--json'], env);
    expectOneSentenceError(result, /^No project has exposures to experiment "no-such-test"; nothing to rebuild\.$/m);
    // The pending events were folded all the same.
    expect(await rolledUpSeq()).toBe(16);
  });

  it('says when the given project does not exist: exit 1', async () => {
    const result = await tally(['rollup', 'rebuild', '--experiment', 'checkout', '--project', '00000000-0000-4000-8000-000000000000'], env);
    expectOneSentenceError(result, /^No project with id 00000000-0000-4000-8000-000000000000; .*project list/);
  });

  it('says when the given project has no exposures to the experiment, and which projects do: exit 1', async () => {
    const blog = await createProject(database.db, 'blog');
    const result = await tally(['rollup', 'rebuild', '--experiment', 'checkout', '--project', blog.projectId], env);
    expectOneSentenceError(result, new RegExp(`^Project ${blog.projectId} has no exposures to experiment "checkout" \\(the projects that have: ${shop.projectId}\\)`));
  });

  it.each([
    [['rollup', 'rebuild'], /--experiment/],
    [['rollup', 'rebuild', '--experiment', ''], /1 to 128 characters/],
    [['rollup', 'rebuild', '--experiment', 'x'.repeat(129)], /1 to 128 characters/],
    [['rollup', 'rebuild', '--experiment', 'checkout', '--project', 'shop'], /UUID/],
    [['rollup', 'run', '--window', '0'], /--window/],
    [['rollup', 'run', '--window', 'all'], /--window/],
    [['rollup', 'fold'], /unknown command/],
  ])('refuses `tally %s` as a usage error and folds nothing', async (argv, pattern) => {
    expectOneSentenceError(await tally(argv, env), pattern, 2);
    expect(await rolledUpSeq()).toBe(0);
  });

  it('refuses to rebuild an experiment older than the retention, whose raw events may be gone, unless forced', async () => {
    await runRollup(database.db);
    await database.pool.query(`UPDATE experiment_variant_totals SET sessions = sessions + 5 WHERE experiment_id = 'checkout'`);
    const before = await experimentResults(database.db, shop.projectId, 'checkout');
    // The history starts in January; the worker says it keeps 30 days.
    await savePartitionSettings(database.db, { interval: 'day', retentionDays: 30 });

    const refused = await tally(['rollup', 'rebuild', '--experiment', 'checkout'], env);
    expectOneSentenceError(refused, /began on 2026-01-15, before the retention of 30 days: .* add --force/);
    expect(await experimentResults(database.db, shop.projectId, 'checkout')).toEqual(before);

    const forced = await tally(['rollup', 'rebuild', '--experiment', 'checkout', '--force'], env);
    expect(forced.code).toBe(0);
    expect(await experimentResults(database.db, shop.projectId, 'checkout')).toEqual(
      await rawExperimentResults(database.db, shop.projectId, 'checkout'),
    );
  });
});
