/**
 * Query latency of experiment results: Tally's query API over HTTP, next to the
 * seed plan's own queries on the same events in the seed's schema, at each size.
 *
 * For every `--events` size: the same generated traffic (bench/generate.ts) is
 * loaded into a fresh Tally database (COPY, then the rollup folds it into the
 * summaries) and into a fresh database in the seed's schema (bench/seed-schema.ts:
 * its table, its phase 2.1/2.2 indexes, its phase 3A materialized view). Then
 *
 *   - the query API runs as its own process; after a warm-up, `--requests`
 *     sequential rounds of GET /v1/experiments, /results, /results?goal=&control=,
 *     /timeseries?interval=day and ?interval=hour, on the largest experiment,
 *     one request at a time over one keep-alive connection; its peak RSS (VmHWM of
 *     the node process running it) is read at the end;
 *   - the seed's phase 1, 2.2 and 3A queries and Tally's raw-SQL oracle
 *     (`rawExperimentResults`, the exact semantics, never served) run in SQL on one
 *     connection, after one unmeasured run, as often as fits in `--budget` seconds;
 *   - every answer is checked against the oracle: Tally's numbers over HTTP for
 *     every experiment, the seed's per-variant session counts for the largest.
 *
 *   pnpm exec tsx bench/query-latency.ts [--events 1000000,10000000] [--requests 500]
 *     [--budget 30] [--quiet 1.5 --quiet-wait 600]
 *
 * --budget: seconds of runs per SQL query; --quiet: before each measurement, wait
 * (at most --quiet-wait seconds) for the 1-minute load average to fall below it.
 *
 * Makes its databases and drops them at the end, also when it fails or is
 * interrupted. Prints a markdown section on stdout; progress on stderr.
 */
import { Agent, get as httpGet } from 'node:http';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import {
  rawExperimentList,
  rawExperimentResults,
  rawExperimentTimeseries,
  type ExperimentCounts,
  type ExperimentListItem,
} from '@tally/db';
import { createTestDatabase, type RunningApp } from '@tally/testing';
import { ProcessWatch, acquire, logger, mbOfKb, owned, runScenario, runnerBaselineKb, startMeasuredApp, RUNNER, measureEachSize } from './harness.js';
import { exactPercentile } from './stats.js';
import { DEFAULT_TRAFFIC, EXPERIMENTS, fmt, loadTally, mb, type TallyLoad, type TrafficOptions } from './generate.js';
import {
  SEED_INDEXES,
  SEED_QUERIES,
  createSeedDatabase,
  loadSeed,
  seedVariantCounts,
  type SeedLoad,
  type SeedVariantCounts,
} from './seed-schema.js';

const { values: args } = parseArgs({
  options: {
    events: { type: 'string', default: '1000000' },
    requests: { type: 'string', default: '500' },
    warmup: { type: 'string', default: '50' },
    budget: { type: 'string', default: '30' },
    seed: { type: 'string', default: String(DEFAULT_TRAFFIC.seed) },
    lanes: { type: 'string', default: '2' },
    // Before each measurement, wait (up to quiet-wait seconds) for the 1-minute load average to fall below this.
    quiet: { type: 'string' },
    'quiet-wait': { type: 'string', default: '600' },
  },
});
const SIZES = args.events.split(',').map(Number);
const REQUESTS = Number(args.requests);
const WARMUP = Number(args.warmup);
const BUDGET_MS = Number(args.budget) * 1000;
const LANES = Number(args.lanes);
const EXPERIMENT = EXPERIMENTS[0].id;
const GOAL = 'purchase';

const log = logger('query-latency');
const root = join(dirname(fileURLToPath(import.meta.url)), '..');

// ---------------------------------------------------------------------------
// Measuring.
// ---------------------------------------------------------------------------

/** Milliseconds, with the digits that mean something at that size. */
const ms = (value: number) => (value < 10 ? fmt(value, 2) : value < 100 ? fmt(value, 1) : fmt(value));

interface Timing {
  runs: number;
  p50: number;
  p99: number;
}
const timing = (samples: number[]): Timing => ({ runs: samples.length, p50: exactPercentile(samples, 50), p99: exactPercentile(samples, 99) });

const agent = new Agent({ keepAlive: true, maxSockets: 1 });

function getJson(url: string, key: string): Promise<{ status: number; body: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const request = httpGet(url, { agent, headers: { authorization: `Bearer ${key}` } }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body, ms: performance.now() - started }));
      response.on('error', reject);
    });
    request.on('error', reject);
  });
}

