-- resize_pool / set_pool_blocked. ARGV: now, event id, pool id, value, '1' for the capacity
-- or '0' for the blocked count.
local now = clock(ARGV[1])
local event_id, pool = ARGV[2], ARGV[3]
local value = tonumber(ARGV[4])
local capacity = ARGV[5] == '1'
if not event_is(event_id) then
  return cjson.encode(fail('not_found', { entity = 'event', id = event_id }))
end
local i = redis.call('HGET', POOLS, pool)
if not i then
  return cjson.encode(fail('not_found', { entity = 'pool', id = pool }))
end
local wl = waitlist_ttl()
if wl then
  settle(now)
else
  finalize_lapsed(now)
end
local c = redis.call('HMGET', PC, 'c' .. i, 'h' .. i, 's' .. i, 'b' .. i)
local cap, held, sold, blocked = tonumber(c[1]), tonumber(c[2]), tonumber(c[3]), tonumber(c[4])
local used = held + sold + blocked
if (capacity and used > value) or (not capacity and held + sold + value > cap) then
  return cjson.encode(fail('conflict', { reason = 'capacity_below_usage', used = used }))
end
if capacity and cap ~= value then
  redis.call('HSET', PC, 'c' .. i, value)
  log(now, { type = 'pool_resized', pool = pool, capacity = value })
  if wl and value > cap then
    serve(now)
  end
elseif not capacity and blocked ~= value then
  redis.call('HSET', PC, 'b' .. i, value)
  log(now, { type = 'pool_blocked', pool = pool, blocked = value })
  if wl and value < blocked then
    serve(now)
  end
end
return cjson.encode({ ok = cjson.null })
