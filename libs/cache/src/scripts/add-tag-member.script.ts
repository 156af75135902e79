import { luaScript } from '@redwing/redis';

/**
 * Records that an entry carries a tag: adds the entry's key to the tag set and makes sure the set lives at
 * least as long as the entry (it never shortens a longer lifetime set by another entry).
 *
 * KEYS[1]  tag set (`<prefix>:cache:~tag:<tag>`)
 * ARGV[1]  member: the full key of the entry
 * ARGV[2]  lifetime of the entry in ms (integer ≥ 1)
 * Returns  1 when added, 0 when it was a member already;
 *          -1 when KEYS[1] holds something other than a set (nothing changed).
 */
export const addTagMemberScript = luaScript<1 | 0 | -1>({
  name: 'redwingCacheAddTagMember',
  numberOfKeys: 1,
  lua: `
-- redwing cache: add-tag-member (KEYS[1] tag set; ARGV[1] member, ARGV[2] ttl ms) -> 1 | 0 | -1 wrong type
local kind = redis.call('TYPE', KEYS[1]).ok
if kind ~= 'set' and kind ~= 'none' then return -1 end
local added = redis.call('SADD', KEYS[1], ARGV[1])
local ttl = tonumber(ARGV[2])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return added
`,
});
