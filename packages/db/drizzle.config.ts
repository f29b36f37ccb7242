import { defineConfig } from 'drizzle-kit';

export default defineConfig({
  dialect: 'postgresql',
  // Only tables drizzle-kit can express. Partitioned tables and SQL functions live
  // in custom migrations in the same folder (`drizzle-kit generate --custom`).
  schema: [
    './packages/db/src/schema/projects.ts',
    './packages/db/src/schema/summaries.ts',
    './packages/db/src/schema/experiment-settings.ts',
  ],
  out: './drizzle',
  dbCredentials: { url: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/tally' },
});
