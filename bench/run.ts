/**
 * `pnpm bench`: runs every scenario, each as its own process (so one scenario's
 * memory or connections never weigh on the next), and writes their sections into
 * BENCHMARKS.md between the results markers, with the machine they ran on. The
 * notes outside the markers (decisions and their figures) are kept as they are.
 *
 *   pnpm bench [--quick] [--out FILE]
 *     --quick: short runs (100k events at most), to check the suite works
 *     --out:   write the updated file there instead of BENCHMARKS.md (the notes are still BENCHMARKS.md's)
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// Positionals allowed: `pnpm bench -- --quick` passes the `--` through.
const { values: options } = parseArgs({ options: { quick: { type: 'boolean', default: false }, out: { type: 'string' } }, allowPositionals: true });
const quick = options.quick || process.argv.includes('--quick');

const scenarios: { title: string; script: string; args: string[]; quickArgs: string[] }[] = [
  { title: 'Freshness', script: 'bench/freshness.ts', args: ['--seconds', '60'], quickArgs: ['--seconds', '10'] },
  {
    title: 'Insert methods: unnest against COPY',
    script: 'bench/insert-methods.ts',
    args: ['--batches', '200', '--size', '2500', '--rounds', '3', '--lanes', '4'],
    quickArgs: ['--batches', '20', '--size', '1000', '--rounds', '1', '--lanes', '2'],
  },
  {
    title: 'Job payload: events as JSON against rows encoded once',
    script: 'bench/job-payload.ts',
    args: ['--batches', '100', '--size', '2000', '--rounds', '7'],
    quickArgs: ['--batches', '10', '--size', '2000', '--rounds', '2'],
  },
  {
    title: 'Rollup: the cost of a window as stored events grow',
    script: 'bench/rollup-windows.ts',
    args: ['--events', '1000000,3000000'],
    quickArgs: ['--events', '100000', '--window', '10000'],
  },
  {
    title: 'Query latency',
    script: 'bench/query-latency.ts',
    args: ['--events', '1000000,10000000', '--requests', '500'],
    quickArgs: ['--events', '100000', '--requests', '100', '--budget', '2'],
  },
  {
    title: 'Ingest throughput',
    script: 'bench/ingest-throughput.ts',
    args: ['--events', '1000000,10000000'],
    quickArgs: ['--events', '100000'],
  },
  {
    title: 'Export',
    script: 'bench/export-memory.ts',
    args: ['--events', '1000000,10000000'],
    quickArgs: ['--events', '100000'],
  },
];

const sections: string[] = [];
for (const { title, script, args, quickArgs } of scenarios) {
  const argv = [script, ...(quick ? quickArgs : args)];
  process.stderr.write(`running ${argv.join(' ')}\n`);
  const output = execFileSync(join(root, 'node_modules', '.bin', 'tsx'), argv, {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
  // A scenario prints markdown with its own heading, or plain text that is kept as is.
  sections.push(output.startsWith('#') ? output : `### ${title}\n\n\`pnpm exec tsx ${argv.join(' ')}\`\n\n\`\`\`\n${output}\n\`\`\``);
  process.stdout.write(`${output}\n`);
}

let postgres = 'unknown';
try {
  postgres = execFileSync('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-tAc', 'SHOW server_version'], { encoding: 'utf8' }).trim();
} catch {
  // Only for the record; the scenarios said what they needed.
}
const machine = `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'CPU'}, ${Math.round(totalmem() / 2 ** 30)} GB, Node ${process.version}, PostgreSQL ${postgres}`;
const results = [
  '<!-- results:start (written by `pnpm bench`; edit outside the markers) -->',
  `Last run ${new Date().toISOString().slice(0, 10)} on ${machine}${quick ? ' (quick run: short, not for comparison)' : ''}.`,
  ...sections,
  '<!-- results:end -->',
].join('\n\n');

const file = join(root, 'BENCHMARKS.md');
const current = readFileSync(file, 'utf8');
const target = options.out === undefined ? file : resolve(options.out);
const start = current.indexOf('<!-- results:start');
const end = current.indexOf('<!-- results:end -->');
const updated =
  start >= 0 && end > start
    ? current.slice(0, start) + results + current.slice(end + '<!-- results:end -->'.length)
    : `${current.trimEnd()}\n\n${results}\n`;
writeFileSync(target, updated);
process.stderr.write(`${target} written\n`);
