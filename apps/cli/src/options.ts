import { InvalidArgumentError } from 'commander';

/** Parsers for option values: a bad value is a usage error naming the option. */

export function wholeNumber(min: number, max: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
      throw new InvalidArgumentError(`Expected a whole number from ${min} to ${max}.`);
    }
    return Number(value);
  };
}

export function projectName(value: string): string {
  const name = value.trim();
  if (name.length === 0) throw new InvalidArgumentError('A project needs a name.');
  if (name.length > 200) throw new InvalidArgumentError('A project name has at most 200 characters.');
  return name;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function projectId(value: string): string {
  if (!UUID.test(value)) throw new InvalidArgumentError('Expected a project id (a UUID, as `pnpm tally project list` shows).');
  return value.toLowerCase();
}

/** As the ingest API accepts them (1 to 128 characters), compared exactly: no trimming. */
export function experimentId(value: string): string {
  if (value.length === 0 || value.length > 128) throw new InvalidArgumentError('Expected an experiment id of 1 to 128 characters.');
  return value;
}
