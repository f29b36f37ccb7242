import { CommanderError } from 'commander';
import { createContext } from './context.js';
import { explain } from './errors.js';
import { processIo, type CliIo } from './io.js';
import { buildProgram } from './program.js';

export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/**
 * Runs one `tally` command line (without the `node script` part) and resolves with
 * the exit code. Output goes through `io`, so tests run commands in-process.
 * Failures print one sentence on stderr; the detail goes to the debug log.
 */
export async function run(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  const context = createContext(io);
  try {
    await buildProgram(context).parseAsync([...argv], { from: 'user' });
    return EXIT.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander has printed the usage error (or the help) already.
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    let databaseUrl: string | undefined;
    try {
      databaseUrl = context.config().DATABASE_URL;
      context.logger().debug({ err: error }, 'command failed');
    } catch {
      // The configuration itself is what failed; explain() says so.
    }
    io.stderr(`${explain(error, databaseUrl)}\n`);
    return EXIT.failed;
  } finally {
    await context.close().catch(() => {});
  }
}
