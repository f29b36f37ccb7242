/**
 * Realistic A/B traffic at scale, without HTTP: a deterministic (seeded) stream of
 * events, and its load into a fresh Tally database by `COPY` straight into
 * `analytics_events`, followed by the rollup that folds it into the summaries.
 *
 * The traffic: sessions spread over `--days` days, each with a few pageviews (some
 * for hours, so that they span several hourly buckets), most exposed to one of four
 * experiments of two or three variants (a fifth of them to a second experiment too),
 * sometimes exposed again, 1.5% exposed to two variants of one experiment, some
 * first exposed only after a few pageviews, ~7% converting (goals purchase,
 * signup, add-to-cart), and a tenth of those conversions before the exposure.
 * Every number is drawn from a PRNG seeded per chunk of events, so the same
 * `--events` and `--seed` give the same events whatever the number of connections.
 *
 *   pnpm exec tsx bench/generate.ts [--events 1000000] [--seed 1] [--lanes 2]
 *
 * Run on its own it loads a fresh database, rolls up, checks every experiment's
 * results against `rawExperimentResults` and prints the times; the database is
 * dropped at the end. The scenarios use the same functions: `loadTally` (query
 * latency, export), `writeTrafficFiles` (ingest throughput: HTTP bodies and COPY
 * text written before anything is timed). The generating itself runs in separate
 * processes (bench/generator-process.ts), piped into psql.
 */
import { spawn } from 'node:child_process';
import { closeSync, createReadStream, openSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createProject, rawExperimentResults, rollUpPending, type Database, type encodeEventRows } from '@tally/db';
import { createTestDatabase, seededRandom } from '@tally/testing';
import { acquire, runScenario } from './harness.js';

// ---------------------------------------------------------------------------
// The traffic.
// ---------------------------------------------------------------------------

export type EventType = 'PAGEVIEW' | 'EXPOSURE' | 'CONVERSION';

export interface TrafficEvent {
  eventId: string;
  eventType: EventType;
  sessionId: string;
  viewId: string | null;
  experimentId: string | null;
  variantKey: string | null;
  goal: string | null;
  properties: Record<string, string | number> | null;
  /** Epoch milliseconds. */
  timestamp: number;
}

export interface TrafficOptions {
  events: number;
  seed: number;
  days: number;
  /** The traffic ends here (epoch ms); fixed by default so that runs compare. */
  endMs: number;
  /** Events per chunk: the unit of generation, of seeding and of a lane's turn. */
  chunkEvents: number;
}

export const DEFAULT_TRAFFIC: Omit<TrafficOptions, 'events'> = {
  seed: 1,
  days: 30,
  endMs: Date.UTC(2026, 10, 1),
  chunkEvents: 50_000,
};

/** `share` of the exposed sessions; `lift` raises each later variant's conversion rate. */
export const EXPERIMENTS = [
  { id: 'checkout-button', variants: ['control', 'treatment'], share: 0.4, lift: 0.15 },
  { id: 'pricing-page', variants: ['control', 'annual-first', 'monthly-first'], share: 0.25, lift: 0.08 },
  { id: 'onboarding-flow', variants: ['control', 'treatment'], share: 0.2, lift: -0.05 },
  { id: 'search-ranking', variants: ['control', 'bm25', 'semantic'], share: 0.15, lift: 0.04 },
] as const;

const PATHS = ['/', '/cart', '/checkout', '/product/42', '/product/7', '/search?q=shoes', '/account', '/pricing', '/blog/launch'];
const REFERRERS = ['https://www.google.com/', 'https://news.ycombinator.com/', 'https://t.co/x', ''];
const GOALS = [
  { goal: 'purchase', weight: 0.5 },
  { goal: 'signup', weight: 0.3 },
  { goal: 'add-to-cart', weight: 0.2 },
];


