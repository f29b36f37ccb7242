export * from './projects.js';
export * from './events.js';
