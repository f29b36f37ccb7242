import pino from 'pino';
import type { Logger } from '@tally/logger';

/**
 * The CLI's diagnostics go to stderr: stdout carries the command's answer, which
 * scripts parse (`--json` promises nothing else on it). Same redaction as every
 * other Tally logger.
 */
export function createCliLogger(level: string, write: (line: string) => void): Logger {
  return pino(
    {
      name: 'cli',
      level,
      redact: ['req.headers.authorization', 'req.headers.cookie', 'headers.authorization'],
    },
    { write },
  );
}
