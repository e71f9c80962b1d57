package redisreg

import "github.com/redis/go-redis/v9"

// The Lua scripts. ARGV[1] is always the key prefix; keys are built from it
// (see the layout in redis.go). Results: 0 ok, -1 unknown client, -2 limit,
// -3 already exists, -4 version conflict, or the data asked for.

// luaPrelude defines the helpers shared by the scripts.
const luaPrelude = `
local P = ARGV[1]
local function ckey(id) return P .. 'client:' .. id end
-- drop id from an index set, and the set's name from its list once empty
local function unindex(kind, all, name, id)
  local k = P .. kind .. name
  redis.call('SREM', k, id)
  if redis.call('SCARD', k) == 0 then redis.call('SREM', P .. all, name) end
end
-- remove a client with its uid, groups, session and presence; 1 if it existed
local function remove_client(id)
  local c = ckey(id)
  local f = redis.call('HMGET', c, 'n', 'uid')
  if not f[1] then return 0 end
  if f[2] then unindex('uid:', 'uids', f[2], id) end
  local gk = c .. ':groups'
  for _, g in ipairs(redis.call('SMEMBERS', gk)) do unindex('group:', 'groups', g, id) end
  redis.call('DEL', c, gk)
  redis.call('SREM', P .. 'node:' .. f[1] .. ':clients', id)
  return 1
end
`

func script(body string) *redis.Script { return redis.NewScript(luaPrelude + body) }

// scriptAdd: ARGV id, node.
var scriptAdd = script(`
local c = ckey(ARGV[2])
if redis.call('EXISTS', c) == 1 then return -3 end
redis.call('HSET', c, 'n', ARGV[3], 'v', 0)
redis.call('SADD', P .. 'node:' .. ARGV[3] .. ':clients', ARGV[2])
redis.call('SADD', P .. 'nodes', ARGV[3])
return 0
`)

// scriptRemove: ARGV id.
var scriptRemove = script(`return remove_client(ARGV[2])`)

// scriptHas: ARGV id. 1 if the client exists and its node is alive.
var scriptHas = script(`
local n = redis.call('HGET', ckey(ARGV[2]), 'n')
if not n then return 0 end
return redis.call('EXISTS', P .. 'node:' .. n)
`)

// scriptBind: ARGV id, uid. Replaces the previous uid.
var scriptBind = script(`
local id, uid = ARGV[2], ARGV[3]
local c = ckey(id)
local f = redis.call('HMGET', c, 'n', 'uid')
if not f[1] then return -1 end
if f[2] == uid then return 0 end
if f[2] then unindex('uid:', 'uids', f[2], id) end
redis.call('SADD', P .. 'uid:' .. uid, id)
redis.call('SADD', P .. 'uids', uid)
redis.call('HSET', c, 'uid', uid)
return 0
`)

// scriptUnbind: ARGV id, uid. No-op unless bound to uid.
var scriptUnbind = script(`
local id, uid = ARGV[2], ARGV[3]
local c = ckey(id)
local f = redis.call('HMGET', c, 'n', 'uid')
if not f[1] then return -1 end
if f[2] ~= uid then return 0 end
unindex('uid:', 'uids', uid, id)
redis.call('HDEL', c, 'uid')
return 0
`)

// scriptJoin: ARGV id, group, max groups (0: none).
var scriptJoin = script(`
local id, g, max = ARGV[2], ARGV[3], tonumber(ARGV[4])
local c = ckey(id)
if redis.call('EXISTS', c) == 0 then return -1 end
local gk = c .. ':groups'
if redis.call('SISMEMBER', gk, g) == 1 then return 0 end
if max > 0 and redis.call('SCARD', gk) >= max then return -2 end
redis.call('SADD', gk, g)
redis.call('SADD', P .. 'group:' .. g, id)
redis.call('SADD', P .. 'groups', g)
return 0
`)

// scriptLeave: ARGV id, group.
var scriptLeave = script(`
local id, g = ARGV[2], ARGV[3]
local c = ckey(id)
if redis.call('EXISTS', c) == 0 then return -1 end
if redis.call('SREM', c .. ':groups', g) == 1 then unindex('group:', 'groups', g, id) end
return 0
`)

// scriptUngroup: ARGV group.
var scriptUngroup = script(`
local g = ARGV[2]
local k = P .. 'group:' .. g
for _, id in ipairs(redis.call('SMEMBERS', k)) do redis.call('SREM', ckey(id) .. ':groups', g) end
redis.call('DEL', k)
redis.call('SREM', P .. 'groups', g)
return 0
`)

