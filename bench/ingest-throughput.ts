/**
 * Ingest throughput end to end, next to its ceiling on the same machine in the
 * same run.
 *
 * For each `--events` size, the generated traffic (bench/generate.ts, one day of
 * live-looking sessions ending six hours ago) is written out once as HTTP batch
 * bodies and as COPY text, before anything is timed. Then:
 *
 *   pipeline  the ingest API and `--workers` worker processes (each with
 *             WORKER_CONCURRENCY `--concurrency`) run as their own processes on a
 *             fresh database and queue prefix; `--clients` concurrent clients post
 *             the bodies (`--batch` events each) over keep-alive connections.
 *             Timed from the first POST to the last 202, to every row stored in
 *             analytics_events (the sequence has reached the event count and the
 *             queue is empty), and to the rollup having folded them all
 *             (rollup_state.last_seq reaches the last stored row's sequence number);
 *   ceiling   the same events, by COPY (`--lanes` psql processes) into
 *             analytics_events of another fresh Tally database, with the apps
 *             stopped; then the rollup of all of them, as one backlog.
 *
 * The per-project rate limit is off (RATE_LIMIT_EVENTS_PER_MINUTE=0): its default,
 * 10,000 events/s for one project, would measure the policy, not the pipeline.
 * Clients honour 429/503 with Retry-After and send the batch again. They also hold
 * back while `--max-backlog` jobs are queued: when the API accepts faster than the
 * worker stores, the backlog would otherwise grow in the shared Redis by ~1 KB per
 * event (gigabytes at 10M); how long they were held says which side is the bottleneck.
 *
 * Also: peak RSS and CPU seconds of each process (the node process running the app,
 * see harness.ts), CPU of the Postgres backends of the pipeline's database and of
 * the Redis server, POST latency under saturation, the deepest queue backlog, and
 * whether the summaries the pipeline made equal those of COPY + rollup.
 *
 *   pnpm exec tsx bench/ingest-throughput.ts [--events 1000000] [--batch 2000]
 *     [--clients 8] [--workers 1] [--concurrency 4] [--lanes 2] [--inflight-bytes N]
 *     [--worker-env KEY=VALUE,...]   (more settings of the workers, e.g. ROLLUP_YIELD_MAX_MS=0)
 *
 * Makes its databases, queue prefix and files and removes them, also when it fails
 * or is interrupted. Prints a markdown section on stdout; progress on stderr.
 */
import { createReadStream } from 'node:fs';
import { Agent, request } from 'node:http';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { createProject, rollUpPending } from '@tally/db';
import { createTestDatabase, createTestQueuePrefix, type RunningApp } from '@tally/testing';
import {
  DEFAULT_TRAFFIC,
  TALLY_COPY,
  ensureTrafficPartitions,
  fmt,
  mb,
  psqlCopyFile,
  writeTrafficFiles,
  type TrafficOptions,
} from './generate.js';
import { BackendCpu, ProcessWatch, acquire, logger, mbOfKb, owned, runScenario, ownedTempDir, runnerBaselineKb, startMeasuredApp, RUNNER, measureEachSize } from './harness.js';
import { percentile, sleep } from './stats.js';

const { values: args } = parseArgs({
  options: {
    events: { type: 'string', default: '1000000' },
    batch: { type: 'string', default: '2000' },
    clients: { type: 'string', default: '8' },
    workers: { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '4' },
    lanes: { type: 'string', default: '2' },
    'max-backlog': { type: 'string', default: '100' },
    // The ingest API's MAX_INFLIGHT_BODY_BYTES; its own default when absent.
    'inflight-bytes': { type: 'string' },
    // More environment of the workers, as KEY=VALUE pairs separated by commas.
    'worker-env': { type: 'string', default: '' },
    seed: { type: 'string', default: String(DEFAULT_TRAFFIC.seed) },
  },
});
const SIZES = args.events.split(',').map(Number);
const WORKER_ENV = Object.fromEntries(
  args['worker-env']
    .split(',')
    .filter(Boolean)
    .map((pair) => {
      const at = pair.indexOf('=');
      if (at < 1) throw new Error(`--worker-env takes KEY=VALUE pairs separated by commas, not "${pair}"`);
      return [pair.slice(0, at), pair.slice(at + 1)];
    }),
);
const BATCH = Number(args.batch);
const CLIENTS = Number(args.clients);
const WORKERS = Number(args.workers);
const CONCURRENCY = Number(args.concurrency);
const LANES = Number(args.lanes);
const MAX_BACKLOG = Number(args['max-backlog']);
/** Seconds without any progress after which the run is declared stuck. */
const STUCK_SECONDS = 120;

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const log = logger('ingest-throughput');
const seconds = (from: number, to: number) => (to - from) / 1000;