const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
/** Four random bytes, in hex. */
const word = (next: () => number) => {
  const n = Math.floor(next() * 0x100000000);
  return HEX[n >>> 24]! + HEX[(n >>> 16) & 255]! + HEX[(n >>> 8) & 255]! + HEX[n & 255]!;
};
const uuid = (next: () => number) => {
  const b = word(next);
  const c = word(next);
  return `${word(next)}-${b.slice(0, 4)}-4${b.slice(5)}-8${c.slice(1, 4)}-${c.slice(4)}${word(next)}`;
};
const pick = <T>(next: () => number, items: readonly T[]): T => items[Math.floor(next() * items.length)]!;

export function chunkCount(options: TrafficOptions): number {
  return Math.ceil(options.events / options.chunkEvents);
}

/**
 * Chunk `index` of the traffic: exactly its share of the events, from sessions that
 * start in its slice of the time range, in time order (as they would arrive).
 */
export function trafficChunk(options: TrafficOptions, index: number): TrafficEvent[] {
  const quota = Math.min(options.chunkEvents, options.events - index * options.chunkEvents);
  // Distinct, well-mixed seeds per chunk (the golden-ratio step spreads neighbours).
  const next = seededRandom((options.seed * 0x9e3779b1 + index * 0x85ebca6b + 1) >>> 0);
  const rangeMs = options.days * 86_400_000;
  const sliceMs = rangeMs / chunkCount(options);
  const sliceStart = options.endMs - rangeMs + index * sliceMs;
  const events: TrafficEvent[] = [];
  while (events.length < quota) {
    const session = generateSession(next, sliceStart + Math.floor(next() * sliceMs));
    session.sort((a, b) => a.timestamp - b.timestamp);
    // The last session of a chunk ends early: exactly `events` in all.
    events.push(...session.slice(0, quota - events.length));
  }
  return events.sort((a, b) => a.timestamp - b.timestamp);
}

/** A literal of one shape for every event: object spread is ten times slower here. */
const event = (
  eventId: string, eventType: EventType, sessionId: string, viewId: string | null, experimentId: string | null,
  variantKey: string | null, goal: string | null, properties: TrafficEvent['properties'], timestamp: number,
): TrafficEvent => ({ eventId, eventType, sessionId, viewId, experimentId, variantKey, goal, properties, timestamp });

function generateSession(next: () => number, start: number): TrafficEvent[] {
  const sessionId = `sess_${word(next)}${word(next)}`;
  const events: TrafficEvent[] = [];

  // One visit of a minute to half an hour; one in eight stays or comes back for hours.
  const duration = next() < 0.12 ? 3_600_000 + next() * 5 * 3_600_000 : 60_000 + next() * 29 * 60_000;
  let pageviews = 1;
  while (pageviews < 40 && next() > 0.2) pageviews++;
  const times = [start];
  for (let i = 1; i < pageviews; i++) times.push(start + Math.floor(next() * duration));
  times.sort((a, b) => a - b);
  let path = pick(next, PATHS);
  for (let i = 0; i < pageviews; i++) {
    const referrer = i === 0 ? pick(next, REFERRERS) : `https://shop.example${path}`;
    path = pick(next, PATHS);
    events.push(event(uuid(next), 'PAGEVIEW', sessionId, `v_${word(next)}`, null, null, null, { path, referrer }, times[i]!));
  }
  const endsAt = times.at(-1)!;

  // Exposures: 4% of sessions see no experiment, a fifth of the others two.
  const experiments: (typeof EXPERIMENTS)[number][] = [];
  if (next() >= 0.04) {
    const main = weighted(next);
    experiments.push(main);
    if (next() < 0.2) {
      const other = pick(next, EXPERIMENTS.filter((e) => e !== main));
      experiments.push(other);
    }
  }
  let firstExposure: number | undefined;
  let conversionRate = 0.04;
  for (const [n, experiment] of experiments.entries()) {
    // Most exposures happen on the landing page; three in ten after some browsing.
    const at = pageviews > 1 && next() < 0.3 ? 1 + Math.floor(next() * (pageviews - 1)) : 0;
    const exposedAt = times[at]! + 50 + Math.floor(next() * 400);
    const variant = Math.floor(next() * experiment.variants.length);
    const exposure = (timestamp: number, variantKey: string) =>
      event(uuid(next), 'EXPOSURE', sessionId, null, experiment.id, variantKey, null, null, timestamp);
    events.push(exposure(exposedAt, experiment.variants[variant]!));
    // Back on the page later: the same variant again.
    if (next() < 0.25) events.push(exposure(exposedAt + Math.floor(next() * (endsAt - exposedAt + 60_000)), experiment.variants[variant]!));
    // A cleared cookie or a second device: another variant of the same experiment.
    if (next() < 0.015) {
      const other = experiment.variants[(variant + 1 + Math.floor(next() * (experiment.variants.length - 1))) % experiment.variants.length]!;
      events.push(exposure(exposedAt + 1_000 + Math.floor(next() * (endsAt - exposedAt + 60_000)), other));
    }
    if (n === 0) {
      firstExposure = exposedAt;
      conversionRate = 0.065 * (1 + experiment.lift * variant);
    }
  }

  // Conversions: a fifth of converting sessions convert twice; a tenth before their exposure.
  if (next() < conversionRate) {
    const count = next() < 0.2 ? 2 : 1;
    for (let i = 0; i < count; i++) {
      const goal = weightedGoal(next);
      const timestamp = firstExposure !== undefined && next() < 0.1
        ? firstExposure - 1_000 - Math.floor(next() * 600_000)
        : (firstExposure ?? start) + 500 + Math.floor(next() * (endsAt - (firstExposure ?? start) + 120_000));
      const properties = { value: Math.round(next() * 20_000) / 100, currency: 'EUR' };
      events.push(event(uuid(next), 'CONVERSION', sessionId, null, null, null, goal, properties, timestamp));
    }
  }
  return events;
}