/** One unmeasured run, then as many as fit in the budget (at least `minRuns`, at most 200). */
async function timeSql<T>(run: () => Promise<T>, minRuns = 5): Promise<{ timing: Timing; result: T }> {
  let started = performance.now();
  let result = await run();
  const first = performance.now() - started;
  const runs = Math.max(minRuns, Math.min(200, Math.floor(BUDGET_MS / Math.max(first, 0.01))));
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    started = performance.now();
    result = await run();
    samples.push(performance.now() - started);
  }
  return { timing: timing(samples), result };
}

/** On a shared machine: wait a while for other work to pass before measuring, if asked to. */
async function waitForQuiet(what: string): Promise<void> {
  if (args.quiet === undefined) return;
  const threshold = Number(args.quiet);
  const deadline = Date.now() + Number(args['quiet-wait']) * 1000;
  while (loadavg()[0]! >= threshold && Date.now() < deadline) {
    log(`waiting for load < ${threshold} before ${what} (now ${loadavg()[0]!.toFixed(2)})`);
    await new Promise((resolve) => setTimeout(resolve, 15_000));
  }
}

// ---------------------------------------------------------------------------
// Checking numbers.
// ---------------------------------------------------------------------------

interface HttpVariant {
  variantKey: string;
  sessions: number;
  pageviewSessions: number;
  pageviews: number;
  convertedSessions: number;
  conversions: number;
}
const COUNT_FIELDS = ['sessions', 'pageviewSessions', 'pageviews', 'convertedSessions', 'conversions'] as const;

function sameResults(body: { excludedSessions: number; variants: HttpVariant[] }, oracle: ExperimentCounts | undefined): boolean {
  if (!oracle) return false;
  const key = (v: HttpVariant) => `${v.variantKey}:${COUNT_FIELDS.map((f) => v[f]).join('/')}`;
  const mine = body.variants.map(key).sort().join(' ');
  const theirs = oracle.variants.map(key).sort().join(' ');
  return body.excludedSessions === oracle.excludedSessions && mine === theirs;
}

/** The list's numbers, in a fixed order of keys. */
const listKey = (e: ExperimentListItem) => ({
  experimentId: e.experimentId,
  exposedSessions: e.exposedSessions,
  excludedSessions: e.excludedSessions,
  firstExposureAt: e.firstExposureAt,
  lastExposureAt: e.lastExposureAt,
  variants: e.variants.map((v) => ({ variantKey: v.variantKey, sessions: v.sessions })),
});

const SEED_FIELDS = ['sessions', 'pageviewSessions', 'convertedSessions'] as const;

/**
 * "right" when every variant's three counts are the oracle's; otherwise how they
 * differ, summed over variants (each difference counted with its sign, and how many
 * variants are off, so that errors of opposite sign cannot pass as right).
 */
function judgeSeed(seed: SeedVariantCounts[], oracle: ExperimentCounts): string {
  const differences: string[] = [];
  const variants = new Set([...seed.map((v) => v.variantKey), ...oracle.variants.map((v) => v.variantKey)]);
  for (const field of SEED_FIELDS) {
    let theirs = 0;
    let truth = 0;
    let off = 0;
    for (const variant of variants) {
      const mine = seed.find((v) => v.variantKey === variant)?.[field] ?? 0;
      const exact = oracle.variants.find((v) => v.variantKey === variant)?.[field] ?? 0;
      theirs += mine;
      truth += exact;
      if (mine !== exact) off += 1;
    }
    if (off > 0) {
      const delta = theirs - truth;
      const sign = delta > 0 ? '+' : '';
      differences.push(`${field} ${sign}${fmt(delta)} (${sign}${fmt((100 * delta) / truth, 1)}%; ${off} of ${variants.size} variants off)`);
    }
  }
  return differences.length === 0 ? 'right' : `wrong: ${differences.join(', ')}`;
}

// ---------------------------------------------------------------------------
// One size.
// ---------------------------------------------------------------------------

interface Row {
  what: string;
  how: string;
  timing: Timing;
  numbers: string;
}