// ---------------------------------------------------------------------------
// The clients.
// ---------------------------------------------------------------------------

interface Posted {
  status: number;
  retryAfter: number;
  body: string;
  ms: number;
}

function post(agent: Agent, url: string, key: string, body: Buffer): Promise<Posted> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'content-length': body.length },
      },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('error', reject);
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, retryAfter: Number(response.headers['retry-after'] ?? 1), body: text, ms: performance.now() - started }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * The bodies file, line by line, as bytes: decoding it to strings (readline) and
 * encoding each body again to send it cost this process about half its CPU, on the
 * cores the pipeline runs on. JSON bodies hold no raw newline. A line is a view of
 * the chunk it lies in; only one that straddles two chunks is copied (joining the
 * whole remainder to each next chunk copied the file about one and a half times).
 */
async function* linesOf(path: string): AsyncGenerator<Buffer> {
  let straddling: Buffer[] = [];
  for await (const chunk of createReadStream(path, { highWaterMark: 4 << 20 }) as AsyncIterable<Buffer>) {
    let start = 0;
    let end = chunk.indexOf(10);
    if (straddling.length > 0 && end !== -1) {
      yield Buffer.concat([...straddling, chunk.subarray(0, end)]);
      straddling = [];
      start = end + 1;
      end = chunk.indexOf(10, start);
    }
    for (; end !== -1; end = chunk.indexOf(10, start)) {
      yield chunk.subarray(start, end);
      start = end + 1;
    }
    if (start < chunk.length) straddling.push(chunk.subarray(start));
  }
  if (straddling.length > 0) yield Buffer.concat(straddling);
}

/** The bodies file, line by line, shared by every client: `next()` calls are served one at a time. */
function lineSource(path: string): () => Promise<Buffer | undefined> {
  const lines = linesOf(path);
  let turn: Promise<unknown> = Promise.resolve();
  return () => {
    const next = turn.then(() => lines.next());
    turn = next.catch(() => undefined);
    return next.then((result) => (result.done ? undefined : result.value));
  };
}

interface Sent {
  /** Client-seconds spent waiting for the backlog to fall under --max-backlog. */
  heldSeconds: number;
  firstPostAt: number;
  lastAcceptedAt: number;
  accepted: number;
  latencies: number[];
  retries: Record<number, number>;
}

async function sendAll(url: string, key: string, bodies: string, backlog: () => number): Promise<Sent> {
  const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS });
  const next = lineSource(bodies);
  const sent: Sent = { heldSeconds: 0, firstPostAt: 0, lastAcceptedAt: 0, accepted: 0, latencies: [], retries: {} };
  try {
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        for (let body = await next(); body !== undefined; body = await next()) {
          for (;;) {
            const held = Date.now();
            while (backlog() >= MAX_BACKLOG) await sleep(20);
            sent.heldSeconds += (Date.now() - held) / 1000;
            if (sent.firstPostAt === 0) sent.firstPostAt = Date.now();
            const response = await post(agent, url, key, body);
            if (response.status === 202) {
              sent.accepted += (JSON.parse(response.body) as { accepted: number }).accepted;
              sent.latencies.push(response.ms);
              sent.lastAcceptedAt = Date.now();
              break;
            }
            if (response.status !== 429 && response.status !== 503) {
              throw new Error(`POST /v1/batch answered ${response.status}: ${response.body.slice(0, 500)}`);
            }
            sent.retries[response.status] = (sent.retries[response.status] ?? 0) + 1;
            await sleep(response.retryAfter * 1000);
          }
        }
      }),
    );
  } finally {
    agent.destroy();
  }
  return sent;
}

