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
  const value = Value.Default(schema, Value.Convert(schema, raw));
  const errors = [...Value.Errors(schema, value)].map(
    (error) => `${error.path.slice(1) || '(root)'}: ${error.message} (got ${JSON.stringify(error.value)})`,
  );
  if (errors.length > 0) {
    throw new ConfigError(`Invalid configuration:\n  ${errors.join('\n  ')}`);
  }
  return value as Static<T>;
}