interface SizeResult {
  events: number;
  tally: TallyLoad;
  seed: SeedLoad;
  exposedSessions: number;
  excludedSessions: number;
  /** Sessions that saw two variants, counted once per variant they saw. */
  excludedVariantPairs: number;
  rows: Row[];
  /** Per-variant numbers of the largest experiment: the oracle's, then each seed query's. */
  numbers: { source: string; variants: { variantKey: string; sessions: number; pageviewSessions: number; convertedSessions: number }[] }[];
  peakRssKb: number;
  /** RSS of the query API once ready, before any request. */
  startRssKb: number;
  /** Which process was measured. */
  pid: string;
  loadDuringHttp: [number, number];
  loadDuringSql: [number, number];
}

async function measure(events: number): Promise<SizeResult> {
  const options: TrafficOptions = { ...DEFAULT_TRAFFIC, events, seed: Number(args.seed) };
  log(`${fmt(events)} events: loading Tally`);
  const tallyDb = await acquire(createTestDatabase(), (d) => d.drop());
  log(`database ${tallyDb.name}`);
  const tally = await loadTally(tallyDb, options, { lanes: LANES, log });
  log(`Tally: COPY ${tally.copySeconds.toFixed(1)} s, rollup ${tally.rollupSeconds.toFixed(1)} s in ${tally.rollupWindows} windows`);

  log('loading the seed schema');
  const seedDb = await acquire(createSeedDatabase(), (d) => d.drop());
  log(`database ${seedDb.name} (seed schema)`);
  const seed = await loadSeed(seedDb, tally.projectId, options, { lanes: LANES, log });
  log(`seed: COPY ${seed.copySeconds.toFixed(1)} s, indexes ${seed.indexSeconds.reduce((a, i) => a + i.seconds, 0).toFixed(1)} s`);

  const oracle = async (experimentId: string, goal: string | null = null) => (await rawExperimentResults(tallyDb.db, tally.projectId, experimentId, goal))!;
  const truth = await oracle(EXPERIMENT);
  const rows: Row[] = [];

  // --- Tally over HTTP --------------------------------------------------------------
  const app = await acquire(startMeasuredApp(root, 'query-api', { DATABASE_URL: tallyDb.url }), (a: RunningApp) => a.stop());
  const watch = new ProcessWatch();
  watch.add('query-api', app.process.pid!);
  const base = `${app.url}/v1/experiments`;
  const endpoints = [
    { what: 'Tally GET /v1/experiments', path: '' },
    { what: 'Tally GET …/results', path: `/${EXPERIMENT}/results` },
    { what: `Tally GET …/results?goal=${GOAL}&control=control`, path: `/${EXPERIMENT}/results?goal=${GOAL}&control=control` },
    { what: 'Tally GET …/timeseries?interval=day', path: `/${EXPERIMENT}/timeseries?interval=day` },
    { what: 'Tally GET …/timeseries?interval=hour', path: `/${EXPERIMENT}/timeseries?interval=hour` },
  ];
  const bodies = new Map<string, string>();
  for (let i = 0; i < WARMUP; i++) {
    for (const endpoint of endpoints) {
      const response = await getJson(base + endpoint.path, tally.readKey);
      if (response.status !== 200) throw new Error(`${endpoint.what} answered ${response.status}: ${response.body}`);
      bodies.set(endpoint.path, response.body);
    }
  }
  await waitForQuiet('the HTTP runs');
  // Round robin: every endpoint sees the same moments of the machine's other load.
  const samples = endpoints.map(() => [] as number[]);
  const loadBefore = loadavg()[0]!;
  for (let i = 0; i < REQUESTS; i++) {
    for (const [n, endpoint] of endpoints.entries()) {
      const response = await getJson(base + endpoint.path, tally.readKey);
      if (response.status !== 200) throw new Error(`${endpoint.what} answered ${response.status}: ${response.body}`);
      samples[n]!.push(response.ms);
    }
  }
  const loadDuringHttp: [number, number] = [loadBefore, loadavg()[0]!];
  watch.stop();
  const queryApi = watch.get('query-api');

  // Are Tally's answers the oracle's? Every experiment's results, the list, and the series.
  const checks: Record<string, string> = {};
  const wrong: string[] = [];
  for (const experiment of EXPERIMENTS.slice(1)) {
    const response = await getJson(`${base}/${experiment.id}/results`, tally.readKey);
    if (!sameResults(JSON.parse(response.body), await oracle(experiment.id))) wrong.push(experiment.id);
  }
  await app.stop();
  const listed = (JSON.parse(bodies.get('')!) as { experiments: ExperimentListItem[] }).experiments.map(listKey);
  const rawList = (await rawExperimentList(tallyDb.db, tally.projectId)).map(listKey);
  checks[''] = JSON.stringify(listed) === JSON.stringify(rawList) ? 'right' : 'wrong';
  const resultsPath = `/${EXPERIMENT}/results`;
  checks[resultsPath] = sameResults(JSON.parse(bodies.get(resultsPath)!), truth) && wrong.length === 0
    ? 'right (and every other experiment\'s)'
    : `wrong (${[EXPERIMENT, ...wrong].join(', ')})`;
  const goalPath = `/${EXPERIMENT}/results?goal=${GOAL}&control=control`;
  checks[goalPath] = sameResults(JSON.parse(bodies.get(goalPath)!), await oracle(EXPERIMENT, GOAL)) ? 'right' : 'wrong';
  for (const interval of ['day', 'hour'] as const) {
    const body = JSON.parse(bodies.get(`/${EXPERIMENT}/timeseries?interval=${interval}`)!) as { variants: unknown };
    const raw = await rawExperimentTimeseries(tallyDb.db, tally.projectId, EXPERIMENT, interval);
    checks[`/${EXPERIMENT}/timeseries?interval=${interval}`] = JSON.stringify(body.variants) === JSON.stringify(raw?.variants) ? 'right' : 'wrong';
  }
  for (const [n, endpoint] of endpoints.entries()) {
    rows.push({ what: endpoint.what, how: 'HTTP, sequential, keep-alive', timing: timing(samples[n]!), numbers: checks[endpoint.path]! });
  }

  // --- SQL: the oracle and the seed's queries ---------------------------------------
  await waitForQuiet('the SQL runs');
  const sqlLoadBefore = loadavg()[0]!;
  log('timing Tally raw SQL (the oracle)');
  // At least 3 runs only: it takes seconds to minutes, and it is a reference, not a contender.
  const rawTimed = await timeSql(() => rawExperimentResults(tallyDb.db, tally.projectId, EXPERIMENT), 3);
  rows.push({ what: 'Tally raw SQL `rawExperimentResults` (oracle; never served)', how: 'SQL', timing: rawTimed.timing, numbers: 'right (by definition)' });

  const numbers: SizeResult['numbers'] = [
    { source: 'exact (rawExperimentResults)', variants: truth.variants.map(({ variantKey, sessions, pageviewSessions, convertedSessions }) => ({ variantKey, sessions, pageviewSessions, convertedSessions })) },
  ];
  const client = owned(new pg.Client({ connectionString: seedDb.url, application_name: 'tally-bench-seed' }), (c) => c.end());
  await client.connect();
  for (const query of SEED_QUERIES) {
    log(`timing ${query.name}`);
    const { timing: t, result } = await timeSql(() =>
      client.query<{ variant_key: string; event_type: string; unique_sessions: string }>(query.sql, query.params(tally.projectId, EXPERIMENT)),
    );
    const counts = seedVariantCounts(result.rows);
    numbers.push({ source: query.name, variants: counts });
    rows.push({ what: query.name, how: 'SQL', timing: t, numbers: judgeSeed(counts, truth) });
  }
  const loadDuringSql: [number, number] = [sqlLoadBefore, loadavg()[0]!];

  // How many (session, variant) pairs the excluded sessions make: what counting them in every variant adds.
  const { rows: pairs } = await tallyDb.db.$client.query<{ pairs: string }>(
    `SELECT count(*) AS pairs FROM (
       SELECT DISTINCT e.session_id, e.variant_key FROM analytics_events e
       JOIN experiment_sessions s ON s.project_id = e.project_id AND s.experiment_id = e.experiment_id AND s.session_id = e.session_id
       WHERE e.project_id = $1 AND e.experiment_id = $2 AND e.event_type = 'EXPOSURE' AND s.variant_key IS NULL) p`,
    [tally.projectId, EXPERIMENT],
  );

  return {
    events,
    tally,
    seed,
    exposedSessions: truth.variants.reduce((a, v) => a + v.sessions, 0) + truth.excludedSessions,
    excludedSessions: truth.excludedSessions,
    excludedVariantPairs: Number(pairs[0]!.pairs),
    rows,
    numbers,
    peakRssKb: queryApi.peakKb,
    startRssKb: queryApi.readyRssKb,
    pid: `${queryApi.pid}${queryApi.wrapperPid ? ` (tsx child of ${queryApi.wrapperPid})` : ''}`,
    loadDuringHttp,
    loadDuringSql,
  };
}

