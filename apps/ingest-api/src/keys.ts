import { findProjectIdByKey, hashKey, type Database } from '@tally/db';
import type { Logger } from '@tally/logger';

export interface WriteKeyCacheOptions {
  /** How long a found key is trusted without asking Postgres again. */
  ttlMs: number;
  /** How long an unknown key is refused without asking again. */
  negativeTtlMs: number;
  /** A lookup that takes longer counts as Postgres being unreachable. */
  lookupTimeoutMs?: number;
  maxEntries?: number;
}

/** Postgres could not say whether the key is valid, and no earlier answer is known. */
export class KeyLookupUnavailable extends Error {
  override name = 'KeyLookupUnavailable';
}

export interface WriteKeyResolver {
  /** The project of a live write key, undefined for an unknown key; throws KeyLookupUnavailable. */
  projectOf: (key: string) => Promise<string | undefined>;
}

interface Entry<T> {
  value: T;
  expiresAt: number;
}

/**
 * Write keys are checked on every batch, so answers are remembered (by the key's
 * hash, never the key). Found keys outlive their TTL as a fallback: while Postgres
 * restarts, a key that worked a moment ago keeps working and the queue buffers the
 * events. Unknown keys are remembered only briefly and in a map of their own, so
 * someone trying keys neither reaches Postgres with each retry of the same key nor
 * pushes the good keys out.
 */
export function createWriteKeyResolver(db: Database, logger: Logger, options: WriteKeyCacheOptions): WriteKeyResolver {
  const maxEntries = options.maxEntries ?? 10_000;
  const lookupTimeoutMs = options.lookupTimeoutMs ?? 2_000;
  const found = new Map<string, Entry<string>>();
  const unknown = new Map<string, Entry<true>>();
  const inFlight = new Map<string, Promise<string | undefined>>();
  let postgresDown = false;

  const remember = <T>(map: Map<string, Entry<T>>, id: string, value: T, ttlMs: number) => {
    map.delete(id);
    map.set(id, { value, expiresAt: Date.now() + ttlMs });
    if (map.size > maxEntries) map.delete(map.keys().next().value!);
  };

  /** Asks Postgres (one query per key at a time, shared by concurrent batches) and remembers the answer. */
  const lookUp = (id: string, key: string): Promise<string | undefined> => {
    const pending = inFlight.get(id);
    if (pending) return pending;
    const lookup = withTimeout(findProjectIdByKey(db, 'write', key), lookupTimeoutMs).then(
      (projectId) => {
        if (postgresDown) logger.info('write key lookups work again');
        postgresDown = false;
        if (projectId === undefined) {
          found.delete(id);
          remember(unknown, id, true, options.negativeTtlMs);
        } else {
          unknown.delete(id);
          remember(found, id, projectId, options.ttlMs);
        }
        return projectId;
      },
      (err: unknown) => {
        if (!postgresDown) logger.warn({ err }, 'cannot look write keys up in Postgres; serving keys seen before');
        postgresDown = true;
        throw new KeyLookupUnavailable('Postgres did not answer');
      },
    );
    inFlight.set(id, lookup);
    const done = () => inFlight.delete(id);
    lookup.then(done, done);
    return lookup;
  };

  return {
    async projectOf(key) {
      const id = hashKey(key);
      const now = Date.now();
      const hit = found.get(id);
      if (hit && hit.expiresAt > now) return hit.value;
      const miss = unknown.get(id);
      if (miss && miss.expiresAt > now) return undefined;

      const lookup = lookUp(id, key);
      if (hit && postgresDown) {
        // Known outage: no batch waits for a lookup that is likely to time out; this one finds out when Postgres is back.
        lookup.catch(() => {});
        return hit.value;
      }
      try {
        return await lookup;
      } catch (error) {
        if (hit) return hit.value;
        throw error;
      }
    },
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