function weighted(next: () => number): (typeof EXPERIMENTS)[number] {
  let r = next();
  for (const experiment of EXPERIMENTS) {
    if (r < experiment.share) return experiment;
    r -= experiment.share;
  }
  return EXPERIMENTS[0];
}

function weightedGoal(next: () => number): string {
  let r = next();
  for (const { goal, weight } of GOALS) {
    if (r < weight) return goal;
    r -= weight;
  }
  return GOALS[0]!.goal;
}

/** An event as the ingest API stores it (the root workspace reaches the type through @tally/db). */
export type AcceptedEvent = Parameters<typeof encodeEventRows>[2][number];

/** A generated event as validation would accept it (the generator's clocks are right: no skew). */
export const acceptedEvent = (e: TrafficEvent): AcceptedEvent => ({
  eventId: e.eventId,
  eventType: e.eventType,
  sessionId: e.sessionId,
  viewId: e.viewId,
  experimentId: e.experimentId,
  variantKey: e.variantKey,
  goal: e.goal,
  properties: e.properties,
  timestamp: e.timestamp,
  clientTimestamp: e.timestamp,
});

/** The event as a tracking client sends it to `POST /v1/batch`: absent fields left out (the API refuses nulls). */
export function incomingEvent(e: TrafficEvent): Record<string, unknown> {
  const out: Record<string, unknown> = { eventId: e.eventId, eventType: e.eventType, sessionId: e.sessionId };
  if (e.viewId !== null) out.viewId = e.viewId;
  if (e.experimentId !== null) out.experimentId = e.experimentId;
  if (e.variantKey !== null) out.variantKey = e.variantKey;
  if (e.goal !== null) out.goal = e.goal;
  if (e.properties !== null) out.properties = e.properties;
  out.timestamp = e.timestamp;
  return out;
}

// ---------------------------------------------------------------------------
// COPY through psql: the fastest way in, and the root workspace has no COPY client.
// ---------------------------------------------------------------------------

/** Escapes what COPY's text format gives a meaning to: backslash, tab and line breaks. */
export function copyText(value: string | null): string {
  if (value === null) return '\\N';
  return /[\\\t\n\r]/.test(value) ? value.replace(/[\\\t\n\r]/g, (c) => ({ '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' })[c]!) : value;
}

