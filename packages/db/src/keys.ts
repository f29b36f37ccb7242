import { createHash, randomBytes } from 'node:crypto';

export type KeyKind = 'write' | 'read';

const PREFIX: Record<KeyKind, string> = { write: 'tly_w_', read: 'tly_r_' };

/** 256 random bits; the prefix tells a leaked key's kind at a glance (and to secret scanners). */
export function generateKey(kind: KeyKind): string {
  return PREFIX[kind] + randomBytes(32).toString('base64url');
}

export function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

export function keyKind(key: string): KeyKind | undefined {
  if (key.startsWith(PREFIX.write)) return 'write';
  if (key.startsWith(PREFIX.read)) return 'read';
  return undefined;
}
