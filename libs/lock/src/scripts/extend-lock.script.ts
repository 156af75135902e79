import { luaScript } from '@redwing/redis';

/**
 * Renews a lease only if the caller still owns the lock.
 *
 * KEYS[1]  lock key
 * ARGV[1]  owner value
 * ARGV[2]  new lease, ms (from now)
 * Returns  1 extended; 0 not the owner (expired, or taken by another owner).
 */
export const extendLockScript = luaScript<0 | 1>({
  name: 'redwingLockExtend',
  numberOfKeys: 1,
  lua: `
-- redwing lock: extend-lock (KEYS lock; ARGV owner, ttl) -> 1 extended | 0 not owner
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`,
});