/** How a generated event becomes a COPY row: Tally's `analytics_events`, or the seed's (bench/seed-schema.ts). */
export type RowFormat = 'tally' | 'seed';

/** The COPY text of one lane: chunk c goes to lane c mod lanes, so lanes write neighbouring days side by side. */
export function* laneText(options: TrafficOptions, lanes: number, lane: number, row: (event: TrafficEvent) => string): Generator<string> {
  const chunks = chunkCount(options);
  for (let c = lane; c < chunks; c += lanes) {
    let out = '';
    for (const event of trafficChunk(options, c)) out += row(event);
    if (lane === 0 && (c / lanes + 1) % 20 < 1) process.stderr.write(`[generate] chunk ${c + 1}/${chunks}\n`);
    yield out;
  }
}

/** The options as the generator process reads them. */
export const trafficArgs = (options: TrafficOptions) => [
  '--events', String(options.events), '--seed', String(options.seed), '--days', String(options.days),
  '--end-ms', String(options.endMs), '--chunk-events', String(options.chunkEvents),
];

/**
 * bench/generator-process.ts run as a process of its own. Generating is CPU work in
 * long synchronous stretches; done in the scenario's own process, it would keep that
 * process from answering a signal in time (tsx kills a child that does not
 * acknowledge SIGINT within ~60 ms), and so from removing its databases.
 */
function generatorProcess(args: string[]) {
  const here = dirname(fileURLToPath(import.meta.url));
  const child = spawn(join(here, '..', 'node_modules', '.bin', 'tsx'), [join(here, 'generator-process.ts'), ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => (code === 0 ? resolve() : reject(new Error(`the generator exited with ${code ?? signal}`))));
  });
  return { stdout: child.stdout, exited };
}

/**
 * Loads the traffic with one `COPY … FROM STDIN` per lane: a generator process
 * piped into a psql process. Returns the events sent.
 */
export async function copyTraffic(
  url: string,
  copyStatement: string,
  options: TrafficOptions,
  lanes: number,
  format: RowFormat,
  projectId: string,
): Promise<number> {
  const used = Math.min(lanes, chunkCount(options));
  await Promise.all(
    Array.from({ length: used }, async (_, lane) => {
      const generator = generatorProcess(['--emit', format, '--project-id', projectId, '--lanes', String(used), '--lane', String(lane), ...trafficArgs(options)]);
      await Promise.all([psqlCopy(url, copyStatement, generator.stdout), generator.exited]);
    }),
  );
  // Every chunk holds exactly its share: the callers check the count where it matters.
  return options.events;
}

/** `COPY … FROM STDIN` of a file written beforehand: nothing but Postgres and psql at work while it runs. */
export function psqlCopyFile(url: string, statement: string, path: string): Promise<void> {
  return psqlCopy(url, statement, createReadStream(path, { highWaterMark: 1 << 20 }));
}

async function psqlCopy(url: string, statement: string, rows: Readable): Promise<void> {
  const child = spawn('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', url, '-c', statement], {
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', resolve);
  });
  try {
    await pipeline(rows, child.stdin);
  } catch (error) {
    child.kill();
    await exited.catch(() => undefined);
    throw new Error(`COPY failed: ${String(error)}\n${stderr}`);
  }
  const code = await exited;
  if (code !== 0) throw new Error(`psql COPY exited with ${code}: ${stderr}`);
}

// ---------------------------------------------------------------------------
// Into Tally.
// ---------------------------------------------------------------------------

export const TALLY_COPY = `COPY analytics_events (project_id, event_id, event_type, session_id, view_id, experiment_id,
  variant_key, goal, properties, event_time, client_time, received_at) FROM STDIN`;

