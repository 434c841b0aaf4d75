"""The Lua scripts of the shared state: each one is applied by Redis atomically, so no
sample or claim is lost to another process writing at the same moment.

Every key a script touches is passed in KEYS (never built inside the script): LiteLLM's
client puts its namespace in front of each, and with Redis Cluster they share a hash slot
(the ``{...}`` tag of :mod:`.keys`). Times are Redis' own clock (``TIME``, milliseconds),
so processes on hosts whose clocks differ still agree. Floats are returned as strings:
Redis would cut a Lua number to an integer.
"""

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

#: Claim a place on a tier for one request, or say why not.
#: KEYS: the tier's leases (sorted set, score = expiry), the owner's leases on that tier,
#: the tier's probe. ARGV: member, lease ms, tier limit (0: none), owner limit (-1: no
#: owner, 0: counted, no limit), probe ms (0: not a probe).
#: Returns {result, tier count, owner count}: 1 granted, 0 tier full, 2 owner's share
#: full, 3 another process probes the tier in this interval. An empty member changes nothing.
CLAIM = _NOW + """
if ARGV[1] == '' then return {0, 0, 0} end  -- loads the script only (see SharedState.sync)
local lease = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local count = redis.call('ZCARD', KEYS[1])
local limit = tonumber(ARGV[3])
if limit > 0 and count >= limit then return {0, count, 0} end
local owner_limit = tonumber(ARGV[4])
local owned = 0
if owner_limit >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  owned = redis.call('ZCARD', KEYS[2])
  if owner_limit > 0 and owned >= owner_limit then return {2, count, owned} end
end
local probe = tonumber(ARGV[5])
if probe > 0 and not redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', probe) then return {3, count, owned} end
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[1], lease * 2)
if owner_limit >= 0 then
  redis.call('ZADD', KEYS[2], now + lease, ARGV[1])
  redis.call('PEXPIRE', KEYS[2], lease * 2)
end
return {1, count + 1, owned + 1}
"""

#: One process's tick for one tier: drop the leases of its ended requests, renew the
#: others, apply its latency samples in order, and read the tier back.
#: KEYS: the tier's leases, its state (hash), its probe.
#: ARGV: lease ms, EMA alpha, failure threshold, cooldown ms, number of ended members,
#: the ended members, number of held members, the held members, then the samples as
#: groups of four: kind (s: success, f: failure), time to first token ms or '', total
#: ms or '', 1 when the sample is a probe's.
#: Returns {now, leases of other processes, {ttft, total, samples, last sample,
#: failures, unhealthy until}, 1 when a probe is claimed}.
TIER = _NOW + """
local lease, alpha = tonumber(ARGV[1]), tonumber(ARGV[2])
local threshold, cooldown = tonumber(ARGV[3]), tonumber(ARGV[4])
local i = 5
local ended = tonumber(ARGV[i])
for j = 1, ended do redis.call('ZREM', KEYS[1], ARGV[i + j]) end
i = i + ended + 1
local held = tonumber(ARGV[i])
for j = 1, held do redis.call('ZADD', KEYS[1], now + lease, ARGV[i + j]) end
i = i + held + 1
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if held > 0 then redis.call('PEXPIRE', KEYS[1], lease * 2) end
local h = KEYS[2]
local function ema(field, x, replace)
  local prev = redis.call('HGET', h, field)
  if prev and not replace then x = tonumber(prev) + alpha * (x - tonumber(prev)) end
  redis.call('HSET', h, field, tostring(x))
end
local sampled = false
while i + 3 <= #ARGV do
  local kind, ttft, total, probe = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3] == '1'
  sampled = true
  if kind == 's' then
    if total ~= '' then ema('total', tonumber(total), probe) end
    if ttft ~= '' then ema('ttft', tonumber(ttft), probe) end
    redis.call('HINCRBY', h, 'samples', 1)
    redis.call('HSET', h, 'last_sample', now, 'failures', 0, 'unhealthy_until', 0)
  else
    if total ~= '' then
      local prev = redis.call('HGET', h, 'total')
      if not prev or tonumber(total) > tonumber(prev) then ema('total', tonumber(total), false) end
    end
    redis.call('HSET', h, 'last_sample', now)
    if redis.call('HINCRBY', h, 'failures', 1) >= threshold then
      redis.call('HSET', h, 'unhealthy_until', now + cooldown)
    end
  end
  i = i + 4
end
if sampled then redis.call('PEXPIRE', h, 86400000) end
local others = redis.call('ZCARD', KEYS[1]) - held
local state = redis.call('HMGET', h, 'ttft', 'total', 'samples', 'last_sample', 'failures', 'unhealthy_until')
return {now, others, state, redis.call('EXISTS', KEYS[3])}
"""

