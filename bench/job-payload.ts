/**
 * The CPU a batch costs the ingest API and the worker between validation and
 * COPY, by the form its job takes in Redis:
 *
 *   events  the accepted events as JSON (the form before rows): the API's queue
 *           serializes them; the worker parses them, checks each against the payload
 *           schema and encodes the rows;
 *   rows    the rows encoded once by the API (`encodeEventRows`) inside the job: the
 *           worker parses one string and checks the payload;
 *   bytes   the rows as UTF-8 bytes (`encodeEventRowBytes`) beside a job that holds
 *           only their id (the form the apps use): the job's JSON is a few dozen
 *           bytes, and the rows go to Redis and to COPY as they are (the round trips
 *           to Redis are not part of this measure).
 *
 * All start from the same accepted events (the generated traffic of the other
 * scenarios, in batches of `--size`), after validation, which is the same for both.
 * Each side runs as the apps run it: `JSON.stringify` of the job data is what BullMQ
 * does on `Queue.add`, `JSON.parse` what it does when the worker takes the job, and
 * the check is the worker's own processor. Also: the job's size in Redis (with its rows), and what
 * the rows cost with COPY's default tab delimiter, which JSON escapes.
 *
 *   pnpm exec tsx bench/job-payload.ts [--batches 100] [--size 2000] [--rounds 7]
 *
 * Pure CPU, one process, no server; prints a markdown section on stdout. Medians of
 * the rounds, in ms per 1,000 events; a round is every batch once, garbage collection
 * included.
 */
import type { Job } from 'bullmq';
import { parseArgs } from 'node:util';
import { randomUUID } from 'node:crypto';
import { encodeEventRowBytes, encodeEventRows, ROW_DELIMITER } from '@tally/db';
import { createProcessor } from '../apps/worker/src/processor.js';
import type { JobHandlers } from '../apps/worker/src/handlers.js';
import { DEFAULT_TRAFFIC, acceptedEvent, fmt, trafficChunk, type AcceptedEvent } from './generate.js';
import { exactPercentile } from './stats.js';

const { values: args } = parseArgs({
  options: {
    batches: { type: 'string', default: '100' },
    size: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '7' },
  },
});
const BATCHES = Number(args.batches);
const SIZE = Number(args.size);
const ROUNDS = Number(args.rounds);

const PROJECT = '6f1c2a9e-3b7d-4e52-9a10-2c8d4f6b7e31';

const traffic = { ...DEFAULT_TRAFFIC, events: BATCHES * SIZE, chunkEvents: SIZE };
const batches = Array.from({ length: BATCHES }, (_, i) => trafficChunk(traffic, i).map(acceptedEvent));
const receivedAt = Date.now();

// The worker's processor, with a handler that does what the real one does before COPY.
const stored = { rows: 0 };
const rowsBeside = new Map<string, Buffer>();
const unused = () => Promise.reject(new Error('not measured'));
const handlers: JobHandlers = {
  'ingest-batch': async (payload) => {
    stored.rows += (
      'rows' in payload
        ? payload.rows
        : 'events' in payload
          ? encodeEventRows(payload.projectId, payload.receivedAt, payload.events)
          : rowsBeside.get(payload.rowsId)!
    ).length;
    return { inserted: 0, duplicates: 0 };
  },
  'maintain-partitions': unused,
  rollup: unused,
};
const processJob = createProcessor('ingest', handlers);
const take = (json: string) => processJob({ name: 'ingest-batch', data: JSON.parse(json) as unknown } as Job);

const forms = {
  events: (events: AcceptedEvent[]) => JSON.stringify({ projectId: PROJECT, receivedAt, events }),
  rows: (events: AcceptedEvent[]) =>
    JSON.stringify({ projectId: PROJECT, receivedAt, count: events.length, rows: encodeEventRows(PROJECT, receivedAt, events) }),
  bytes: (events: AcceptedEvent[]) => {
    const rowsId = randomUUID();
    rowsBeside.set(rowsId, encodeEventRowBytes(PROJECT, receivedAt, events));
    return JSON.stringify({ projectId: PROJECT, receivedAt, count: events.length, rowsId });
  },
};

function time(run: () => void): number {
  const started = performance.now();
  run();
  return ((performance.now() - started) / (BATCHES * SIZE)) * 1000;
}

async function timeAsync(run: () => Promise<void>): Promise<number> {
  const started = performance.now();
  await run();
  return ((performance.now() - started) / (BATCHES * SIZE)) * 1000;
}

const results: Record<string, { api: number[]; worker: number[]; bytes: number }> = {};
for (let round = 0; round < ROUNDS + 1; round++) {
  for (const [name, form] of Object.entries(forms)) {
    let jobs: string[] = [];
    rowsBeside.clear();
    const api = time(() => {
      jobs = batches.map(form);
    });
    const worker = await timeAsync(async () => {
      for (const json of jobs) await take(json);
    });
    // Round 0 warms up.
    if (round === 0) continue;
    const besideBytes = [...rowsBeside.values()].reduce((sum, rows) => sum + rows.length, 0);
    const jobBytes = jobs.reduce((sum, job) => sum + Buffer.byteLength(job), 0);
    const entry = (results[name] ??= { api: [], worker: [], bytes: jobBytes + besideBytes });
    entry.api.push(api);
    entry.worker.push(worker);
  }
}

// The delimiter: JSON.stringify of the same rows, separated by `|` and by tabs.
const piped = batches.map((events) => encodeEventRows(PROJECT, receivedAt, events));
const tabbed = piped.map((rows) => rows.replaceAll(ROW_DELIMITER, '\t'));
const stringify = { [`\`${ROW_DELIMITER}\``]: [] as number[], tab: [] as number[] };
for (let round = 0; round < ROUNDS; round++) {
  stringify[`\`${ROW_DELIMITER}\``]!.push(time(() => piped.forEach((rows) => JSON.stringify({ rows }))));
  stringify.tab.push(time(() => tabbed.forEach((rows) => JSON.stringify({ rows }))));
}

const ms = (samples: number[]) => fmt(exactPercentile(samples, 50), 2);
console.log(`### Job payload: events as JSON, rows inside the job, rows beside it as bytes

\`pnpm exec tsx bench/job-payload.ts --batches ${BATCHES} --size ${SIZE} --rounds ${ROUNDS}\`

${fmt(BATCHES)} batches of ${fmt(SIZE)} generated events, from accepted events to what COPY is sent; ms per 1,000 events, median of ${ROUNDS} rounds (one process, Node ${process.version}).

| job form | ingest API: job data serialized | worker: job parsed, checked, rows ready | both | job size per event |
|---|---|---|---|---|
${Object.entries(results)
  .map(([name, r]) => `| ${name} | ${ms(r.api)} | ${ms(r.worker)} | ${fmt(exactPercentile(r.api, 50) + exactPercentile(r.worker, 50), 2)} | ${fmt(r.bytes / (BATCHES * SIZE))} bytes |`)
  .join('\n')}

JSON.stringify of the rows alone, ms per 1,000 events: ${Object.entries(stringify).map(([name, samples]) => `${name}-separated ${ms(samples)}`).join(', ')}.
`);
