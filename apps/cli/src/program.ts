import { Command } from 'commander';
import { registerExperimentConfigure } from './commands/experiment-configure.js';
import { registerExperimentShow } from './commands/experiment-show.js';
import { registerImportLegacy } from './commands/import-legacy.js';
import { registerJobsRetryFailed } from './commands/jobs-retry-failed.js';
import { registerMigrate } from './commands/migrate.js';
import { registerPartitionsEnsure } from './commands/partitions-ensure.js';
import { registerPartitionsStatus } from './commands/partitions-status.js';
import { registerProjectCreate } from './commands/project-create.js';
import { registerProjectList } from './commands/project-list.js';
import { registerProjectRotateKey } from './commands/project-rotate-key.js';
import { registerRollupRebuild } from './commands/rollup-rebuild.js';
import { registerRollupRun } from './commands/rollup-run.js';
import type { CommandContext } from './context.js';

/** The `tally` command tree. Settings made on the root before `.command()` are inherited by every subcommand. */
export function buildProgram(context: CommandContext): Command {
  const program = new Command('tally')
    .description('Operate Tally: database, projects and keys, experiment settings, queues, partitions, rollups, legacy import.')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => context.io.stdout(text),
      writeErr: (text) => context.io.stderr(text),
    })
    .showSuggestionAfterError(true);

  registerMigrate(program, context);

  const project = program.command('project').description('manage projects and their keys');
  registerProjectCreate(project, context);
  registerProjectList(project, context);
  registerProjectRotateKey(project, context);

  const experiment = program.command('experiment').description("an experiment's settings: display name, control, variant weights");
  registerExperimentConfigure(experiment, context);
  registerExperimentShow(experiment, context);

  const jobs = program.command('jobs').description('act on queued jobs');
  registerJobsRetryFailed(jobs, context);

  const partitions = program.command('partitions').description('daily partitions of the raw events');
  registerPartitionsEnsure(partitions, context);
  registerPartitionsStatus(partitions, context);

  const rollup = program.command('rollup').description('the experiment summaries that results are served from');
  registerRollupRun(rollup, context);
  registerRollupRebuild(rollup, context);

  registerImportLegacy(program, context);

  return program;
}
