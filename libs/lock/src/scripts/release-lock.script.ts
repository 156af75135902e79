import { luaScript } from '@redwing/redis';

/**
 * Deletes a lock only if the caller still owns it (owner value matches), and wakes waiting processes with
 * one PUBLISH when any registered; a lock that expired or was re-acquired by another owner is untouched.
 * The PUBLISH is a `pcall`: refused (an ACL without the channel), the release still succeeds and the waiters
 * wake at their next poll.
 *
 * KEYS[1]  lock key
 * KEYS[2]  set of waiting processes
 * ARGV[1]  owner value
 * ARGV[2]  release channel (`<prefix>:lock:released`)
 * ARGV[3]  message: the lock key
 * Returns  1 released; 0 not the owner (nothing deleted, nothing published).
 */
export const releaseLockScript = luaScript<0 | 1>({
  name: 'redwingLockRelease',
  numberOfKeys: 2,
  lua: `
-- redwing lock: release-lock (KEYS lock, waiting; ARGV owner, channel, message) -> 1 released | 0 not owner
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
if redis.call('DEL', KEYS[2]) == 1 then redis.pcall('PUBLISH', ARGV[2], ARGV[3]) end
return 1
`,
});