#: Renew (or drop) this process's leases in each owner's set on a tier.
#: KEYS: owner sets. ARGV: lease ms, then per key: number of ended, the ended, number
#: held, the held.
OWNERS = _NOW + """
local lease = tonumber(ARGV[1])
local i = 2
for _, key in ipairs(KEYS) do
  local ended = tonumber(ARGV[i])
  for j = 1, ended do redis.call('ZREM', key, ARGV[i + j]) end
  i = i + ended + 1
  local held = tonumber(ARGV[i])
  for j = 1, held do redis.call('ZADD', key, now + lease, ARGV[i + j]) end
  i = i + held + 1
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if held > 0 then redis.call('PEXPIRE', key, lease * 2) end
end
return #KEYS
"""

#: Remember the tiers conversations reached, never moving one down.
#: KEYS: conversation keys. ARGV: ttl ms, then per key: the tier's rank, the tier.
#: A value is "rank|tier": no text of the conversation is stored.
REMEMBER = """
for n, key in ipairs(KEYS) do
  local rank, tier = tonumber(ARGV[2 * n]), ARGV[2 * n + 1]
  local prev = redis.call('GET', key)
  if prev then
    local sep = string.find(prev, '|', 1, true)
    if sep and tonumber(string.sub(prev, 1, sep - 1)) > rank then
      rank, tier = tonumber(string.sub(prev, 1, sep - 1)), string.sub(prev, sep + 1)
    end
  end
  redis.call('SET', key, rank .. '|' .. tier, 'PX', ARGV[1])
end
return #KEYS
"""

#: The tier a conversation reached, as "rank|tier", or nil. KEYS: the conversation key.
RECALL = "return redis.call('GET', KEYS[1])"

#: Add this process's overflow charges and read the rolling hour and day back.
#: KEYS: this minute's bucket, this hour's bucket, the hour's 60 minute buckets, the
#: day's 24 hour buckets. ARGV: requests, spend (US dollars).
#: Returns {hour requests, hour spend, day requests, day spend} as strings.
BUDGET = """
local requests, spend = tonumber(ARGV[1]), tonumber(ARGV[2])
for n = 1, 2 do
  if requests > 0 then redis.call('HINCRBY', KEYS[n], 'r', requests) end
  if spend > 0 then redis.call('HINCRBYFLOAT', KEYS[n], 's', ARGV[2]) end
end
if requests > 0 or spend > 0 then
  redis.call('PEXPIRE', KEYS[1], 3660000)
  redis.call('PEXPIRE', KEYS[2], 90000000)
end
local sums = {0, 0, 0, 0}
for n = 3, #KEYS do
  local values = redis.call('HMGET', KEYS[n], 'r', 's')
  local at = n <= 62 and 1 or 3
  sums[at] = sums[at] + (tonumber(values[1]) or 0)
  sums[at + 1] = sums[at + 1] + (tonumber(values[2]) or 0)
end
return {tostring(sums[1]), tostring(sums[2]), tostring(sums[3]), tostring(sums[4])}
"""

#: Take one judged sample from the hour's and the day's budget, if both have some left.
#: KEYS: the hour's count, the day's count. ARGV: per hour, per day, the hour key's life
#: ms, the day key's life ms. Returns 1 taken, 0 spent.
SAMPLES = """
local hour = tonumber(redis.call('GET', KEYS[1]) or '0')
local day = tonumber(redis.call('GET', KEYS[2]) or '0')
if hour >= tonumber(ARGV[1]) or day >= tonumber(ARGV[2]) then return 0 end
redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 1
"""
