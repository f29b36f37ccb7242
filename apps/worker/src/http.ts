import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import type { Database } from '@tally/db';
import type { Logger } from '@tally/logger';
import { createServer, installHealth } from '@tally/server';

export interface HttpOptions {
  logger: Logger;
  db: Database;
  connection: Redis;
  registry: Registry;
}

/** The worker's only HTTP surface: liveness, readiness (Redis and Postgres answer) and Prometheus metrics. */
export async function buildHttpServer({ logger, db, connection, registry }: HttpOptions) {
  const app = await createServer({
    logger,
    title: 'Tally worker',
    description: 'Inserts ingested batches and keeps partitions ahead. Health and metrics only.',
  });
  installHealth(
    app,
    {
      redis: () => connection.ping(),
      postgres: () => db.$client.query('SELECT 1'),
    },
    registry,
  );
  return app;
}
