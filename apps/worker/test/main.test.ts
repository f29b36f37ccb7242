import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createQueues, createRedis, closeQueues } from '@tally/queue';
import { createTestQueuePrefix, dropDatabase, TEST_POSTGRES_URL, uniqueName, waitFor, type TestQueuePrefix } from '@tally/testing';
import pg from 'pg';

const appDir = join(dirname(fileURLToPath(import.meta.url)), '..');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

describe('the worker process', () => {
  // A database that does not exist yet: starting the worker creates and migrates it.
  const databaseName = uniqueName('db');
  const databaseUrl = Object.assign(new URL(TEST_POSTGRES_URL), { pathname: `/${databaseName}` }).toString();
  let prefix: TestQueuePrefix;

  beforeAll(() => {
    prefix = createTestQueuePrefix();
  });
  afterAll(async () => {
    await prefix?.remove();
    await dropDatabase(databaseName);
  });

  it('creates and migrates its database, becomes ready, and exits cleanly on SIGTERM', async () => {
    const port = await freePort();
    let output = '';
    const child = spawn(join(appDir, 'node_modules', '.bin', 'tsx'), ['src/main.ts'], {
      cwd: appDir,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        DATABASE_URL: databaseUrl,
        REDIS_URL: prefix.redisUrl,
        QUEUE_PREFIX: prefix.prefix,
        HOST: '127.0.0.1',
        PORT: String(port),
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

    try {
      await waitFor(
        async () => {
          if (child.exitCode !== null) throw new Error(`worker exited with ${child.exitCode}: ${output}`);
          const response = await fetch(`http://127.0.0.1:${port}/readyz`);
          return response.status === 200 ? true : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 200, what: 'the worker to be ready' },
      );

      const admin = new pg.Client({ connectionString: databaseUrl });
      await admin.connect();
      try {
        const { rows } = await admin.query(`SELECT to_regclass('analytics_events') IS NOT NULL AS migrated`);
        expect(rows[0]).toEqual({ migrated: true });
      } finally {
        await admin.end();
      }
      const producer = createRedis(prefix.redisUrl, 'producer');
      const queues = createQueues(producer, prefix.prefix);
      try {
        expect(await queues.maintenance.getJobSchedulersCount()).toBe(1);
      } finally {
        await closeQueues(queues);
        producer.disconnect();
      }
    } finally {
      if (child.exitCode === null) child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(output).not.toMatch(/"level":(50|60)/);
  });

  it('refuses to start with a bad setting, and says which', async () => {
    const child = spawn(join(appDir, 'node_modules', '.bin', 'tsx'), ['src/main.ts'], {
      cwd: appDir,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, WORKER_CONCURRENCY: 'lots' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(1);
    expect(stderr).toMatch(/Invalid configuration/);
    expect(stderr).toMatch(/WORKER_CONCURRENCY/);
  });
});
