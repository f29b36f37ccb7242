/**
 * Where a query API request's time goes: the same sequential, keep-alive requests
 * as bench/query-latency.ts, next to what they are made of, each timed alone:
 * HTTP to a route that touches nothing (`/healthz`), one round trip to Postgres
 * (`SELECT 1`), and each statement a results request runs, in this process through
 * the same functions the query API calls. What is left over is the route's own
 * work: the key check, validation, the statistics, serializing, logging.
 *
 * The summaries are as small at 100k events as at 10M (a few rows per experiment),
 * so a small load answers the question.
 *
 *   pnpm exec tsx bench/request-anatomy.ts [--events 100000] [--requests 2000]
 *
 * Makes its database and drops it at the end. Prints a markdown table on stdout.
 */
import { Agent, get as httpGet } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { experimentResultsAsOf, getExperimentSettings, listExperimentsAsOf } from '@tally/db';
import { createTestDatabase, type RunningApp } from '@tally/testing';
import { acquire, logger, runScenario, startMeasuredApp, RUNNER } from './harness.js';
import { exactPercentile } from './stats.js';
import { DEFAULT_TRAFFIC, EXPERIMENTS, fmt, loadTally } from './generate.js';

const { values: args } = parseArgs({
  options: {
    events: { type: 'string', default: '100000' },
    requests: { type: 'string', default: '2000' },
    warmup: { type: 'string', default: '200' },
  },
});
const REQUESTS = Number(args.requests);
const WARMUP = Number(args.warmup);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const log = logger('request-anatomy');
const EXPERIMENT = EXPERIMENTS[0]!.id;

async function main(): Promise<void> {
  const tallyDb = await acquire(createTestDatabase(), (d) => d.drop());
  const tally = await loadTally(tallyDb, { ...DEFAULT_TRAFFIC, events: Number(args.events), seed: 1 }, { log });
  const app = await acquire(startMeasuredApp(root, 'query-api', { DATABASE_URL: tallyDb.url }), (a: RunningApp) => a.stop());
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const get = (path: string) =>
    new Promise<void>((resolve, reject) => {
      httpGet(`${app.url}${path}`, { agent, headers: { authorization: `Bearer ${tally.readKey}` } }, (response) => {
        response.resume();
        response.on('end', () => (response.statusCode === 200 ? resolve() : reject(new Error(`${path} answered ${response.statusCode}`))));
      }).on('error', reject);
    });

  const rows: string[] = [];
  async function time(what: string, run: () => Promise<unknown>): Promise<void> {
    for (let i = 0; i < WARMUP; i++) await run();
    const samples: number[] = [];
    for (let i = 0; i < REQUESTS; i++) {
      const started = performance.now();
      await run();
      samples.push(performance.now() - started);
    }
    const [p50, p90, p99] = [50, 90, 99].map((p) => exactPercentile(samples, p).toFixed(3));
    rows.push(`| ${what} | ${p50} | ${p90} | ${p99} |`);
    log(`${what}: p50 ${p50} ms`);
  }

  const { db } = tallyDb;
  const { projectId } = tally;
  await time('HTTP `GET /healthz` (no database, no key)', () => get('/healthz'));
  await time('HTTP `GET /v1/experiments`', () => get('/v1/experiments'));
  await time('HTTP `GET …/results`', () => get(`/v1/experiments/${EXPERIMENT}/results`));
  await time('SQL `SELECT 1` (one round trip)', () => db.$client.query('SELECT 1'));
  await time('SQL the list (`listExperimentsAsOf`)', () => listExperimentsAsOf(db, projectId));
  await time('SQL the results (`experimentResultsAsOf`)', () => experimentResultsAsOf(db, projectId, EXPERIMENT));
  await time('SQL the settings (`getExperimentSettings`), beside the results', () => getExperimentSettings(db, projectId, EXPERIMENT));
  agent.destroy();

  process.stdout.write(`\`pnpm exec tsx bench/request-anatomy.ts --events ${args.events} --requests ${REQUESTS}\`

${fmt(Number(args.events))} events (\`bench/generate.ts\`, seed 1); ${REQUESTS} sequential runs of each after ${WARMUP} unmeasured, experiment \`${EXPERIMENT}\`. HTTP: the query API as its own process (${RUNNER}), one keep-alive connection. SQL: from this process, on a pool of its own.

| what | p50 ms | p90 ms | p99 ms |
|---|---|---|---|
${rows.join('\n')}
`);
}

await runScenario(main);
