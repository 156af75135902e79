/**
 * A value is larger than `maxValueSize` once serialized. Nothing was written; cache less (a page, not the
 * whole list) or raise `maxValueSize`.
 */
export class CacheValueTooLargeError extends Error {
  override readonly name = 'CacheValueTooLargeError';

  constructor(
    readonly key: string,
    readonly size: number,
    readonly maxValueSize: number,
  ) {
    super(
      `Cache value for key "${truncate(key)}" is ${size} bytes serialized, over maxValueSize (${maxValueSize} bytes); ` +
        `nothing was stored. Cache a smaller value or raise CacheModule.forRoot({ maxValueSize }).`,
    );
  }
}

/** A value cannot be serialized (e.g. it is circular). Nothing was written. */
export class CacheSerializationError extends Error {
  override readonly name = 'CacheSerializationError';

  constructor(
    readonly key: string,
    cause: unknown,
  ) {
    super(
      `Cache value for key "${truncate(key)}" cannot be serialized (${cause instanceof Error ? cause.message : String(cause)}); ` +
        `nothing was stored. Cache plain data: objects, arrays, strings, numbers, Date, Map, Set, BigInt, Buffer.`,
      { cause },
    );
  }
}

/** `CacheModule` options are invalid; `field` names the option. Thrown at start-up. */
export class CacheConfigError extends Error {
  override readonly name = 'CacheConfigError';

  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`Invalid cache configuration: ${field} ${message}`);
  }
}

function truncate(key: string): string {
  return key.length > 120 ? `${key.slice(0, 117)}...` : key;
}
