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

/** A display name as people read it: surrounding spaces dropped, 1 to 200 characters. */
export function displayName(value: string): string {
  const name = value.trim();
  if (name.length === 0) throw new InvalidArgumentError('A name must not be empty (use --no-name to remove it).');
  if (name.length > 200) throw new InvalidArgumentError('A name has at most 200 characters.');
  return name;
}

/** As the ingest API accepts variant keys (1 to 128 characters), compared exactly. */
export function variantKey(value: string): string {
  if (value.length === 0 || value.length > 128) throw new InvalidArgumentError('Expected a variant key of 1 to 128 characters.');
  return value;
}

const WEIGHT = /^(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/;

/**
 * `a=0.5,b=0.5`: variant keys and their weights (relative, 0 or more). Spaces around
 * the separators are ignored; a variant key may itself contain `=` (the last one
 * separates the weight), but not a comma.
 */
export function variantWeights(value: string): Record<string, number> {
  const weights = new Map<string, number>();
  for (const part of value.split(',')) {
    const separator = part.lastIndexOf('=');
    const variant = part.slice(0, Math.max(0, separator)).trim();
    const weight = part.slice(separator + 1).trim();
    if (separator < 0 || variant === '' || weight === '') {
      throw new InvalidArgumentError(`Expected variant=weight pairs separated by commas, as a=0.5,b=0.5; ${JSON.stringify(part.trim())} is not one.`);
    }
    if (!WEIGHT.test(weight)) {
      throw new InvalidArgumentError(`The weight of ${JSON.stringify(variant)} must be a number of 0 or more, not ${JSON.stringify(weight)}.`);
    }
    if (weights.has(variant)) throw new InvalidArgumentError(`Variant ${JSON.stringify(variant)} is given twice.`);
    weights.set(variant, Number(weight));
  }
  // From a Map, so that a variant called "__proto__" is a key like any other.
  return Object.fromEntries(weights);
}
