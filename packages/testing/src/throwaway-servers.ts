import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './processes.js';
import { waitFor } from './wait.js';

/**
 * Postgres and Redis servers of a test's own, in a temporary directory on a free
 * port, that the test may stop, kill and restart: fault tests never touch the
 * shared servers on 5432 and 6379. Whatever happens to the test, `remove()` (and,
 * as a last resort, the exit of the test process) stops them.
 */

const run = promisify(execFile);

export const POSTGRES_BIN = process.env.TEST_POSTGRES_BIN ?? '/usr/lib/postgresql/15/bin';

/** Servers still running, stopped synchronously if the test process exits without removing them. */
const live = new Set<() => void>();
let exitHookInstalled = false;
function stopAtExit(stop: () => void): () => void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const stopNow of live) stopNow();
    });
  }
  live.add(stop);
  return () => live.delete(stop);
}

// initdb and postgres refuse to run as root: as root, they run as the `postgres` OS user.
const asRoot = process.getuid?.() === 0;
const postgresCommand = (tool: string, args: string[]): [string, string[]] =>
  asRoot ? ['runuser', ['-u', 'postgres', '--', join(POSTGRES_BIN, tool), ...args]] : [join(POSTGRES_BIN, tool), args];

export interface ThrowawayPostgres {
  port: number;
  /** `postgres://postgres@127.0.0.1:<port>/<database>` */
  url: (database: string) => string;
  running: () => boolean;
  /** Starts the stopped server again, on the same port and data directory. */
  start: () => Promise<void>;
  /** `pg_ctl stop -m fast`: sessions are terminated, the server shuts down cleanly. */
  stop: () => Promise<void>;
  /** Stops the server if it runs (immediate mode) and deletes its directory. */
  remove: () => Promise<void>;
  log: () => Promise<string>;
}

/** A fresh cluster (initdb), trust authentication on 127.0.0.1, fsync off: fast, and worthless after a host crash. */
export async function startThrowawayPostgres(settings: Record<string, string> = {}): Promise<ThrowawayPostgres> {
  const dir = await mkdtemp(join(tmpdir(), 'tally-pg-'));
  const data = join(dir, 'data');
  const logFile = join(dir, 'server.log');
  const port = await freePort();
  if (asRoot) await run('chown', ['postgres:', dir]);
  const postgres = (tool: string, args: string[]) => {
    const [command, argv] = postgresCommand(tool, args);
    return run(command, argv, { timeout: 60_000 });
  };
  const pgCtl = (args: string[]) => postgres('pg_ctl', ['-D', data, ...args]);

  try {
    await postgres('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const options = Object.entries({
    listen_addresses: '127.0.0.1',
    port: String(port),
    unix_socket_directories: dir,
    fsync: 'off',
    full_page_writes: 'off',
    ...settings,
  })
    .map(([name, value]) => `-c ${name}=${value}`)
    .join(' ');

  let running = false;
  let forget = () => {};
  const stopImmediately = () => {
    try {
      const [command, argv] = postgresCommand('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      execFileSync(command, argv, { stdio: 'ignore', timeout: 30_000 });
    } catch {
      // Not running.
    }
  };

  const server: ThrowawayPostgres = {
    port,
    url: (database) => `postgres://postgres@127.0.0.1:${port}/${database}`,
    running: () => running,
    start: async () => {
      await pgCtl(['-l', logFile, '-o', options, '-w', '-t', '60', 'start']);
      running = true;
      forget = stopAtExit(stopImmediately);
    },
    stop: async () => {
      await pgCtl(['-m', 'fast', '-w', '-t', '60', 'stop']);
      running = false;
      forget();
    },
    remove: async () => {
      if (running) stopImmediately();
      running = false;
      forget();
      await rm(dir, { recursive: true, force: true });
    },
    log: () => readFile(logFile, 'utf8').catch(() => ''),
  };
  try {
    await server.start();
  } catch (error) {
    await server.remove();
    throw error;
  }
  return server;
}

export interface ThrowawayRedis {
  port: number;
  url: string;
  /** Where the append-only file lives; a restart reads it back. */
  dir: string;
  running: () => boolean;
  /** Starts the stopped server again, on the same port and directory (it replays the AOF). */
  start: () => Promise<void>;
  /** `SHUTDOWN`: a clean stop, which writes and fsyncs the AOF first. */
  stop: () => Promise<void>;
  /** SIGKILL: a crash of the Redis process (not of the host). */
  kill: () => Promise<void>;
  remove: () => Promise<void>;
}

/**
 * A `redis-server` as production should run it for Tally: AOF with fsync every
 * second, no RDB snapshots (so that only the AOF can bring jobs back), and
 * `noeviction` (BullMQ's keys must never be evicted).
 */
export async function startThrowawayRedis(extraArgs: string[] = []): Promise<ThrowawayRedis> {
  const dir = await mkdtemp(join(tmpdir(), 'tally-redis-'));
  const port = await freePort();
  const args = [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--logfile', join(dir, 'server.log'),
    '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--maxmemory-policy', 'noeviction',
    ...extraArgs,
  ];

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let forget = () => {};

  const server: ThrowawayRedis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    running: () => child !== undefined,
    start: async () => {
      const started = spawn('redis-server', args, { stdio: 'ignore' });
      child = started;
      exited = new Promise((resolve) => started.once('exit', () => resolve()));
      void exited.then(() => {
        if (child === started) child = undefined;
      });
      forget = stopAtExit(() => started.kill('SIGKILL'));
      // PONG, not LOADING: the AOF has been read back.
      await waitFor(async () => ((await ping(port)) === '+PONG' ? true : undefined), {
        timeoutMs: 30_000,
        intervalMs: 25,
        what: `redis-server on port ${port} to answer PONG`,
      });
    },
    stop: async () => {
      if (!child) return;
      await command(port, 'SHUTDOWN').catch(() => {});
      await exited;
      forget();
    },
    kill: async () => {
      child?.kill('SIGKILL');
      await exited;
      forget();
    },
    remove: async () => {
      await server.kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    await server.start();
  } catch (error) {
    await server.remove();
    throw error;
  }
  return server;
}

/** The first line of Redis's answer to PING, or undefined when nothing answers. */
function ping(port: number): Promise<string | undefined> {
  return command(port, 'PING').catch(() => undefined);
}

/** Sends one inline command on a fresh connection; resolves with the first line of the reply, or on close. */
function command(port: number, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let reply = '';
    socket.setTimeout(2_000, () => socket.destroy(new Error('no reply')));
    socket.on('connect', () => socket.write(`${line}\r\n`));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) {
        socket.end();
        resolve(reply.split('\r\n')[0]!);
      }
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(reply));
  });
}
