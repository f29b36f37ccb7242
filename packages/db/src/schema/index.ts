export * from './projects.js';
export * from './events.js';
export * from './summaries.js';
export * from './experiment-settings.js';
