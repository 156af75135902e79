import { luaScript } from '@redwing/redis';

/**
 * listUserSessions — the live sessions of a user, cleaning the index on the way.
 *
 * KEYS[1]  the user's index (sorted set of refs scored by absolute deadline)
 * ARGV[1]  key prefix of the user's session hashes (same hash tag as KEYS[1])
 * ARGV[2]  now, ms since the epoch
 *
 * Entries past their deadline and entries whose hash is gone (idle expiry) are removed.
 * Returns {cleaned, {ref1, pttl1, meta1, ref2, …}} where meta is the encrypted `_m` field.
 */
export const listUserSessionsScript = luaScript<[number, Array<string | number>]>({
  name: 'sessionList',
  numberOfKeys: 1,
  lua: `
local cleaned = redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local refs = redis.call('ZRANGE', KEYS[1], 0, -1)
local out = {}
for _, r in ipairs(refs) do
  local k = ARGV[1] .. r
  local m = redis.call('HGET', k, '_m')
  if m then
    out[#out + 1] = r
    out[#out + 1] = redis.call('PTTL', k)
    out[#out + 1] = m
  else
    redis.call('ZREM', KEYS[1], r)
    cleaned = cleaned + 1
  end
end
return {cleaned, out}
`,
});
