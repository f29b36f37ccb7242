import type { Command } from 'commander';
import { listExperiments, listProjects, partitionSettings, projectsWithExperiment, rebuildExperiment, type Database } from '@tally/db';
import type { CommandContext } from '../context.js';
import { CliError } from '../errors.js';
import { experimentId, projectId, wholeNumber } from '../options.js';
import { DEFAULT_ROLLUP_WINDOW, rollUpEverything } from './rollup-run.js';

export function registerRollupRebuild(rollup: Command, context: CommandContext): void {
  rollup
    .command('rebuild')
    .description("recompute one experiment's summaries from its raw events (to repair them); folds pending events first")
    .requiredOption('--experiment <id>', 'the experiment id', experimentId)
    .option('--project <id>', 'the project id (needed only when several projects have the experiment)', projectId)
    .option('--window <n>', 'events per rollup transaction while folding pending events', wholeNumber(1, 10_000_000), DEFAULT_ROLLUP_WINDOW)
    .option('--force', 'rebuild even when raw events older than the retention may have been dropped (they are then no longer counted)')
    .option('--json', 'print one line {"projectId","experimentId","sessions","foldedEvents"}')
    .action(async (options: { experiment: string; project?: string; window: number; force?: boolean; json?: boolean }, command: Command) => {
      const { db } = context.database();
      const logger = context.logger();
      // The rebuild reads only events the rollup has folded: fold the rest first, so
      // none is left out. Resolving the project also reads the summaries the rollup fills.
      const rollup = await rollUpEverything(context.database(), options.window, logger);
      const candidates = await projectsWithExperiment(db, options.experiment);

      const project = await resolveProject(context, command, options.project, options.experiment, candidates);
      if (!options.force) await refuseIfRawEventsMayBeGone(db, project, options.experiment);
      const sessions = await rebuildExperiment(db, project, options.experiment);
      logger.debug({ projectId: project, experimentId: options.experiment, sessions, foldedEvents: rollup.events }, 'experiment rebuilt');
      if (options.json) {
        context.print(JSON.stringify({ projectId: project, experimentId: options.experiment, sessions, foldedEvents: rollup.events }));
        return;
      }
      context.print(
        `Rebuilt experiment ${JSON.stringify(options.experiment)} of project ${project} from its raw events: ` +
          `${sessions} exposed session${sessions === 1 ? '' : 's'}.`,
      );
    });
}

/** The project to rebuild in: the one given, or the only one with exposures to the experiment. */
async function resolveProject(
  context: CommandContext,
  command: Command,
  given: string | undefined,
  experimentId: string,
  candidates: string[],
): Promise<string> {
  const experiment = JSON.stringify(experimentId);
  if (given !== undefined) {
    if (!(await listProjects(context.database().db)).some((p) => p.id === given)) {
      throw new CliError(`No project with id ${given}; \`pnpm tally project list\` shows the projects.`);
    }
    if (!candidates.includes(given)) {
      const elsewhere = candidates.length === 0 ? 'nor has any other project' : `the projects that have: ${candidates.join(', ')}`;
      throw new CliError(`Project ${given} has no exposures to experiment ${experiment} (${elsewhere}); nothing to rebuild.`);
    }
    return given;
  }
  if (candidates.length === 0) throw new CliError(`No project has exposures to experiment ${experiment}; nothing to rebuild.`);
  if (candidates.length > 1) {
    // Which one to rebuild is the caller's choice: a usage error, exit 2.
    command.error(
      `Experiment ${experiment} has exposures in ${candidates.length} projects (${candidates.join(', ')}): say which with --project <id>.`,
      { exitCode: 2, code: 'tally.ambiguousExperiment' },
    );
  }
  return candidates[0]!;
}

/**
 * The summaries keep counting events whose partitions retention has dropped; a
 * rebuild reads raw events only, so it would quietly lose those. Refused unless
 * the experiment started within the retention, or the caller says --force.
 */
async function refuseIfRawEventsMayBeGone(db: Database, projectId: string, experimentId: string): Promise<void> {
  const { retentionDays } = await partitionSettings(db);
  if (!retentionDays) return;
  const experiment = (await listExperiments(db, projectId)).find((e) => e.experimentId === experimentId);
  const horizon = Date.now() - retentionDays * 86_400_000;
  if (!experiment || Date.parse(experiment.firstExposureAt) >= horizon) return;
  throw new CliError(
    `Experiment ${JSON.stringify(experimentId)} began on ${experiment.firstExposureAt.slice(0, 10)}, before the retention of ` +
      `${retentionDays} days: its oldest raw events may have been dropped, and a rebuild would stop counting them. ` +
      'Nothing was rebuilt; add --force to rebuild from the raw events still stored.',
  );
}
