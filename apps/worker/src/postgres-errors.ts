import pg from 'pg';

/** The SQLSTATE of an error Postgres reported (Node's socket errors also have a `code`, like EPIPE). */
export function sqlState(error: unknown): string | undefined {
  return error instanceof pg.DatabaseError ? error.code : undefined;
}

/**
 * Whether an error says "Postgres is not reachable now" rather than "this job is
 * wrong": refused or dropped connections, and the SQLSTATE classes of connection
 * exceptions (08), shutdowns and restarts (57P), and exhausted resources (53).
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  const state = sqlState(error);
  if (state) return state.startsWith('08') || state.startsWith('57P') || state.startsWith('53');
  const code = (error as { code?: unknown } | null)?.code;
  // Socket errors from Node (ECONNREFUSED, ECONNRESET, ETIMEDOUT, EAI_AGAIN…), not its ERR_* programming errors.
  if (typeof code === 'string' && /^E(?!RR_)[A-Z_]+$/.test(code)) return true;
  const message = error instanceof Error ? error.message : '';
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(message);
}
