import type { Command } from 'commander';
import { createProject } from '@tally/db';
import type { CommandContext } from '../context.js';
import { projectName } from '../options.js';

export function registerProjectCreate(project: Command, context: CommandContext): void {
  project
    .command('create')
    .description('create a project and print its write and read keys (shown this once only)')
    .requiredOption('--name <name>', 'what the project is called', projectName)
    .option('--json', 'print one line {"projectId","writeKey","readKey"} and nothing else')
    .action(async (options: { name: string; json?: boolean }) => {
      const keys = await createProject(context.database().db, options.name);
      context.logger().debug({ projectId: keys.projectId }, 'project created');
      if (options.json) {
        context.print(JSON.stringify({ projectId: keys.projectId, writeKey: keys.writeKey, readKey: keys.readKey }));
        return;
      }
      context.print(`Created project "${options.name}" (${keys.projectId}).`);
      context.print(`  write key (ingest, POST /v1/batch):   ${keys.writeKey}`);
      context.print(`  read key (results, /v1/experiments): ${keys.readKey}`);
      context.print('Store both now: only their hashes are kept, so they cannot be shown again (rotate a lost key).');
    });
}
