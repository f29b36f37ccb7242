/**
 * Where the results page's files are: `apps/query-api/page/`. One level up from
 * this file, and also from the bundle `apps/query-api/dist/main.js` that contains
 * it in production (scripts/build.mjs).
 */
export const PAGE_DIR = new URL('../page/', import.meta.url);
