import { luaScript } from '@redwing/redis';

/** `[status, entries, newest id]`: status 0 = entries follow; 1/2/3 = resync required (see the header). */
export type ReadEventsReply = [number, Array<[string, string[]]>, string];

/**
 * Reads the events of a channel's stream after a given id, or says that some of them are gone.
 *
 * KEYS[1]  the channel's stream
 * ARGV[1]  the last id the reader has (exclusive start); `0-0` = from the oldest kept; `$` = only the
 *          newest id (no entries: where a new live-only reader starts)
 * ARGV[2]  most entries to return
 *
 * Returns `{status, entries, newest}` where `newest` is the stream's newest id (`0-0` when there is none):
 *   0 ok, `entries` = up to ARGV[2] entries after ARGV[1], in order
 *   1 resync: the stream does not exist (idle past its age limit, or Redis lost it)
 *   2 resync: ARGV[1] is older than the oldest kept entry and no longer in the stream (trimmed)
 *   3 resync: ARGV[1] is newer than anything the stream issued (an id from before a data loss)
 * The last-seen entry itself must still be present for status 0 (entries are trimmed oldest first, so then
 * nothing after it is gone); that is conservative by one entry, never a silent hole.
 */
export const readEventsScript = luaScript<ReadEventsReply>({
  name: 'pubsubReadEvents',
  numberOfKeys: 1,
  lua: `
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function less(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  return am < bm or (am == bm and as < bs)
end
local after = ARGV[1]
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local newest = '0-0'
if last[1] then newest = last[1][1] end
if after == '$' then return {0, {}, newest} end
if after ~= '0-0' then
  if not last[1] then return {1, {}, newest} end
  if less(newest, after) then return {3, {}, newest} end
  local found = redis.call('XRANGE', KEYS[1], after, after)
  if not found[1] then
    local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
    if first[1] and less(after, first[1][1]) then return {2, {}, newest} end
  end
end
local start = '-'
if after ~= '0-0' then start = '(' .. after end
return {0, redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', ARGV[2]), newest}
`,
});
