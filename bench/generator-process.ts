/**
 * The generator process (see `generatorProcess` in bench/generate.ts): the traffic's
 * CPU-heavy generation, away from the scenario's process. Two modes:
 *
 *   --emit tally|seed --lanes N --lane I --project-id ID <traffic options>
 *       one lane's COPY text on stdout, for Tally's table or the seed's
 *   --write-files DIR --batch B --lanes N --project-id ID <traffic options>
 *       HTTP batch bodies and Tally COPY text into DIR; a JSON summary on stdout
 *
 * A separate entry point, so that generate.ts and seed-schema.ts (which imports
 * generate.ts) are both plain imports here.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { laneText, tallyRow, writeTrafficFilesNow, type TrafficOptions } from './generate.js';
import { seedRow } from './seed-schema.js';

const { values: args } = parseArgs({
  options: {
    events: { type: 'string' },
    seed: { type: 'string' },
    days: { type: 'string' },
    'end-ms': { type: 'string' },
    'chunk-events': { type: 'string' },
    emit: { type: 'string' },
    lanes: { type: 'string', default: '1' },
    lane: { type: 'string', default: '0' },
    'project-id': { type: 'string' },
    'write-files': { type: 'string' },
    batch: { type: 'string' },
  },
});
const options: TrafficOptions = {
  events: Number(args.events),
  seed: Number(args.seed),
  days: Number(args.days),
  endMs: Number(args['end-ms']),
  chunkEvents: Number(args['chunk-events']),
};
const projectId = args['project-id']!;

if (args.emit !== undefined) {
  const row = args.emit === 'seed' ? seedRow(projectId) : tallyRow(projectId);
  try {
    await pipeline(Readable.from(laneText(options, Number(args.lanes), Number(args.lane), row)), process.stdout);
  } catch (error) {
    // psql went away (its COPY failed, or the scenario was interrupted): it says why, not this process.
    if ((error as NodeJS.ErrnoException).code !== 'EPIPE') throw error;
    process.exitCode = 1;
  }
} else if (args['write-files'] !== undefined) {
  const files = writeTrafficFilesNow(args['write-files'], options, { batchEvents: Number(args.batch), lanes: Number(args.lanes), projectId });
  process.stdout.write(JSON.stringify(files));
} else {
  throw new Error('--emit or --write-files');
}
