/**
 * Exports of raw events: throughput, and the query API's memory while it streams
 * them, at each `--events` size (the contract says constant memory however many
 * rows; the target is under 150 MB, flat from 1M to 10M).
 *
 * For each size the generated traffic (bench/generate.ts, the same as
 * bench/query-latency.ts loads) is COPYed into a fresh Tally database; no rollup,
 * since exports read raw events only. The query API runs as its own process. Each
 * export is read to the end by one client as fast as it can, counting rows and
 * bytes without keeping them:
 *
 *   GET /v1/experiments/<largest>/export?format=ndjson
 *   GET /v1/experiments/<largest>/export?format=csv
 *   GET /v1/export?format=ndjson&from=&to=      (every event of the project)
 *
 * The row counts are checked against SQL. Before each export the query API's
 * VmHWM is reset (/proc/<pid>/clear_refs), so each peak is that export's own.
 *
 *   pnpm exec tsx bench/export-memory.ts [--events 1000000,10000000] [--lanes 2]
 *
 * Makes its database and removes it, also when it fails or is interrupted. Prints
 * a markdown section on stdout; progress on stderr.
 */
import { get as httpGet } from 'node:http';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createTestDatabase, startApp } from '@tally/testing';
import { DEFAULT_TRAFFIC, EXPERIMENTS, fmt, loadTally, mb, type TrafficOptions } from './generate.js';
import { BackendCpu, ProcessWatch, acquire, logger, mbOfKb, owned, runScenario, runnerBaselineKb, startMeasuredApp, RUNNER, measureEachSize } from './harness.js';

const { values: args } = parseArgs({
  options: {
    events: { type: 'string', default: '1000000' },
    seed: { type: 'string', default: String(DEFAULT_TRAFFIC.seed) },
    lanes: { type: 'string', default: '2' },
  },
});
const SIZES = args.events.split(',').map(Number);
const EXPERIMENT = EXPERIMENTS[0].id;
const TARGET_MB = 150;

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const log = logger('export-memory');

interface Streamed {
  status: number;
  /** Lines: rows, plus CSV's header. */
  lines: number;
  bytes: number;
  seconds: number;
  /** The first line, to check the format. */
  head: string;
}

/** Reads a response to the end, counting line ends; keeps only the first line. */
function stream(url: string, key: string): Promise<Streamed> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = httpGet(url, { headers: { authorization: `Bearer ${key}` } }, (response) => {
      let lines = 0;
      let bytes = 0;
      let head = '';
      response.on('data', (chunk: Buffer) => {
        if (head.length < 2000 && lines === 0) head += chunk.toString('utf8', 0, Math.min(chunk.length, 2000));
        bytes += chunk.length;
        for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) lines += 1;
      });
      response.on('error', reject);
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, lines, bytes, seconds: (performance.now() - started) / 1000, head: head.split('\n')[0]! }),
      );
    });
    req.on('error', reject);
  });
}

interface ExportRow {
  what: string;
  rows: number;
  bytes: number;
  seconds: number;
  peakKb: number;
  cpuSeconds: number;
  backendCpu: number;
}

interface SizeResult {
  events: number;
  loadSeconds: number;
  pid: string;
  readyKb: number;
  exports: ExportRow[];
}

