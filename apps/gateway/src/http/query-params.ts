import { BadRequestException } from '@nestjs/common';

/**
 * Query-string readers that hold for every shape a query value arrives in. Both adapters turn a repeated
 * parameter (`?a=1&a=2`) into an array, and Express's parser may give an object (`?a[b]=1`); a route that
 * assumes a string then fails with a 500. Read every query parameter through one of these.
 */

/**
 * A parameter that takes one value: the string, or undefined when absent.
 * @throws BadRequestException (400) when it is given more than once or not as a plain value
 */
export function singleQuery(name: string, value: unknown): string | undefined {
  if (value === undefined || typeof value === 'string') return value;
  throw new BadRequestException(`${name} must be given once, as a plain value`);
}

/**
 * A list parameter, given as a comma list, repeated, or both (`?names=a,b&names=c`): the trimmed, non-empty
 * items, or undefined when absent.
 * @throws BadRequestException (400) when a value is not a plain string (e.g. `?names[x]=1`)
 */
export function listQuery(name: string, value: unknown): string[] | undefined {
  if (value === undefined) return undefined;
  const values = Array.isArray(value) ? (value as unknown[]) : [value];
  if (!values.every((v): v is string => typeof v === 'string')) {
    throw new BadRequestException(`${name} must be a comma-separated list or a repeated parameter`);
  }
  return values
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter(Boolean);
}
