export { createDb, type Database, type DbHandle, type Transaction } from './client.js';
export { ensureDatabase, migrateDatabase, MIGRATIONS_FOLDER } from './migrate.js';
export { generateKey, hashKey, keyKind, type KeyKind } from './keys.js';
export * from './queries/projects.js';
export * from './queries/events.js';
export * from './queries/raw-results.js';
export * from './queries/partitions.js';
export * from './queries/rollup.js';
export * from './queries/results.js';