export function tallyRow(projectId: string) {
  return (e: TrafficEvent): string => {
    const at = new Date(e.timestamp).toISOString();
    const received = new Date(e.timestamp + 180).toISOString();
    const properties = e.properties === null ? null : JSON.stringify(e.properties);
    return `${projectId}\t${e.eventId}\t${e.eventType}\t${e.sessionId}\t${copyText(e.viewId)}\t${copyText(e.experimentId)}\t` +
      `${copyText(e.variantKey)}\t${copyText(e.goal)}\t${copyText(properties)}\t${at}\t${at}\t${received}\n`;
  };
}

export interface TallyLoad {
  projectId: string;
  readKey: string;
  events: number;
  partitions: number;
  copySeconds: number;
  analyzeSeconds: number;
  rollupSeconds: number;
  rollupWindows: number;
  /** Milliseconds per rollup window, in order: does a window cost more as summaries grow? */
  windowMs: number[];
  vacuumSeconds: number;
  /** analytics_events with its indexes, bytes. */
  rawBytes: number;
  /** experiment_* tables with their indexes, bytes. */
  summaryBytes: number;
}

const seconds = (since: number) => (performance.now() - since) / 1000;

/**
 * Daily partitions for the whole range of the traffic (sessions started near the
 * end run on for a few hours, so one day more), as the worker's maintenance keeps
 * them for live traffic: no event lands in the default partition. Returns how many
 * were made.
 */
export async function ensureTrafficPartitions(db: Database, options: TrafficOptions): Promise<number> {
  const firstDay = new Date(options.endMs - options.days * 86_400_000).toISOString().slice(0, 10);
  const lastDay = new Date(options.endMs + 86_400_000).toISOString().slice(0, 10);
  const { rows } = await db.$client.query<{ made: number }>('SELECT tally_ensure_partitions($1::date, $2::date) AS made', [firstDay, lastDay]);
  return rows[0]!.made;
}

export interface TrafficFiles {
  /** One `POST /v1/batch` body per line, in time order. */
  bodies: string;
  batches: number;
  /** COPY text for Tally's `analytics_events` (TALLY_COPY), one file per lane. */
  copies: string[];
  events: number;
  bodyBytes: number;
}

/**
 * Writes the traffic out once, before anything is timed: as HTTP batch bodies of
 * `batchEvents` events (no `sentAt`, so the stored event time is the timestamp, as
 * in the COPY text) and as COPY text for `projectId`, split over `lanes` files as
 * `copyTraffic` splits it. The HTTP client and the COPY then only read files.
 */
export async function writeTrafficFiles(
  dir: string,
  options: TrafficOptions,
  { batchEvents, lanes, projectId }: { batchEvents: number; lanes: number; projectId: string },
): Promise<TrafficFiles> {
  const generator = generatorProcess(['--write-files', dir, '--batch', String(batchEvents), '--lanes', String(lanes), '--project-id', projectId, ...trafficArgs(options)]);
  let out = '';
  generator.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  await generator.exited;
  return JSON.parse(out) as TrafficFiles;
}

/**
 * The traffic in batches of `batchEvents`, in time order: events left over from a
 * chunk join the next one's first batch, so every batch is full but the last.
 * `onChunk` sees each chunk as it is made, before its events are batched.
 */
export function* trafficBatches(
  options: TrafficOptions,
  batchEvents: number,
  onChunk?: (chunk: TrafficEvent[], index: number) => void,
): Generator<TrafficEvent[]> {
  let pending: TrafficEvent[] = [];
  for (let c = 0; c < chunkCount(options); c++) {
    const chunk = trafficChunk(options, c);
    onChunk?.(chunk, c);
    pending = pending.length === 0 ? chunk : pending.concat(chunk);
    let start = 0;
    for (; pending.length - start >= batchEvents; start += batchEvents) yield pending.slice(start, start + batchEvents);
    pending = pending.slice(start);
  }
  if (pending.length > 0) yield pending;
}

