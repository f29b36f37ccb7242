import { ConfigError } from '@tally/config';
import { createDb } from '@tally/db';
import { createLogger } from '@tally/logger';
import { serveUntilSignal } from '@tally/server';
import { buildApp } from './app.js';
import { loadQueryApiConfig, type QueryApiConfig } from './config.js';

let config: QueryApiConfig;
try {
  config = loadQueryApiConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
}

const logger = createLogger('query-api', config.LOG_LEVEL);

async function main(config: QueryApiConfig): Promise<void> {
  const database = createDb(config.DATABASE_URL, { max: config.DB_POOL_SIZE, applicationName: 'tally-query-api' });
  const app = await buildApp({ config, db: database.db, logger });
  await serveUntilSignal(app, {
    host: config.HOST,
    port: config.PORT,
    shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT_MS,
    onClose: () => database.close(),
  });
}

main(config).catch((err: unknown) => {
  logger.fatal({ err }, 'query-api failed to start');
  process.exit(1);
});
