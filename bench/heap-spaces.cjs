// Loaded into an app with `-r` (BENCH_NODE_ARGS="-r $PWD/bench/heap-spaces.cjs"): every
// 250 ms, the process's RSS and V8's heap by space, to heap-spaces-<pid>.log in the temp
// directory; a line that is the highest RSS so far starts with PEAK. CommonJS, so that
// `-r` can load it in front of any bundle.
const { openSync, writeSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
const { getHeapSpaceStatistics } = require('node:v8');

const file = join(tmpdir(), `heap-spaces-${process.pid}.log`);
const fd = openSync(file, 'w');
const mb = (bytes) => (bytes / 2 ** 20).toFixed(1);
let peak = 0;

setInterval(() => {
  const m = process.memoryUsage();
  const spaces = getHeapSpaceStatistics()
    .map((s) => `${s.space_name}=${mb(s.space_size)}`)
    .join(' ');
  const line = `rss=${mb(m.rss)} heap=${mb(m.heapTotal)} used=${mb(m.heapUsed)} external=${mb(m.external)} ${spaces}`;
  writeSync(fd, `${m.rss > peak ? 'PEAK ' : ''}${line}\n`);
  peak = Math.max(peak, m.rss);
}, 250).unref();
