-- configure. ARGV: now, event id, rate, cap, pass ttl (s), seats per buyer, opens_at
-- ('' for none), shuffle seed (16 hex digits). The settings were checked by the client.
local now = clock(ARGV[1])
local event_id = ARGV[2]
local existing = redis.call('HGET', ROOM, 'id')
if existing and existing ~= event_id then
  -- Two ids with the same 80-bit tag: refused rather than sharing keys.
  return fail('tag_collision', { id = existing })
end
redis.call('HSET', ROOM, 'id', event_id, 'rate', ARGV[3], 'cap', ARGV[4], 'ttl', ARGV[5],
  'spb', ARGV[6], 'opens', ARGV[7], 'seed', ARGV[8])
local room = load_room(event_id)
if existing then
  -- Never more than one second's worth of the new rate in hand.
  local credit = math.min(room.credit, (room.rate or 0) * 1000)
  if credit ~= room.credit then
    room.credit = credit
    redis.call('HSET', ROOM, 'credit', int(credit))
  end
else
  room.last = now
  room.credit = 0
  redis.call('HSET', ROOM, 'last', int(now), 'credit', 0, 'sold', 0, 'admitted', 0, 'seq', 0)
end
open_if_due(room, now)
return cjson.encode({ ok = cjson.null })
