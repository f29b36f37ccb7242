import { UnrecoverableError, type Job } from 'bullmq';
import { TypeGuard, type TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { Value } from '@sinclair/typebox/value';
import { describeErrors, jobPayloads, type JobName } from '@tally/contracts';
import { JOBS, type QueueName } from '@tally/queue';
import type { JobHandlers } from './handlers.js';

type PayloadChecks = { [N in JobName]: TypeCheck<(typeof jobPayloads)[N]> };
const payloadChecks = Object.fromEntries(
  Object.entries(jobPayloads).map(([name, schema]) => [name, TypeCompiler.Compile(schema)]),
) as PayloadChecks;

/**
 * What is wrong with a payload, for the job's failed reason. Of a payload that may
 * take one of several forms, the errors against the form it comes closest to: "the
 * second event has no eventType", not "matches none of the forms".
 */
function payloadErrors(schema: TSchema, payload: unknown): string[] {
  const forms = TypeGuard.IsUnion(schema) ? schema.anyOf : [schema];
  const candidates = forms.map((form) => describeErrors(Value.Errors(form, payload), 'payload'));
  return candidates.reduce((closest, errors) => (errors.length < closest.length ? errors : closest));
}

export function isJobName(name: string): name is JobName {
  return Object.hasOwn(jobPayloads, name);
}

/**
 * The BullMQ processor of one queue: checks the job's name and payload, then runs
 * its handler. A job that can never succeed (unknown name, invalid payload) throws
 * UnrecoverableError, so it fails once instead of using up its retries.
 */
export function createProcessor(queue: QueueName, handlers: JobHandlers) {
  return async (job: Job): Promise<unknown> => {
    const name = job.name;
    if (!isJobName(name) || JOBS[name].queue !== queue) {
      throw new UnrecoverableError(`No handler for job "${name.slice(0, 100)}" on queue "${queue}"`);
    }
    const check = payloadChecks[name];
    if (!check.Check(job.data)) {
      const errors = payloadErrors(jobPayloads[name], job.data);
      const more = errors.length > 5 ? ` (and ${errors.length - 5} more)` : '';
      throw new UnrecoverableError(`Invalid ${name} payload: ${errors.slice(0, 5).join('; ')}${more}`);
    }
    // The name and the payload were just checked to match, which TypeScript cannot follow.
    const handler = handlers[name] as (payload: unknown, job: Job) => Promise<unknown>;
    return handler(job.data, job);
  };
}