/** writeTrafficFiles' work, in the generator process. */
export function writeTrafficFilesNow(
  dir: string,
  options: TrafficOptions,
  { batchEvents, lanes, projectId }: { batchEvents: number; lanes: number; projectId: string },
): TrafficFiles {
  const chunks = chunkCount(options);
  const bodies = join(dir, 'bodies.jsonl');
  const copies = Array.from({ length: Math.min(lanes, chunks) }, (_, lane) => join(dir, `copy-${lane}.tsv`));
  const bodyFd = openSync(bodies, 'w');
  const copyFds = copies.map((path) => openSync(path, 'w'));
  const row = tallyRow(projectId);
  let events = 0;
  let batches = 0;
  let bodyBytes = 0;
  try {
    const writeCopyText = (chunk: TrafficEvent[], c: number) => {
      events += chunk.length;
      let text = '';
      for (const event of chunk) text += row(event);
      writeSync(copyFds[c % copyFds.length]!, text);
      if ((c + 1) % 20 === 0 || c === chunks - 1) process.stderr.write(`[generate] ${c + 1}/${chunks} chunks written\n`);
    };
    for (const batch of trafficBatches(options, batchEvents, writeCopyText)) {
      const line = `${JSON.stringify({ events: batch.map(incomingEvent) })}\n`;
      bodyBytes += Buffer.byteLength(line);
      writeSync(bodyFd, line);
      batches += 1;
    }
  } finally {
    closeSync(bodyFd);
    for (const fd of copyFds) closeSync(fd);
  }
  return { bodies, batches, copies, events, bodyBytes };
}

/**
 * Loads the traffic into a migrated Tally database (a project of its own, daily
 * partitions for the whole range made first), then rolls everything up, as the
 * worker's rollup job would, in windows of `windowEvents`, and vacuums so that
 * autovacuum does not run during measurements. With `analyze: false` the rollup
 * runs before the events have statistics, as on a partition autovacuum has not
 * reached yet.
 */
export async function loadTally(
  database: { db: Database; url: string },
  options: TrafficOptions,
  {
    lanes = 2,
    log = (_: string) => {},
    rollup = true,
    analyze = true,
    windowEvents,
  }: { lanes?: number; log?: (line: string) => void; rollup?: boolean; analyze?: boolean; windowEvents?: number } = {},
): Promise<TallyLoad> {
  const { db } = database;
  const keys = await createProject(db, 'bench-traffic');
  const partitions = await ensureTrafficPartitions(db, options);

  let t = performance.now();
  log(`tally: COPY of ${fmt(options.events)} events`);
  const events = await copyTraffic(database.url, TALLY_COPY, options, lanes, 'tally', keys.projectId);
  const copySeconds = seconds(t);
  const { rows: defaults } = await db.$client.query<{ n: string }>('SELECT count(*) AS n FROM analytics_events_default');
  if (Number(defaults[0]!.n) !== 0) throw new Error(`${defaults[0]!.n} events landed in the default partition`);

  t = performance.now();
  if (analyze) await db.$client.query('ANALYZE analytics_events');
  const analyzeSeconds = seconds(t);

  t = performance.now();
  const windowMs: number[] = [];
  let windowStarted = performance.now();
  // Without the rollup (an export reads raw events only), the summaries stay empty.
  const progress = rollup
    ? await rollUpPending(db, {
        windowEvents,
        onWindow: (run, window) => {
          windowMs.push(performance.now() - windowStarted);
          windowStarted = performance.now();
          log(`tally: rollup window ${window} (${run.events} events) in ${Math.round(windowMs.at(-1)!)} ms`);
        },
      })
    : { events, caughtUp: true, windows: 0 };
  const rollupSeconds = seconds(t);
  if (!progress.caughtUp || progress.events !== events) {
    throw new Error(`rollup folded ${progress.events} of ${events} events (caught up: ${progress.caughtUp})`);
  }

  t = performance.now();
  await db.$client.query('VACUUM ANALYZE analytics_events');
  await db.$client.query('VACUUM ANALYZE experiment_sessions, experiment_session_goals, experiment_variant_totals, experiment_cohorts, experiment_totals');
  const vacuumSeconds = seconds(t);

  const { rows: sizes } = await db.$client.query<{ raw: string; summaries: string }>(`
    SELECT (SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits WHERE inhparent = 'analytics_events'::regclass) AS raw,
      (SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c
       WHERE c.relkind = 'r' AND c.relname LIKE 'experiment\\_%' AND c.relnamespace = 'public'::regnamespace) AS summaries`);
  return {
    projectId: keys.projectId,
    readKey: keys.readKey,
    events,
    partitions,
    copySeconds,
    analyzeSeconds,
    rollupSeconds,
    rollupWindows: progress.windows,
    windowMs,
    vacuumSeconds,
    rawBytes: Number(sizes[0]!.raw),
    summaryBytes: Number(sizes[0]!.summaries),
  };
}

