-- check_in. ARGV: now, code.
local now = clock(ARGV[1])
local code = ARGV[2]
local ticket_id = redis.call('HGET', CODE, code)
local t = ticket_id and load_tkt(ticket_id)
if not t or t.c ~= code then
  return cjson.encode(fail('not_found', { entity = 'ticket', id = code }))
end
if t.st ~= 'v' then
  return cjson.encode(ticket_conflict(t))
end
t.st = 'i'
redis.call('HSET', TKT, t.id, cjson.encode(t))
log(now, { type = 'checked_in', ticket = t.id })
return cjson.encode({ ok = ticket_json(t, redis.call('HGET', EV, 'id')) })
