-- Reads. ARGV: now, what ('reservation' | 'order' | 'ticket'), id.
local now = clock(ARGV[1])
local what, id = ARGV[2], ARGV[3]
local event_id = redis.call('HGET', EV, 'id')
local value = nil
if what == 'reservation' then
  local r = load_rsv(id)
  value = r and rsv_json(r, now, event_id)
elseif what == 'order' then
  value = order_json(id, event_id)
else
  local t = load_tkt(id)
  value = t and ticket_json(t, event_id)
end
if not value then
  return cjson.encode(fail('not_found', { entity = what, id = id }))
end
return cjson.encode({ ok = value })
