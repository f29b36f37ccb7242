// Loaded into an app with `-r` (BENCH_NODE_ARGS="-r $PWD/bench/gc-pauses.cjs"): every
// garbage collection's kind and pause, summed up each second into
// gc-pauses-<pid>.json in the temp directory: per kind, how many, their total, how
// many took over 1, 2 and 5 ms, and the longest (the last second's may be missing: the
// observer hears of a collection asynchronously). CommonJS, as heap-spaces.cjs.
const { writeFileSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
const { PerformanceObserver, constants } = require('node:perf_hooks');

const file = join(tmpdir(), `gc-pauses-${process.pid}.json`);
const KINDS = {
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak callbacks',
};
const kinds = {};

function count(entries) {
  for (const entry of entries) {
    const kind = KINDS[entry.detail.kind] ?? 'other';
    const k = (kinds[kind] ??= { count: 0, totalMs: 0, over1ms: 0, over2ms: 0, over5ms: 0, longestMs: 0 });
    k.count++;
    k.totalMs += entry.duration;
    if (entry.duration > 1) k.over1ms++;
    if (entry.duration > 2) k.over2ms++;
    if (entry.duration > 5) k.over5ms++;
    k.longestMs = Math.max(k.longestMs, entry.duration);
  }
}

const observer = new PerformanceObserver((list) => count(list.getEntries()));
observer.observe({ entryTypes: ['gc'] });
const write = () => writeFileSync(file, `${JSON.stringify(kinds, null, 1)}\n`);
setInterval(write, 1000).unref();
process.on('exit', write);
