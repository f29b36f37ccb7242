import type { FastifyInstance, FastifyRequest } from 'fastify';
import { findProjectIdByKey, hashKey, keyKind, keyPrefix, type Database, type KeyKind } from '@tally/db';
import { HttpError } from '@tally/server';

/** Generated keys are ~50 characters; anything much longer is not a key and never reaches the database. */
const MAX_KEY_LENGTH = 200;
const BEARER = /^Bearer[ \t]+([^\s]+)[ \t]*$/i;

export interface KeyResolver {
  /** The project whose live key of this kind it is, or undefined. */
  projectOf: (kind: KeyKind, key: string) => Promise<string | undefined>;
}

/**
 * Read keys found in the database are remembered for `ttlMs`, so a dashboard that
 * polls does not cost a lookup per request; a rotated key is refused after at most
 * that long. Unknown keys are not remembered: a key made a moment ago works at
 * once. Entries are held by the key's hash, never the key itself.
 *
 * Write and admin keys are looked up every time: a write key here only earns a
 * 403, and admin keys are used rarely and must stop working the moment they are
 * rotated.
 */
export function createKeyResolver(db: Database, options: { ttlMs: number; maxEntries?: number }): KeyResolver {
  const maxEntries = options.maxEntries ?? 10_000;
  const cache = new Map<string, { projectId: Promise<string | undefined>; expiresAt: number }>();

  function projectOfReadKey(key: string): Promise<string | undefined> {
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
  }

  return {
    projectOf: (kind, key) => (kind === 'read' ? projectOfReadKey(key) : findProjectIdByKey(db, kind, key)),
  };
}

const projectIds = new WeakMap<FastifyRequest, string>();

/** The project of the key the request was authenticated with. */
export function projectIdOf(request: FastifyRequest): string {
  const projectId = projectIds.get(request);
  if (projectId === undefined) throw new Error('route is not behind requireKey');
  return projectId;
}

/** What each kind of key is for, to tell its holder why it was refused. */
const CAN = { write: 'can only send events', read: 'can only read results and settings', admin: 'can only read and change experiment settings' };
const NAME = { write: 'write key', read: 'read key', admin: 'admin key' };

/**
 * Puts every route of `scope` behind a project key of one of the kinds
 * `accepted(request)` returns (the first is the one named in messages). A live
 * key of another kind gets 403 saying which key is needed; anything else 401.
 */
export function requireKey(
  scope: FastifyInstance,
  keys: KeyResolver,
  accepted: (request: FastifyRequest) => readonly [KeyKind, ...KeyKind[]],
  purpose: (request: FastifyRequest) => string,
): void {
  scope.addHook('onRequest', async (request, reply) => {
    const kinds = accepted(request);
    const wanted = kinds[0];
    const refuse = (status: 401 | 403, message: string): never => {
      if (status === 401) void reply.header('www-authenticate', 'Bearer realm="tally-query"');
      throw new HttpError(status, message);
    };

    const header = request.headers.authorization;
    const key = header === undefined ? undefined : BEARER.exec(header)?.[1];
    if (key === undefined) {
      return refuse(401, `Send the project's ${NAME[wanted]} in the header \`Authorization: Bearer <${NAME[wanted]}>\`.`);
    }
    const kind = keyKind(key);
    // A key without a known prefix is looked up as the wanted kind: it can only miss, but then a
    // miss costs the same whatever was sent.
    const projectId = key.length <= MAX_KEY_LENGTH ? await keys.projectOf(kind ?? wanted, key) : undefined;
    if (projectId !== undefined && kind !== undefined) {
      if (kinds.includes(kind)) {
        projectIds.set(request, projectId);
        return;
      }
      return refuse(
        403,
        `This is the project's ${NAME[kind]}, which ${CAN[kind]}. ${purpose(request)} needs the project's ${NAME[wanted]} ` +
          `(it starts with ${keyPrefix(wanted)}).`,
      );
    }
    return refuse(
      401,
      `Unknown ${NAME[wanted]}. Use the ${NAME[wanted]} printed when the project was made or its key was last rotated` +
        (wanted === 'admin' ? ' (`pnpm tally project rotate-key --project <id> --kind admin` makes one).' : '.'),
    );
  });
}

/** Puts every route of `scope` behind a project read key. */
export function requireReadKey(scope: FastifyInstance, keys: KeyResolver): void {
  requireKey(scope, keys, () => ['read'], () => 'Reading results');
}
