-- join. ARGV: now, event id, visitor, a fresh ticket key (used only if a new ticket is made).
-- Answers the visitor's ticket key and when it joined.
local now = clock(ARGV[1])
local event_id, visitor, fresh = ARGV[2], ARGV[3], ARGV[4]
local room = load_room(event_id)
if not room then
  return fail('not_found', { entity = 'room', id = event_id })
end
open_if_due(room, now)
local current = redis.call('HGET', VISITORS, visitor)
if current then
  local ticket = load_ticket(current)
  local place = live_place(current, now, false)
  if place == 'waiting' or place == 'admitted' then
    return cjson.encode({ ok = { key = current, joined_at = ticket.joined } })
  end
  -- A pass that lapsed and was not swept yet: finish it, then queue anew.
  redis.call('ZREM', PASSES, current)
  finish(current, ticket, 'l')
end
if redis.call('HEXISTS', TICKETS, fresh) == 1 then
  -- 80 random bits met again: the client draws another key.
  return fail('key_taken')
end
local order
if room.opened then
  order = PREQUEUE_END + redis.call('HINCRBY', ROOM, 'seq', 1)
else
  -- The pre-queue: the first 52 bits of SHA-1 over the seed's 16 hex digits and the visitor.
  order = tonumber(string.sub(redis.sha1hex(room.seed .. visitor), 1, 13), 16)
end
redis.call('ZADD', QUEUE, int(order), fresh)
redis.call('HSET', TICKETS, fresh, 'q' .. int(now) .. '|' .. visitor)
redis.call('HSET', VISITORS, visitor, fresh)
return cjson.encode({ ok = { key = fresh, joined_at = now } })
