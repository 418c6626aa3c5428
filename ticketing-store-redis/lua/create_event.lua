-- create_event. ARGV: now, event id, spec JSON, layout JSON, pools JSON [[id, capacity]...],
-- ttl, ttl_max, seats_max, rsv_max, late, refund_to, opens, closes, waitlist offer ttl
-- ('' for none).
local now = clock(ARGV[1])
local event_id = ARGV[2]
local existing = redis.call('HGET', EV, 'id')
if existing then
  if existing == event_id then
    return cjson.encode(fail('conflict', { reason = 'event_exists' }))
  end
  -- Two ids with the same 80-bit tag: refused rather than sharing keys.
  return cjson.encode(fail('tag_collision', { id = existing }))
end
local layout = cjson.decode(ARGV[4])
local pools = cjson.decode(ARGV[5])
local CHUNK = 1000
local args = {}
for i, seat in ipairs(layout) do
  args[#args + 1] = seat[1]
  args[#args + 1] = i
  if #args >= 2 * CHUNK then
    redis.call('HSET', SEATS, unpack(args))
    args = {}
  end
end
if #args > 0 then
  redis.call('HSET', SEATS, unpack(args))
end
redis.call('SET', LAYOUT, ARGV[4])
-- Every seat is free: all of them go into the free-seat index.
build_free_index(layout)
for i, pool in ipairs(pools) do
  redis.call('HSET', POOLS, pool[1], i)
  redis.call('HSET', PC, 'c' .. i, pool[2], 'h' .. i, 0, 's' .. i, 0, 'b' .. i, 0)
end
redis.call('HSET', EV, 'id', event_id, 'seq', 0, 'spec', ARGV[3], 'created', now,
  'seats', #layout, 'pools', cjson.encode(pools), 'ttl', ARGV[6], 'ttl_max', ARGV[7],
  'seats_max', ARGV[8], 'rsv_max', ARGV[9], 'late', ARGV[10], 'refund_to', ARGV[11],
  'opens', ARGV[12], 'closes', ARGV[13], 'wl', ARGV[14])
log(now, { type = 'event_created' })
return cjson.encode({ ok = { created_at = now } })