// scriptGroupUids: ARGV group. The distinct uids of its members.
var scriptGroupUids = script(`
local seen, out = {}, {}
for _, id in ipairs(redis.call('SMEMBERS', P .. 'group:' .. ARGV[2])) do
  local u = redis.call('HGET', ckey(id), 'uid')
  if u and not seen[u] then seen[u] = true; out[#out + 1] = u end
end
return out
`)

// scriptClients: the clients of live nodes.
var scriptClients = script(`
local out = {}
for _, n in ipairs(redis.call('SMEMBERS', P .. 'nodes')) do
  if redis.call('EXISTS', P .. 'node:' .. n) == 1 then
    for _, id in ipairs(redis.call('SMEMBERS', P .. 'node:' .. n .. ':clients')) do out[#out + 1] = id end
  end
end
return out
`)

// scriptClientCount: the number of clients of live nodes.
var scriptClientCount = script(`
local total = 0
for _, n in ipairs(redis.call('SMEMBERS', P .. 'nodes')) do
  if redis.call('EXISTS', P .. 'node:' .. n) == 1 then
    total = total + redis.call('SCARD', P .. 'node:' .. n .. ':clients')
  end
end
return total
`)

// scriptSetSession: ARGV id, session.
var scriptSetSession = script(`
local c = ckey(ARGV[2])
if redis.call('EXISTS', c) == 0 then return -1 end
redis.call('HSET', c, 's', ARGV[3])
redis.call('HINCRBY', c, 'v', 1)
return 0
`)

// scriptCASSession: ARGV id, session, expected version.
var scriptCASSession = script(`
local c = ckey(ARGV[2])
local f = redis.call('HMGET', c, 'n', 'v')
if not f[1] then return -1 end
if (f[2] or '0') ~= ARGV[4] then return -4 end
redis.call('HSET', c, 's', ARGV[3])
redis.call('HINCRBY', c, 'v', 1)
return 0
`)

// scriptHeartbeat: ARGV node, ttl ms. 1 if the heartbeat was alive, 0 if
// it was absent (presence may be lost).
var scriptHeartbeat = script(`
local old = redis.call('SET', P .. 'node:' .. ARGV[2], '1', 'PX', ARGV[3], 'GET')
redis.call('SADD', P .. 'nodes', ARGV[2])
if old then return 1 end
return 0
`)

// scriptSweepNode: ARGV node, batch, mode. Removes up to batch clients of
// the node; returns how many, or -1 when there is nothing (more) to do.
// Mode 0 (sweep): only if the node's heartbeat is gone; a node with no
// client left is forgotten. Mode 1 (leave): always, and the heartbeat goes
// too. Mode 2 (purge): always, keeping the heartbeat (a node that just
// claimed its id drops what an earlier owner of that id left).
var scriptSweepNode = script(`
local n, batch, mode = ARGV[2], tonumber(ARGV[3]), ARGV[4]
local hb = P .. 'node:' .. n
if mode == '0' and redis.call('EXISTS', hb) == 1 then return -1 end
if mode == '1' then redis.call('DEL', hb) end
local ids = redis.call('SPOP', P .. 'node:' .. n .. ':clients', batch)
for _, id in ipairs(ids) do remove_client(id) end
if #ids == 0 then
  if mode ~= '2' then redis.call('SREM', P .. 'nodes', n) end
  return -1
end
return #ids
`)

// scriptClaim: ARGV node, ttl ms. Creates the node's heartbeat if absent:
// 1 if this call created it (the id is now this caller's), 0 if a live
// node holds it.
var scriptClaim = script(`
if redis.call('SET', P .. 'node:' .. ARGV[2], '1', 'PX', ARGV[3], 'NX') then
  redis.call('SADD', P .. 'nodes', ARGV[2])
  return 1
end
return 0
`)

// scriptRestore: ARGV id, node, uid ("" for none), session, groups...
// Replaces the client's whole state.
var scriptRestore = script(`
local id, n, uid, s = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local c = ckey(id)
local v = tonumber(redis.call('HGET', c, 'v') or '0') + 1
remove_client(id)
redis.call('HSET', c, 'n', n, 's', s, 'v', v)
redis.call('SADD', P .. 'node:' .. n .. ':clients', id)
if uid ~= '' then
  redis.call('HSET', c, 'uid', uid)
  redis.call('SADD', P .. 'uid:' .. uid, id)
  redis.call('SADD', P .. 'uids', uid)
end
for i = 6, #ARGV do
  local g = ARGV[i]
  redis.call('SADD', c .. ':groups', g)
  redis.call('SADD', P .. 'group:' .. g, id)
  redis.call('SADD', P .. 'groups', g)
end
return 0
`)
