import { luaScript } from '@redwing/redis';

/**
 * Publishes an invalidation message with the next sequence number, atomically. Subscribers check that the
 * numbers they receive are consecutive; a gap (or a reconnect after which the stored number moved) means
 * messages were missed, and they empty their L1.
 *
 * KEYS[1]  sequence key (`<prefix>:cache:~epoch`), an integer
 * ARGV[1]  channel (`<prefix>:cache:~inv`)
 * ARGV[2]  message body (JSON)
 * Returns  the sequence number of the message (≥ 1);
 *          -1 when KEYS[1] did not hold an integer: it was reset to 1 and the message went out as number 1
 *          (subscribers see a gap and flush, which is the safe outcome).
 */
export const publishInvalidationScript = luaScript<number>({
  name: 'redwingCachePublishInvalidation',
  numberOfKeys: 1,
  lua: `
-- redwing cache: publish-invalidation (KEYS[1] sequence; ARGV[1] channel, ARGV[2] body) -> seq | -1 reset
local ok, seq = pcall(redis.call, 'INCR', KEYS[1])
if not ok then
  redis.call('SET', KEYS[1], 1)
  redis.call('PUBLISH', ARGV[1], '1|' .. ARGV[2])
  return -1
end
redis.call('PUBLISH', ARGV[1], seq .. '|' .. ARGV[2])
return seq
`,
});
