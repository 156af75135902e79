import { luaScript } from '@redwing/redis';

/**
 * destroySession — delete one session and its entry in the user's index.
 *
 * KEYS[1]  session hash
 * KEYS[2]  the user's index (same hash tag; any name of that tag for an anonymous session)
 * ARGV[1]  the session's ref
 *
 * Returns 1 when the session existed, else 0.
 */
export const destroySessionScript = luaScript<0 | 1>({
  name: 'sessionDestroy',
  numberOfKeys: 2,
  lua: `
redis.call('ZREM', KEYS[2], ARGV[1])
return redis.call('DEL', KEYS[1])
`,
});
