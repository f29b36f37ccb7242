export * from './events.js';
export * from './jobs.js';
export * from './normalize.js';
