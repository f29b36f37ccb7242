import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProject, findProjectIdByKey, getExperimentSettings, insertEvents, runRollup, type ProjectKeys } from '@tally/db';
import { createTestDatabase, type TestDatabase } from '@tally/testing';
import { experimentHistory, lines, tally } from './helpers.js';

describe('tally experiment', () => {
  let database: TestDatabase;
  let env: Record<string, string>;
  let project: ProjectKeys;

  beforeAll(async () => {
    database = await createTestDatabase();
    env = { DATABASE_URL: database.url };
    project = await createProject(database.db, 'experiments');
    await insertEvents(database.db, project.projectId, Date.now(), experimentHistory('checkout'));
    await runRollup(database.db);
  });
  afterAll(() => database?.drop());

  const configure = (...args: string[]) =>
    tally(['experiment', 'configure', '--project', project.projectId, '--experiment', 'checkout', ...args], env);
  const show = (...args: string[]) => tally(['experiment', 'show', '--project', project.projectId, '--experiment', 'checkout', ...args], env);

  it('show says an experiment is not configured, and how to configure it', async () => {
    const result = await show();
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toMatch(/Experiment "checkout" of project .* is not configured: no display name, no control, equal weights expected/);
    expect(result.stdout).toMatch(/pnpm tally experiment configure/);
    const json = await show('--json');
    expect(JSON.parse(json.stdout)).toEqual({
      projectId: project.projectId,
      experimentId: 'checkout',
      name: null,
      control: null,
      weights: null,
      updatedAt: null,
    });
  });

  it('configure --json sets the name, control and weights and prints them on one line', async () => {
    const result = await configure('--name', ' Checkout button ', '--control', 'control', '--weights', 'treatment=0.5, control=0.5', '--json');
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(lines(result.stdout)).toHaveLength(1);
    const printed = JSON.parse(result.stdout);
    expect(printed).toEqual({
      projectId: project.projectId,
      experimentId: 'checkout',
      name: 'Checkout button',
      control: 'control',
      weights: { control: 0.5, treatment: 0.5 },
      updatedAt: expect.any(String),
    });
    const stored = await getExperimentSettings(database.db, project.projectId, 'checkout');
    expect(stored).toMatchObject({ name: 'Checkout button', control: 'control', weights: { control: 0.5, treatment: 0.5 } });
    expect(JSON.parse((await show('--json')).stdout)).toEqual(printed);
  });

  it('configure changes only what is given, and --no-… removes a field', async () => {
    expect((await configure('--weights', 'control=2,treatment=1,holdout=0')).code).toBe(0);
    let stored = await getExperimentSettings(database.db, project.projectId, 'checkout');
    expect(stored).toMatchObject({ name: 'Checkout button', control: 'control', weights: { control: 2, holdout: 0, treatment: 1 } });

    expect((await configure('--no-name')).code).toBe(0);
    stored = await getExperimentSettings(database.db, project.projectId, 'checkout');
    expect(stored).toMatchObject({ name: null, control: 'control', weights: { control: 2, holdout: 0, treatment: 1 } });

    expect((await configure('--no-weights', '--no-control', '--name', 'Again')).code).toBe(0);
    stored = await getExperimentSettings(database.db, project.projectId, 'checkout');
    expect(stored).toMatchObject({ name: 'Again', control: null, weights: null });
  });

  it('show describes the settings for a person, with the share each weight means', async () => {
    await configure('--control', 'control', '--weights', 'control=3,treatment=1,holdout=0');
    const result = await show();
    expect(result.code).toBe(0);
    expect(lines(result.stdout)).toEqual([
      `Experiment "checkout" of project ${project.projectId}:`,
      '  name     Again',
      '  control  control',
      '  weights  control=3 (75%), holdout=0 (0%), treatment=1 (25%)',
      expect.stringMatching(/^ {2}updated {2}\d{4}-\d\d-\d\dT/),
    ]);
  });

  it('configures an experiment before its first exposure, and says so', async () => {
    const result = await tally(
      ['experiment', 'configure', '--project', project.projectId, '--experiment', 'next-quarter', '--name', 'Next quarter'],
      env,
    );
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/No exposure to this experiment is stored yet/);
  });

  it('rotate-key --kind admin makes an admin key, shown once, and leaves the others alone', async () => {
    const created = JSON.parse((await tally(['project', 'create', '--name', 'Admin', '--json'], env)).stdout) as Record<string, string>;
    expect(Object.keys(created)).toEqual(['projectId', 'writeKey', 'readKey']);

    const result = await tally(['project', 'rotate-key', '--project', created.projectId!, '--kind', 'admin', '--json'], env);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    const rotated = JSON.parse(result.stdout) as { projectId: string; kind: string; key: string };
    expect(rotated).toMatchObject({ projectId: created.projectId, kind: 'admin' });
    expect(rotated.key).toMatch(/^tly_a_[\w-]{43}$/);
    expect(await findProjectIdByKey(database.db, 'admin', rotated.key)).toBe(created.projectId);
    expect(await findProjectIdByKey(database.db, 'read', created.readKey!)).toBe(created.projectId);
    expect(await findProjectIdByKey(database.db, 'write', created.writeKey!)).toBe(created.projectId);

    const again = await tally(['project', 'rotate-key', '--project', created.projectId!, '--kind', 'admin'], env);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/Any earlier admin key stopped working just now/);
    expect(await findProjectIdByKey(database.db, 'admin', rotated.key)).toBeUndefined();
  });
});
