-- stats. ARGV: now, event id.
local now = clock(ARGV[1])
local event_id = ARGV[2]
local room = load_room(event_id)
if not room then
  return fail('not_found', { entity = 'room', id = event_id })
end
open_if_due(room, now)
return cjson.encode({ ok = room_stats(room, now) })
