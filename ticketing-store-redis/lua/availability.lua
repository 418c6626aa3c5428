-- availability. ARGV: now, event id. Finalizes lapsed holds, then answers
-- {seq, seats: n, states: [idx, state, ...], pools: [[id, capacity, held, sold, blocked]...]}.
local now = clock(ARGV[1])
local event_id = ARGV[2]
if not event_is(event_id) then
  return cjson.encode(fail('not_found', { entity = 'event', id = event_id }))
end
if finalize_lapsed(now) > 0 and waitlist_ttl() then
  serve(now)
end
local states = redis.call('HGETALL', ST)
for i = 2, #states, 2 do
  states[i] = string.sub(states[i], 1, 1)
end
local pools = cjson.decode(redis.call('HGET', EV, 'pools'))
local counts = {}
for i, pool in ipairs(pools) do
  local c = redis.call('HMGET', PC, 'c' .. i, 'h' .. i, 's' .. i, 'b' .. i)
  counts[i] = { pool[1], tonumber(c[1]), tonumber(c[2]), tonumber(c[3]), tonumber(c[4]) }
end
local e = redis.call('HMGET', EV, 'seq', 'seats')
return cjson.encode({ ok = { seq = tonumber(e[1]), seats = tonumber(e[2]), states = states,
  pools = counts } })
