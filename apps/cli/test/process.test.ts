import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findProjectIdByKey } from '@tally/db';
import { createTestDatabase, type TestDatabase } from '@tally/testing';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Runs `pnpm --silent tally …` from the repository root, as an operator would. */
function pnpmTally(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('pnpm', ['--silent', 'tally', ...args], {
      cwd: root,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('the tally command as a process', () => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(() => database?.drop());

  it('`pnpm tally project create --name … --json` prints one JSON line a script can parse, and exits 0', async () => {
    const result = await pnpmTally(['project', 'create', '--name', 'From a script', '--json'], { DATABASE_URL: database.url });
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout.endsWith('\n')).toBe(true);
    expect(result.stdout.trimEnd().split('\n')).toHaveLength(1);
    const keys = JSON.parse(result.stdout) as { projectId: string; writeKey: string; readKey: string };
    expect(await findProjectIdByKey(database.db, 'write', keys.writeKey)).toBe(keys.projectId);
    const { rows } = await database.pool.query('SELECT name FROM projects WHERE id = $1', [keys.projectId]);
    expect(rows).toEqual([{ name: 'From a script' }]);
  });

  it('exits non-zero with one sentence on stderr when Postgres is not running', async () => {
    const result = await pnpmTally(['project', 'list'], { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/tally' });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr.trimEnd().split('\n')).toEqual([expect.stringMatching(/^Cannot reach Postgres at 127\.0\.0\.1:1 .*docker-compose/)]);
  });

  it('exits 2 on a usage error', async () => {
    const result = await pnpmTally(['project', 'create'], { DATABASE_URL: database.url });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--name/);
  });
});
