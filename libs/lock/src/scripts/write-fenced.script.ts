import { luaScript } from '@redwing/redis';

/**
 * The check at the protected resource: stores `value` only if `token` is at least the highest token the
 * resource has accepted (the same holder may write several times; an older holder is refused).
 *
 * KEYS[1]  resource hash (`<prefix>:lock:fenced:{<name>}`, fields `f` token and `v` value)
 * ARGV[1]  fencing token of the writer
 * ARGV[2]  value
 * Returns  {1, token} accepted; {0, highest} refused: a newer holder has written.
 */
export const writeFencedScript = luaScript<[0 | 1, number]>({
  name: 'redwingLockWriteFenced',
  numberOfKeys: 1,
  lua: `
-- redwing lock: write-fenced (KEYS resource; ARGV token, value) -> {1,token} | {0,highest}
local highest = tonumber(redis.call('HGET', KEYS[1], 'f') or '0')
local token = tonumber(ARGV[1])
if token < highest then return {0, highest} end
redis.call('HSET', KEYS[1], 'f', ARGV[1], 'v', ARGV[2])
return {1, token}
`,
});
