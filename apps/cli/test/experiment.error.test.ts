import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProject, getExperimentSettings, type ProjectKeys } from '@tally/db';
import { createTestDatabase, type TestDatabase } from '@tally/testing';
import { expectOneSentenceError, tally } from './helpers.js';

describe('tally experiment, refused', () => {
  let database: TestDatabase;
  let env: Record<string, string>;
  let project: ProjectKeys;

  beforeAll(async () => {
    database = await createTestDatabase();
    env = { DATABASE_URL: database.url };
    project = await createProject(database.db, 'experiments');
  });
  afterAll(() => database?.drop());

  const configure = (...args: string[]) =>
    tally(['experiment', 'configure', '--project', project.projectId, '--experiment', 'checkout', ...args], env);

  it.each([
    ['weights without a weight', ['--weights', 'a,b=1'], /error: option '--weights <list>' argument 'a,b=1' is invalid\. Expected variant=weight pairs separated by commas, as a=0\.5,b=0\.5; "a" is not one\./],
    ['a weight that is not a number', ['--weights', 'a=half'], /The weight of "a" must be a number of 0 or more, not "half"\./],
    ['a negative weight', ['--weights', 'a=-1,b=1'], /The weight of "a" must be a number of 0 or more, not "-1"\./],
    ['a variant given twice', ['--weights', 'a=1,a=2'], /Variant "a" is given twice\./],
    ['an empty name', ['--name', '  '], /A name must not be empty \(use --no-name to remove it\)\./],
    ['a control of 129 characters', ['--control', 'c'.repeat(129)], /Expected a variant key of 1 to 128 characters\./],
    ['nothing to change', [], /Nothing to change: give --name, --control or --weights/],
    ['weights that are all zero', ['--weights', 'a=0,b=0'], /Invalid settings for experiment "checkout": weights: at least one weight must be above 0/],
    [
      'a control outside the weights',
      ['--control', 'c', '--weights', 'a=1,b=1'],
      /Invalid settings for experiment "checkout": control "c" is not one of the weighted variants \("a", "b"\)/,
    ],
    ['a control weighted 0', ['--control', 'a', '--weights', 'a=0,b=1'], /control "a" has weight 0/],
  ])('exits 2 for %s, with one sentence and nothing stored', async (_case, args, message) => {
    const result = await configure(...args);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect((await getExperimentSettings(database.db, project.projectId, 'checkout')).updatedAt).toBeNull();
  });

  it('checks the rules against what is stored: new weights must still include the stored control', async () => {
    expect((await configure('--control', 'a', '--weights', 'a=1,b=1')).code).toBe(0);
    const result = await configure('--weights', 'b=1,c=1');
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/control "a" is not one of the weighted variants \("b", "c"\): give it a weight, or choose another control/);
    expect((await getExperimentSettings(database.db, project.projectId, 'checkout')).weights).toEqual({ a: 1, b: 1 });
  });

  it('exits 1 for a project that does not exist', async () => {
    const result = await tally(
      ['experiment', 'show', '--project', '00000000-0000-4000-8000-000000000000', '--experiment', 'checkout'],
      env,
    );
    expectOneSentenceError(result, /^No project with id 00000000-0000-4000-8000-000000000000; `pnpm tally project list` shows the projects\./);
    const configured = await tally(
      ['experiment', 'configure', '--project', '00000000-0000-4000-8000-000000000000', '--experiment', 'x', '--name', 'N'],
      env,
    );
    expect(configured.code).toBe(1);
  });

  it.each([
    ['no project', ['experiment', 'show', '--experiment', 'x'], /required option '--project <id>' not specified/],
    ['no experiment', ['experiment', 'show', '--project', '00000000-0000-4000-8000-000000000000'], /required option '--experiment <id>' not specified/],
    ['a project id that is no UUID', ['experiment', 'show', '--project', 'p1', '--experiment', 'x'], /Expected a project id/],
    ['an unknown key kind', ['project', 'rotate-key', '--project', '00000000-0000-4000-8000-000000000000', '--kind', 'owner'], /Allowed choices are write, read, admin/],
  ])('exits 2 for %s', async (_case, argv, message) => {
    const result = await tally(argv, env);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
  });

  it('exits 1 with a sentence when Postgres cannot be reached', async () => {
    const result = await tally(
      ['experiment', 'show', '--project', project.projectId, '--experiment', 'x'],
      { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/tally' },
    );
    expectOneSentenceError(result, /^Cannot reach Postgres at 127\.0\.0\.1:1/);
  });
});
