import { ConfigError } from '@tally/config';

/** A failure the user can fix; its message is the one sentence the CLI prints. */
export class CliError extends Error {
  override name = 'CliError';
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', '57P03']);

/** `host:port` of a connection string, never its credentials. */
export function hostOf(url: string, defaultPort: number): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || defaultPort}`;
  } catch {
    return '(unparsable URL)';
  }
}

function databaseName(url: string): string {
  try {
    return decodeURIComponent(new URL(url).pathname.slice(1));
  } catch {
    return '';
  }
}

/** Drizzle wraps driver errors (with the SQL in the message); the driver's error is what explains. */
function rootCause(error: unknown): unknown {
  let current = error;
  for (let depth = 0; depth < 5 && current instanceof Error && current.cause !== undefined; depth++) current = current.cause;
  return current;
}

function codeOf(error: unknown): string | undefined {
  const { code, errors } = (error ?? {}) as { code?: unknown; errors?: unknown[] };
  if (typeof code === 'string') return code;
  // Node reports a refused connection to a name with several addresses as an AggregateError.
  return Array.isArray(errors) && errors.length > 0 ? codeOf(errors[0]) : undefined;
}

/**
 * The one sentence printed for a failed command: what went wrong and what to do,
 * without a stack. Postgres errors are recognised by their codes; anything
 * unforeseen is reported by its message (the stack goes to the debug log).
 */
export function explain(error: unknown, databaseUrl: string | undefined): string {
  if (error instanceof CliError) return error.message;
  // One line: the variables and what is wrong with each.
  if (error instanceof ConfigError) return error.message.replace(/:?\n\s+/g, (gap) => (gap.startsWith(':') ? ': ' : '; '));
  const cause = rootCause(error);
  const code = codeOf(cause);
  const message = cause instanceof Error ? cause.message : String(cause);
  if (databaseUrl !== undefined && code !== undefined) {
    const host = hostOf(databaseUrl, 5432);
    if (UNREACHABLE.has(code)) {
      return (
        `Cannot reach Postgres at ${host} (${code}): Postgres must be running there, ` +
        'or start one with `docker compose -f infra/docker-compose.yml up -d` (or point DATABASE_URL at yours).'
      );
    }
    if (code === '3D000') {
      return `Database "${databaseName(databaseUrl)}" does not exist on ${host}; create and migrate it with \`pnpm tally migrate\`.`;
    }
    if (code === '42P01' || code === '42883') {
      return `The database "${databaseName(databaseUrl)}" on ${host} is not migrated; run \`pnpm tally migrate\`.`;
    }
    if (code === '28P01' || code === '28000') {
      return `Postgres at ${host} refused the user or password in DATABASE_URL.`;
    }
  }
  return `Unexpected error: ${message.split('\n')[0]}`;
}
