-- leave. ARGV: now, ticket id (for errors), ticket key, joined_at (ms) as the id says.
-- Leaving twice, or after the pass lapsed, changes nothing.
local now = clock(ARGV[1])
local id, t = ARGV[2], ARGV[3]
local ticket = load_ticket(t)
local room = load_room(nil)
if not ticket or not room or ticket.joined ~= tonumber(ARGV[4]) then
  return fail('not_found', { entity = 'queue_ticket', id = id })
end
open_if_due(room, now)
if ticket.mark ~= 'q' then
  return cjson.encode({ ok = cjson.null })
end
local place = live_place(t, now, false)
if place == 'waiting' then
  redis.call('ZREM', QUEUE, t)
elseif place == 'admitted' then
  redis.call('ZREM', PASSES, t)
else
  -- A lapsed pass (the next step sweeps it), or a ticket in no place.
  return cjson.encode({ ok = cjson.null })
end
finish(t, ticket, 'x')
return cjson.encode({ ok = cjson.null })
