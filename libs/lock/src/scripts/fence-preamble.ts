/**
 * Lua shared by the scripts that grant a lease: the next fencing token of a resource. The token is the
 * larger of (last token + 1) and Redis's clock in microseconds, so it is strictly increasing per resource
 * even when the counter key was lost (restart without persistence, failover to a replica that missed it,
 * expiry after a day idle), as long as the server clock does not step back past the last token.
 * Expects `fenceKey`, `fenceTtl` (ms) and `reserve` (tokens, ≥ 1) locals; defines `nextFence()`, returning the
 * first token of a block of `reserve` consecutive tokens (the counter moves to the block's last, so a
 * process may hand the lock to its own next waiters with the rest of the block, no round trip each).
 * Tokens stay below 2^53 (microseconds since 1970 reach it in the year 2255), so they are exact in Lua
 * doubles and in JavaScript numbers; they are stored with `%.0f` to avoid Lua's exponent notation.
 */
export const NEXT_FENCE_LUA = `
local function nextFence()
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local fence = tonumber(redis.call('GET', fenceKey) or '0') + 1
  if now > fence then fence = now end
  redis.call('SET', fenceKey, string.format('%.0f', fence + reserve - 1), 'PX', fenceTtl)
  return fence
end
`;