// ---------------------------------------------------------------------------
// On its own: load, roll up, check, report, drop.
// ---------------------------------------------------------------------------

export const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
export const mb = (bytes: number) => `${fmt(bytes / 2 ** 20)} MB`;

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values: args } = parseArgs({
    options: {
      events: { type: 'string', default: '1000000' },
      seed: { type: 'string', default: String(DEFAULT_TRAFFIC.seed) },
      lanes: { type: 'string', default: '2' },
    },
  });
  const options: TrafficOptions = { ...DEFAULT_TRAFFIC, events: Number(args.events), seed: Number(args.seed) };
  await runScenario(() => checkLoad(options, Number(args.lanes)));
}

/** On its own: load a fresh database, roll up, compare every experiment's summaries with the raw SQL, report. */
async function checkLoad(options: TrafficOptions, lanes: number): Promise<void> {
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const database = await acquire(createTestDatabase(), (d) => d.drop());
  {
    log(`database ${database.name}`);
    const load = await loadTally(database, options, { lanes, log });
    const checks: string[] = [];
    for (const experiment of EXPERIMENTS) {
      const raw = await rawExperimentResults(database.db, load.projectId, experiment.id);
      const { rows } = await database.db.$client.query<{ variant_key: string; sessions: string; converted_sessions: string; pageviews: string }>(
        `SELECT variant_key, sessions, converted_sessions, pageviews FROM experiment_variant_totals
         WHERE project_id = $1 AND experiment_id = $2 AND goal = '' AND sessions > 0 ORDER BY variant_key COLLATE "C"`,
        [load.projectId, experiment.id],
      );
      const summary = rows.map((r) => `${r.variant_key}:${r.sessions}/${r.converted_sessions}/${r.pageviews}`).join(' ');
      const oracle = (raw?.variants ?? [])
        .sort((a, b) => (a.variantKey < b.variantKey ? -1 : 1))
        .map((v) => `${v.variantKey}:${v.sessions}/${v.convertedSessions}/${v.pageviews}`)
        .join(' ');
      checks.push(`${experiment.id}: ${summary === oracle ? 'summaries = raw SQL' : `MISMATCH summaries ${summary} raw ${oracle}`} (excluded ${raw?.excludedSessions})`);
    }
    console.log(`\`pnpm exec tsx bench/generate.ts --events ${options.events} --seed ${options.seed} --lanes ${lanes}\`

${fmt(load.events)} events, ${load.partitions} daily partitions made: COPY ${fmt(load.copySeconds, 1)} s (${fmt(load.events / load.copySeconds)} events/s), ` +
      `ANALYZE ${fmt(load.analyzeSeconds, 1)} s, rollup ${fmt(load.rollupSeconds, 1)} s in ${load.rollupWindows} windows ` +
      `(${fmt(load.events / load.rollupSeconds)} events/s; window ms first ${fmt(load.windowMs[0] ?? 0)}, last ${fmt(load.windowMs.at(-1) ?? 0)}), ` +
      `VACUUM ANALYZE ${fmt(load.vacuumSeconds, 1)} s. Raw events ${mb(load.rawBytes)}, summaries ${mb(load.summaryBytes)}.

${checks.map((c) => `- ${c}`).join('\n')}`);
  }
}
