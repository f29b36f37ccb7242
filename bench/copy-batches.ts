/**
 * Does storing a batch at a time cost Postgres more than one bulk COPY? The ingest
 * throughput scenario sets the pipeline against COPY of the whole traffic; this
 * takes the pipeline's other parts away and keeps only its inserts:
 *
 *   bulk     the ceiling's COPY: the traffic's COPY text, one psql per lane (`--lanes`)
 *   batches  the worker's insert (`insertEventRows`) of batches of `--batch` events,
 *            encoded as the ingest API encodes them, over `--connections` at once,
 *            each batch its own statement and transaction, as each ingest job is
 *
 * Each into a fresh Tally database (same partitions), after a CHECKPOINT; rounds
 * alternate the order. Reported: wall time and the CPU of the database's backends
 * (sampled every 100 ms), per 1,000 events.
 *
 *   pnpm exec tsx bench/copy-batches.ts [--events 1000000] [--batch 2000] [--connections 4] [--lanes 2] [--rounds 2]
 *
 * At most 5 connections (the test database's pool). Makes its databases and files
 * and removes them; prints a markdown section on stdout.
 */
import { parseArgs } from 'node:util';
import { createProject, encodeEventRows, insertEventRows } from '@tally/db';
import { createTestDatabase } from '@tally/testing';
import {
  DEFAULT_TRAFFIC,
  TALLY_COPY,
  acceptedEvent,
  ensureTrafficPartitions,
  fmt,
  psqlCopyFile,
  trafficBatches,
  writeTrafficFiles,
  type TrafficOptions,
} from './generate.js';
import { BackendCpu, acquire, logger, ownedTempDir, runScenario } from './harness.js';

const { values: args } = parseArgs({
  options: {
    events: { type: 'string', default: '1000000' },
    batch: { type: 'string', default: '2000' },
    connections: { type: 'string', default: '4' },
    lanes: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '2' },
  },
});
const EVENTS = Number(args.events);
const BATCH = Number(args.batch);
const CONNECTIONS = Number(args.connections);
const LANES = Number(args.lanes);
const ROUNDS = Number(args.rounds);
const log = logger('copy-batches');
// The test database's pool holds five connections.
if (CONNECTIONS > 5) throw new Error('--connections: at most 5');

// One day of traffic ending six hours ago, as in the ingest throughput scenario.
const endMs = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 6 * 3_600_000;
const traffic: TrafficOptions = { ...DEFAULT_TRAFFIC, events: EVENTS, days: 1, endMs };

type Way = 'bulk' | 'batches';
interface Measured {
  way: Way;
  seconds: number;
  backendCpu: number;
}

/** The traffic as the worker receives it: rows of `BATCH` events each, encoded for `projectId`. */
function encodedBatches(projectId: string): { rows: string; count: number }[] {
  const receivedAt = Date.now();
  return Array.from(trafficBatches(traffic, BATCH), (batch) => ({
    rows: encodeEventRows(projectId, receivedAt, batch.map(acceptedEvent)),
    count: batch.length,
  }));
}

async function measure(way: Way): Promise<Measured> {
  const database = await acquire(createTestDatabase(), (d) => d.drop());
  const { projectId } = await createProject(database.db, `bench-copy-${way}`);
  await ensureTrafficPartitions(database.db, traffic);
  // Everything is written out or encoded before the clock starts.
  let insert: () => Promise<unknown>;
  if (way === 'bulk') {
    const files = await writeTrafficFiles(ownedTempDir('tally-bench-copy-'), traffic, { batchEvents: BATCH, lanes: LANES, projectId });
    insert = () => Promise.all(files.copies.map((path) => psqlCopyFile(database.url, TALLY_COPY, path)));
  } else {
    const batches = encodedBatches(projectId);
    let next = 0;
    const connection = async () => {
      while (next < batches.length) {
        const { rows, count } = batches[next++]!;
        await insertEventRows(database.db, rows, count);
      }
    };
    insert = () => Promise.all(Array.from({ length: CONNECTIONS }, connection));
  }
  await database.db.$client.query('CHECKPOINT');
  const backends = new BackendCpu((sql) => database.db.$client.query(sql), database.name);
  await backends.reset();
  backends.sampleEvery(100);
  const started = performance.now();
  await insert();
  const seconds = (performance.now() - started) / 1000;
  await backends.stop();
  const { rows } = await database.db.$client.query<{ n: string }>('SELECT count(*) AS n FROM analytics_events');
  if (Number(rows[0]!.n) !== EVENTS) throw new Error(`${way}: ${rows[0]!.n} rows stored of ${EVENTS}`);
  // Dropped now, for its disk space; the cleanup's drop then finds nothing to do.
  await database.drop();
  log(`${way}: ${fmt(seconds, 1)} s`);
  return { way, seconds, backendCpu: backends.total() };
}

await runScenario(async () => {
  const results: Measured[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const order: Way[] = round % 2 === 0 ? ['bulk', 'batches'] : ['batches', 'bulk'];
    for (const way of order) results.push(await measure(way));
  }
  const label: Record<Way, string> = {
    bulk: `bulk COPY, ${LANES} psql`,
    batches: `batches of ${fmt(BATCH)} (insertEventRows), ${CONNECTIONS} connections`,
  };
  const lines = [
    `### Inserts alone: batches against one bulk COPY`,
    '',
    `\`pnpm exec tsx bench/copy-batches.ts --events ${EVENTS} --batch ${BATCH} --connections ${CONNECTIONS} --lanes ${LANES} --rounds ${ROUNDS}\``,
    '',
    '| round | way | seconds | events/s | Postgres backend CPU per 1,000 events |',
    '|---|---|---|---|---|',
    ...results.map(
      (r, i) =>
        `| ${Math.floor(i / 2) + 1} | ${label[r.way]} | ${fmt(r.seconds, 1)} | ${fmt(EVENTS / r.seconds)} | ${fmt((1000 * r.backendCpu) / (EVENTS / 1000), 1)} ms |`,
    ),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
});