// ---------------------------------------------------------------------------
// Watching the pipeline: sequence, rollup, queue, Redis.
// ---------------------------------------------------------------------------

interface Progress {
  seq: number;
  rolled: number;
  /** Jobs waiting, active or delayed. */
  queued: number;
  failed: number;
}

async function progressOf(client: pg.Client, queue: Queue): Promise<Progress> {
  const [{ rows }, counts] = await Promise.all([
    client.query<{ seq: string; rolled: string }>(`
      SELECT (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM analytics_events_seq) AS seq,
             (SELECT last_seq FROM rollup_state WHERE name = 'experiments') AS rolled`),
    queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'failed'),
  ]);
  return {
    seq: Number(rows[0]!.seq),
    rolled: Number(rows[0]!.rolled),
    queued: (counts.waiting ?? 0) + (counts.active ?? 0) + (counts.delayed ?? 0) + (counts.prioritized ?? 0),
    failed: counts.failed ?? 0,
  };
}

const redisUsedMemory = async (redis: Redis) => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1] ?? 0);
const redisCpu = async (redis: Redis) => {
  const info = await redis.info('cpu');
  return Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1] ?? 0) + Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1] ?? 0);
};

/** Bytes Redis holds for the keys under a prefix (MEMORY USAGE of each). */
async function prefixBytes(redis: Redis, prefix: string): Promise<{ keys: number; bytes: number }> {
  let cursor = '0';
  let keys = 0;
  let bytes = 0;
  do {
    const [nextCursor, batch] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = nextCursor;
    for (const key of batch) {
      keys += 1;
      bytes += Number((await redis.memory('USAGE', key)) ?? 0);
    }
  } while (cursor !== '0');
  return { keys, bytes };
}

/** The summaries, without the project id, as one text: equal texts, equal summaries. */
async function summaryFingerprint(client: pg.Client): Promise<string> {
  const { rows } = await client.query<{ totals: string; variants: string; cohorts: string }>(`
    SELECT
      (SELECT md5(string_agg(concat_ws(',', experiment_id, exposed_sessions, excluded_sessions, first_exposure_at, last_exposure_at), ';' ORDER BY experiment_id)) FROM experiment_totals) AS totals,
      (SELECT md5(string_agg(concat_ws(',', experiment_id, variant_key, goal, sessions, pageview_sessions, pageviews, converted_sessions, conversions), ';'
        ORDER BY experiment_id, variant_key, goal)) FROM experiment_variant_totals) AS variants,
      (SELECT md5(string_agg(concat_ws(',', experiment_id, variant_key, goal, bucket, sessions, converted_sessions), ';'
        ORDER BY experiment_id, variant_key, goal, bucket)) FROM experiment_cohorts) AS cohorts`);
  return `${rows[0]!.totals}/${rows[0]!.variants}/${rows[0]!.cohorts}`;
}

// ---------------------------------------------------------------------------
// One size.
// ---------------------------------------------------------------------------

interface ProcessFigures {
  name: string;
  pid: string;
  readyKb: number;
  peakKb: number;
  cpuSeconds: number;
}

interface SizeResult {
  events: number;
  batches: number;
  bodyBytes: number;
  sent: Sent;
  storedAt: number;
  rolledAt: number;
  maxQueued: number;
  processes: ProcessFigures[];
  backendCpu: number;
  redisCpu: number;
  clientCpu: number;
  redisPeakDelta: number;
  queueKeys: { keys: number; bytes: number };
  copySeconds: number;
  ceilingRollupSeconds: number;
  ceilingRollupWindows: number;
  /** Postgres backend CPU seconds of the ceiling's COPY, and of its rollup. */
  copyBackendCpu: number;
  rollupBackendCpu: number;
  summariesEqual: boolean;
}

