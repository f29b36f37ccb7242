import type { FastifyError, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify';
import { setSecurityHeaders } from './security-headers.js';

type SchemaErrorFormatter = NonNullable<FastifyServerOptions['schemaErrorFormatter']>;

const WHERE: Record<string, string> = { querystring: 'query parameter', params: 'path parameter', body: 'field' };

const withArticle = (type: string) => (/^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`);

/**
 * Sentences for invalid parameters: "querystring: goal must be at most 128
 * characters long", not Ajv's "querystring/goal must NOT have more than 128
 * characters". The message starts with the part of the request, as the shared
 * error handler expects.
 */
export const describeSchemaErrors: SchemaErrorFormatter = (errors, dataVar) => {
  const error = errors[0];
  const where = WHERE[dataVar] ?? dataVar;
  if (!error) return new Error(`${dataVar}: is not valid`);
  const field = fieldName(error.instancePath);
  const params = error.params as Record<string, unknown>;
  let sentence: string;
  switch (error.keyword) {
    case 'additionalProperties':
      sentence = `${String(params.additionalProperty)} is not a known ${where}`;
      break;
    case 'required':
      sentence = `${String(params.missingProperty)} is a required ${where}`;
      break;
    case 'minLength':
      sentence = params.limit === 1 ? `${field} must not be empty` : `${field} must be at least ${String(params.limit)} characters long`;
      break;
    case 'maxLength':
      sentence = `${field} must be at most ${String(params.limit)} characters long`;
      break;
    case 'enum':
      sentence = `${field} must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
      break;
    case 'format':
      sentence =
        params.format === 'date-time'
          ? `${field} must be a date-time with a time zone, as 2025-01-10T00:00:00Z (RFC 3339)`
          : `${field} must be a ${String(params.format)}`;
      break;
    case 'type': {
      const type = String(params.type);
      if (dataVar === 'body') {
        // A nullable field fails its first branch first; the union's other branch is null.
        const nullable = errors.some((e) => e.keyword === 'type' && e.params.type === 'null' && e.instancePath === error.instancePath);
        sentence = field ? `${field} must be ${withArticle(type)}${nullable ? ' or null' : ''}` : `must be ${withArticle(type === 'object' ? 'JSON object' : type)}`;
      } else if (type === 'number' || type === 'integer') {
        sentence = `${field} must be one ${type}, such as ${type === 'number' ? '0.05' : '10'}`;
      } else {
        sentence = `${field} must be a single ${type} (give it once)`;
      }
      break;
    }
    case 'minimum':
      sentence = `${field} must be at least ${String(params.limit)}`;
      break;
    case 'maximum':
      sentence = `${field} must be at most ${String(params.limit)}`;
      break;
    case 'exclusiveMinimum':
      sentence = `${field} must be greater than ${String(params.limit)}`;
      break;
    case 'exclusiveMaximum':
      sentence = `${field} must be less than ${String(params.limit)}`;
      break;
    case 'minProperties':
      sentence = `${field} must have at least ${String(params.limit)} ${params.limit === 1 ? 'entry' : 'entries'}`;
      break;
    case 'maxProperties':
      sentence = `${field} must have at most ${String(params.limit)} entries`;
      break;
    default:
      sentence = `${field || where} ${error.message ?? 'is not valid'}`;
  }
  return new Error(`${dataVar}: ${sentence}.`);
};

/** `/weights/a~1b` (a JSON pointer) as `weights["a/b"]`; plain names as `weights.a`. */
function fieldName(pointer: string): string {
  if (pointer === '') return '';
  const [first = '', ...rest] = pointer.slice(1).split('/').map((part) => part.replaceAll('~1', '/').replaceAll('~0', '~'));
  return first + rest.map((part) => (/^[A-Za-z_][\w-]*$/.test(part) ? `.${part}` : `[${JSON.stringify(part)}]`)).join('');
}

/**
 * Errors the router raises before any route runs would otherwise be written raw,
 * without the usual body or headers (no hook runs for them).
 */
export function describeFrameworkErrors(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const message =
    error.code === 'FST_ERR_MAX_PARAM_LENGTH'
      ? 'A path segment is too long: an experiment id has at most 128 characters.'
      : error.code === 'FST_ERR_BAD_URL'
        ? 'The URL path is not valid percent-encoding: encode the experiment id once, as encodeURIComponent does.'
        : error.message;
  setSecurityHeaders(reply, request.url);
  void reply.status(400).send({ statusCode: 400, error: 'Bad Request', message });
}

/**
 * Long enough for any experiment id the schema accepts, however it is
 * percent-encoded (up to 9 characters for one UTF-16 unit); the schema then says
 * what is wrong with a long one.
 */
export const MAX_PARAM_LENGTH = 128 * 9;
