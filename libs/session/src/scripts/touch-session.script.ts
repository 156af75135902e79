import { luaScript } from '@redwing/redis';

/**
 * touchSession — extend a session's idle expiry now, capped by its absolute deadline.
 *
 * KEYS[1]  session hash
 * ARGV[1]  now, ms since the epoch
 * ARGV[2]  idle timeout, ms
 *
 * Returns the new TTL in ms, or 0 when the session is missing or past its absolute deadline (then deleted).
 */
export const touchSessionScript = luaScript<number>({
  name: 'sessionTouch',
  numberOfKeys: 1,
  lua: `
local abs = tonumber(redis.call('HGET', KEYS[1], '_a'))
if not abs then return 0 end
local remaining = abs - tonumber(ARGV[1])
if remaining <= 0 then
  redis.call('DEL', KEYS[1])
  return 0
end
local idle = tonumber(ARGV[2])
if remaining <= idle then
  redis.call('PEXPIREAT', KEYS[1], abs)
  return remaining
end
redis.call('PEXPIRE', KEYS[1], idle)
return idle
`,
});
