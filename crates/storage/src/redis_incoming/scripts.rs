//! The Lua scripts: each operation's one atomic step on the Redis server
//! (checking the stored sack count, pushing, reading, trimming, counting),
//! one round trip each. Their keys and arguments are documented on each.

/// KEYS[1] = `gnocchi-config`, KEYS[2] = the arrival hash; ARGV[1] = the
/// writer's sack count, ARGV[2] = the number of metrics `m`; then `m` times
/// (sack name, metric uuid, packed records, measure count); then the sack
/// names to notify, each of which gets an arrival time (Redis's clock, ms)
/// unless it has one already.
/// Returns 0, or the stored sack count when it is not the writer's (nothing written).
pub(super) const ADD_LUA: &str = r"
pcall(redis.replicate_commands)
local stored = redis.call('HGET', KEYS[1], 'sacks')
if not stored then
  redis.call('HSET', KEYS[1], 'sacks', ARGV[1])
elseif tonumber(stored) ~= tonumber(ARGV[1]) then
  return stored
end
local last = 2 + 4 * tonumber(ARGV[2])
for i = 3, last, 4 do
  redis.call('RPUSH', ARGV[i] .. ':' .. ARGV[i + 1], ARGV[i + 2])
  redis.call('HINCRBY', ARGV[i], ARGV[i + 1], ARGV[i + 3])
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = last + 1, #ARGV do
  redis.call('HSETNX', KEYS[2], ARGV[i], now)
  redis.call('PUBLISH', ARGV[i], '')
end
return 0
";

/// KEYS[1] = `gnocchi-config`; ARGV[1] = key prefix, ARGV[2] = the new sack count.
/// Returns `{code, old, a, b}`: code 0 = changed (`a` = stale sack keys of the
/// old layout deleted), 1 = refused, measures pending (`a` measures in `b`
/// metrics), 2 = no count was stored (now set), 3 = unchanged, 4 = the stored
/// count is not a valid number (`old` = the stored string).
/// Atomic: no `add_measures` (a script or transaction too) runs in between.
pub(super) const CHANGE_LUA: &str = r"
local stored = redis.call('HGET', KEYS[1], 'sacks')
local new = tonumber(ARGV[2])
if not stored then
  redis.call('HSET', KEYS[1], 'sacks', ARGV[2])
  return {2, new, 0, 0}
end
local old = tonumber(stored)
if not old or old < 1 or old > 65535 or old ~= math.floor(old) then
  return {4, stored, 0, 0}
end
if old == new then
  return {3, old, 0, 0}
end
local prefix = ARGV[1] .. 'incoming' .. old .. '-'
local measures, metrics = 0, 0
local stale = {}
for s = 0, old - 1 do
  local sack = prefix .. s
  local t = redis.call('TYPE', sack)['ok']
  if t == 'hash' then
    local kv = redis.call('HGETALL', sack)
    local live = false
    for i = 1, #kv, 2 do
      if redis.call('LLEN', sack .. ':' .. kv[i]) > 0 then
        live = true
        metrics = metrics + 1
        measures = measures + math.max(tonumber(kv[i + 1]) or 0, 0)
      end
    end
    if not live then
      stale[#stale + 1] = sack
    end
  elseif t ~= 'none' then
    stale[#stale + 1] = sack
  end
end
if metrics > 0 then
  return {1, old, measures, metrics}
end
for _, k in ipairs(stale) do
  redis.call('DEL', k)
end
redis.call('DEL', ARGV[1] .. 'gnocchi-sack-arrival' .. old)
redis.call('HSET', KEYS[1], 'sacks', ARGV[2])
return {0, old, #stale, 0}
";

/// KEYS[1] = sack index, KEYS[2] = the arrival hash; ARGV[1] = list key
/// prefix (`<sack>:`), ARGV[2] = the sack name.
/// Returns `{{uuid, {element, ...}}, ...}`. The sack's arrival time moves to
/// its `<sack>:taken` field (the older of the two when a take that was
/// never committed left one): measures arriving meanwhile get a new one.
pub(super) const TAKE_LUA: &str = r"
local ids = redis.call('HKEYS', KEYS[1])
local out = {}
for i, id in ipairs(ids) do
  out[i] = {id, redis.call('LRANGE', ARGV[1] .. id, 0, -1)}
end
local taken = ARGV[2] .. ':taken'
if #out == 0 then
  redis.call('HDEL', KEYS[2], ARGV[2], taken)
else
  local a = tonumber(redis.call('HGET', KEYS[2], ARGV[2]))
  local t = tonumber(redis.call('HGET', KEYS[2], taken))
  local first = a
  if t and (not first or t < first) then first = t end
  if first then redis.call('HSET', KEYS[2], taken, first) end
  redis.call('HDEL', KEYS[2], ARGV[2])
end
return out
";

/// KEYS[1] = sack index, KEYS[2] = the arrival hash; ARGV[1] = list key
/// prefix (`<sack>:`); then per metric (uuid, elements read, measures read).
/// What was taken is gone, and with it the `<sack>:taken` arrival time.
pub(super) const COMMIT_LUA: &str = r"
local sack = string.sub(ARGV[1], 1, -2)
redis.call('HDEL', KEYS[2], sack .. ':taken')
for i = 2, #ARGV, 3 do
  local id = ARGV[i]
  local key = ARGV[1] .. id
  redis.call('LTRIM', key, tonumber(ARGV[i + 1]), -1)
  if redis.call('LLEN', key) == 0 then
    redis.call('HDEL', KEYS[1], id)
  else
    redis.call('HINCRBY', KEYS[1], id, -tonumber(ARGV[i + 2]))
  end
end
if redis.call('HLEN', KEYS[1]) == 0 then
  redis.call('HDEL', KEYS[2], sack)
end
return 1
";

/// KEYS[1] = the arrival hash; ARGV[1] = sack name prefix (`P incoming<N>-`), ARGV[2] = N.
/// Returns `{now ms, {uuid, batches, measures, ...}, {sack, oldest arrival ms, ...}}`,
/// the arrival of a sack with pending measures being the older of its
/// pending and taken arrival times (absent when neither is known).
pub(super) const BACKLOG_LUA: &str = r"
local out = {}
local arrivals = {}
for s = 0, tonumber(ARGV[2]) - 1 do
  local sack = ARGV[1] .. s
  local kv = redis.call('HGETALL', sack)
  for i = 1, #kv, 2 do
    out[#out + 1] = kv[i]
    out[#out + 1] = redis.call('LLEN', sack .. ':' .. kv[i])
    out[#out + 1] = tonumber(kv[i + 1])
  end
  if #kv > 0 then
    local a = tonumber(redis.call('HGET', KEYS[1], sack))
    local t = tonumber(redis.call('HGET', KEYS[1], sack .. ':taken'))
    if t and (not a or t < a) then a = t end
    if a then
      arrivals[#arrivals + 1] = s
      arrivals[#arrivals + 1] = a
    end
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return {now, out, arrivals}
";