// ---------------------------------------------------------------------------
// Report.
// ---------------------------------------------------------------------------

const millions = (n: number) => (n >= 1_000_000 ? `${fmt(n / 1_000_000, n % 1_000_000 ? 1 : 0)}M` : `${fmt(n / 1000)}k`);

function report(results: SizeResult[], baselineKb: number): string {
  const command = `pnpm exec tsx bench/query-latency.ts --events ${args.events} --requests ${REQUESTS}` +
    (args.budget !== '30' ? ` --budget ${args.budget}` : '') +
    (args.quiet !== undefined ? ` --quiet ${args.quiet} --quiet-wait ${args['quiet-wait']}` : '');
  const out: string[] = [];
  out.push(`### Query latency: results over HTTP, next to the seed plan's queries

\`${command}\`

The same generated traffic (\`bench/generate.ts\`, seed ${args.seed}: sessions over ${DEFAULT_TRAFFIC.days} days, ~6.6 events each, four experiments of 2–3 variants, 1.5% of exposed sessions seeing two variants, a tenth of conversions before the exposure) is loaded into a fresh Tally database (COPY, then the rollup) and into the seed's schema with the plan's phase 2.1/2.2 indexes and its phase 3A materialized view. Latencies are for experiment \`${EXPERIMENT}\`, the largest. Tally is measured over HTTP (query API as its own process, ${REQUESTS} sequential rounds of every endpoint after ${WARMUP} warm-up rounds, one keep-alive connection); the others in SQL on one connection, after one unmeasured run, as many runs as fit in ${BUDGET_MS / 1000} s (at least 5; 3 for the oracle). "Numbers" compares each answer with \`rawExperimentResults\`, the exact semantics of design.md; for the seed's queries, its per-variant EXPOSURE, PAGEVIEW and CONVERSION session counts against sessions, pageviewSessions and convertedSessions, summed over variants.
`);

  out.push(`| events | query | how | runs | p50 ms | p99 ms | numbers |
|---|---|---|---|---|---|---|`);
  for (const r of results) {
    for (const row of r.rows) {
      out.push(`| ${millions(r.events)} | ${row.what} | ${row.how} | ${row.timing.runs} | ${ms(row.timing.p50)} | ${ms(row.timing.p99)} | ${row.numbers} |`);
    }
  }

  const first = results[0]!;
  const last = results.at(-1)!;
  const resultsRow = (r: SizeResult) => r.rows.find((row) => row.what === 'Tally GET …/results')!.timing;
  const phase22 = (r: SizeResult) => r.rows.find((row) => row.what.startsWith('seed phase 2.2'))!.timing;
  const tenM = results.find((r) => r.events === 10_000_000);
  const largest = tenM ?? last;
  out.push(`
Targets, on \`GET …/results\`:

| target | measured | met |
|---|---|---|
| p99 ≤ 10 ms at 10M events | ${tenM ? `${ms(resultsRow(tenM).p99)} ms` : `not run at 10M (largest: ${millions(last.events)}, p99 ${ms(resultsRow(last).p99)} ms)`} | ${tenM ? (resultsRow(tenM).p99 <= 10 ? 'yes' : 'no') : 'not measured'} |
| p99 at ${millions(largest.events)} ≤ 1.5 × p99 at ${millions(first.events)} | ${results.length > 1 ? `${ms(resultsRow(largest).p99)} / ${ms(resultsRow(first).p99)} ms = ${fmt(resultsRow(largest).p99 / resultsRow(first).p99, 2)}×` : 'one size only'} | ${results.length > 1 ? (resultsRow(largest).p99 <= 1.5 * resultsRow(first).p99 ? 'yes' : 'no') : 'not measured'} |
${results.map((r) => `| ≥ 1000× faster than phase 2.2 at ${millions(r.events)} (p50 / p50; p99 / p99) | ${fmt(phase22(r).p50 / resultsRow(r).p50)}×; ${fmt(phase22(r).p99 / resultsRow(r).p99)}× | ${phase22(r).p50 / resultsRow(r).p50 >= 1000 && phase22(r).p99 / resultsRow(r).p99 >= 1000 ? 'yes' : 'no'} |`).join('\n')}
`);

  out.push(`Numbers each query returns for \`${EXPERIMENT}\` at ${millions(last.events)} (sessions / pageviewSessions / convertedSessions; the seed's: EXPOSURE / PAGEVIEW / CONVERSION sessions):

| source | ${last.numbers[0]!.variants.map((v) => v.variantKey).join(' | ')} |
|---|${last.numbers[0]!.variants.map(() => '---').join('|')}|
${last.numbers.map((n) => `| ${n.source} | ${last.numbers[0]!.variants.map((v) => {
    const mine = n.variants.find((x) => x.variantKey === v.variantKey);
    return mine ? `${fmt(mine.sessions)} / ${fmt(mine.pageviewSessions)} / ${fmt(mine.convertedSessions)}` : '–';
  }).join(' | ')} |`).join('\n')}

${results.map((r) => `At ${millions(r.events)}: ${fmt(r.exposedSessions)} sessions exposed to \`${EXPERIMENT}\`, ${fmt(r.excludedSessions)} of them excluded (two variants), which make ${fmt(r.excludedVariantPairs)} (session, variant) pairs: the seed's queries count each such session in every variant it saw.`).join(' ')} The phase 1 and 2.2 queries also count a session's pageviews and conversions from before its first exposure; the materialized view keeps only rows with a \`variant_key\` (exposures), so it has no pageview or conversion at all, and summing hourly distinct counts counts a session once per hour in which it was exposed.
`);

  const peakMb = (r: SizeResult) => r.peakRssKb / 1024;
  out.push(`Query API memory during the HTTP runs (target: under 150 MB, flat from 1M to 10M): ${results
    .map((r) => `${millions(r.events)}: ${fmt(r.startRssKb / 1024)} MB when ready, peak ${fmt(peakMb(r))} MB (pid ${r.pid})`)
    .join('; ')}${results.length > 1 ? `; peak at ${millions(last.events)} ÷ peak at ${millions(first.events)} = ${fmt(peakMb(last) / peakMb(first), 2)}` : ''}. Peak RSS is VmHWM of the node process running the app; the app runs as ${RUNNER}; an idle script run the same way peaks at ${mbOfKb(baselineKb)} MB.
