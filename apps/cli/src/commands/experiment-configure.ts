import { Option, type Command } from 'commander';
import { InvalidSettingsError, projectsWithExperiment, updateExperimentSettings, type ExperimentSettingsInput } from '@tally/db';
import type { CommandContext } from '../context.js';
import { displayName, experimentId, projectId, variantKey, variantWeights } from '../options.js';
import { describeSettings, requireProject, settingsJson } from './experiment-show.js';

interface ConfigureOptions {
  project: string;
  experiment: string;
  /** A value sets the field, false (`--no-…`) removes it, undefined leaves it as stored. */
  name?: string | false;
  control?: string | false;
  weights?: Record<string, number> | false;
  json?: boolean;
}

export function registerExperimentConfigure(experiment: Command, context: CommandContext): void {
  experiment
    .command('configure')
    .description(
      "set an experiment's display name, control or variant weights; what is not given stays as it was. " +
        'The control is what results compare the other variants with; the weights are the share of traffic each ' +
        'variant should get (a weight of 0: no traffic), for the sample ratio mismatch check',
    )
    .requiredOption('--project <id>', 'the project id', projectId)
    .requiredOption('--experiment <id>', 'the experiment id (it need not have exposures yet)', experimentId)
    .option('--name <name>', 'display name', displayName)
    .option('--no-name', 'remove the display name')
    .option('--control <variant>', 'the control variant', variantKey)
    .option('--no-control', 'remove the control')
    .addOption(new Option('--weights <list>', 'variant weights, as a=0.5,b=0.5 (relative; 0 means no traffic)').argParser(variantWeights))
    .option('--no-weights', 'remove the weights (equal shares expected)')
    .option('--json', 'print one line {"projectId","experimentId","name","control","weights","updatedAt"}')
    .action(async (options: ConfigureOptions, command: Command) => {
      const change: Partial<ExperimentSettingsInput> = {};
      if (options.name !== undefined) change.name = options.name === false ? null : options.name;
      if (options.control !== undefined) change.control = options.control === false ? null : options.control;
      if (options.weights !== undefined) change.weights = options.weights === false ? null : options.weights;
      if (Object.keys(change).length === 0) {
        command.error('Nothing to change: give --name, --control or --weights (or --no-name, --no-control, --no-weights to remove one).', {
          exitCode: 2,
          code: 'tally.nothingToChange',
        });
      }

      const { db } = context.database();
      await requireProject(db, options.project);
      let settings;
      try {
        settings = await updateExperimentSettings(db, options.project, options.experiment, change);
      } catch (error) {
        if (!(error instanceof InvalidSettingsError)) throw error;
        // The values contradict each other or what is stored: the command line is what to change.
        return command.error(`Invalid settings for experiment ${JSON.stringify(options.experiment)}: ${error.problems.join(' ')}`, {
          exitCode: 2,
          code: 'tally.invalidSettings',
        });
      }
      context.logger().debug({ projectId: options.project, experimentId: options.experiment, fields: Object.keys(change) }, 'experiment configured');
      if (options.json) {
        context.print(settingsJson(options.project, settings));
        return;
      }
      for (const line of describeSettings(options.project, settings)) context.print(line);
      if (!(await projectsWithExperiment(db, options.experiment)).includes(options.project)) {
        context.print('No exposure to this experiment is stored yet: the settings apply as soon as there is one.');
      }
    });
}
