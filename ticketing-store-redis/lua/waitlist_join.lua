-- waitlist_join. ARGV: now, event id, request {holder, quantity, adjacent, section?, pool?},
-- the request as serde writes it (compared and answered as is), entry id, token digest,
-- offer reservation id, most waiting entries. Answers the entry (see entry_json).
local now = clock(ARGV[1])
local event_id = ARGV[2]
local q = cjson.decode(ARGV[3])
local rq, entry_id, digest, offer_id = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local entries_max = tonumber(ARGV[8])
if not event_is(event_id) then
  return cjson.encode(fail('not_found', { entity = 'event', id = event_id }))
end
local p = policy()
if not p.wl then
  return cjson.encode(fail('not_found', { entity = 'waitlist', id = event_id }))
end
settle(now)

-- The holder's open entry: waiting, or offered with the offer still live.
local latest = redis.call('HGET', WH, q.holder)
local open = latest and load_entry(latest)
if open and open.st == 'o' then
  local offer = load_rsv(open.r)
  if not (offer and offer.st == 'a' and offer.e > now) then
    open = nil
  end
elseif open and open.st ~= 'w' then
  open = nil
end
if open then
  if open.rq ~= rq then
    return cjson.encode(fail('conflict', { reason = 'waitlist_entry_exists' }))
  end
  return cjson.encode({ ok = entry_json(open) })
end

-- Whether the layout could ever satisfy the request.
local function invalid(field, reason)
  return cjson.encode(fail('invalid_request', { field = field, reason = reason }))
end
local pool_index = nil
if q.pool then
  pool_index = redis.call('HGET', POOLS, q.pool)
  if not pool_index then
    return cjson.encode(fail('not_found', { entity = 'pool', id = q.pool }))
  end
  pool_index = tonumber(pool_index)
else
  local seats = cjson.decode(redis.call('GET', LAYOUT) or '[]')
  if #seats == 0 then
    return invalid('pool', 'the event has no seats: name a GA pool')
  end
  local count, place = 0, {}
  for _, seat in ipairs(seats) do
    if q.section == nil or seat[2] == q.section then
      count = count + 1
      place[seat[2] .. '\0' .. seat[3] .. '\0' .. seat[4]] = true
    end
  end
  if count == 0 then
    return invalid('section', "no seat is in section '" .. q.section .. "'")
  end
  if q.quantity > count then
    return invalid('quantity', 'there are only ' .. count .. ' such seats')
  end
  if q.adjacent then
    local run_max = 0
    for _, seat in ipairs(seats) do
      local row = seat[2] .. '\0' .. seat[3] .. '\0'
      if (q.section == nil or seat[2] == q.section) and not place[row .. (seat[4] - 1)] then
        local run = 1
        while place[row .. (seat[4] + run)] do
          run = run + 1
        end
        if run > run_max then
          run_max = run
        end
      end
    end
    if q.quantity > run_max then
      return invalid('quantity', 'at most ' .. run_max .. ' such seats are adjacent in one row')
    end
  end
end
if p.opens and now < p.opens then
  return cjson.encode(fail('not_on_sale', { opens_at = p.opens }))
end
if p.closes and now >= p.closes then
  return cjson.encode(fail('not_on_sale', { closed_at = p.closes }))
end
if p.rsv_max and hc_get('r:' .. q.holder) + 1 > p.rsv_max then
  return cjson.encode(fail('limit_exceeded', { limit = 'reservations', max = p.rsv_max }))
end
if p.seats_max and hc_get('i:' .. q.holder) + hc_get('o:' .. q.holder) + q.quantity > p.seats_max then
  return cjson.encode(fail('limit_exceeded', { limit = 'seats', max = p.seats_max }))
end
if redis.call('ZCARD', WQ) >= entries_max then
  return cjson.encode(fail('conflict', { reason = 'waitlist_full' }))
end

-- The entry joins at the back and counts toward its holder's limits as a live reservation
-- of its quantity; then, as nothing else waiting is satisfiable, only it may be served.
local serial = redis.call('HINCRBY', EV, 'wseq', 1)
local e = { id = entry_id, h = q.holder, q = q.quantity, a = q.adjacent, sec = q.section,
  p = q.pool, pi = pool_index, j = now, t = digest, r = offer_id, st = 'w', rq = rq }
save_entry(e)
redis.call('ZADD', WQ, serial, entry_id)
redis.call('HSET', WH, q.holder, entry_id)
hc_add('r:' .. q.holder, 1)
hc_add('i:' .. q.holder, q.quantity)
log(now, { type = 'waitlist_joined', entry = entry_id, holder = q.holder, quantity = q.quantity,
  adjacent = q.adjacent, section = q.section, pool = q.pool })
serve(now, serial)
return cjson.encode({ ok = entry_json(load_entry(entry_id)) })
