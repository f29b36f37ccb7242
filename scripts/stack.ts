/**
 * `npm run stack`: the whole of Tally on one machine, for trying it out.
 * Checks that Postgres and Redis answer, creates and migrates the database,
 * makes (once) a demo project and prints its keys, then runs every app until
 * Ctrl-C. Settings come from the same environment variables the apps read.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';
import { createDb, createProject, findProjectIdByKey, migrateDatabase, type ProjectKeys } from '@tally/db';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/tally';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const demoFile = join(root, '.tally', 'demo-project.json');

const APPS = [
  { name: 'worker', port: 3400 },
  { name: 'ingest-api', port: 3100 },
  { name: 'query-api', port: 3200 },
  { name: 'dashboard', port: 3300 },
] as const;

function redact(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}

async function checkServices(): Promise<void> {
  const problems: string[] = [];
  const admin = new URL(DATABASE_URL);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString(), connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (error) {
    problems.push(`Postgres is not reachable at ${redact(DATABASE_URL)} (${(error as Error).message}).`);
  } finally {
    await client.end().catch(() => {});
  }
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 3_000, retryStrategy: () => null });
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    problems.push(`Redis is not reachable at ${redact(REDIS_URL)} (${(error as Error).message}).`);
  } finally {
    redis.disconnect();
  }
  if (problems.length > 0) {
    console.error(`\n${problems.join('\n')}\n
Tally needs Postgres 15+ and Redis 7+. Either start local servers, or run them in Docker:
    docker compose -f infra/docker-compose.yml up -d
or point DATABASE_URL / REDIS_URL at servers you have. Then run \`npm run stack\` again.\n`);
    process.exit(1);
  }
}

/** The demo project is made once and its keys kept in .tally/ (git-ignored), so restarts reuse it. */
async function demoProject(): Promise<ProjectKeys> {
  const handle = createDb(DATABASE_URL, { max: 1 });
  try {
    if (existsSync(demoFile)) {
      const saved = JSON.parse(readFileSync(demoFile, 'utf8')) as ProjectKeys;
      if ((await findProjectIdByKey(handle.db, 'write', saved.writeKey)) === saved.projectId) return saved;
    }
    const keys = await createProject(handle.db, 'Demo');
    mkdirSync(dirname(demoFile), { recursive: true });
    writeFileSync(demoFile, `${JSON.stringify(keys)}\n`, { mode: 0o600 });
    return keys;
  } finally {
    await handle.close();
  }
}

function startApps(): ChildProcess[] {
  const tsx = join(root, 'node_modules', '.bin', 'tsx');
  const width = Math.max(...APPS.map((app) => app.name.length));
  return APPS.map(({ name, port }) => {
    const child = spawn(tsx, ['src/main.ts'], {
      cwd: join(root, 'apps', name),
      env: { TALLY_ENV: 'development', PORT: String(port), ...process.env, DATABASE_URL, REDIS_URL },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const label = `${name.padEnd(width)} | `;
    for (const stream of [child.stdout, child.stderr]) {
      let partial = '';
      stream?.on('data', (chunk: Buffer) => {
        const lines = (partial + chunk.toString()).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) process.stdout.write(label + line + '\n');
      });
    }
    return child;
  });
}

await checkServices();
await migrateDatabase(DATABASE_URL);
const keys = await demoProject();
const children = startApps();

let stopping = false;
const stop = (code: number) => {
  if (stopping) return;
  stopping = true;
  for (const child of children) child.kill('SIGTERM');
  setTimeout(() => process.exit(code), 15_000).unref();
  Promise.all(children.map((child) => new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve))))).then(() =>
    process.exit(code),
  );
};
process.on('SIGINT', () => stop(0));
process.on('SIGTERM', () => stop(0));
children.forEach((child, i) =>
  child.once('exit', (code) => {
    if (!stopping) {
      console.error(`\n${APPS[i]!.name} exited (code ${code}); stopping the stack.`);
      stop(1);
    }
  }),
);

const now = Date.now();
console.log(`
Tally is starting. Demo project ${keys.projectId}
  write key (ingest):  ${keys.writeKey}
  read key (results):  ${keys.readKey}

  ingest API   http://127.0.0.1:3100   docs: /docs
  query API    http://127.0.0.1:3200   docs: /docs
  results page http://127.0.0.1:3200/experiments   (asks for the read key)
  Bull Board   http://127.0.0.1:3300   ${process.env.DASHBOARD_PASSWORD ? '(basic auth from DASHBOARD_USER/DASHBOARD_PASSWORD)' : '(development: no login)'}

Try it:
  curl -X POST http://127.0.0.1:3100/v1/batch -H 'Authorization: Bearer ${keys.writeKey}' \\
    -H 'Content-Type: application/json' -d '{"events":[
      {"eventId":"e1","eventType":"EXPOSURE","sessionId":"s1","experimentId":"checkout-button","variantKey":"treatment","timestamp":${now}},
      {"eventId":"e2","eventType":"CONVERSION","sessionId":"s1","goal":"purchase","timestamp":${now + 1000}}]}'
  curl http://127.0.0.1:3200/v1/experiments/checkout-button/results -H 'Authorization: Bearer ${keys.readKey}'

Ctrl-C stops everything.
`);
