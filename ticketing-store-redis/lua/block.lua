-- block / unblock seats. ARGV: now, event id, seat ids JSON, '1' to block or '0' to unblock.
local now = clock(ARGV[1])
local event_id = ARGV[2]
if not event_is(event_id) then
  return cjson.encode(fail('not_found', { entity = 'event', id = event_id }))
end
local seats = cjson.decode(ARGV[3])
local blocking = ARGV[4] == '1'
local idx = {}
for i, seat in ipairs(seats) do
  local found = redis.call('HGET', SEATS, seat)
  if not found then
    return cjson.encode(fail('not_found', { entity = 'seat', id = seat }))
  end
  idx[i] = found
end
local wl = waitlist_ttl()
if wl then
  settle(now)
end
local changed = {}
if blocking then
  finalize_lapsed(now)
  local taken = {}
  for i, seat in ipairs(seats) do
    local state = redis.call('HGET', ST, idx[i])
    if state and state ~= 'b' then
      taken[#taken + 1] = seat
    end
  end
  if #taken > 0 then
    return cjson.encode(fail('seat_unavailable', { seats = taken }))
  end
  for i, seat in ipairs(seats) do
    -- Seats already blocked stay as they are (take_seat answers false).
    if take_seat(idx[i], 'b') then
      changed[#changed + 1] = seat
    end
  end
  if #changed > 0 then
    log(now, { type = 'seats_blocked', seats = changed })
  end
else
  for i, seat in ipairs(seats) do
    if redis.call('HGET', ST, idx[i]) == 'b' then
      free_seat(idx[i])
      changed[#changed + 1] = seat
    end
  end
  if #changed > 0 then
    log(now, { type = 'seats_unblocked', seats = changed })
    if wl then
      serve(now)
    end
  end
end
return cjson.encode({ ok = cjson.null })