`);

  out.push(`Loading (not a target; for the record):

| events | Tally COPY | Tally rollup of all events | rollup window first / last | Tally raw / summaries | seed COPY | seed indexes (${SEED_INDEXES.length}) | seed matview refresh | seed table / indexes |
|---|---|---|---|---|---|---|---|---|
${results.map((r) => `| ${millions(r.events)} | ${fmt(r.tally.copySeconds, 1)} s (${fmt(r.events / r.tally.copySeconds)}/s) | ${fmt(r.tally.rollupSeconds, 1)} s in ${r.tally.rollupWindows} windows of 250k (${fmt(r.events / r.tally.rollupSeconds)} events/s) | ${fmt((r.tally.windowMs[0] ?? 0) / 1000, 1)} / ${fmt((r.tally.windowMs.at(-1) ?? 0) / 1000, 1)} s | ${mb(r.tally.rawBytes)} / ${mb(r.tally.summaryBytes)} | ${fmt(r.seed.copySeconds, 1)} s | ${fmt(r.seed.indexSeconds.reduce((a, i) => a + i.seconds, 0), 1)} s | ${fmt(r.seed.matviewRefreshSeconds, 1)} s (${fmt(r.seed.matviewRows)} rows) | ${mb(r.seed.tableBytes)} / ${mb(r.seed.indexBytes)} |`).join('\n')}

The plan's \`REFRESH MATERIALIZED VIEW CONCURRENTLY experiment_variant_stats\` ${first.seed.concurrentRefresh.startsWith('fails') ? `fails as written: "${first.seed.concurrentRefresh.slice('fails: '.length)}" (its index on the view is not unique)` : 'succeeded'}. Machine load (1-minute average, 2 cores) during the HTTP runs: ${results.map((r) => `${millions(r.events)} ${fmt(r.loadDuringHttp[0], 1)} → ${fmt(r.loadDuringHttp[1], 1)}`).join(', ')}; during the SQL runs: ${results.map((r) => `${millions(r.events)} ${fmt(r.loadDuringSql[0], 1)} → ${fmt(r.loadDuringSql[1], 1)}`).join(', ')}.
`);
  return out.join('\n');
}

await runScenario(async () => {
  const baselineKb = await runnerBaselineKb(root);
  let results: SizeResult[];
  try {
    results = await measureEachSize(SIZES, measure);
  } finally {
    agent.destroy();
  }
  console.log(report(results, baselineKb));
});
