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

-- What the batch writes once at its end rather than once per request (nothing else in
-- this script reads it back from Redis: lapsed holds are finalized once, before the first
-- hold is made, and a replay of a request made earlier in the batch reads the tables
-- below): new reservation records, their expiries, and idempotency records.
local made = {}          -- reservation id -> record, made by this batch
local saves, dues = {}, {} -- HSET RSV and ZADD DUE arguments
local recs, rec_times = {}, {} -- HSET RREC and ZADD RECT arguments
-- Client reservation id -> idempotency record (decoded), false when none: every record
-- the batch may replay, read in one HMGET, and those it writes.
local replays = {}
do
  local ids = {}
  for _, q in ipairs(requests) do
    if q.cr and replays[q.cr] == nil then
      replays[q.cr] = false
      ids[#ids + 1] = q.cr
    end
  end
  if #ids > 0 then
    for k, raw in ipairs(redis.call('HMGET', RREC, unpack(ids))) do
      replays[ids[k]] = raw and cjson.decode(raw) or false
    end
  end
end
-- Pool id -> pool index (false: no such pool), as read by this batch.
local pool_indices = {}
log_hold()

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
    local idx = pool_indices[g.pool]
    if idx == nil then
      idx = tonumber(redis.call('HGET', POOLS, g.pool) or '') or false
      pool_indices[g.pool] = idx
    end
    if not idx then
      return fail('not_found', { entity = 'pool', id = g.pool })
    end
    gidx[i] = idx
  end
  if p.opens and now < p.opens then
    return fail('not_on_sale', { opens_at = p.opens })
  end
  if p.closes and now >= p.closes then
    return fail('not_on_sale', { closed_at = p.closes })
  end
  -- Lapsed holds are free: finalize them before deciding.
  finalize_lapsed(now)
  if p.rsv_max or p.seats_max then
    -- The holder's counters in one HMGET.
    local c = redis.call('HMGET', HC, 'r:' .. q.holder, 'i:' .. q.holder, 'o:' .. q.holder)
    if p.rsv_max and (tonumber(c[1] or '0') or 0) + 1 > p.rsv_max then
      return fail('limit_exceeded', { limit = 'reservations', max = p.rsv_max })
    end
    local requested = #q.seats
    for _, g in ipairs(q.ga) do
      requested = requested + g.quantity
    end
    if q.best then
      requested = requested + q.best.count
    end
    if p.seats_max and (tonumber(c[2] or '0') or 0) + (tonumber(c[3] or '0') or 0) + requested
        > p.seats_max then
      return fail('limit_exceeded', { limit = 'seats', max = p.seats_max })
    end
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
  if #sidx > 0 then
    take_free_seats(sidx, 'h' .. r.id)
  end
  for i, g in ipairs(q.ga) do
    redis.call('HINCRBY', PC, 'h' .. gidx[i], g.quantity)
  end
  hc_add('r:' .. r.h, 1)
  hc_add('i:' .. r.h, items_of(r))
  made[r.id] = r
  dues[#dues + 1] = expires
  dues[#dues + 1] = r.id
  saves[#saves + 1] = r.id
  saves[#saves + 1] = cjson.encode(r)
  log(now, { type = 'reserved', reservation = r.id, holder = r.h, seats = seats, ga = q.ga,
    expires_at = expires })
  return { ok = rsv_json(r, now, event_id) }
end

local FP_FIELDS = { 'holder', 'seat_ids', 'ga', 'best_available', 'ttl_seconds' }

local function reserve_one(q)
  if q.cr then
    local rec = replays[q.cr]
    if rec and now - rec.at < retention then
      for _, field in ipairs(FP_FIELDS) do
        if rec.fp[field] ~= q.fp[field] then
          return fail('idempotency_mismatch', { field = field })
        end
      end
      if rec.ok then
        return { ok = rsv_json(made[rec.ok] or load_rsv(rec.ok), now, event_id) }
      end
      return rec.err
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
    replays[q.cr] = rec
    recs[#recs + 1] = q.cr
    recs[#recs + 1] = cjson.encode(rec)
    rec_times[#rec_times + 1] = now
    rec_times[#rec_times + 1] = 'r:' .. q.cr
  end
  return result
end

-- Writes what the batch kept for its end.
local function flush()
  if #saves > 0 then
    redis.call('HSET', RSV, unpack(saves))
    redis.call('ZADD', DUE, unpack(dues))
  end
  if #recs > 0 then
    redis.call('HSET', RREC, unpack(recs))
    redis.call('ZADD', RECT, unpack(rec_times))
  end
  log_release()
end

for i, q in ipairs(requests) do
  local ran, answer = pcall(reserve_one, q)
  if not ran then
    -- A script error (a bug: requests are checked before they are sent) fails the call;
    -- the requests before this one keep their records, expiries and sequence numbers, as
    -- when each wrote its own.
    flush()
    error(answer)
  end
  answers[i] = answer
end
flush()
return cjson.encode(answers)
