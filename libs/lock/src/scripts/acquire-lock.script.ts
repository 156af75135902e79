import { luaScript } from '@redwing/redis';
import { NEXT_FENCE_LUA } from './fence-preamble';

/**
 * Takes a free lock and issues its fencing token; when the lock is held, says for how long and (optionally)
 * registers the caller's process as waiting, so the holder's release publishes a wake-up.
 *
 * KEYS[1]  lock key (`<prefix>:lock:{<resource>}`)
 * KEYS[2]  fence counter (`<prefix>:lock:{<resource>}:fence`)
 * KEYS[3]  set of waiting processes (`<prefix>:lock:{<resource>}:waiting`)
 * ARGV[1]  owner value (unique per acquisition)
 * ARGV[2]  lease, ms
 * ARGV[3]  waiter id of this process, or '' to not register as waiting
 * ARGV[4]  lifetime of the fence counter after this acquisition, ms
 * ARGV[5]  tokens to reserve (≥ 1): the grant's token and the next ones, for local hand-overs
 * Returns  {1, fence} granted (the first token of the reserved block); {0, pttl} held by another owner for pttl more ms (0 when it has no TTL).
 */
export const acquireLockScript = luaScript<[1, number] | [0, number]>({
  name: 'redwingLockAcquire',
  numberOfKeys: 3,
  lua: `
-- redwing lock: acquire-lock (KEYS lock, fence, waiting; ARGV owner, ttl, waiter|'', fenceTtl, reserve) -> {1,fence}|{0,pttl}
local pttl = redis.call('PTTL', KEYS[1])
if pttl ~= -2 then
  if pttl < 0 then pttl = 0 end
  if ARGV[3] ~= '' then
    redis.call('SADD', KEYS[3], ARGV[3])
    redis.call('PEXPIRE', KEYS[3], pttl + 1000)
  end
  return {0, pttl}
end
local fenceKey, fenceTtl, reserve = KEYS[2], ARGV[4], tonumber(ARGV[5])
${NEXT_FENCE_LUA}
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {1, nextFence()}
`,
});
