import { luaScript } from '@redwing/redis';
import { LIMITER_CODES } from './limiter-preamble';

/** `[granted, free, pttl, expireAt]`; see {@link leaseFixedWindowScript}. */
export type LeaseReply = [granted: number, free: number, pttl: number, expireAt: number];

/**
 * lease-fixed-window: hands a slice of a fixed window's points to one instance (leased counting), and takes
 * back what an earlier slice left unspent. One round trip; the counter is rate-limiter-flexible's own key, so
 * exact and leased calls, `get`, `reward`, `penalty`, `block` and `delete` all see one count.
 *
 * KEYS[1]  counter: integer, created with a PX expiry of one window (rate-limiter-flexible's fixed-window
 *          key). Points handed out in slices are counted here when granted, not when spent.
 * ARGV[1]  points: the limit, integer >= 1
 * ARGV[2]  duration: window in ms, integer >= 1
 * ARGV[3]  cost: points this request needs, integer >= 0 (0: only give back); at most `points`
 * ARGV[4]  want: the slice the instance asks for, integer >= cost
 * ARGV[5]  share: integer >= 1; a slice is at most max(cost, floor(free / share)), so slices shrink as the
 *          window's budget runs out
 * ARGV[6]  giveBack: unspent points of an earlier slice, integer >= 0
 * ARGV[7]  giveBackAt: the window they came from (its PEXPIRETIME); they are taken back only while that
 *          window lasts, never into a later one
 * ARGV[8]  blockDuration: ms to block after the first refused request, integer >= 0 (as
 *          rate-limiter-flexible does)
 *
 * Returns {granted, free, pttl, expireAt}:
 *   granted   points of the slice (>= cost), or 0: refused. A refused request is not counted (unlike
 *             rate-limiter-flexible's consume, where counting it changes nothing observable): a point
 *             given back after a refusal stays available. The first refusal blocks for blockDuration
 *             (the counter is set above points with the block's expiry, as rate-limiter-flexible does)
 *   free      points of the window not yet handed out after this call
 *   pttl      ms until the window (or the block) ends
 *   expireAt  PEXPIRETIME of the counter: the window's identity for a later give-back
 * A call with cost 0 (a give-back alone) creates no counter: {0, points, 0, -2} when there is none.
 * Returns {-1, n} when ARGV[n] is invalid (a bug in the caller).
 */
export const leaseFixedWindowScript = luaScript<LeaseReply>({
  name: 'redwingRateLimitLeaseFixedWindow',
  numberOfKeys: 1,
  lua: `
local function int(i, min)
  local v = tonumber(ARGV[i])
  if v == nil or v ~= math.floor(v) or v < min then return nil end
  return v
end
local points = int(1, 1)
if not points then return {-1, 1} end
local duration = int(2, 1)
if not duration then return {-1, 2} end
local cost = int(3, 0)
if not cost or cost > points then return {-1, 3} end
local want = int(4, 0)
if not want or want < cost then return {-1, 4} end
local share = int(5, 1)
if not share then return {-1, 5} end
local giveBack = int(6, 0)
if not giveBack then return {-1, 6} end
local giveBackAt = tonumber(ARGV[7])
if giveBackAt == nil then return {-1, 7} end
local block = int(8, 0)
if not block then return {-1, 8} end
local key = KEYS[1]
if giveBack > 0 and redis.call('PEXPIRETIME', key) == giveBackAt then
  local counted = tonumber(redis.call('GET', key)) or 0
  local back = math.min(giveBack, counted)
  if back > 0 then redis.call('DECRBY', key, back) end
end
if cost == 0 and redis.call('EXISTS', key) == 0 then return {0, points, 0, -2} end
redis.call('SET', key, 0, 'PX', duration, 'NX')
local used = tonumber(redis.call('GET', key)) or 0
local pttl = redis.call('PTTL', key)
if pttl < 0 then
  redis.call('PEXPIRE', key, duration)
  pttl = duration
end
local free = points - used
local granted = 0
if cost > 0 then
  if free >= cost then
    granted = math.min(want, math.max(cost, math.floor(free / share)))
    redis.call('INCRBY', key, granted)
    free = free - granted
  elseif block > 0 and used <= points then
    redis.call('SET', key, used + cost, 'PX', block)
    pttl = block
  end
end
return {granted, math.max(0, free), pttl, redis.call('PEXPIRETIME', key)}
`,
  codes: LIMITER_CODES,
});
