import { luaScript } from '@redwing/redis';
import { NEXT_FENCE_LUA } from './fence-preamble';

/**
 * Release and re-grant in one round trip (single-authority mode only): when the caller owns the lock and no
 * *other* process is registered as waiting, the lock passes to the caller's next local waiter with a new
 * owner value and a new fencing token. With other processes waiting it is released as usual and they are
 * woken, so one process cannot keep a contended lock to itself. The PUBLISH is a `pcall`: refused (an ACL without
 * the channel), the release still succeeds and the waiters wake at their next poll.
 *
 * KEYS[1]  lock key
 * KEYS[2]  fence counter
 * KEYS[3]  set of waiting processes
 * ARGV[1]  current owner value
 * ARGV[2]  next owner value
 * ARGV[3]  next lease, ms
 * ARGV[4]  waiter id of this process
 * ARGV[5]  lifetime of the fence counter, ms
 * ARGV[6]  release channel
 * ARGV[7]  message: the lock key
 * ARGV[8]  tokens to reserve (≥ 1) for further local hand-overs
 * Returns  {1, fence} handed off; {2, 0} released (other processes wait; they were woken);
 *          {0, 0} not the owner (nothing changed).
 */
export const handoffLockScript = luaScript<[0 | 1 | 2, number]>({
  name: 'redwingLockHandoff',
  numberOfKeys: 3,
  lua: `
-- redwing lock: handoff-lock (KEYS lock, fence, waiting; ARGV owner, next, ttl, waiter, fenceTtl, channel, message, reserve)
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {0, 0} end
local n = redis.call('SCARD', KEYS[3])
if n > 1 or (n == 1 and redis.call('SISMEMBER', KEYS[3], ARGV[4]) == 0) then
  redis.call('DEL', KEYS[1], KEYS[3])
  redis.pcall('PUBLISH', ARGV[6], ARGV[7])
  return {2, 0}
end
local fenceKey, fenceTtl, reserve = KEYS[2], ARGV[5], tonumber(ARGV[8])
${NEXT_FENCE_LUA}
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return {1, nextFence()}
`,
});
