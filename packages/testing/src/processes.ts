import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from './wait.js';

/** The repository's root, where `node_modules/.bin/tsx` and `apps/` are. */
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** A TCP port nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

export interface SpawnedApp {
  child: ChildProcess;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
  /** Everything it wrote so far, stdout and stderr together. */
  output: () => string;
}

export interface SpawnOptions {
  /** Run the production bundle `apps/<name>/dist/main.js` with plain node (see scripts/build.mjs), not the sources through tsx. */
  built?: boolean;
  /** Flags for node itself, before the bundle (only with `built`): e.g. `--cpu-prof`, which NODE_OPTIONS refuses. */
  nodeArgs?: string[];
}

/**
 * Runs `apps/<name>/src/main.ts` as its own process, as `npm run stack` does (or
 * its bundle, as production does), with only the given environment (plus PATH and
 * HOME), so that no setting of the machine running the tests leaks into it.
 */
export function spawnApp(name: string, env: Record<string, string>, options: SpawnOptions = {}): SpawnedApp {
  let output = '';
  const [command, args] = options.built
    ? [process.execPath, [...(options.nodeArgs ?? []), 'dist/main.js']]
    : [join(root, 'node_modules', '.bin', 'tsx'), ['src/main.ts']];
  const child = spawn(command, args, {
    cwd: join(root, 'apps', name),
    env: { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited, output: () => output };
}

export interface RunningApp {
  name: string;
  url: string;
  process: ChildProcess;
  output: () => string;
  /** Sends SIGTERM and resolves with the exit code. */
  stop: () => Promise<number | null>;
}

/** Starts an app on a free port and waits until its `/readyz` answers 200. */
export async function startApp(name: string, env: Record<string, string>, options: SpawnOptions = {}): Promise<RunningApp> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const { child, exited, output } = spawnApp(name, { ...env, HOST: '127.0.0.1', PORT: String(port) }, options);

  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}:\n${output()}`);
      const response = await fetch(`${url}/readyz`);
      return response.status === 200 ? true : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 200, what: `${name} to be ready` },
  ).catch((error: Error) => {
    child.kill('SIGKILL');
    throw new Error(`${error.message}\n--- ${name} output ---\n${output()}`);
  });

  return {
    name,
    url,
    process: child,
    output,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/**
 * Starts several apps at once. If one fails to start, the others are stopped
 * before the error is thrown: a test whose setup failed never leaves processes
 * behind (they would go on working on its queue prefix after it is removed).
 */
export async function startApps(names: readonly string[], env: Record<string, string>, options: SpawnOptions = {}): Promise<RunningApp[]> {
  const started = await Promise.allSettled(names.map((name) => startApp(name, env, options)));
  const running = started.flatMap((outcome) => (outcome.status === 'fulfilled' ? [outcome.value] : []));
  const failed = started.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
  if (failed) {
    await Promise.all(running.map((app) => app.stop()));
    throw failed.reason;
  }
  return running;
}
