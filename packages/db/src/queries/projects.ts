import { eq } from 'drizzle-orm';
import type { Database } from '../client.js';
import { generateKey, hashKey, type KeyKind } from '../keys.js';
import { projects } from '../schema/projects.js';

export interface ProjectKeys {
  projectId: string;
  writeKey: string;
  readKey: string;
}

/** Creates a project and returns its keys: the only time they exist in clear. */
export async function createProject(db: Database, name: string): Promise<ProjectKeys> {
  const writeKey = generateKey('write');
  const readKey = generateKey('read');
  const [row] = await db
    .insert(projects)
    .values({ name, writeKeyHash: hashKey(writeKey), readKeyHash: hashKey(readKey) })
    .returning({ id: projects.id });
  return { projectId: row!.id, writeKey, readKey };
}

const HASH_FIELD = { write: 'writeKeyHash', read: 'readKeyHash', admin: 'adminKeyHash' } as const satisfies Record<KeyKind, keyof typeof projects.$inferSelect>;

/** The project a key belongs to, if it is a live key of that kind. */
export async function findProjectIdByKey(db: Database, kind: KeyKind, key: string): Promise<string | undefined> {
  const column = projects[HASH_FIELD[kind]];
  const [row] = await db.select({ id: projects.id }).from(projects).where(eq(column, hashKey(key))).limit(1);
  return row?.id;
}

/**
 * Replaces a project's key of one kind, or makes its first admin key; the old key
 * stops working at once.
 */
export async function rotateKey(db: Database, projectId: string, kind: KeyKind): Promise<string | undefined> {
  const key = generateKey(kind);
  const rows = await db
    .update(projects)
    .set({ [HASH_FIELD[kind]]: hashKey(key) })
    .where(eq(projects.id, projectId))
    .returning({ id: projects.id });
  return rows.length > 0 ? key : undefined;
}

export function listProjects(db: Database) {
  return db
    .select({ id: projects.id, name: projects.name, createdAt: projects.createdAt })
    .from(projects)
    .orderBy(projects.createdAt);
}
