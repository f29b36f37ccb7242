import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { ensureDatabase, migrateDatabase, MIGRATIONS_FOLDER } from '@tally/db';
import type { CommandContext } from '../context.js';
import { hostOf } from '../errors.js';

export function registerMigrate(program: Command, context: CommandContext): void {
  program
    .command('migrate')
    .description('create the database if it does not exist and apply pending migrations')
    .action(async () => {
      const url = context.config().DATABASE_URL;
      const where = `"${decodeURIComponent(new URL(url).pathname.slice(1))}" on ${hostOf(url, 5432)}`;
      if (await ensureDatabase(url)) context.print(`Created database ${where}.`);
      const before = await appliedMigrations(context);
      await migrateDatabase(url);
      const after = await appliedMigrations(context);
      const known = migrationCount();
      context.logger().debug({ before, after, known }, 'migrations applied');
      context.print(
        after > before
          ? `Applied ${after - before} migration${after - before === 1 ? '' : 's'} to database ${where}; it is up to date (${after} of ${known}).`
          : `Database ${where} was already up to date (${after} of ${known} migrations).`,
      );
    });
}

/** Rows in Drizzle's bookkeeping table; none before the first migration. */
async function appliedMigrations(context: CommandContext): Promise<number> {
  const pool = context.database().pool;
  const { rows } = await pool.query<{ exists: boolean }>(`SELECT to_regclass('drizzle.__drizzle_migrations') IS NOT NULL AS exists`);
  if (!rows[0]?.exists) return 0;
  const { rows: counted } = await pool.query<{ applied: number }>('SELECT count(*)::int AS applied FROM drizzle.__drizzle_migrations');
  return counted[0]?.applied ?? 0;
}

function migrationCount(): number {
  const journal = JSON.parse(readFileSync(join(MIGRATIONS_FOLDER, 'meta', '_journal.json'), 'utf8')) as { entries: unknown[] };
  return journal.entries.length;
}
