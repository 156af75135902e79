import { luaScript } from '@redwing/redis';

/**
 * updateSession — set and delete data fields of a live session, never re-creating a deleted one. Each call
 * touches only its own fields, so concurrent updates of different fields all land (field-level, race-safe).
 *
 * KEYS[1]          session hash
 * ARGV[1]          now, ms since the epoch
 * ARGV[2]          n, the number of field/value pairs to set
 * ARGV[3…2+2n]     field/value pairs
 * ARGV[3+2n…]      fields to delete
 *
 * Returns 1 when applied, 0 when the session is missing or past its absolute deadline (`_a`).
 */
export const updateSessionScript = luaScript<0 | 1>({
  name: 'sessionUpdate',
  numberOfKeys: 1,
  lua: `
local abs = tonumber(redis.call('HGET', KEYS[1], '_a'))
if not abs or abs <= tonumber(ARGV[1]) then return 0 end
local n = tonumber(ARGV[2])
if n > 0 then redis.call('HSET', KEYS[1], unpack(ARGV, 3, 2 + 2 * n)) end
if #ARGV > 2 + 2 * n then redis.call('HDEL', KEYS[1], unpack(ARGV, 3 + 2 * n)) end
return 1
`,
});
