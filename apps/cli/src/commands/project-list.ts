import type { Command } from 'commander';
import { listProjects } from '@tally/db';
import type { CommandContext } from '../context.js';

export function registerProjectList(project: Command, context: CommandContext): void {
  project
    .command('list')
    .description('list every project, oldest first (keys are never shown again)')
    .option('--json', 'print one line: a JSON array of {"projectId","name","createdAt"}')
    .action(async (options: { json?: boolean }) => {
      const rows = await listProjects(context.database().db);
      const projects = rows.map((row) => ({ projectId: row.id, name: row.name, createdAt: row.createdAt.toISOString() }));
      if (options.json) {
        context.print(JSON.stringify(projects));
        return;
      }
      if (projects.length === 0) {
        context.print('No projects yet; create one with `pnpm tally project create --name <name>`.');
        return;
      }
      const width = Math.max(...projects.map((p) => p.name.length), 'NAME'.length);
      context.print(`${'PROJECT ID'.padEnd(36)}  ${'NAME'.padEnd(width)}  CREATED`);
      for (const p of projects) context.print(`${p.projectId}  ${p.name.padEnd(width)}  ${p.createdAt}`);
    });
}
