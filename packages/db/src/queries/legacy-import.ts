import { and, eq, sql } from 'drizzle-orm';
import type { Database, Transaction } from '../client.js';
import { generateKey, hashKey } from '../keys.js';
import type { ProjectKeys } from './projects.js';
import { legacyImportCheckpoints, legacyProjects } from '../schema/legacy-import.js';
import { projects } from '../schema/projects.js';

export * from './legacy-source.js';

/**
 * Tally's side of `tally import-legacy`: where each import stopped (so a crashed
 * one continues there) and which Tally project holds each legacy project (so a
 * resumed or repeated one reuses it). Tables: drizzle/0006_legacy_import.sql.
 */

/** The target of an import that gives each legacy project a Tally project of its own. */
export const EVERY_LEGACY_PROJECT = '*';

/** One import: a legacy table of a legacy database into a target. */
export interface LegacyImportKey {
  source: string;
  sourceTable: string;
  /** A project id, or EVERY_LEGACY_PROJECT. */
  target: string;
}

export type LegacyCheckpoint = typeof legacyImportCheckpoints.$inferSelect;

export interface LegacyImportTotals {
  lastId: string | null;
  rowsRead: number;
  imported: number;
  alreadyPresent: number;
  skipped: Record<string, number>;
}

const matches = (key: LegacyImportKey) =>
  and(
    eq(legacyImportCheckpoints.source, key.source),
    eq(legacyImportCheckpoints.sourceTable, key.sourceTable),
    eq(legacyImportCheckpoints.target, key.target),
  );

export async function findLegacyCheckpoint(db: Database, key: LegacyImportKey): Promise<LegacyCheckpoint | undefined> {
  const [row] = await db.select().from(legacyImportCheckpoints).where(matches(key));
  return row;
}

/** The checkpoint of a first run: nothing read yet, with the timestamp unit every later run must keep. */
export async function startLegacyCheckpoint(db: Database, key: LegacyImportKey, timestampUnit: 's' | 'ms'): Promise<LegacyCheckpoint> {
  await db.insert(legacyImportCheckpoints).values({ ...key, timestampUnit }).onConflictDoNothing();
  return (await findLegacyCheckpoint(db, key))!;
}

/**
 * Forgets how far an import got, so that the next run reads the table from its
 * first row again. The unit stays: the events already stored keep their times.
 */
export async function restartLegacyCheckpoint(db: Database, key: LegacyImportKey): Promise<void> {
  await db
    .update(legacyImportCheckpoints)
    .set({ lastId: null, rowsRead: 0, imported: 0, alreadyPresent: 0, skipped: {}, startedAt: sql`now()`, updatedAt: sql`now()`, completedAt: null })
    .where(matches(key));
}

/** Records a stored batch: every row up to `totals.lastId` is done. */
export async function saveLegacyCheckpoint(
  db: Database,
  key: LegacyImportKey,
  totals: LegacyImportTotals,
  completed = false,
): Promise<void> {
  await db
    .update(legacyImportCheckpoints)
    .set({ ...totals, updatedAt: sql`now()`, ...(completed ? { completedAt: sql`now()` } : {}) })
    .where(matches(key));
}

/** Any fixed number: the class of the import's advisory locks. */
const LEGACY_IMPORT_LOCK = 7_041_734;

/**
 * Takes the lock that lets one run of an import go at a time (a second one would
 * read the same rows and garble the checkpoint's counts). Held by a connection of
 * its own until released, and dropped by Postgres if that connection dies.
 * Undefined if another run holds it.
 */
export async function lockLegacyImport(db: Database, key: LegacyImportKey): Promise<{ release: () => Promise<void> } | undefined> {
  const client = await db.$client.connect();
  const lockKey = JSON.stringify([key.source, key.sourceTable, key.target]);
  try {
    const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1, hashtext($2)) AS locked', [LEGACY_IMPORT_LOCK, lockKey]);
    if (!rows[0]?.locked) {
      client.release();
      return undefined;
    }
  } catch (error) {
    client.release(error instanceof Error ? error : true);
    throw error;
  }
  return {
    release: async () => {
      try {
        await client.query('SELECT pg_advisory_unlock($1, hashtext($2))', [LEGACY_IMPORT_LOCK, lockKey]);
        client.release();
      } catch (error) {
        client.release(error instanceof Error ? error : true);
      }
    },
  };
}

export async function projectExists(db: Database, projectId: string): Promise<boolean> {
  const rows = await db.select({ id: projects.id }).from(projects).where(eq(projects.id, projectId)).limit(1);
  return rows.length > 0;
}

/**
 * The Tally project of a legacy project, created (named `legacy <id>`) if it has
 * none yet; its keys are returned only then, the one time they exist in clear.
 * Project and mapping are made in one transaction, under a lock on the pair, so
 * neither a crash nor two imports at once can leave a project without a mapping
 * or give a legacy project two.
 */
export async function mapLegacyProject(
  db: Database,
  source: string,
  legacyProjectId: string,
): Promise<{ projectId: string; created?: ProjectKeys }> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`SELECT pg_advisory_xact_lock(${LEGACY_IMPORT_LOCK}, hashtext(${JSON.stringify([source, legacyProjectId])}))`);
    const [mapped] = await tx
      .select({ projectId: legacyProjects.projectId })
      .from(legacyProjects)
      .where(and(eq(legacyProjects.source, source), eq(legacyProjects.legacyProjectId, legacyProjectId)));
    if (mapped) return { projectId: mapped.projectId };
    const created = await insertProject(tx, legacyProjectName(legacyProjectId));
    await tx.insert(legacyProjects).values({ source, legacyProjectId, projectId: created.projectId });
    return { projectId: created.projectId, created };
  });
}

/** Project names have at most 200 characters (the CLI's rule); legacy ids are far shorter in practice. */
export function legacyProjectName(legacyProjectId: string): string {
  return `legacy ${legacyProjectId}`.slice(0, 200);
}

/** `createProject`, inside the mapping's transaction. */
async function insertProject(tx: Transaction, name: string): Promise<ProjectKeys> {
  const writeKey = generateKey('write');
  const readKey = generateKey('read');
  const [row] = await tx
    .insert(projects)
    .values({ name, writeKeyHash: hashKey(writeKey), readKeyHash: hashKey(readKey) })
    .returning({ id: projects.id });
  return { projectId: row!.id, writeKey, readKey };
}
