import { luaScript } from '@redwing/redis';

/**
 * createSession — store a new session hash and add it to its user's index, atomically.
 *
 * KEYS[1]  session hash `<prefix>:session:{<tag>}:s:<ref>`
 * KEYS[2]  the user's index, a sorted set `<prefix>:session:{<tag>}:u:<user hash>` (same hash tag)
 * ARGV[1]  now, ms since the epoch
 * ARGV[2]  idle timeout, ms (the hash expires at the absolute deadline instead when that comes first)
 * ARGV[3]  absolute deadline, ms since the epoch (the index score)
 * ARGV[4]  the session's ref (index member)
 * ARGV[5]  '1' when the session has a user (index it), '0' for anonymous
 * ARGV[6]  key prefix of the user's session hashes (`<prefix>:session:{<tag>}:s:`), to drop stale index entries
 * ARGV[7…] field/value pairs of the hash
 *
 * Index cleanup without keyspace notifications: entries past their absolute deadline are removed by score,
 * and up to 64 of the oldest entries whose hash is gone (idle expiry) are removed; the index expires with its
 * last session. The hashes it checks share KEYS[2]'s hash tag, so it is one slot on Cluster.
 *
 * Returns the number of index entries removed as expired, or -1 when KEYS[1] already exists (never happens
 * with 256-bit random ids; the caller retries with a new id).
 */
export const createSessionScript = luaScript<number>({
  name: 'sessionCreate',
  numberOfKeys: 2,
  codes: { [-1]: 'a session with this id already exists' },
  lua: `
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
local now = tonumber(ARGV[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 7))
if tonumber(ARGV[3]) - now <= tonumber(ARGV[2]) then
  redis.call('PEXPIREAT', KEYS[1], ARGV[3])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
local cleaned = 0
if ARGV[5] == '1' then
  cleaned = redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  local refs = redis.call('ZRANGE', KEYS[2], 0, 63)
  for _, r in ipairs(refs) do
    if redis.call('EXISTS', ARGV[6] .. r) == 0 then
      redis.call('ZREM', KEYS[2], r)
      cleaned = cleaned + 1
    end
  end
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
  local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', KEYS[2], last[2])
end
return cleaned
`,
});
