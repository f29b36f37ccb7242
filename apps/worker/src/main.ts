import { ConfigError } from '@tally/config';
import { createDb, migrateDatabase } from '@tally/db';
import { createLogger } from '@tally/logger';
import { createRedis } from '@tally/queue';
import { createMetricsRegistry, serveUntilSignal } from '@tally/server';
import { startWorker } from './app.js';
import { loadWorkerConfig, type WorkerConfig } from './config.js';
import { buildHttpServer } from './http.js';

let config: WorkerConfig;
try {
  config = loadWorkerConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
}

const logger = createLogger('worker', config.LOG_LEVEL);

async function main(config: WorkerConfig): Promise<void> {
  if (config.MIGRATE_ON_START) {
    await migrateDatabase(config.DATABASE_URL);
    logger.info('database migrated');
  }

  const database = createDb(config.DATABASE_URL, { max: config.DB_POOL_SIZE, applicationName: 'tally-worker' });
  const connection = createRedis(config.REDIS_URL, 'worker');
  // ioredis reconnects on its own; report the outage once, not at every reconnection attempt.
  let redisDown = false;
  connection.on('error', (err) => {
    if (!redisDown) logger.warn({ err }, 'Redis unreachable; reconnecting');
    redisDown = true;
  });
  connection.on('ready', () => {
    if (redisDown) logger.info('Redis reachable again');
    redisDown = false;
  });

  const registry = createMetricsRegistry('worker');
  const worker = await startWorker({ config, db: database.db, logger, connection, registry });
  const app = await buildHttpServer({ logger, db: database.db, connection, registry });

  await serveUntilSignal(app, {
    host: config.HOST,
    port: config.PORT,
    shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT_MS,
    onClose: async () => {
      // Active jobs finish first; past the deadline the process exits anyway and BullMQ's
      // stall check hands the unfinished job to another worker (inserts are idempotent).
      await worker.close();
      await connection.quit();
      await database.close();
    },
  });
}

main(config).catch((err: unknown) => {
  logger.fatal({ err }, 'worker failed to start');
  process.exit(1);
});
