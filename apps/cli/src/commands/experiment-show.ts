import type { Command } from 'commander';
import { getExperimentSettings, listProjects, type Database, type ExperimentSettings } from '@tally/db';
import type { CommandContext } from '../context.js';
import { CliError } from '../errors.js';
import { experimentId, projectId } from '../options.js';

export function registerExperimentShow(experiment: Command, context: CommandContext): void {
  experiment
    .command('show')
    .description("show an experiment's settings: display name, control and variant weights")
    .requiredOption('--project <id>', 'the project id', projectId)
    .requiredOption('--experiment <id>', 'the experiment id', experimentId)
    .option('--json', 'print one line {"projectId","experimentId","name","control","weights","updatedAt"}')
    .action(async (options: { project: string; experiment: string; json?: boolean }) => {
      const { db } = context.database();
      await requireProject(db, options.project);
      const settings = await getExperimentSettings(db, options.project, options.experiment);
      if (options.json) {
        context.print(settingsJson(options.project, settings));
        return;
      }
      for (const line of describeSettings(options.project, settings)) context.print(line);
    });
}

export async function requireProject(db: Database, id: string): Promise<void> {
  if (!(await listProjects(db)).some((p) => p.id === id)) {
    throw new CliError(`No project with id ${id}; \`pnpm tally project list\` shows the projects.`);
  }
}

export function settingsJson(projectId: string, settings: ExperimentSettings): string {
  const { experimentId, name, control, weights, updatedAt } = settings;
  return JSON.stringify({ projectId, experimentId, name, control, weights, updatedAt: updatedAt?.toISOString() ?? null });
}

/** The settings for a person: each field on its line, weights with the share of traffic they mean. */
export function describeSettings(projectId: string, settings: ExperimentSettings): string[] {
  const experiment = JSON.stringify(settings.experimentId);
  if (settings.updatedAt === null) {
    return [
      `Experiment ${experiment} of project ${projectId} is not configured: no display name, no control, equal weights expected.`,
      'Configure it with `pnpm tally experiment configure --project <id> --experiment <id> --control <variant> --weights a=0.5,b=0.5`.',
    ];
  }
  const weights = settings.weights;
  let shares = 'none (every variant is expected to get an equal share)';
  if (weights !== null) {
    const total = Object.values(weights).reduce((sum, w) => sum + w, 0);
    shares = Object.entries(weights)
      .map(([variant, weight]) => `${variant}=${weight} (${Number(((weight / total) * 100).toFixed(1))}%)`)
      .join(', ');
  }
  return [
    `Experiment ${experiment} of project ${projectId}:`,
    `  name     ${settings.name ?? '(none)'}`,
    `  control  ${settings.control ?? '(none: results compare nothing unless asked with ?control=)'}`,
    `  weights  ${shares}`,
    `  updated  ${settings.updatedAt.toISOString()}`,
  ];
}
