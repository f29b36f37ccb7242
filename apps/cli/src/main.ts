import { run } from './run.js';

// `pnpm tally project list | head -1`: the reader has what it wanted once it closes
// the pipe, so that is the end of the output, not a crash.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

process.exitCode = await run(process.argv.slice(2));
