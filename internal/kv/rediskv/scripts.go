package rediskv

import "github.com/redis/go-redis/v9"

// The Lua scripts (layout and costs in rediskv.go). KEYS are the module's
// values hash, expiry zset and used counter; ARGV[1] is the time in Unix
// milliseconds ("" = read Redis's clock), ARGV[2] the byte bound, ARGV[3]
// the key. Results that are not data: -1 invalid (not an integer, or an
// overflow), -2 limit reached.

// luaPrelude defines the helpers shared by the scripts.
const luaPrelude = `
local call = redis.call
local H, Z, U = KEYS[1], KEYS[2], KEYS[3]
local MAX, K = tonumber(ARGV[2]), ARGV[3]
local T
local function now()
  if not T then
    if ARGV[1] ~= '' then T = tonumber(ARGV[1]) else
      local t = call('TIME')
      T = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    end
  end
  return T
end
local function cost(k, n) return #k + n + 64 end
local function used() return tonumber(call('GET', U) or '0') end
-- charge d more bytes (negative: fewer); an empty store leaves no key
local function charge(d)
  if d ~= 0 and call('INCRBY', U, d) == 0 then call('DEL', U) end
end
local function expired(k)
  local x = call('ZSCORE', Z, k)
  return x and tonumber(x) <= now()
end
-- remove k, whose value is n bytes long
local function drop(k, n)
  call('HDEL', H, k)
  call('ZREM', Z, k)
  charge(-cost(k, n))
end
-- k's value if it is there and live, else false; an expired k is dropped
local function live(k)
  local v = call('HGET', H, k)
  if v and expired(k) then drop(k, #v) return false end
  return v
end
-- what storing n value bytes under k adds to the used counter
local function grow(k, n)
  local g = cost(k, n)
  if call('HEXISTS', H, k) == 1 then g = g - cost(k, call('HSTRLEN', H, k)) end
  return g
end
-- drop every expired entry
local function sweep()
  local ks = call('ZRANGEBYSCORE', Z, '-inf', now())
  if #ks == 0 then return end
  local freed = 0
  for _, k in ipairs(ks) do
    freed = freed + cost(k, call('HSTRLEN', H, k))
    call('HDEL', H, k)
  end
  call('ZREMRANGEBYSCORE', Z, '-inf', now())
  charge(-freed)
end
-- store v under k if the bound allows (after a sweep if need be); with
-- keep the expiry stays as it is, else ttl (ms, 0 none) replaces it
local function put(k, v, ttl, keep)
  local g = grow(k, #v)
  if used() + g > MAX then
    sweep()
    g = grow(k, #v) -- the sweep may have dropped k itself
    if used() + g > MAX then return false end
  end
  call('HSET', H, k, v)
  if not keep then
    if ttl > 0 then call('ZADD', Z, now() + ttl, k) else call('ZREM', Z, k) end
  end
  charge(g)
  return true
end
`

func script(body string) *redis.Script { return redis.NewScript(luaPrelude + body) }

// scriptGet: the live value, or nil. The hot path, so it does without
// the prelude (defining its functions is most of a short script's cost):
// the same steps as live(K), inline.
var scriptGet = redis.NewScript(`
local call = redis.call
local H, Z, U, K = KEYS[1], KEYS[2], KEYS[3], ARGV[3]
local v = call('HGET', H, K)
if not v then return false end
local x = call('ZSCORE', Z, K)
if not x then return v end
local now
if ARGV[1] ~= '' then now = tonumber(ARGV[1]) else
  local t = call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
if tonumber(x) > now then return v end
call('HDEL', H, K)
call('ZREM', Z, K)
if call('DECRBY', U, #K + #v + 64) == 0 then call('DEL', U) end
return false
`)

// scriptSet: ARGV[4] value, ARGV[5] ttl ms. 0, or -2.
var scriptSet = script(`
if not put(K, ARGV[4], tonumber(ARGV[5]), false) then return -2 end
return 0
`)

// scriptDelete: 1 if a live key was removed, else 0 (an expired one is
// removed too).
var scriptDelete = script(`
if call('HEXISTS', H, K) == 0 then return 0 end
local was = not expired(K)
drop(K, call('HSTRLEN', H, K))
if was then return 1 end
return 0
`)

// scriptIncr: ARGV[4] delta (decimal), ARGV[5] ttl ms. The new value as
// decimal text, or -1 / -2.
//
// Lua numbers are doubles, exact only to 2^53, so an int64 is handled as
// (hi, lo) = (its magnitude's digits above the last nine, the last nine),
// both signed like the value: every step stays far below 2^53. parse
// accepts what strconv.ParseInt(s, 10, 64) accepts — an optional + or -,
// then one or more ASCII digits, leading zeros allowed, within int64 — so
// the two stores agree on what is an integer.
var scriptIncr = script(`
local function parse(s)
  local sign, d = string.match(s, '^([+-]?)(%d+)$')
  if not d then return nil end
  d = string.match(d, '^0*(%d*)$')
  local n = #d
  if n > 19 then return nil end
  if n == 0 then return 0, 0 end
  local hi, lo = 0, tonumber(string.sub(d, math.max(1, n - 8)))
  if n > 9 then hi = tonumber(string.sub(d, 1, n - 9)) end
  -- compared as numbers: Redis sets LC_COLLATE, which string < follows
  if hi > 9223372036 or (hi == 9223372036 and lo > (sign == '-' and 854775808 or 854775807)) then
    return nil
  end
  if sign == '-' then return -hi, -lo end
  return hi, lo
end
local h, l = 0, 0
local v = live(K)
if v then
  h, l = parse(v)
  if not h then return -1 end
end
local dh, dl = parse(ARGV[4])
h, l = h + dh, l + dl
-- carry so that |l| < 1e9 and l has h's sign
if l >= 1e9 then h, l = h + 1, l - 1e9 elseif l <= -1e9 then h, l = h - 1, l + 1e9 end
if h > 0 and l < 0 then h, l = h - 1, l + 1e9 elseif h < 0 and l > 0 then h, l = h + 1, l - 1e9 end
local sign = ''
if h < 0 or l < 0 then sign, h, l = '-', -h, -l end
local s
if h == 0 then s = sign .. string.format('%d', l) else s = sign .. string.format('%d%09d', h, l) end
if not parse(s) then return -1 end -- overflow
if not put(K, s, tonumber(ARGV[5]), v) then return -2 end
return s
`)

// scriptCAS: ARGV[4] "1" = swap only if absent, ARGV[5] old, ARGV[6] new,
// ARGV[7] ttl ms. 1 swapped, 0 not, or -2.
var scriptCAS = script(`
local v = live(K)
if ARGV[4] == '1' then
  if v then return 0 end
elseif not v or v ~= ARGV[5] then
  return 0
end
if not put(K, ARGV[6], tonumber(ARGV[7]), false) then return -2 end
return 1
`)

// scriptUsage: {keys, bytes}. Read-only, no prelude.
var scriptUsage = redis.NewScript(`return {redis.call('HLEN', KEYS[1]), tonumber(redis.call('GET', KEYS[3]) or '0')}`)
