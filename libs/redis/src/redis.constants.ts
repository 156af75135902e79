/** Name of the client described by the top-level options. */
export const DEFAULT_CLIENT = 'default';

/** @internal Prefix of the injection tokens of raw ioredis connections. */
export const REDIS_TOKEN_PREFIX = 'REDWING_REDIS_CLIENT:';
