//! The Lua scripts: each operation's one atomic step on the Redis server
//! (checking the stored sack count, pushing, reading, trimming, counting),
//! one round trip each. Their keys and arguments are documented on each.

/// KEYS[1] = `gnocchi-config`; ARGV[1] = the writer's sack count, ARGV[2] = the
/// number of metrics `m`; then `m` times (sack name, metric uuid, packed records,
/// measure count); then the sack names to notify.
/// Returns 0, or the stored sack count when it is not the writer's (nothing written).
pub(super) const ADD_LUA: &str = r"
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
for i = last + 1, #ARGV do
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
redis.call('HSET', KEYS[1], 'sacks', ARGV[2])
return {0, old, #stale, 0}
";

/// KEYS[1] = sack index; ARGV[1] = list key prefix (`<sack>:`).
/// Returns `{{uuid, {element, ...}}, ...}`.
pub(super) const TAKE_LUA: &str = r"
local ids = redis.call('HKEYS', KEYS[1])
local out = {}
for i, id in ipairs(ids) do
  out[i] = {id, redis.call('LRANGE', ARGV[1] .. id, 0, -1)}
end
return out
";

/// KEYS[1] = sack index; ARGV[1] = list key prefix; then per metric
/// (uuid, elements read, measures read).
pub(super) const COMMIT_LUA: &str = r"
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
return 1
";

/// ARGV[1] = sack name prefix (`P incoming<N>-`), ARGV[2] = N.
/// Returns a flat `{uuid, batches, measures, ...}`.
pub(super) const BACKLOG_LUA: &str = r"
local out = {}
for s = 0, tonumber(ARGV[2]) - 1 do
  local sack = ARGV[1] .. s
  local kv = redis.call('HGETALL', sack)
  for i = 1, #kv, 2 do
    out[#out + 1] = kv[i]
    out[#out + 1] = redis.call('LLEN', sack .. ':' .. kv[i])
    out[#out + 1] = tonumber(kv[i + 1])
  end
end
return out
";
