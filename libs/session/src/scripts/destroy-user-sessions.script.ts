import { luaScript } from '@redwing/redis';

/**
 * destroyUserSessions — "log out everywhere": delete every session in a user's index, atomically.
 *
 * KEYS[1]  the user's index (sorted set of refs)
 * ARGV[1]  key prefix of the user's session hashes (`<prefix>:session:{<tag>}:s:`; same hash tag as KEYS[1])
 * ARGV[2]  a ref to keep (the current session for "log out other sessions"), or '' for none
 *
 * Returns the refs of the sessions deleted.
 */
export const destroyUserSessionsScript = luaScript<string[]>({
  name: 'sessionDestroyUser',
  numberOfKeys: 1,
  lua: `
local refs = redis.call('ZRANGE', KEYS[1], 0, -1)
local out = {}
for _, r in ipairs(refs) do
  if r ~= ARGV[2] then
    if redis.call('DEL', ARGV[1] .. r) == 1 then out[#out + 1] = r end
    redis.call('ZREM', KEYS[1], r)
  end
end
return out
`,
});
