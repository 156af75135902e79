import { luaScript } from '@redwing/redis';

/**
 * Appends one event to a channel's stream, trims it by count and age, and publishes it (with its id and the
 * id of the event before it) to the channel's pub/sub channel — in one step, so live delivery order is
 * stream order and a subscriber can tell from `prev` whether it missed something.
 *
 * KEYS[1]  the channel's stream (`<prefix>:pubsub:{<channel>}:events`)
 * ARGV[1]  maxEvents: entries kept (`MAXLEN ~`, never fewer)
 * ARGV[2]  maxAge, ms: older entries are trimmed (`MINID ~`) and the stream expires after this idle time
 * ARGV[3]  pub/sub channel (`<prefix>:pubsub:{<channel>}`; same hash slot as KEYS[1])
 * ARGV[4]  the event envelope (JSON)
 * ARGV[5]  publish command: `PUBLISH`, or `SPUBLISH` on Cluster
 *
 * Returns the new entry's id. The published message is `<id>\n<prev id or 0-0>\n<envelope>`.
 *
 * An ACL that refuses the publish (a user without the channel) is checked first (`redis.acl_check_cmd`, Redis
 * 7+): the script then fails with NOPERM and appends nothing — no event that the caller was told failed is
 * later replayed to resuming subscribers (or appended twice when the caller retries).
 */
export const appendEventScript = luaScript<string>({
  name: 'pubsubAppendEvent',
  numberOfKeys: 1,
  lua: `
if redis.acl_check_cmd and not redis.acl_check_cmd(ARGV[5], ARGV[3], '') then
  return redis.error_reply('NOPERM this user may not ' .. ARGV[5] .. ' to ' .. ARGV[3] .. '; nothing was appended')
end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local prev = '0-0'
if last[1] then prev = last[1][1] end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'e', ARGV[4])
local t = redis.call('TIME')
local minid = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[2])
if minid > 0 then redis.call('XTRIM', KEYS[1], 'MINID', '~', string.format('%d', minid)) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call(ARGV[5], ARGV[3], id .. '\\n' .. prev .. '\\n' .. ARGV[4])
return id
`,
});
