import { Type, type Static, type TObject, type TProperties } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

/** Settings every process shares; each app spreads these into its own schema. */
export const commonEnv = {
  DATABASE_URL: Type.String({
    default: 'postgres://postgres@127.0.0.1:5432/tally',
    pattern: '^postgres(ql)?://',
    description: 'Postgres connection string',
  }),
  REDIS_URL: Type.String({
    default: 'redis://127.0.0.1:6379',
    pattern: '^rediss?://',
    description: 'Redis connection string (BullMQ)',
  }),
  QUEUE_PREFIX: Type.String({
    default: 'tally',
    pattern: '^[A-Za-z0-9_.-]+$',
    description: 'Prefix of every BullMQ key in Redis',
  }),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((level) => Type.Literal(level)),
    { default: 'info' },
  ),
} satisfies TProperties;

export const httpEnv = (defaultPort: number) =>
  ({
    HOST: Type.String({ default: '127.0.0.1', description: 'Interface to listen on' }),
    PORT: Type.Integer({ default: defaultPort, minimum: 0, maximum: 65535 }),
    SHUTDOWN_TIMEOUT_MS: Type.Integer({ default: 10_000, minimum: 0 }),
  }) satisfies TProperties;

export const DAY_MS = 86_400_000;

/**
 * Retention of raw events, read by the ingest API (which refuses older events) and
 * the worker (which drops older partitions): one variable, so the two never disagree.
 */
export const retentionEnv = {
  RETENTION_DAYS: Type.Integer({
    default: 0,
    minimum: 0,
    maximum: 36_500,
    description:
      'Days raw events are kept: older events are refused by the ingest API, and partitions entirely older are dropped ' +
      '(experiment summaries stay whole). 0 keeps them for ever',
  }),
} satisfies TProperties;

/** How far back raw events are kept, in ms; undefined when they are kept for ever. */
export function retentionMs(retentionDays: number): number | undefined {
  return retentionDays > 0 ? retentionDays * DAY_MS : undefined;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * Parses the environment once, at start. Unknown variables are ignored; every
 * problem with a known one is reported together, so a misconfigured deploy fails
 * with one clear message instead of at the first request that needs the value.
 */
export function loadConfig<T extends TObject>(
  schema: T,
  env: Record<string, string | undefined> = process.env,
): Static<T> {
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(schema.properties)) {
    const value = env[key];
    if (value !== undefined && value !== '') raw[key] = value;
  }
  // Convert truncates "1.5" to 1 for an integer (in place); a setting such as RETENTION_DAYS must be refused instead.
  const notIntegers = Object.entries(schema.properties).filter(
    ([key, property]) => property.type === 'integer' && typeof raw[key] === 'string' && !/^\s*[+-]?\d+\s*$/.test(raw[key]),
  );
  const converted = Value.Convert(schema, { ...raw }) as Record<string, unknown>;
  for (const [key] of notIntegers) converted[key] = raw[key];
  const value = Value.Default(schema, converted);
  const errors = [...Value.Errors(schema, value)].map(
    (error) => `${error.path.slice(1) || '(root)'}: ${error.message} (got ${JSON.stringify(error.value)})`,
  );
  if (errors.length > 0) {
    throw new ConfigError(`Invalid configuration:\n  ${errors.join('\n  ')}`);
  }
  return value as Static<T>;
}
