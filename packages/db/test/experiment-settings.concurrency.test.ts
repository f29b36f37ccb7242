import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProject, getExperimentSettings, updateExperimentSettings } from '@tally/db';
import { createTestDatabase, type TestDatabase } from '@tally/testing';

describe('updateExperimentSettings, concurrently', () => {
  let database: TestDatabase;
  let projectId: string;

  beforeAll(async () => {
    database = await createTestDatabase();
    ({ projectId } = await createProject(database.db, 'settings-race'));
  });
  afterAll(() => database?.drop());

  it('keeps both of two changes to different fields of an experiment never configured before', async () => {
    // Many pairs at once, so that in most of them both read "no settings yet" before either writes.
    const experiments = Array.from({ length: 20 }, (_, i) => `fresh-${i}`);
    await Promise.all(
      experiments.flatMap((experiment) => [
        updateExperimentSettings(database.db, projectId, experiment, { name: `Experiment ${experiment}` }),
        updateExperimentSettings(database.db, projectId, experiment, { control: 'control' }),
      ]),
    );
    for (const experiment of experiments) {
      const settings = await getExperimentSettings(database.db, projectId, experiment);
      expect({ name: settings.name, control: settings.control }).toEqual({ name: `Experiment ${experiment}`, control: 'control' });
    }
  });

  it('leaves no settings behind when the change is refused', async () => {
    await expect(updateExperimentSettings(database.db, projectId, 'refused', { name: ' ' })).rejects.toThrow(/name must not be empty/);
    expect((await getExperimentSettings(database.db, projectId, 'refused')).updatedAt).toBeNull();
  });
});