async function measure(events: number): Promise<SizeResult> {
  // Live-looking traffic: one day of sessions ending six hours ago (none in the future).
  const endMs = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 6 * 3_600_000;
  const options: TrafficOptions = { ...DEFAULT_TRAFFIC, events, seed: Number(args.seed), days: 1, endMs };

  const pipelineDb = await acquire(createTestDatabase(), (d) => d.drop());
  const ceilingDb = await acquire(createTestDatabase(), (d) => d.drop());
  const queuePrefix = owned(createTestQueuePrefix(), (q) => q.remove());
  const keys = await createProject(pipelineDb.db, 'bench-ingest');
  const ceilingKeys = await createProject(ceilingDb.db, 'bench-ingest-ceiling');
  await ensureTrafficPartitions(pipelineDb.db, options);
  await ensureTrafficPartitions(ceilingDb.db, options);
  log(`databases ${pipelineDb.name} (pipeline), ${ceilingDb.name} (ceiling); queue prefix ${queuePrefix.prefix}`);

  log(`${fmt(events)} events: writing the traffic out`);
  const dir = ownedTempDir('tally-bench-ingest-');
  const files = await writeTrafficFiles(dir, options, { batchEvents: BATCH, lanes: LANES, projectId: ceilingKeys.projectId });

  // --- The pipeline ---------------------------------------------------------------
  const env = { DATABASE_URL: pipelineDb.url, REDIS_URL: queuePrefix.redisUrl, QUEUE_PREFIX: queuePrefix.prefix };
  const stop = (app: RunningApp) => app.stop();
  const apps = await Promise.all([
    acquire(
      startMeasuredApp(root, 'ingest-api', {
        ...env,
        RATE_LIMIT_EVENTS_PER_MINUTE: '0',
        ...(args['inflight-bytes'] === undefined ? {} : { MAX_INFLIGHT_BODY_BYTES: args['inflight-bytes'] }),
      }),
      stop,
    ),
    ...Array.from({ length: WORKERS }, () => acquire(startMeasuredApp(root, 'worker', { ...env, WORKER_CONCURRENCY: String(CONCURRENCY), ...WORKER_ENV }), stop)),
  ]);
  const stopApps = () => Promise.all(apps.map(stop));
  const [ingest, ...workers] = apps;
  const names = ['ingest-api', ...workers.map((_, i) => (WORKERS > 1 ? `worker ${i + 1}` : 'worker'))];

  const watch = new ProcessWatch();
  apps.forEach((app, i) => watch.add(names[i]!, app.process.pid!));

  const poller = owned(new pg.Client({ connectionString: pipelineDb.url, application_name: 'tally-bench-poller' }), (c) => c.end());
  await poller.connect();
  const queue = owned(new Queue('ingest', { connection: { url: queuePrefix.redisUrl }, prefix: queuePrefix.prefix }), (q) => q.close());
  const redis = owned(new Redis(queuePrefix.redisUrl), async (r) => r.disconnect());
  // Without listeners, a connection error (as at cleanup after a signal) would be thrown from the event emitter.
  queue.on('error', (error) => log(`queue: ${error.message}`));
  redis.on('error', (error) => log(`redis: ${error.message}`));
  const backends = new BackendCpu((sql) => poller.query(sql), pipelineDb.name);
  await backends.reset();
  const redisCpu0 = await redisCpu(redis);
  const redisMemory0 = await redisUsedMemory(redis);
  const clientCpu0 = process.cpuUsage();

  /** What a stuck run leaves to look at: the database's sessions, the rollup's queue and each app's last words. */
  const stuckReport = async () => {
    const { rows: sessions } = await poller.query(
      `SELECT pid, application_name, state, wait_event_type, wait_event, now() - xact_start AS in_transaction, left(query, 200) AS query
       FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`,
    );
    const rollupQueue = new Queue('rollup', { connection: { url: queuePrefix.redisUrl }, prefix: queuePrefix.prefix });
    const rollup = await Promise.all([rollupQueue.getJobCounts(), rollupQueue.getJobSchedulers()]).finally(() => rollupQueue.close());
    const outputs = apps.map((app, i) => `--- ${names[i]} (last 3,000 characters) ---\n${app.output().slice(-3_000)}`);
    return ['--- sessions ---', JSON.stringify(sessions, null, 1), '--- rollup queue: jobs, schedulers ---', JSON.stringify(rollup), ...outputs].join('\n');
  };

  // The watcher: when every row is stored, when the rollup has them all, how deep the queue got.
  let sending = true;
  let storedAt = 0;
  let rolledAt = 0;
  let storedSeq = 0;
  let maxQueued = 0;
  let queuedNow = 0;
  let redisPeak = redisMemory0;
  let lastChange = Date.now();
  let lastSeen = '';
  let watchError: Error | undefined;
  watch.start();
  const watcher = (async () => {
    for (let tick = 0; rolledAt === 0; tick++) {
      const now = Date.now();
      const progress = await progressOf(poller, queue);
      maxQueued = Math.max(maxQueued, progress.queued);
      queuedNow = progress.queued;
      if (progress.failed > 0) throw new Error(`${progress.failed} ingest jobs failed`);
      if (tick % 10 === 0) {
        await backends.sample();
        redisPeak = Math.max(redisPeak, await redisUsedMemory(redis));
      }
      if (!sending && storedAt === 0 && progress.seq >= events && progress.queued === 0) {
        storedAt = now;
        storedSeq = progress.seq;
      }
      if (storedAt !== 0 && progress.rolled >= storedSeq) rolledAt = now;
      const seen = `${progress.seq}/${progress.rolled}/${progress.queued}`;
      if (seen !== lastSeen) [lastSeen, lastChange] = [seen, now];
      if (now - lastChange > STUCK_SECONDS * 1000) {
        throw new Error(`no progress for ${STUCK_SECONDS} s (seq/rolled/queued ${seen})\n${await stuckReport()}`);
      }
      if (tick % 100 === 0) log(`stored ${fmt(progress.seq)}, rolled up ${fmt(progress.rolled)}, jobs queued ${progress.queued}`);
      await sleep(50);
    }
  })().catch((error: Error) => {
    watchError = error;
  });

  log(`posting ${fmt(files.batches)} batches of ${fmt(BATCH)} with ${CLIENTS} clients`);
  const sent = await sendAll(`${ingest!.url}/v1/batch`, keys.writeKey, files.bodies, () => queuedNow);
  sending = false;
  log(`all accepted in ${fmt(seconds(sent.firstPostAt, sent.lastAcceptedAt), 1)} s; waiting for the worker and the rollup`);
  await watcher;
  if (watchError) throw watchError;
  await backends.sample();
  watch.stop();
  const clientCpu = process.cpuUsage(clientCpu0);
  const redisCpuUsed = (await redisCpu(redis)) - redisCpu0;

  const { rows: counted } = await poller.query<{ n: string }>('SELECT count(*) AS n FROM analytics_events');
  if (Number(counted[0]!.n) !== events || sent.accepted !== events) {
    throw new Error(`${counted[0]!.n} rows stored and ${sent.accepted} accepted of ${events} events`);
  }
  const queueKeys = await prefixBytes(redis, queuePrefix.prefix);
  const processes = names.map((name) => {
    const figures = watch.get(name);
    return {
      name,
      pid: `${figures.pid}${figures.wrapperPid ? ` (tsx child of ${figures.wrapperPid}, which peaked at ${mbOfKb(figures.wrapperPeakKb)} MB)` : ''}`,
      readyKb: figures.readyRssKb,
      peakKb: figures.peakKb,
      cpuSeconds: figures.cpuSeconds,
    };
  });
  const pipelineSummaries = await summaryFingerprint(poller);
  await stopApps();

  // --- The ceiling: COPY of the same events, nothing else running -----------------
  log('ceiling: COPY of the same events');
  // Postgres CPU of each ceiling step, to set against the pipeline's: sampled, since psql's backends end with their COPY.
  const ceilingBackends = new BackendCpu((sql) => ceilingDb.db.$client.query(sql), ceilingDb.name);
  await ceilingBackends.reset();
  ceilingBackends.sampleEvery(100);
  let t = performance.now();
  await Promise.all(files.copies.map((path) => psqlCopyFile(ceilingDb.url, TALLY_COPY, path)));
  const copySeconds = (performance.now() - t) / 1000;
  await ceilingBackends.stop();
  const copyBackendCpu = ceilingBackends.total();
  ceilingBackends.sampleEvery(100);
  t = performance.now();
  const rolled = await rollUpPending(ceilingDb.db);
  const ceilingRollupSeconds = (performance.now() - t) / 1000;
  await ceilingBackends.stop();
  const rollupBackendCpu = ceilingBackends.total() - copyBackendCpu;
  const { rows: copied } = await ceilingDb.db.$client.query<{ n: string }>('SELECT count(*) AS n FROM analytics_events');
  if (Number(copied[0]!.n) !== events || !rolled.caughtUp) throw new Error(`ceiling: ${copied[0]!.n} rows of ${events}, caught up ${rolled.caughtUp}`);
  const ceilingClient = new pg.Client({ connectionString: ceilingDb.url });
  await ceilingClient.connect();
  const ceilingSummaries = await summaryFingerprint(ceilingClient).finally(() => ceilingClient.end());

  return {
    events,
    batches: files.batches,
    bodyBytes: files.bodyBytes,
    sent,
    storedAt,
    rolledAt,
    maxQueued,
    processes,
    backendCpu: backends.total(),
    redisCpu: redisCpuUsed,
    clientCpu: (clientCpu.user + clientCpu.system) / 1e6,
    redisPeakDelta: redisPeak - redisMemory0,
    queueKeys,
    copySeconds,
    ceilingRollupSeconds,
    ceilingRollupWindows: rolled.windows,
    copyBackendCpu,
    rollupBackendCpu,
    summariesEqual: pipelineSummaries === ceilingSummaries,
  };
}

