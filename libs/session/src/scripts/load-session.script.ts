import { luaScript } from '@redwing/redis';

/**
 * loadSession — read a session hash and, at most once per touch interval, extend its idle expiry.
 *
 * KEYS[1]  session hash
 * ARGV[1]  now, ms since the epoch
 * ARGV[2]  idle timeout, ms
 * ARGV[3]  touch interval, ms: extend only when the TTL is at least this much below the idle timeout
 * ARGV[4]  '1' to allow the rolling refresh, '0' to only read
 *
 * The TTL is set to the idle timeout, or to expire exactly at the absolute deadline in field `_a` (PEXPIREAT)
 * when that comes first, so it never exceeds the remaining absolute lifetime (also repaired when it does, or
 * when the hash has none).
 *
 * Returns {0} missing; {2} past its absolute deadline (deleted); {3} no `_a` field (corrupt);
 * {1, pttl, field1, value1, …} found.
 */
export const loadSessionScript = luaScript<[number, number?, ...string[]]>({
  name: 'sessionLoad',
  numberOfKeys: 1,
  lua: `
local h = redis.call('HGETALL', KEYS[1])
if #h == 0 then return {0} end
local abs
for i = 1, #h, 2 do
  if h[i] == '_a' then abs = tonumber(h[i + 1]) break end
end
if not abs then return {3} end
local remaining = abs - tonumber(ARGV[1])
if remaining <= 0 then
  redis.call('DEL', KEYS[1])
  return {2}
end
local pttl = redis.call('PTTL', KEYS[1])
local idle = tonumber(ARGV[2])
local desired = math.min(idle, remaining)
if pttl < 0 or pttl > remaining or (ARGV[4] == '1' and desired - pttl >= tonumber(ARGV[3])) then
  if remaining <= idle then redis.call('PEXPIREAT', KEYS[1], abs) else redis.call('PEXPIRE', KEYS[1], idle) end
  pttl = desired
end
return {1, pttl, unpack(h)}
`,
});
