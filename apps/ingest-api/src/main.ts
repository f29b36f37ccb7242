import { ConfigError } from '@tally/config';
import { createDb } from '@tally/db';
import { createLogger } from '@tally/logger';
import { closeQueues, createQueues, createRedis } from '@tally/queue';
import { serveUntilSignal } from '@tally/server';
import { buildApp } from './app.js';
import { loadIngestApiConfig, type IngestApiConfig } from './config.js';

let config: IngestApiConfig;
try {
  config = loadIngestApiConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
}

const logger = createLogger('ingest-api', config.LOG_LEVEL);

async function main(config: IngestApiConfig): Promise<void> {
  const database = createDb(config.DATABASE_URL, { max: config.DB_POOL_SIZE, applicationName: 'tally-ingest-api' });
  const redis = createRedis(config.REDIS_URL, 'producer');
  // ioredis reconnects on its own; report the outage once, not at every reconnection attempt.
  let redisDown = false;
  redis.on('error', (err) => {
    if (!redisDown) logger.warn({ err }, 'Redis unreachable; batches get 503 until it is back');
    redisDown = true;
  });
  redis.on('ready', () => {
    if (redisDown) logger.info('Redis reachable again');
    redisDown = false;
  });
  const queues = createQueues(redis, config.QUEUE_PREFIX);

  const app = await buildApp({ config, db: database.db, queues, redis, logger });
  await serveUntilSignal(app, {
    host: config.HOST,
    port: config.PORT,
    shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT_MS,
    onClose: async () => {
      await closeQueues(queues).catch((err: unknown) => logger.warn({ err }, 'closing the queues failed'));
      await redis.quit().catch(() => redis.disconnect());
      await database.close();
    },
  });
}

main(config).catch((err: unknown) => {
  logger.fatal({ err }, 'ingest API failed to start');
  process.exit(1);
});
