import { afterAll, describe, expect, it } from 'vitest';
import { ensureDatabase } from '@tally/db';
import { dropDatabase, TEST_POSTGRES_URL, uniqueName } from '@tally/testing';
import { expectOneSentenceError, tally } from './helpers.js';

const urlOf = (name: string) => Object.assign(new URL(TEST_POSTGRES_URL), { pathname: `/${name}` }).toString();

describe('tally when its servers are not there', () => {
  // Nothing listens on port 1; the password must never be printed.
  const unreachable = { DATABASE_URL: 'postgres://tally:hunter2@127.0.0.1:1/tally' };

  it.each([
    [['migrate']],
    [['project', 'create', '--name', 'X', '--json']],
    [['project', 'list']],
    [['project', 'rotate-key', '--project', '00000000-0000-4000-8000-000000000000', '--kind', 'write']],
    [['partitions', 'ensure']],
    [['partitions', 'status']],
  ])('`tally %s` says Postgres is unreachable at which host, and how to start one', async (argv) => {
    const result = await tally(argv, unreachable);
    expectOneSentenceError(result, /^Cannot reach Postgres at 127\.0\.0\.1:1 \(ECONNREFUSED\): Postgres must be running there.*infra\/docker-compose\.yml/);
    expect(result.stderr).not.toContain('hunter2');
  });

  it('says Redis is unreachable at which host when retrying jobs', async () => {
    const result = await tally(['jobs', 'retry-failed'], { REDIS_URL: 'redis://:hunter2@127.0.0.1:1' });
    expectOneSentenceError(result, /^Cannot reach Redis at 127\.0\.0\.1:1 \(ECONNREFUSED\).*infra\/docker-compose\.yml/);
    expect(result.stderr).not.toContain('hunter2');
  });

  it('refuses an invalid setting in one line naming the variable, before touching any server', async () => {
    const result = await tally(['project', 'list'], { DATABASE_URL: 'mysql://127.0.0.1/tally', LOG_LEVEL: 'chatty' });
    expectOneSentenceError(result, /^Invalid configuration: DATABASE_URL: .*; LOG_LEVEL: /);
  });
});

describe('tally against a database that is missing or not migrated', () => {
  const missing = uniqueName('db');
  const empty = uniqueName('db');

  afterAll(async () => {
    await dropDatabase(missing);
    await dropDatabase(empty);
  });

  it('says a missing database must be migrated first, and does not create it', async () => {
    const result = await tally(['project', 'list'], { DATABASE_URL: urlOf(missing) });
    expectOneSentenceError(result, new RegExp(`^Database "${missing}" does not exist on 127\\.0\\.0\\.1:5432; .*pnpm tally migrate`));
    expect(await ensureDatabase(urlOf(missing))).toBe(true);
  });

  it('says an unmigrated database needs `tally migrate`', async () => {
    await ensureDatabase(urlOf(empty));
    const result = await tally(['project', 'create', '--name', 'X'], { DATABASE_URL: urlOf(empty) });
    expectOneSentenceError(result, /is not migrated; run `pnpm tally migrate`/);
    expect(result.stderr).not.toMatch(/insert into|select/i);
  });
});

describe('tally usage', () => {
  it('prints help on stdout and succeeds when asked for it', async () => {
    const result = await tally(['--help'], {});
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/Usage: tally/);
    expect(result.stdout).toMatch(/migrate/);
  });

  it('treats an unknown command as a usage error, suggesting the near one', async () => {
    const result = await tally(['migrat'], {});
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/unknown command 'migrat'/);
    expect(result.stderr).toMatch(/Did you mean migrate\?/);
    expect(result.stdout).toBe('');
  });
});
