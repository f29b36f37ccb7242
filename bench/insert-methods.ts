/**
 * How should the worker bulk-insert an ingest batch? Compares, on the real
 * partitioned `analytics_events` table:
 *
 *   unnest  one `INSERT … SELECT FROM unnest($arrays) ON CONFLICT DO NOTHING`
 *   copy    `COPY` into a temporary staging table, then
 *           `INSERT … SELECT FROM staging ON CONFLICT DO NOTHING`, in one transaction
 *
 * Batches are realistic (small `properties`, the three event types, times spread
 * over the last day) and some are sent again, whole or half, as retries are, so
 * conflicts are exercised. Every round starts from an empty table. Two measures:
 *
 *   paired      one connection, each batch through both methods back to back, in
 *               alternating order: cost per batch, robust to a machine's other load
 *   concurrent  each method alone over `--lanes` connections (a worker's
 *               concurrency), rounds alternating the order: throughput
 *
 *   pnpm exec tsx bench/insert-methods.ts [--batches 200] [--size 2500] [--rounds 3] [--lanes 4]
 *
 * Creates a database of its own and drops it at the end.
 */
import { parseArgs } from 'node:util';
import { createProject, encodeEventRows, insertEvents, insertRowsByCopy, insertRowsByUnnest, type Database } from '@tally/db';
import { createTestDatabase, seededRandom } from '@tally/testing';

const { values: args } = parseArgs({
  options: {
    batches: { type: 'string', default: '200' },
    size: { type: 'string', default: '2500' },
    rounds: { type: 'string', default: '3' },
    lanes: { type: 'string', default: '4' },
  },
});
const BATCHES = Number(args.batches);
const SIZE = Number(args.size);
const ROUNDS = Number(args.rounds);
const LANES = args.lanes.split(',').map(Number);

// The root workspace depends on @tally/db only; the event type comes through it.
type StoredEvent = Parameters<typeof insertEvents>[3][number];
type InsertMethod = (db: Database, projectId: string, receivedAt: number, events: readonly StoredEvent[]) => Promise<number>;

// ---------------------------------------------------------------------------
// The two methods, both in packages/db: `insertEventRows` picks one by batch size
// (COPY_FROM_EVENTS), from what this measures. Each is timed from the events,
// encoded as the ingest API encodes them (the worker gets them so).
// ---------------------------------------------------------------------------

const METHODS: Record<string, InsertMethod> = {
  unnest: (db, projectId, receivedAt, events) => insertRowsByUnnest(db, encodeEventRows(projectId, receivedAt, events)),
  copy: (db, projectId, receivedAt, events) => insertRowsByCopy(db, encodeEventRows(projectId, receivedAt, events)),
};

// ---------------------------------------------------------------------------
// Workload.
// ---------------------------------------------------------------------------


