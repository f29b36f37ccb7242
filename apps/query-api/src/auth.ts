import type { FastifyInstance, FastifyRequest } from 'fastify';
import { findProjectIdByKey, hashKey, keyKind, type Database } from '@tally/db';
import { HttpError } from '@tally/server';

/** Generated keys are ~50 characters; anything much longer is not a key and never reaches the database. */
const MAX_KEY_LENGTH = 200;
const BEARER = /^Bearer[ \t]+([^\s]+)[ \t]*$/i;

export interface KeyResolver {
  /** The project whose read key this is, or undefined. */
  projectOfReadKey: (key: string) => Promise<string | undefined>;
  /** Whether the key is a live write key (to tell its holder which key to use instead). */
  isWriteKey: (key: string) => Promise<boolean>;
}

/**
 * Read keys found in the database are remembered for `ttlMs`, so a dashboard that
 * polls does not cost a lookup per request; a rotated key is refused after at most
 * that long. Unknown keys are not remembered: a key made a moment ago works at
 * once. Entries are held by the key's hash, never the key itself.
 */
export function createKeyResolver(db: Database, options: { ttlMs: number; maxEntries?: number }): KeyResolver {
  const maxEntries = options.maxEntries ?? 10_000;
  const cache = new Map<string, { projectId: Promise<string | undefined>; expiresAt: number }>();

  return {
    projectOfReadKey(key) {
      if (options.ttlMs === 0) return findProjectIdByKey(db, 'read', key);
      const id = hashKey(key);
      const now = Date.now();
      const hit = cache.get(id);
      if (hit && hit.expiresAt > now) return hit.projectId;
      if (hit) cache.delete(id);

      // Concurrent requests with the same key share one lookup.
      const projectId = findProjectIdByKey(db, 'read', key);
      cache.set(id, { projectId, expiresAt: now + options.ttlMs });
      if (cache.size > maxEntries) cache.delete(cache.keys().next().value!);
      projectId.then(
        (found) => {
          if (found === undefined && cache.get(id)?.projectId === projectId) cache.delete(id);
        },
        () => {
          if (cache.get(id)?.projectId === projectId) cache.delete(id);
        },
      );
      return projectId;
    },
    async isWriteKey(key) {
      return (await findProjectIdByKey(db, 'write', key)) !== undefined;
    },
  };
}

const projectIds = new WeakMap<FastifyRequest, string>();

/** The project of the read key the request was authenticated with. */
export function projectIdOf(request: FastifyRequest): string {
  const projectId = projectIds.get(request);
  if (projectId === undefined) throw new Error('route is not behind requireReadKey');
  return projectId;
}

/** Puts every route of `scope` behind a project read key. */
export function requireReadKey(scope: FastifyInstance, keys: KeyResolver): void {
  scope.addHook('onRequest', async (request, reply) => {
    const refuse = (status: 401 | 403, message: string): never => {
      if (status === 401) void reply.header('www-authenticate', 'Bearer realm="tally-query"');
      throw new HttpError(status, message);
    };

    const header = request.headers.authorization;
    const key = header === undefined ? undefined : BEARER.exec(header)?.[1];
    if (key === undefined) {
      return refuse(401, "Send the project's read key in the header `Authorization: Bearer <read key>`.");
    }
    if (key.length <= MAX_KEY_LENGTH) {
      if (keyKind(key) === 'write') {
        if (await keys.isWriteKey(key)) {
          return refuse(
            403,
            "This is the project's write key, which can only send events. Reading results needs the project's read key (it starts with tly_r_).",
          );
        }
      } else {
        const projectId = await keys.projectOfReadKey(key);
        if (projectId !== undefined) {
          projectIds.set(request, projectId);
          return;
        }
      }
    }
    return refuse(401, 'Unknown read key. Use the read key printed when the project was made or its key was last rotated.');
  });
}
