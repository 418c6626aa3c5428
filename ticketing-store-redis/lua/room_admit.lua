-- The admission step. ARGV: now, event id, free units (at most 2^53), most to admit in a
-- step, most passes to lapse in a step. Answers what the step did and the room after it.
local now = clock(ARGV[1])
local event_id, free = ARGV[2], tonumber(ARGV[3])
local admit_max, lapse_max = tonumber(ARGV[4]), tonumber(ARGV[5])
local room = load_room(event_id)
if not room then
  return fail('not_found', { entity = 'room', id = event_id })
end
open_if_due(room, now)

-- Lapse passes past their time (earliest first, a bounded number: the rest are lapsed by
-- reading and swept by the next steps; they never count as live).
local due = redis.call('ZRANGEBYSCORE', PASSES, '-inf', int(now), 'LIMIT', 0, lapse_max)
for _, t in ipairs(due) do
  finish(t, load_ticket(t), 'l')
  redis.call('ZREM', PASSES, t)
end
local step = { admitted = 0, lapsed = #due }
if not room.opened then
  step.stats = room_stats(room, now)
  return cjson.encode({ ok = step })
end

-- The budget: ticketing_core::AdmissionBudget::of, in the same integer arithmetic.
room.sold = free == 0
local active = redis.call('ZCOUNT', PASSES, '(' .. int(now), '+inf')
local admit = math.min(redis.call('ZCARD', QUEUE), admit_max)
local credit = room.credit
if room.rate then
  credit = math.min(credit + room.rate * math.max(now - room.last, 0), room.rate * 1000)
  admit = math.min(admit, math.floor(credit / 1000))
end
if room.cap then
  admit = math.min(admit, math.max(room.cap - active, 0))
end
admit = math.min(admit, math.max(math.floor(free / room.spb) - active, 0))
if room.rate then
  credit = credit - admit * 1000
end

-- Admit the head of the queue: one pass expiry for the whole step.
local admitted = 0
if admit > 0 then
  local expires = int(now + room.ttl * 1000)
  local popped = redis.call('ZPOPMIN', QUEUE, admit)
  local args = {}
  for i = 1, #popped, 2 do
    args[#args + 1] = expires
    args[#args + 1] = popped[i]
    if #args >= 2000 then
      redis.call('ZADD', PASSES, unpack(args))
      args = {}
    end
  end
  if #args > 0 then
    redis.call('ZADD', PASSES, unpack(args))
  end
  admitted = #popped / 2
end
room.admitted = room.admitted + admitted
room.last = math.max(now, room.last)
room.credit = credit
local sold = '0'
if room.sold then
  sold = '1'
end
redis.call('HSET', ROOM, 'credit', int(credit), 'last', int(room.last), 'sold', sold,
  'admitted', int(room.admitted))
step.admitted = admitted
step.stats = room_stats(room, now)
return cjson.encode({ ok = step })
