import pino from 'pino';

export type Logger = pino.Logger;

/**
 * One base logger per process. Pretty output only on a terminal: in production
 * logs are JSON lines for a collector. Authorization headers never reach a log.
 */
export function createLogger(name: string, level = process.env.LOG_LEVEL ?? 'info'): Logger {
  const pretty = process.stdout.isTTY === true && process.env.NODE_ENV !== 'production';
  return pino({
    name,
    level,
    redact: ['req.headers.authorization', 'req.headers.cookie', 'headers.authorization'],
    ...(pretty ? { transport: { target: 'pino-pretty', options: { colorize: true } } } : {}),
  });
}
