import { createHash, randomBytes } from 'node:crypto';

/**
 * `write` sends events, `read` reads results, `admin` changes a project's
 * experiment settings. Each is its own secret, so a leaked read key (it sits in
 * dashboards and analysts' browsers) cannot change what the results mean.
 */
export type KeyKind = 'write' | 'read' | 'admin';

const PREFIX: Record<KeyKind, string> = { write: 'tly_w_', read: 'tly_r_', admin: 'tly_a_' };

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
  if (key.startsWith(PREFIX.admin)) return 'admin';
  return undefined;
}

/** How a key of this kind starts, for messages that tell a user which key to use. */
export function keyPrefix(kind: KeyKind): string {
  return PREFIX[kind];
}