async function measure(events: number): Promise<SizeResult> {
  const options: TrafficOptions = { ...DEFAULT_TRAFFIC, events, seed: Number(args.seed) };
  log(`${fmt(events)} events: loading Tally`);
  const database = await acquire(createTestDatabase(), (d) => d.drop());
  log(`database ${database.name}`);
  const load = await loadTally(database, options, { lanes: Number(args.lanes), log, rollup: false });

  // What each export must return, from SQL: the selection export.ts documents.
  const { rows: expected } = await database.db.$client.query<{ experiment: string }>(
    `SELECT count(*) AS experiment FROM analytics_events s
     WHERE s.project_id = $1 AND (s.event_type <> 'EXPOSURE' OR s.experiment_id = $2)
       AND s.session_id IN (SELECT session_id FROM analytics_events WHERE project_id = $1 AND experiment_id = $2 AND event_type = 'EXPOSURE')`,
    [load.projectId, EXPERIMENT],
  );
  const experimentRows = Number(expected[0]!.experiment);

  const app = await acquire(startMeasuredApp(root, 'query-api', { DATABASE_URL: database.url }), (a) => a.stop());
  const watch = new ProcessWatch();
  watch.add('query-api', app.process.pid!);
  const ready = watch.get('query-api');
  const backends = new BackendCpu((sql) => database.db.$client.query(sql), database.name);

  // The whole range of the traffic, with a day to spare on each side.
  const from = new Date(options.endMs - (options.days + 1) * 86_400_000).toISOString();
  const to = new Date(options.endMs + 2 * 86_400_000).toISOString();
  const exportsToRun = [
    { what: `experiment \`${EXPERIMENT}\`, ndjson`, path: `/v1/experiments/${EXPERIMENT}/export?format=ndjson`, rows: experimentRows, header: 0 },
    { what: `experiment \`${EXPERIMENT}\`, csv`, path: `/v1/experiments/${EXPERIMENT}/export?format=csv`, rows: experimentRows, header: 1 },
    { what: 'whole project (`/v1/export`), ndjson', path: `/v1/export?format=ndjson&from=${from}&to=${to}`, rows: events, header: 0 },
  ];
  const exports: ExportRow[] = [];
  watch.start(200);
  for (const run of exportsToRun) {
    log(`export: ${run.what}`);
    watch.resetPeaks();
    await backends.reset();
    const result = await stream(app.url + run.path, load.readKey);
    watch.sample();
    await backends.sample();
    if (result.status !== 200) throw new Error(`${run.path} answered ${result.status}: ${result.head}`);
    const rows = result.lines - run.header;
    if (rows !== run.rows) throw new Error(`${run.path}: ${rows} rows, ${run.rows} expected`);
    // A format check on the first line: a JSON object, or the CSV header.
    if (run.header ? !result.head.startsWith('eventId,') : !(JSON.parse(result.head) as { eventId?: string }).eventId) {
      throw new Error(`${run.path}: unexpected first line ${result.head.slice(0, 200)}`);
    }
    const figures = watch.get('query-api');
    exports.push({ what: run.what, rows, bytes: result.bytes, seconds: result.seconds, peakKb: figures.peakKb, cpuSeconds: figures.cpuSeconds, backendCpu: backends.total() });
    log(`${fmt(rows)} rows in ${fmt(result.seconds, 1)} s, peak RSS ${mbOfKb(figures.peakKb)} MB`);
  }
  watch.stop();
  return {
    events,
    loadSeconds: load.copySeconds,
    pid: `${ready.pid}${ready.wrapperPid ? ` (tsx child of ${ready.wrapperPid})` : ''}`,
    readyKb: ready.readyRssKb,
    exports,
  };
}

const millions = (n: number) => (n >= 1_000_000 ? `${fmt(n / 1_000_000, n % 1_000_000 ? 1 : 0)}M` : `${fmt(n / 1000)}k`);

function report(results: SizeResult[], baselineKb: number): string {
  const first = results[0]!;
  const last = results.at(-1)!;
  const peakOf = (r: SizeResult) => Math.max(...r.exports.map((e) => e.peakKb));
  return `### Export: rows/s and the query API's memory while streaming

\`pnpm exec tsx bench/export-memory.ts --events ${args.events} --lanes ${args.lanes}\`

The generated traffic (\`bench/generate.ts\`, seed ${args.seed}, ${DEFAULT_TRAFFIC.days} days) COPYed into a fresh Tally database; the query API as its own process (default settings); one client reads each export to the end as fast as it can, counting rows (checked against SQL) and bytes. Peak RSS is VmHWM of the node process running the query API (run as ${RUNNER}; an idle script run the same way peaks at ${mbOfKb(baselineKb)} MB), reset before each export so that each peak is its own. CPU seconds against the export's wall time, on ${cpus().length} cores (the reading client shares them).

| events | export | rows | bytes | seconds | rows/s | MB/s | query API peak RSS | query API CPU ÷ wall | Postgres backend CPU ÷ wall |
|---|---|---|---|---|---|---|---|---|---|
${results
  .flatMap((r) =>
    r.exports.map(
      (e) =>
        `| ${millions(r.events)} | ${e.what} | ${fmt(e.rows)} | ${mb(e.bytes)} | ${fmt(e.seconds, 1)} | ${fmt(e.rows / e.seconds)} | ${fmt(e.bytes / 2 ** 20 / e.seconds, 1)} | ${mbOfKb(e.peakKb)} MB | ${fmt(e.cpuSeconds / e.seconds, 2)} | ${fmt(e.backendCpu / e.seconds, 2)} |`,
    ),
  )
  .join('\n')}

Query API: ${results.map((r) => `at ${millions(r.events)} pid ${r.pid}, ${mbOfKb(r.readyKb)} MB when ready`).join('; ')}.

Target: under ${TARGET_MB} MB during an export: ${results.map((r) => `${millions(r.events)} peak ${mbOfKb(peakOf(r))} MB (${peakOf(r) / 1024 < TARGET_MB ? 'met' : 'not met'})`).join(', ')}; flat from the smallest to the largest size: ${results.length > 1 ? `${mbOfKb(peakOf(last))} MB at ${millions(last.events)} against ${mbOfKb(peakOf(first))} MB at ${millions(first.events)} (${fmt(peakOf(last) / peakOf(first), 2)}×)` : 'one size only'}.
`;
}

await runScenario(async () => {
  const baselineKb = await runnerBaselineKb(root);
  const results = await measureEachSize(SIZES, measure);
  console.log(report(results, baselineKb));
});
