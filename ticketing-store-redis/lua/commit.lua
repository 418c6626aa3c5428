-- commit. ARGV: now, reservation id, token digest, request JSON {key, payment?, seats?, ga?,
-- fp}, order id, ticket id stem, code seed, tag, idempotency retention (ms).
local now = clock(ARGV[1])
local id, digest = ARGV[2], ARGV[3]
local q = cjson.decode(ARGV[4])
local order_id, stem, seed, tag = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local retention = tonumber(ARGV[9])

local r = load_rsv(id)
if not r then
  return cjson.encode(fail('not_found', { entity = 'reservation', id = id }))
end
if r.t ~= digest then
  return cjson.encode(fail('invalid_token'))
end
local ev = redis.call('HMGET', EV, 'id', 'wl')
local event_id, wl = ev[1], tonumber(ev[2] or '')
if wl then
  settle(now)
  r = load_rsv(id)
end
-- Whether the commit released items (bought only some of them).
local freed = false

local FP_FIELDS = { 'reservation_id', 'payment_id', 'seat_ids', 'ga' }
local raw = redis.call('HGET', CREC, q.key)
if raw then
  local rec = cjson.decode(raw)
  if now - rec.at < retention then
    for _, field in ipairs(FP_FIELDS) do
      if rec.fp[field] ~= q.fp[field] then
        return cjson.encode(fail('idempotency_mismatch', { field = field }))
      end
    end
    if rec.ok then
      return cjson.encode({ ok = order_json(rec.ok, event_id) })
    end
    return cjson.encode(rec.err)
  end
end

local function commit_fresh()
  if r.st == 'c' then
    return fail('reservation_not_active', { status = 'committed' })
  end
  if r.st == 'x' then
    return fail('reservation_not_active', { status = 'cancelled' })
  end
  local wanted_seats = nil
  if q.seats then
    local mine = {}
    for _, seat in ipairs(r.s) do
      mine[seat] = true
    end
    wanted_seats = {}
    for _, seat in ipairs(q.seats) do
      if not mine[seat] then
        return fail('invalid_request', { field = 'seat_ids',
          reason = 'seat ' .. seat .. ' is not in the reservation' })
      end
      wanted_seats[seat] = true
    end
  end
  local wanted_ga = nil
  if q.ga then
    local held = {}
    for _, g in ipairs(r.g) do
      held[g.pool] = g.quantity
    end
    wanted_ga = {}
    for _, g in ipairs(q.ga) do
      if g.quantity > (held[g.pool] or 0) then
        return fail('invalid_request', { field = 'ga',
          reason = 'more units of pool ' .. g.pool .. ' than the reservation holds' })
      end
      wanted_ga[g.pool] = g.quantity
    end
  end
  local seats, seat_idx, released, released_idx = {}, {}, {}, {}
  for i, seat in ipairs(r.s) do
    if wanted_seats == nil or wanted_seats[seat] then
      seats[#seats + 1] = seat
      seat_idx[#seat_idx + 1] = r.si[i]
    else
      released[#released + 1] = seat
      released_idx[#released_idx + 1] = r.si[i]
    end
  end
  local ga, ga_idx, released_ga = {}, {}, {}
  for i, g in ipairs(r.g) do
    local n = g.quantity
    if wanted_ga ~= nil then
      n = wanted_ga[g.pool] or 0
    end
    if n > 0 then
      ga[#ga + 1] = { pool = g.pool, quantity = n }
      ga_idx[#ga_idx + 1] = r.gi[i]
    end
    if g.quantity - n > 0 then
      released_ga[#released_ga + 1] = { pool = g.pool, quantity = g.quantity - n }
    end
  end
  if #seats == 0 and #ga == 0 then
    return fail('invalid_request', { field = 'seat_ids',
      reason = 'a commit must buy at least one item; cancel instead' })
  end
  local after_expiry = false
  if r.st == 'e' or r.e <= now then
    -- Lapsed: finalize every lapsed hold of the event (this one included), then see whether
    -- the late-commit rule lets the chosen items be sold from free inventory.
    finalize_lapsed(now)
    r = load_rsv(id)
    local allowed = policy().late == 'if_still_available'
    if allowed then
      for _, idx in ipairs(seat_idx) do
        if redis.call('HEXISTS', ST, idx) == 1 then
          allowed = false
        end
      end
      for i, g in ipairs(ga) do
        if pool_free(ga_idx[i]) < g.quantity then
          allowed = false
        end
      end
    end
    if not allowed then
      return fail('reservation_expired', { expired_at = r.e })
    end
    after_expiry = true
    released, released_ga = {}, {}
  else
    freed = #released_idx > 0 or #released_ga > 0
    for _, idx in ipairs(released_idx) do
      free_seat(idx)
    end
    for i, g in ipairs(r.g) do
      redis.call('HINCRBY', PC, 'h' .. r.gi[i], -g.quantity)
    end
    leave_active(r)
  end
  if #seat_idx > 0 then
    if after_expiry then
      -- Free seats (checked above).
      take_free_seats(seat_idx, 's')
    else
      retake_seats(seat_idx, 's')
    end
  end
  for i, g in ipairs(ga) do
    redis.call('HINCRBY', PC, 's' .. ga_idx[i], g.quantity)
  end
  r.st = 'c'
  r.o = order_id
  save_rsv(r)
  local ticket_ids, tickets = {}, {}
  -- HSET TKT and HSET CODE arguments: one call each for the order.
  local records, codes = {}, {}
  local function issue(kind, item, idx)
    local n = #ticket_ids + 1
    local ticket_id = stem .. '-' .. n .. '.' .. tag
    local code = string.upper(string.sub(redis.sha1hex(seed .. ':' .. n), 1, 32)) .. '.' .. tag
    local t = { id = ticket_id, o = order_id, h = r.h, k = kind, i = item, x = idx, c = code, st = 'v' }
    records[#records + 1] = ticket_id
    records[#records + 1] = cjson.encode(t)
    codes[#codes + 1] = code
    codes[#codes + 1] = ticket_id
    ticket_ids[n] = ticket_id
    tickets[n] = t
  end
  for i, seat in ipairs(seats) do
    issue('s', seat, seat_idx[i])
  end
  for i, g in ipairs(ga) do
    for _ = 1, g.quantity do
      issue('p', g.pool, ga_idx[i])
    end
  end
  redis.call('HSET', TKT, unpack(records))
  redis.call('HSET', CODE, unpack(codes))
  hc_add('o:' .. r.h, #ticket_ids)
  local o = { id = order_id, r = r.id, h = r.h, p = q.payment, c = now, t = ticket_ids }
  redis.call('HSET', ORD, order_id, cjson.encode(o))
  log(now, { type = 'committed', reservation = r.id, order = order_id, seats = seats, ga = ga,
    released_seats = released, released_ga = released_ga, after_expiry = after_expiry })
  -- The order as just written, without reading it back.
  return { ok = order_view(o, tickets, event_id) }
end

local result = commit_fresh()
if wl and freed then
  serve(now)
end
local rec = { at = now, fp = q.fp }
if result.ok then
  rec.ok = order_id
else
  rec.err = result
end
redis.call('HSET', CREC, q.key, cjson.encode(rec))
redis.call('ZADD', RECT, now, 'c:' .. q.key)
return cjson.encode(result)
