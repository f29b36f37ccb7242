import type { FastifySchemaCompiler } from 'fastify';
import type { TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { describeErrors } from '@tally/contracts';

/**
 * Validates route parts with TypeBox itself rather than Ajv: no type coercion (the
 * server's Ajv would turn `"events": "x"` into `["x"]`), and the errors read as the
 * same sentences as the per-event ones ("events: is required").
 */
export const typeboxValidator: FastifySchemaCompiler<TSchema> = ({ schema }) => {
  const checker = TypeCompiler.Compile(schema);
  return (value: unknown) => {
    if (checker.Check(value)) return { value };
    const problems = describeErrors(checker.Errors(value), 'body').map((message) => ({ message, instancePath: '' }));
    return { error: problems as never };
  };
};
