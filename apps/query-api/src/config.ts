import { Type, type Static } from '@sinclair/typebox';
import { commonEnv, httpEnv, loadConfig } from '@tally/config';

export const QueryApiEnv = Type.Object({
  ...commonEnv,
  ...httpEnv(3200),
  DB_POOL_SIZE: Type.Integer({ default: 10, minimum: 1, maximum: 1_000, description: 'Postgres connections of this process' }),
  KEY_CACHE_TTL_MS: Type.Integer({
    default: 10_000,
    minimum: 0,
    maximum: 300_000,
    description:
      'How long a read key found in the database is remembered; a rotated key keeps working for at most this long. 0 looks every request up',
  }),
});

export type QueryApiConfig = Static<typeof QueryApiEnv>;

export function loadQueryApiConfig(env: Record<string, string | undefined> = process.env): QueryApiConfig {
  return loadConfig(QueryApiEnv, env);
}
