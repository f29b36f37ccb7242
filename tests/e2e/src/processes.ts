import { readdirSync, readFileSync } from 'node:fs';
import type { RunningApp } from '@tally/testing';
import { waitFor } from '@tally/testing';

/** Every live process descended from `pid`, read from /proc (Linux). */
export function descendants(pid: number): number[] {
  const parents = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // "pid (comm) state ppid …": comm may hold spaces and parentheses, so read after the last ')'.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(ppid, [...(parents.get(ppid) ?? []), Number(entry)]);
    } catch {
      // Exited meanwhile.
    }
  }
  const found: number[] = [];
  const visit = (parent: number) => {
    for (const child of parents.get(parent) ?? []) {
      found.push(child);
      visit(child);
    }
  };
  visit(pid);
  return found;
}

/** Running, not exited (a zombie waiting for its parent to reap it counts as gone). */
const alive = (pid: number) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
};

/**
 * `kill -9` of an app started with startApp. tsx runs the app in a child process
 * of its own and relays SIGTERM to it, but nothing can relay SIGKILL: killing only
 * the process startApp holds would leave the app itself running. So the app's
 * processes are killed first, then the tsx wrapper.
 */
export async function killHard(app: RunningApp): Promise<void> {
  const pid = app.process.pid!;
  const tree = descendants(pid);
  for (const child of tree) {
    try {
      process.kill(child, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  app.process.kill('SIGKILL');
  await waitFor(async () => ([pid, ...tree].some(alive) ? undefined : true), {
    timeoutMs: 10_000,
    what: `${app.name} and its processes to be gone`,
  });
}
