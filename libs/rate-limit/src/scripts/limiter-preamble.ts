/**
 * What both limiter scripts answer: `[allowed (1 | 0), remaining, retryAfter ms, reset ms]`. A negative first
 * element is a failure code (see {@link LIMITER_CODES}); `defineScripts` throws on it, so a caller never sees it.
 */
export type LimiterReply = [allowed: 0 | 1, remaining: number, retryAfter: number, reset: number];

/** The failure codes of both limiter scripts (`{-1, n}`: ARGV[n] is invalid). */
export const LIMITER_CODES = {
  [-1]: 'an argument is invalid (the reply {-1, n} names ARGV[n])',
} as const;

/**
 * The part both limiter scripts share: argument checks and the clock, then the block check.
 *
 * ARGV[1..5] are op, points, duration, cost and blockDuration (see each script); `extra` is Lua that reads
 * the script's own arguments between them and the clock (ARGV[nowArg]: time in ms, empty = the server's
 * TIME, so every instance agrees). An invalid ARGV[n] returns {-1, n}. A blocked client (KEYS[2] present)
 * gets {0, 0, pttl, pttl} for consume and peek.
 * Defines the Lua locals `int`, `op`, `points`, `duration`, `cost`, `block` and `now`.
 */
export function limiterPreamble(nowArg: number, extra = ''): string {
  return `
local function int(i, min)
  local v = tonumber(ARGV[i])
  if v == nil or v ~= math.floor(v) or v < min then return nil end
  return v
end
local op = ARGV[1]
if op ~= 'consume' and op ~= 'peek' and op ~= 'penalty' and op ~= 'reward' then return {-1, 1} end
local points = int(2, 1)
if not points then return {-1, 2} end
local duration = int(3, 1)
if not duration then return {-1, 3} end
local cost = int(4, 0)
if not cost or (op == 'consume' and cost > points) then return {-1, 4} end
local block = int(5, 0)
if not block then return {-1, 5} end
${extra}local now
if ARGV[${nowArg}] == nil or ARGV[${nowArg}] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
else
  now = int(${nowArg}, 0)
  if not now then return {-1, ${nowArg}} end
end
if op == 'consume' or op == 'peek' then
  local blocked = redis.call('PTTL', KEYS[2])
  if blocked > 0 then return {0, 0, blocked, blocked} end
end`;
}
