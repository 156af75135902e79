import { luaScript } from '@redwing/redis';

/**
 * Raises a master's fence counter to a token issued by a quorum (multi-master mode), so the next quorum
 * that overlaps this one issues a larger token.
 *
 * KEYS[1]  fence counter
 * ARGV[1]  token
 * ARGV[2]  lifetime of the counter, ms
 * Returns  1.
 */
export const ratchetFenceScript = luaScript<1>({
  name: 'redwingLockRatchetFence',
  numberOfKeys: 1,
  lua: `
-- redwing lock: ratchet-fence (KEYS fence; ARGV token, fenceTtl) -> 1
if tonumber(redis.call('GET', KEYS[1]) or '0') < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return 1
`,
});
