-- transfer. ARGV: now, ticket id, new holder, new code.
local now = clock(ARGV[1])
local ticket_id, to, code = ARGV[2], ARGV[3], ARGV[4]
local t = load_tkt(ticket_id)
if not t then
  return cjson.encode(fail('not_found', { entity = 'ticket', id = ticket_id }))
end
if t.h == to then
  return cjson.encode(fail('invalid_request', { field = 'to',
    reason = 'the ticket already belongs to this holder' }))
end
if t.st ~= 'v' then
  return cjson.encode(ticket_conflict(t))
end
local p = policy()
if p.seats_max then
  -- Only live holds count. Without a waitlist, finalize the lapsed ones first; with one,
  -- leave them to the next operation that settles the event (and serves what they free),
  -- and do not count the lapsed ones of the new holder.
  local lapsed = 0
  if p.wl then
    for _, id in ipairs(redis.call('ZRANGEBYSCORE', DUE, '-inf', now)) do
      local r = load_rsv(id)
      if r and r.st == 'a' and r.h == to then
        lapsed = lapsed + items_of(r)
      end
    end
  else
    finalize_lapsed(now)
  end
  if hc_get('i:' .. to) - lapsed + hc_get('o:' .. to) + 1 > p.seats_max then
    return cjson.encode(fail('limit_exceeded', { limit = 'seats', max = p.seats_max }))
  end
end
local from = t.h
redis.call('HDEL', CODE, t.c)
t.h = to
t.c = code
redis.call('HSET', TKT, t.id, cjson.encode(t))
redis.call('HSET', CODE, code, t.id)
hc_add('o:' .. from, -1)
hc_add('o:' .. to, 1)
local event_id = redis.call('HGET', EV, 'id')
log(now, { type = 'transferred', ticket = t.id, from = from, to = to })
return cjson.encode({ ok = ticket_json(t, event_id) })
