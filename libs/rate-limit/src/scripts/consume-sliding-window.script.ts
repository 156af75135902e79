import { luaScript } from '@redwing/redis';
import { LIMITER_CODES, limiterPreamble, type LimiterReply } from './limiter-preamble';

/**
 * consume-sliding-window: one round trip of the exact sliding-window (log) limiter.
 *
 * KEYS[1]  log: sorted set, one member per counted point, score = time in ms. Expires when its newest
 *          member leaves the window.
 * KEYS[2]  block marker: a string with a PX expiry, present while the client is blocked.
 *          Both keys share a {hash tag}, so the script runs on Cluster.
 * ARGV[1]  op: 'consume' (count `cost` if it fits) | 'peek' (read; would one point fit?) |
 *          'penalty' (count `cost` without checking) | 'reward' (remove the `cost` newest points)
 * ARGV[2]  points: the limit, integer >= 1
 * ARGV[3]  duration: window in ms, integer >= 1; the window is (now - duration, now]
 * ARGV[4]  cost: points of this call, integer >= 0; at most `points` for consume (it could never fit)
 * ARGV[5]  blockDuration: ms to block the client after a refused consume, integer >= 0 (0 = no block)
 * ARGV[6]  nonce: unique per call; member names are `<nonce>:<i>`
 * ARGV[7]  now: time in ms, integer >= 0; empty = the server clock (TIME), so every instance agrees
 *
 * Returns {allowed, remaining, retryAfter, reset}:
 *   allowed     1 admitted (or would be, for peek), 0 refused or blocked
 *   remaining   points left in the window
 *   retryAfter  ms until `cost` (1 for peek) fits again; 0 when allowed; the block time while blocked
 *   reset       ms until every counted point has left the window (or the block ends)
 * Returns {-1, n} when ARGV[n] is invalid (a bug in the caller): `defineScripts` throws RedisScriptError,
 * which the store rethrows as RateLimitScriptError.
 */
export const consumeSlidingWindowScript = luaScript<LimiterReply>({
  name: 'redwingRateLimitSlidingWindow',
  numberOfKeys: 2,
  lua: `${limiterPreamble(
    7,
    `local nonce = ARGV[6]
if nonce == nil or nonce == '' then return {-1, 6} end
`,
  )}
local log = KEYS[1]
redis.call('ZREMRANGEBYSCORE', log, '-inf', now - duration)
local count = redis.call('ZCARD', log)
local function add(n)
  local args = {}
  for i = 1, n do
    args[#args + 1] = now
    args[#args + 1] = nonce .. ':' .. i
    if #args >= 200 then
      redis.call('ZADD', log, unpack(args))
      args = {}
    end
  end
  if #args > 0 then redis.call('ZADD', log, unpack(args)) end
end
-- ms until the oldest \`need\` points have left the window
local function waitFor(need)
  local entry = redis.call('ZRANGE', log, need - 1, need - 1, 'WITHSCORES')
  return tonumber(entry[2]) + duration - now
end
local allowed = 1
local retry = 0
if op == 'consume' then
  if count + cost <= points then
    if cost > 0 then add(cost) end
    count = count + cost
  else
    allowed = 0
    retry = waitFor(count + cost - points)
    if block > 0 then
      redis.call('SET', KEYS[2], '1', 'PX', block)
      if block > retry then retry = block end
    end
  end
elseif op == 'peek' then
  if count + 1 > points then
    allowed = 0
    retry = waitFor(count + 1 - points)
  end
elseif op == 'penalty' then
  if cost > 0 then add(cost) end
  count = count + cost
else
  if cost > 0 and count > 0 then redis.call('ZPOPMAX', log, cost) end
  count = math.max(0, count - cost)
end
local reset = 0
local added = (op == 'penalty' or (op == 'consume' and allowed == 1)) and cost > 0
if added then
  -- the newest point is the one just added
  reset = duration
  redis.call('PEXPIRE', log, reset)
elseif count > 0 then
  local newest = redis.call('ZRANGE', log, -1, -1, 'WITHSCORES')
  reset = tonumber(newest[2]) + duration - now
  if op ~= 'peek' then redis.call('PEXPIRE', log, reset) end
elseif op ~= 'peek' then
  redis.call('DEL', log)
end
return {allowed, math.max(0, points - count), retry, reset}
`,
  codes: LIMITER_CODES,
});