const hex = (next: () => number, length: number) => {
  let out = '';
  while (out.length < length) out += Math.floor(next() * 0x100000000).toString(16).padStart(8, '0');
  return out.slice(0, length);
};
const uuid = (next: () => number) => {
  const h = hex(next, 32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20)}`;
};

const NOW = Date.now();
const PATHS = ['/', '/cart', '/checkout', '/product/42', '/search?q=shoes', '/account'];
const EXPERIMENTS = ['checkout-button', 'pricing-page', 'onboarding-flow', 'search-ranking', 'hero-image'];
const GOALS = ['purchase', 'signup', 'add-to-cart'];

/** Fresh events of batch `index`: one batch is one client flush, mostly a few sessions' pageviews. */
function freshBatch(index: number): StoredEvent[] {
  const next = seededRandom(index + 1);
  const sessions = Array.from({ length: 50 }, () => `s-${hex(next, 16)}`);
  return Array.from({ length: SIZE }, (): StoredEvent => {
    const sessionId = sessions[Math.floor(next() * sessions.length)]!;
    const clientTimestamp = NOW - Math.floor(next() * 20 * 3_600_000);
    const base = { eventId: uuid(next), sessionId, viewId: null, experimentId: null, variantKey: null, goal: null };
    const roll = next();
    const times = { timestamp: clientTimestamp + 150, clientTimestamp };
    if (roll < 0.6) {
      return {
        ...base, eventType: 'PAGEVIEW', viewId: `v-${hex(next, 12)}`,
        properties: { path: PATHS[Math.floor(next() * PATHS.length)]!, referrer: 'https://example.com/', width: 1280 },
        ...times,
      };
    }
    if (roll < 0.85) {
      return {
        ...base, eventType: 'EXPOSURE', experimentId: EXPERIMENTS[Math.floor(next() * EXPERIMENTS.length)]!,
        variantKey: next() < 0.5 ? 'control' : 'treatment', properties: null, ...times,
      };
    }
    return {
      ...base, eventType: 'CONVERSION', goal: GOALS[Math.floor(next() * GOALS.length)]!,
      properties: { value: Math.round(next() * 10_000) / 100, currency: 'EUR' }, ...times,
    };
  });
}

/**
 * Batch `index` of a run: every tenth is an earlier batch sent again (a retried
 * job), and every tenth-plus-five half the previous batch, half new events.
 */
function batch(index: number): StoredEvent[] {
  if (index % 10 === 9) return freshBatch(index - 7);
  if (index % 10 === 4) {
    const half = Math.floor(SIZE / 2);
    return [...freshBatch(index - 1).slice(0, half), ...freshBatch(index).slice(half)];
  }
  return freshBatch(index);
}

function expectedRowCount(): number {
  let rows = 0;
  for (let i = 0; i < BATCHES; i++) {
    if (i % 10 === 9) continue;
    rows += i % 10 === 4 ? SIZE - Math.floor(SIZE / 2) : SIZE;
  }
  return rows;
}
const expectedRows = expectedRowCount();

// ---------------------------------------------------------------------------
// Measurement.
// ---------------------------------------------------------------------------

interface Stats {
  method: string;
  /** Time spent in this method's inserts. */
  seconds: number;
  eventsPerSecond: number;
  msPerBatch: { mean: number; p50: number; p95: number };
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

function stats(method: string, durations: number[], seconds: number): Stats {
  const sorted = [...durations].sort((a, b) => a - b);
  return {
    method,
    seconds,
    eventsPerSecond: (durations.length * SIZE) / seconds,
    msPerBatch: {
      mean: sorted.reduce((a, b) => a + b, 0) / sorted.length,
      p50: quantile(sorted, 0.5),
      p95: quantile(sorted, 0.95),
    },
  };
}

async function freshTable(db: Database): Promise<void> {
  await db.$client.query('TRUNCATE analytics_events');
  await db.$client.query('VACUUM ANALYZE analytics_events');
}

/** Every method stored every unique event of its project once, and said so. */
async function verify(db: Database, method: string, projectId: string, inserted: number): Promise<void> {
  const { rows } = await db.$client.query<{ n: string }>('SELECT count(*) AS n FROM analytics_events WHERE project_id = $1', [projectId]);
  if (Number(rows[0]!.n) !== expectedRows || inserted !== expectedRows) {
    throw new Error(`${method}: ${rows[0]!.n} rows and ${inserted} reported inserted, expected ${expectedRows}`);
  }
}

/**
 * One connection; every batch goes through both methods back to back (each into
 * its own project, in alternating order), so both see the same table size and the
 * same moment's machine load. The fairest comparison on a machine doing other work.
 */
async function pairedRound(db: Database, projects: Record<string, string>, round: number): Promise<Stats[]> {
  await freshTable(db);
  const methods = Object.keys(METHODS);
  const durations = Object.fromEntries(methods.map((m) => [m, [] as number[]]));
  const inserted = Object.fromEntries(methods.map((m) => [m, 0]));
  for (let i = 0; i < BATCHES; i++) {
    const events = batch(i);
    for (const method of (i + round) % 2 === 0 ? methods : [...methods].reverse()) {
      const t0 = performance.now();
      inserted[method]! += await METHODS[method]!(db, projects[method]!, NOW, events);
      durations[method]!.push(performance.now() - t0);
    }
  }
  for (const method of methods) await verify(db, method, projects[method]!, inserted[method]!);
  return methods.map((m) => stats(m, durations[m]!, durations[m]!.reduce((a, b) => a + b, 0) / 1000));
}

/** One method alone with `lanes` concurrent connections, as a worker with that concurrency: throughput. */
async function concurrentRun(db: Database, method: string, projectId: string, lanes: number): Promise<Stats> {
  await freshTable(db);
  const insert = METHODS[method]!;
  const batches = Array.from({ length: BATCHES }, (_, i) => batch(i));
  const durations: number[] = [];
  let inserted = 0;
  let nextBatch = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      for (let i = nextBatch++; i < BATCHES; i = nextBatch++) {
        const t0 = performance.now();
        const rows = await insert(db, projectId, NOW, batches[i]!);
        durations.push(performance.now() - t0);
        inserted += rows;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  await verify(db, method, projectId, inserted);
  return stats(method, durations, seconds);
}

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const HEADER = '  round  method   events/s  ms mean   ms p50   ms p95  seconds';
const line = (r: Stats, round: number | string) =>
  `  ${String(round).padEnd(6)} ${r.method.padEnd(7)} ${fmt(r.eventsPerSecond).padStart(9)}  ${fmt(r.msPerBatch.mean, 1).padStart(7)}  ${fmt(
    r.msPerBatch.p50, 1,
  ).padStart(7)}  ${fmt(r.msPerBatch.p95, 1).padStart(7)}  ${fmt(r.seconds, 2).padStart(7)}`;

function printMedians(results: Stats[]): void {
  for (const method of Object.keys(METHODS)) {
    const runs = results.filter((r) => r.method === method);
    const median = (pick: (r: Stats) => number) => runs.map(pick).sort((a, b) => a - b)[Math.floor(runs.length / 2)]!;
    const m = {
      method,
      seconds: median((r) => r.seconds),
      eventsPerSecond: median((r) => r.eventsPerSecond),
      msPerBatch: { mean: median((r) => r.msPerBatch.mean), p50: median((r) => r.msPerBatch.p50), p95: median((r) => r.msPerBatch.p95) },
    };
    console.log(line(m, 'median'));
  }
}

const database = await createTestDatabase();
try {
  const methods = Object.keys(METHODS);
  const projects: Record<string, string> = {};
  for (const method of methods) projects[method] = (await createProject(database.db, `bench-${method}`)).projectId;
  const version = (await database.pool.query<{ server_version: string }>('SHOW server_version')).rows[0]!.server_version;
  console.log(
    `${BATCHES} batches × ${SIZE} events per run (${fmt(BATCHES * SIZE)} offered, ${fmt(expectedRows)} unique), ` +
      `${ROUNDS} rounds; Postgres ${version}, Node ${process.version}`,
  );
  // A short warm-up so that the first measured round does not pay for cold caches and plans.
  for (const method of methods) {
    for (let i = 0; i < 5; i++) await METHODS[method]!(database.db, projects[method]!, NOW, batch(i));
  }

  console.log('\nPaired, one connection: each batch through both methods, alternating which goes first');
  console.log(HEADER);
  const paired: Stats[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const results = await pairedRound(database.db, projects, round);
    paired.push(...results);
    for (const result of results) console.log(line(result, round));
  }
  printMedians(paired);

  for (const lanes of LANES) {
    console.log(`\nConcurrent, ${lanes} connections: each method alone, rounds alternating the order`);
    console.log(HEADER);
    const concurrent: Stats[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      for (const method of round % 2 === 1 ? methods : [...methods].reverse()) {
        const result = await concurrentRun(database.db, method, projects[method]!, lanes);
        concurrent.push(result);
        console.log(line(result, round));
      }
    }
    printMedians(concurrent);
  }
} finally {
  await database.drop();
}
