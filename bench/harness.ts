/**
 * What the scenarios that start Tally's processes share: cleanup that runs on
 * success, failure and SIGINT/SIGTERM alike (the Postgres and Redis servers are
 * shared, so a scenario removes exactly what it made and nothing else), and the
 * memory and CPU of the processes it measures, read from /proc.
 *
 * Which process is measured: the apps run as production runs them, their bundles
 * with plain node and their `serve` scripts' flags (see RUNNER), one process each. Run from the sources instead,
 * `tsx src/main.ts` is a small node process (tsx's CLI) that spawns a second node
 * process with tsx's loader, and that second one runs the app. The app's memory
 * is that child's; the CLI parent only relays signals (its own peak is reported
 * beside it, for the record).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApp, type RunningApp } from '@tally/testing';

export const logger = (scenario: string) => (line: string) =>
  process.stderr.write(`[${scenario} ${new Date().toISOString().slice(11, 19)}] ${line}\n`);

// ---------------------------------------------------------------------------
// Cleanup, whatever happens: what this process made, newest first.
// ---------------------------------------------------------------------------

const cleanups: (() => Promise<unknown>)[] = [];
let signalled: Promise<void> | undefined;
let cleaning: Promise<void> | undefined;

/** Registers `release(resource)` to run at `cleanUp()` (which `runScenario` runs at the end and on SIGINT/SIGTERM); returns the resource. */
export function owned<T>(resource: T, release: (resource: T) => Promise<unknown>): T {
  cleanups.push(() => release(resource));
  return resource;
}

const pending = new Set<Promise<unknown>>();

/**
 * `owned` for a resource still being made (a database being migrated): cleanup
 * waits for it, so an interruption in the middle still removes it.
 */
export function acquire<T>(making: Promise<T>, release: (resource: T) => Promise<unknown>): Promise<T> {
  const registered = making.then((resource) => owned(resource, release));
  pending.add(registered);
  const forget = () => pending.delete(registered);
  registered.then(forget, forget);
  return registered;
}

/** Releases everything registered so far, newest first. Calls made meanwhile share the one in progress. */
export function cleanUp(): Promise<void> {
  cleaning ??= (async () => {
    await Promise.allSettled([...pending]);
    for (let cleanup = cleanups.pop(); cleanup; cleanup = cleanups.pop()) {
      await cleanup().catch((error: unknown) => process.stderr.write(`cleanup failed: ${String(error)}\n`));
    }
  })().finally(() => {
    cleaning = undefined;
  });
  return cleaning;
}

/**
 * Runs a scenario: cleans up after it whatever happens. On SIGINT/SIGTERM, cleans up
 * at once and exits with 130; what was running then fails as its connections close
 * under it, which is expected and not reported.
 */
export async function runScenario(main: () => Promise<void>): Promise<void> {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    // `on`, not `once`: a second signal (tsx relays one, an impatient user sends one) must not end the cleanup.
    process.on(signal, () => {
      if (signalled) return;
      process.stderr.write(`${signal}: removing what this scenario made\n`);
      process.on('unhandledRejection', () => {});
      signalled = cleanUp()
        .then(endChildren)
        .finally(() => process.exit(130));
    });
  }
  try {
    await main();
  } catch (error) {
    if (signalled) await signalled;
    throw error;
  } finally {
    await cleanUp();
    await endChildren();
  }
}

/** Measures each size in turn, removing what one size made (databases, processes) before the next. */
export async function measureEachSize<T>(sizes: readonly number[], measure: (events: number) => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  for (const events of sizes) {
    results.push(await measure(events));
    await cleanUp();
  }
  return results;
}

/**
 * SIGTERM to whatever this process started that still runs (an app whose start
 * was interrupted before it was registered, a psql whose COPY was cut), by pid.
 */
async function endChildren(): Promise<void> {
  const left = descendants(process.pid).filter((pid) => pid !== process.pid);
  for (const pid of left) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // Gone already.
    }
  }
  if (left.length > 0) await new Promise((resolve) => setTimeout(resolve, 500));
}

/** A temporary directory, removed at cleanup. */
export function ownedTempDir(prefix: string): string {
  return owned(mkdtempSync(join(tmpdir(), prefix)), async (dir) => rmSync(dir, { recursive: true, force: true }));
}

