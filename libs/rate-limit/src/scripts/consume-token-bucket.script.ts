import { luaScript } from '@redwing/redis';
import { LIMITER_CODES, limiterPreamble, type LimiterReply } from './limiter-preamble';

/**
 * consume-token-bucket: one round trip of the token-bucket limiter.
 *
 * KEYS[1]  bucket: hash { tokens, ts } (tokens may be fractional, ts in ms); absent = full. Expires when
 *          the bucket would be full again, so idle clients cost nothing.
 * KEYS[2]  block marker: a string with a PX expiry, present while the client is blocked.
 *          Both keys share a {hash tag}, so the script runs on Cluster.
 * ARGV[1]  op: 'consume' (take `cost` tokens if there are enough) | 'peek' (read; is one token there?) |
 *          'penalty' (take `cost` tokens, possibly going negative) | 'reward' (give `cost` back, up to full)
 * ARGV[2]  points: bucket capacity, integer >= 1
 * ARGV[3]  duration: ms to refill from empty to full, integer >= 1 (rate = points / duration per ms)
 * ARGV[4]  cost: tokens of this call, integer >= 0; at most `points` for consume (it could never fit)
 * ARGV[5]  blockDuration: ms to block the client after a refused consume, integer >= 0 (0 = no block)
 * ARGV[6]  now: time in ms, integer >= 0; empty = the server clock (TIME), so every instance agrees
 *
 * Returns {allowed, remaining, retryAfter, reset}:
 *   allowed     1 admitted (or would be, for peek), 0 refused or blocked
 *   remaining   whole tokens left
 *   retryAfter  ms until `cost` (1 for peek) tokens are there; 0 when allowed; the block time while blocked
 *   reset       ms until the bucket is full again (or the block ends)
 * Returns {-1, n} when ARGV[n] is invalid (a bug in the caller): `defineScripts` throws RedisScriptError,
 * which the store rethrows as RateLimitScriptError.
 */
export const consumeTokenBucketScript = luaScript<LimiterReply>({
  name: 'redwingRateLimitTokenBucket',
  numberOfKeys: 2,
  lua: `${limiterPreamble(6)}
local rate = points / duration
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = points
  ts = now
end
if now > ts then tokens = math.min(points, tokens + (now - ts) * rate) end
-- tolerance for the rounding of fractional refills
local EPS = 1e-9
local allowed = 1
local retry = 0
if op == 'consume' then
  if tokens + EPS >= cost then
    tokens = tokens - cost
  else
    allowed = 0
    retry = math.ceil((cost - tokens) / rate)
    if block > 0 then
      redis.call('SET', KEYS[2], '1', 'PX', block)
      if block > retry then retry = block end
    end
  end
elseif op == 'peek' then
  if tokens + EPS < 1 then
    allowed = 0
    retry = math.ceil((1 - tokens) / rate)
  end
elseif op == 'penalty' then
  tokens = tokens - cost
else
  tokens = math.min(points, tokens + cost)
end
local reset = 0
if tokens + EPS < points then reset = math.ceil((points - tokens) / rate) end
if op ~= 'peek' then
  if reset == 0 then
    redis.call('DEL', KEYS[1])
  else
    redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
    redis.call('PEXPIRE', KEYS[1], reset)
  end
end
return {allowed, math.max(0, math.floor(tokens + EPS)), retry, reset}
`,
  codes: LIMITER_CODES,
});
