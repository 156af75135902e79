import { luaScript } from '@redwing/redis';

/**
 * Releases the lease of the cross-instance single-flight, only if it is still ours, and optionally wakes the
 * instances waiting for it (after a failed load, so they do not wait out their full `wait`). The PUBLISH is a
 * `pcall`: refused (an ACL without the channel), the lease is still released; waiters see it when their wait ends.
 *
 * KEYS[1]  lease key (`<prefix>:cache:~lease:<profile>:<key>`)
 * ARGV[1]  our token
 * ARGV[2]  channel to publish the wake-up on, or '' for none
 * ARGV[3]  message body
 * Returns  1 when released;
 *          -1 when the lease is no longer ours (it expired, maybe taken by another instance): nothing
 *          deleted, nothing published.
 */
export const releaseLeaseScript = luaScript<1 | -1>({
  name: 'redwingCacheReleaseLease',
  numberOfKeys: 1,
  lua: `
-- redwing cache: release-lease (KEYS[1] lease; ARGV[1] token, ARGV[2] channel or '', ARGV[3] body) -> 1 | -1 not ours
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
redis.call('DEL', KEYS[1])
if ARGV[2] ~= '' then redis.pcall('PUBLISH', ARGV[2], ARGV[3]) end
return 1
`,
});