// ---------------------------------------------------------------------------
// Report.
// ---------------------------------------------------------------------------

const millions = (n: number) => (n >= 1_000_000 ? `${fmt(n / 1_000_000, n % 1_000_000 ? 1 : 0)}M` : `${fmt(n / 1000)}k`);

function report(results: SizeResult[], baselineKb: number): string {
  const command =
    `pnpm exec tsx bench/ingest-throughput.ts --events ${args.events} --batch ${BATCH} --clients ${CLIENTS} ` +
    `--workers ${WORKERS} --concurrency ${CONCURRENCY} --lanes ${LANES} --max-backlog ${MAX_BACKLOG}` +
    (args['inflight-bytes'] === undefined ? '' : ` --inflight-bytes ${args['inflight-bytes']}`) +
    (args['worker-env'] ? ` --worker-env ${args['worker-env']}` : '');
  const workerEnv = Object.entries(WORKER_ENV).map(([key, value]) => `${key}=${value}`);
  const out: string[] = [];
  out.push(`### Ingest throughput: HTTP → queue → Postgres, next to COPY

\`${command}\`

Generated traffic (\`bench/generate.ts\`, seed ${args.seed}: one day of sessions, the four experiments) posted over HTTP by ${CLIENTS} concurrent clients in batches of ${fmt(BATCH)} events (keep-alive), to one ingest API process and ${WORKERS} worker process${WORKERS > 1 ? 'es' : ''} (WORKER_CONCURRENCY=${CONCURRENCY}${CONCURRENCY === 4 ? ', the default' : ''}${workerEnv.length ? `, ${workerEnv.join(', ')}` : ''}; otherwise the defaults: a rollup every 1 s, whose turns yield to a backlog of inserts for up to 10 s), each its own process on a fresh database and queue prefix, with the per-project rate limit off. Timed from the first POST. The ceiling is \`COPY\` of the same events (${LANES} psql processes, from files written beforehand) into \`analytics_events\` of another fresh Tally database with the apps stopped, then one rollup of the whole backlog. Bodies: ${results.map((r) => `${mb(r.bodyBytes)} at ${millions(r.events)}`).join(', ')}.

| events | all accepted (202) | all stored in analytics_events | rollup caught up | ceiling: COPY | ceiling: COPY + rollup | stored ÷ COPY | caught up ÷ (COPY + rollup) | summaries = COPY + rollup's |
|---|---|---|---|---|---|---|---|---|`);
  for (const r of results) {
    const t0 = r.sent.firstPostAt;
    const rate = (s: number) => `${fmt(s, 1)} s, ${fmt(r.events / s)} events/s`;
    const stored = seconds(t0, r.storedAt);
    const rolled = seconds(t0, r.rolledAt);
    const ceiling = r.copySeconds + r.ceilingRollupSeconds;
    out.push(
      `| ${millions(r.events)} | ${rate(seconds(t0, r.sent.lastAcceptedAt))} | ${rate(stored)} | ${rate(rolled)} | ${rate(r.copySeconds)} | ${rate(ceiling)} | ` +
        `**${fmt(r.copySeconds / stored, 2)}×** | ${fmt(ceiling / rolled, 2)}× | ${r.summariesEqual ? 'yes' : '**no**'} |`,
    );
  }

  out.push(`
Target: end to end ≥ 0.5 × the ceiling. ${results.map((r) => `${millions(r.events)}: ${fmt(r.copySeconds / seconds(r.sent.firstPostAt, r.storedAt), 2)}× to stored (${r.copySeconds / seconds(r.sent.firstPostAt, r.storedAt) >= 0.5 ? 'met' : 'not met'}), ${fmt((r.copySeconds + r.ceilingRollupSeconds) / seconds(r.sent.firstPostAt, r.rolledAt), 2)}× to rolled up`).join('; ')}.

| events | POST → 202 under saturation, p50 / p99 / max ms | retried (429 / 503) | deepest queue (jobs waiting or active) | clients held back by the backlog limit (${MAX_BACKLOG} jobs) | Redis: peak growth of the whole server / the queue's keys at the end |
|---|---|---|---|---|---|
${results.map((r) => `| ${millions(r.events)} | ${percentile(r.sent.latencies, 50)} / ${percentile(r.sent.latencies, 99)} / ${Math.round(Math.max(...r.sent.latencies))} | ${r.sent.retries[429] ?? 0} / ${r.sent.retries[503] ?? 0} | ${fmt(r.maxQueued)} (${fmt(r.maxQueued * BATCH)} events) | ${fmt(r.sent.heldSeconds / CLIENTS / seconds(r.sent.firstPostAt, r.sent.lastAcceptedAt) * 100)}% of the clients' time | ${mb(r.redisPeakDelta)} / ${mb(r.queueKeys.bytes)} in ${fmt(r.queueKeys.keys)} keys |`).join('\n')}

Memory and CPU of each process over the whole pipeline run (each app runs as ${RUNNER}; peak RSS is VmHWM of the node process that runs it; an idle script run the same way peaks at ${mbOfKb(baselineKb)} MB, the runtime's share of every figure). CPU seconds against the wall time from the first POST to the rollup caught up, on ${cpus().length} cores; the CPU a pipeline needs per event bounds its rate once the cores are busy:

| events | process | pid | RSS when ready | peak RSS | CPU s | CPU ÷ wall | CPU ms per 1,000 events |
|---|---|---|---|---|---|---|---|
${results
  .flatMap((r) => {
    const wall = seconds(r.sent.firstPostAt, r.rolledAt);
    const row = (name: string, pid: string, ready: string, peak: string, cpu: number) =>
      `| ${millions(r.events)} | ${name} | ${pid} | ${ready} | ${peak} | ${fmt(cpu, 1)} | ${fmt(cpu / wall, 2)} | ${fmt((1000 * cpu) / (r.events / 1000), 1)} |`;
    return [
      ...r.processes.map((p) => row(p.name, p.pid, `${mbOfKb(p.readyKb)} MB`, `${mbOfKb(p.peakKb)} MB`, p.cpuSeconds)),
      row('Postgres backends of the database', '–', '–', '–', r.backendCpu),
      row('Redis server (all of it: shared)', '–', '–', '–', r.redisCpu),
      row('load generator (this script)', String(process.pid), '–', '–', r.clientCpu),
    ];
  })
  .join('\n')}

Postgres backend CPU per 1,000 events (sampled every 100 ms–500 ms; the ceiling's psql backends may lose their last sample): ${results
  .map(
    (r) =>
      `${millions(r.events)}: pipeline ${fmt((1000 * r.backendCpu) / (r.events / 1000), 1)} ms (inserts and the rollup's runs), ` +
      `ceiling COPY ${fmt((1000 * r.copyBackendCpu) / (r.events / 1000), 1)} ms + its rollup ${fmt((1000 * r.rollupBackendCpu) / (r.events / 1000), 1)} ms`,
  )
  .join('; ')}.
`);
  return out.join('\n');
}

await runScenario(async () => {
  const baselineKb = await runnerBaselineKb(root);
  const results = await measureEachSize(SIZES, measure);
  console.log(report(results, baselineKb));
});
