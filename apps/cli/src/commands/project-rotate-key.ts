import { Option, type Command } from 'commander';
import { rotateKey, type KeyKind } from '@tally/db';
import type { CommandContext } from '../context.js';
import { CliError } from '../errors.js';
import { projectId } from '../options.js';

export function registerProjectRotateKey(project: Command, context: CommandContext): void {
  project
    .command('rotate-key')
    .description(
      'replace a project key, or make its first admin key; the old one stops working at once and the new one is shown this once only',
    )
    .requiredOption('--project <id>', 'the project id', projectId)
    .addOption(
      new Option('--kind <kind>', 'which key: write (send events), read (read results), admin (change experiment settings)')
        .choices(['write', 'read', 'admin'])
        .makeOptionMandatory(),
    )
    .option('--json', 'print one line {"projectId","kind","key"} and nothing else')
    .action(async (options: { project: string; kind: KeyKind; json?: boolean }) => {
      const key = await rotateKey(context.database().db, options.project, options.kind);
      if (key === undefined) {
        throw new CliError(`No project with id ${options.project}; \`pnpm tally project list\` shows the projects.`);
      }
      context.logger().debug({ projectId: options.project, kind: options.kind }, 'key rotated');
      if (options.json) {
        context.print(JSON.stringify({ projectId: options.project, kind: options.kind, key }));
        return;
      }
      context.print(`New ${options.kind} key for project ${options.project}: ${key}`);
      // A project starts without an admin key: there may have been no old one.
      const old = options.kind === 'admin' ? 'Any earlier admin key' : `The old ${options.kind} key`;
      context.print(`${old} stopped working just now. Store this one: it cannot be shown again.`);
      if (options.kind === 'admin') {
        context.print('It changes experiment settings: PUT /v1/experiments/<experiment>/settings on the query API.');
      }
    });
}