// ---------------------------------------------------------------------------
// /proc.
// ---------------------------------------------------------------------------

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function descendants(pid: number): number[] {
  const pids = [pid];
  for (let i = 0; i < pids.length; i++) {
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${pids[i]}/task`);
    } catch {
      continue;
    }
    for (const task of tasks) {
      pids.push(...(read(`/proc/${pids[i]}/task/${task}/children`) ?? '').split(' ').filter(Boolean).map(Number));
    }
  }
  return pids;
}

const cmdline = (pid: number) => (read(`/proc/${pid}/cmdline`) ?? '').split('\0').join(' ');

/**
 * The node process that runs the app under `rootPid` (the process `startApp`
 * spawned): tsx's child, the one whose command line carries tsx's loader. The
 * root itself when nothing below it does (an app run without tsx).
 */
export function appProcess(rootPid: number): { pid: number; wrapperPid?: number } {
  const app = descendants(rootPid).find((pid) => pid !== rootPid && /--import\s+\S*tsx\S*loader/.test(cmdline(pid)));
  return app === undefined ? { pid: rootPid } : { pid: app, wrapperPid: rootPid };
}

export interface Memory {
  /** VmHWM: the most resident memory the process has had (since start, or since `resetPeak`). */
  peakKb: number;
  /** VmRSS now. */
  rssKb: number;
}

export function memory(pid: number): Memory | undefined {
  const status = read(`/proc/${pid}/status`);
  if (status === undefined) return undefined;
  return { peakKb: Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0), rssKb: Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) };
}

/** Sets VmHWM back to the current RSS (Linux ≥ 4.0), so a phase's peak is its own. */
export function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

let ticksPerSecond: number | undefined;
/** User + system CPU seconds the process has used so far. */
export function cpuSeconds(pid: number): number | undefined {
  const stat = read(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  // Fields after the command name, which is in parentheses and may hold spaces: utime and stime are the 12th and 13th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  ticksPerSecond ??= Number(safeExec('getconf', ['CLK_TCK']) ?? 100) || 100;
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
}

function safeExec(command: string, args: string[]): string | undefined {
  try {
    return execFileSync(command, args, { encoding: 'utf8' }).trim();
  } catch {
    return undefined;
  }
}

/**
 * Watches the app processes of a scenario: their peak memory and CPU, sampled so
 * that a process that exits early still has figures, and read once more at the end.
 */
export class ProcessWatch {
  private readonly apps = new Map<
    string,
    { pid: number; wrapperPid?: number; readyRssKb: number; peakKb: number; wrapperPeakKb: number; cpu0: number; cpu: number }
  >();
  private timer: NodeJS.Timeout | undefined;

  /** Call once the app is ready: its RSS then is recorded as `readyRssKb`. */
  add(name: string, rootPid: number): void {
    const { pid, wrapperPid } = appProcess(rootPid);
    const readyRssKb = memory(pid)?.rssKb ?? 0;
    this.apps.set(name, { pid, wrapperPid, readyRssKb, peakKb: 0, wrapperPeakKb: 0, cpu0: cpuSeconds(pid) ?? 0, cpu: cpuSeconds(pid) ?? 0 });
    this.sample();
  }

  start(everyMs = 500): void {
    this.timer ??= setInterval(() => this.sample(), everyMs);
    this.timer.unref();
  }

  sample(): void {
    for (const app of this.apps.values()) {
      const now = memory(app.pid);
      if (now) app.peakKb = Math.max(app.peakKb, now.peakKb);
      app.cpu = cpuSeconds(app.pid) ?? app.cpu;
      if (app.wrapperPid !== undefined) app.wrapperPeakKb = Math.max(app.wrapperPeakKb, memory(app.wrapperPid)?.peakKb ?? 0);
    }
  }

  /** Starts a new phase: peaks and CPU counted from now. */
  resetPeaks(): void {
    for (const app of this.apps.values()) {
      resetPeak(app.pid);
      app.peakKb = 0;
      app.cpu0 = cpuSeconds(app.pid) ?? app.cpu;
    }
    this.sample();
  }

  stop(): void {
    this.sample();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  get(name: string) {
    const app = this.apps.get(name)!;
    return { pid: app.pid, wrapperPid: app.wrapperPid, readyRssKb: app.readyRssKb, peakKb: app.peakKb, wrapperPeakKb: app.wrapperPeakKb, cpuSeconds: app.cpu - app.cpu0 };
  }

  names(): string[] {
    return [...this.apps.keys()];
  }
}

export const mbOfKb = (kb: number) => Math.round(kb / 1024).toLocaleString('en-US');

/**
 * How the measured apps run: by default as in production, their bundles
 * (`npm run build`, built here first) with plain node; with BENCH_RUN_SOURCES=1
 * as `npm run stack` runs them, the TypeScript sources under tsx (the figures
 * before the bundles, in BENCHMARKS.md).
 */
export const RUN_SOURCES = process.env.BENCH_RUN_SOURCES === '1';
const SERVE_FLAGS = process.env.BENCH_SERVE_FLAGS !== '0';
export const RUNNER = RUN_SOURCES
  ? 'the sources under tsx (BENCH_RUN_SOURCES=1)'
  : !SERVE_FLAGS
    ? "its production bundle (`npm run build`) with plain node, without its serve script's flags (BENCH_SERVE_FLAGS=0)"
    : "its production bundle (`npm run build`) with plain node and the flags of its `serve` script (apps/<app>/package.json)";

let built = false;
/** Starts an app the way RUNNER says, building the bundles once per scenario. */
export function startMeasuredApp(root: string, name: string, env: Record<string, string>): Promise<RunningApp> {
  if (!RUN_SOURCES && !built) {
    execFileSync(process.execPath, [join(root, 'scripts', 'build.mjs')], { stdio: ['ignore', 'ignore', 'inherit'] });
    built = true;
  }
  // Each bundle runs with the node flags of its app's `serve` script, as in production (BENCH_SERVE_FLAGS=0:
  // none, Node's defaults). BENCH_NODE_OPTIONS: more V8 flags for the apps (their environment is theirs alone
  // otherwise); BENCH_NODE_ARGS: flags NODE_OPTIONS refuses, such as --cpu-prof or --trace-gc, put on the
  // bundle's command line. BENCH_APP_ENV: more of the apps' environment, as KEY=VALUE pairs separated by spaces.
  const nodeOptions = process.env.BENCH_NODE_OPTIONS;
  const serveFlags = SERVE_FLAGS ? serveNodeFlags(root, name) : [];
  const nodeArgs = [...serveFlags, ...(process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? [])];
  const appEnv = Object.fromEntries(
    (process.env.BENCH_APP_ENV ?? '').split(' ').filter(Boolean).map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
  );
  return startApp(name, { ...appEnv, ...env, ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}) }, { built: !RUN_SOURCES, nodeArgs });
}

/** The flags between `node` and `dist/main.js` in the app's `serve` script (apps/<app>/package.json). */
export function serveNodeFlags(root: string, name: string): string[] {
  const manifest = JSON.parse(readFileSync(join(root, 'apps', name, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
  const serve = manifest.scripts?.serve ?? '';
  const match = /^node((?: --?[\w-]+(?:=\S+)?)*) dist\/main\.js$/.exec(serve);
  if (!match) throw new Error(`apps/${name}/package.json: its serve script is not "node [flags] dist/main.js": ${JSON.stringify(serve)}`);
  return match[1]!.split(' ').filter(Boolean);
}

/**
 * What the same node holds with nothing loaded, run the way the apps are (see
 * RUNNER): the part of every app's RSS that is the runtime, not the app.
 */
export async function runnerBaselineKb(root: string): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'tally-bench-idle-'));
  try {
    const script = join(dir, RUN_SOURCES ? 'idle.ts' : 'idle.mjs');
    writeFileSync(script, "process.stdout.write('ready\\n');\nsetInterval(() => {}, 1000);\n");
    const [command, args] = RUN_SOURCES ? [join(root, 'node_modules', '.bin', 'tsx'), [script]] : [process.execPath, [script]];
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.once('data', () => resolve());
        child.once('exit', () => reject(new Error('the idle script exited')));
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      return memory(appProcess(child.pid!).pid)?.peakKb ?? 0;
    } finally {
      child.kill('SIGTERM');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * CPU seconds of the Postgres backends serving one database, sampled: a backend's
 * counter only grows, so the last reading of each is what it used (up to the
 * sampling interval for those that end between samples).
 */
export class BackendCpu {
  private readonly seen = new Map<number, { first: number; last: number }>();
  private baseline = false;
  private timer: NodeJS.Timeout | undefined;
  constructor(private readonly query: (sql: string) => Promise<{ rows: { pid: number }[] }>, private readonly database: string) {}

  async sample(): Promise<void> {
    const { rows } = await this.query(`SELECT pid FROM pg_stat_activity WHERE datname = '${this.database.replace(/'/g, "''")}'`);
    for (const { pid } of rows) {
      const cpu = cpuSeconds(pid);
      if (cpu === undefined) continue;
      const known = this.seen.get(pid);
      if (known) known.last = cpu;
      // Before the baseline, counted from the first sample on; after it, a new backend started since.
      else this.seen.set(pid, { first: this.baseline ? 0 : cpu, last: cpu });
    }
  }

  /** Forgets what was used so far: the next figures are from now. */
  async reset(): Promise<void> {
    await this.sample();
    for (const entry of this.seen.values()) entry.first = entry.last;
    this.baseline = true;
  }

  /** Samples every `ms` until `stop()`: for backends that come and go (psql's). */
  sampleEvery(ms: number): void {
    this.timer ??= setInterval(() => void this.sample().catch(() => undefined), ms);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.sample();
  }

  total(): number {
    let sum = 0;
    for (const { first, last } of this.seen.values()) sum += last - first;
    return sum;
  }
}
