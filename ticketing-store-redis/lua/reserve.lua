-- reserve and reserve_batch: independent reservations of one event, each all or nothing.
-- ARGV: now, event id, idempotency retention (ms), JSON array of requests
-- {id, tok, holder, cr?, seats, ga, best?, ttl?, fp}. Answers a JSON array, request order.
local now = clock(ARGV[1])
local event_id = ARGV[2]
local retention = tonumber(ARGV[3])
local requests = cjson.decode(ARGV[4])
local answers = {}

if not event_is(event_id) then
  for i = 1, #requests do
    answers[i] = fail('not_found', { entity = 'event', id = event_id })
  end
  return cjson.encode(answers)
end

local p = policy()
if p.wl then
  settle(now)
end

local function reserve_fresh(q)
  local ttl = q.ttl or p.ttl
  if ttl > p.ttl_max then
    return fail('invalid_request', { field = 'ttl_seconds',
      reason = 'this event allows at most ' .. p.ttl_max .. ' seconds' })
  end
  -- One HMGET for all the request's seats (and one for their states below), not one call
  -- each: a batch holds hundreds of requests.
  local sidx = {}
  local found = #q.seats > 0 and redis.call('HMGET', SEATS, unpack(q.seats)) or {}
  for i, seat in ipairs(q.seats) do
    if not found[i] then
      return fail('not_found', { entity = 'seat', id = seat })
    end
    sidx[i] = tonumber(found[i])
  end
  local gidx = {}
  for i, g in ipairs(q.ga) do
    local idx = redis.call('HGET', POOLS, g.pool)
    if not idx then
      return fail('not_found', { entity = 'pool', id = g.pool })
    end
    gidx[i] = tonumber(idx)
  end
  if p.opens and now < p.opens then
    return fail('not_on_sale', { opens_at = p.opens })
  end
  if p.closes and now >= p.closes then
    return fail('not_on_sale', { closed_at = p.closes })
  end
  -- Lapsed holds are free: finalize them before deciding.
  finalize_lapsed(now)
  if p.rsv_max and hc_get('r:' .. q.holder) + 1 > p.rsv_max then
    return fail('limit_exceeded', { limit = 'reservations', max = p.rsv_max })
  end
  local requested = #q.seats
  for _, g in ipairs(q.ga) do
    requested = requested + g.quantity
  end
  if q.best then
    requested = requested + q.best.count
  end
  if p.seats_max and hc_get('i:' .. q.holder) + hc_get('o:' .. q.holder) + requested > p.seats_max then
    return fail('limit_exceeded', { limit = 'seats', max = p.seats_max })
  end
  local taken = {}
  local states = #sidx > 0 and redis.call('HMGET', ST, unpack(sidx)) or {}
  for i in ipairs(sidx) do
    if states[i] then
      taken[#taken + 1] = q.seats[i]
    end
  end
  if #taken > 0 then
    return fail('seat_unavailable', { seats = taken })
  end
  for i, g in ipairs(q.ga) do
    local free = pool_free(gidx[i])
    if g.quantity > free then
      return fail('sold_out', { pool = g.pool, remaining = free })
    end
  end
  local seats = {}
  for i, seat in ipairs(q.seats) do
    seats[i] = seat
  end
  if q.best then
    local excluded = {}
    for _, idx in ipairs(sidx) do
      excluded[idx] = true
    end
    local picks, ids, candidates = pick_best(q.best, excluded)
    if not picks then
      return fail('sold_out', { remaining = candidates })
    end
    for k, idx in ipairs(picks) do
      sidx[#sidx + 1] = idx
      seats[#seats + 1] = ids[k]
    end
  end
  local expires = now + ttl * 1000
  local r = { id = q.id, h = q.holder, st = 'a', s = seats, si = sidx, g = q.ga, gi = gidx,
    c = now, e = expires, t = q.tok, cr = q.cr }
  local mark = 'h' .. r.id
  for _, idx in ipairs(sidx) do
    take_seat(idx, mark)
  end
  for i, g in ipairs(q.ga) do
    redis.call('HINCRBY', PC, 'h' .. gidx[i], g.quantity)
  end
  hc_add('r:' .. r.h, 1)
  hc_add('i:' .. r.h, items_of(r))
  redis.call('ZADD', DUE, expires, r.id)
  save_rsv(r)
  log(now, { type = 'reserved', reservation = r.id, holder = r.h, seats = seats, ga = q.ga,
    expires_at = expires })
  return { ok = rsv_json(r, now, event_id) }
end

local FP_FIELDS = { 'holder', 'seat_ids', 'ga', 'best_available', 'ttl_seconds' }

local function reserve_one(q)
  if q.cr then
    local raw = redis.call('HGET', RREC, q.cr)
    if raw then
      local rec = cjson.decode(raw)
      if now - rec.at < retention then
        for _, field in ipairs(FP_FIELDS) do
          if rec.fp[field] ~= q.fp[field] then
            return fail('idempotency_mismatch', { field = field })
          end
        end
        if rec.ok then
          return { ok = rsv_json(load_rsv(rec.ok), now, event_id) }
        end
        return rec.err
      end
    end
  end
  local result = reserve_fresh(q)
  if q.cr then
    local rec = { at = now, fp = q.fp }
    if result.ok then
      rec.ok = q.id
    else
      rec.err = result
    end
    redis.call('HSET', RREC, q.cr, cjson.encode(rec))
    redis.call('ZADD', RECT, now, 'r:' .. q.cr)
  end
  return result
end

for i, q in ipairs(requests) do
  answers[i] = reserve_one(q)
end
return cjson.encode(answers)
