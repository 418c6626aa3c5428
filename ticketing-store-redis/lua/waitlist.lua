-- The waitlist: shared by every event script, after common.lua.
--
-- An event has a waitlist when EV's `wl` field holds its offer TTL in seconds. Every
-- script of such an event that finalizes lapsed reservations or frees items serves the
-- waitlist before it returns (`settle` first, `serve` after freeing), so freed items are
-- offered in the step that frees them: nothing else runs in between.
--
-- WE record: {id, h holder, q quantity, a adjacent, sec section?, p pool?, pi pool index?,
--   j joined_at, t token digest (the offer's), r offer reservation id (made at join),
--   st 'w' waiting | 'o' offered | 'l' left, rq the request as serde writes it}

-- The event's offer TTL in seconds, or nil without a waitlist.
local function waitlist_ttl()
  return tonumber(redis.call('HGET', EV, 'wl') or '')
end

local function load_entry(id)
  local raw = redis.call('HGET', WE, id)
  if not raw then
    return nil
  end
  return cjson.decode(raw)
end

local function save_entry(e)
  redis.call('HSET', WE, e.id, cjson.encode(e))
end

-- An entry as the Rust side reads it: {id, rq, joined_at, state, position?, reservation?}.
local function entry_json(e)
  local v = { id = e.id, rq = e.rq, joined_at = e.j }
  if e.st == 'w' then
    v.state = 'waiting'
    v.position = redis.call('ZRANK', WQ, e.id) + 1
  elseif e.st == 'o' then
    v.state = 'offered'
    v.reservation = e.r
  else
    v.state = 'left'
  end
  return v
end

-- Offers `seats` (ids, layout indices `sidx`) and `ga` (pool indices `gi`) to waiting entry
-- `e`: a reservation in its holder's name with its token and id, held for `ttl` seconds.
-- The holder's counters do not change: the entry counted as the reservation does.
local function make_offer(e, seats, sidx, ga, gi, now, ttl)
  local r = { id = e.r, h = e.h, st = 'a', s = seats, si = sidx, g = ga, gi = gi, c = now,
    e = now + ttl * 1000, t = e.t }
  local mark = 'h' .. r.id
  for _, idx in ipairs(sidx) do
    take_seat(idx, mark)
  end
  for i, g in ipairs(ga) do
    redis.call('HINCRBY', PC, 'h' .. gi[i], g.quantity)
  end
  redis.call('ZADD', DUE, r.e, r.id)
  save_rsv(r)
  e.st = 'o'
  save_entry(e)
  redis.call('ZREM', WQ, e.id)
  log(now, { type = 'offer_made', reservation = r.id, holder = r.h, entry = e.id, seats = seats,
    ga = ga, expires_at = r.e })
end

-- The serve step: offers free inventory to every waiting entry (join serial `from` or
-- later; all when nil) that it satisfies in full, in join order; answers how many. An
-- entry it cannot satisfy keeps its place. Free inventory only shrinks while it runs, so
-- once an entry of a kind (a pool, or seats with the same section and adjacency) fails,
-- later entries of that kind as large or larger are skipped without a look.
local function serve(now, from)
  local ids = redis.call('ZRANGEBYSCORE', WQ, from or '-inf', '+inf')
  if #ids == 0 then
    return 0
  end
  local ttl = waitlist_ttl()
  local free_units, failed = {}, {}
  local offered = 0
  for _, id in ipairs(ids) do
    local e = load_entry(id)
    local kind
    if e.p then
      kind = 'p' .. e.pi
    else
      kind = (e.a and 'a' or 's') .. (e.sec and (':' .. e.sec) or '')
    end
    if failed[kind] == nil or e.q < failed[kind] then
      local seats, sidx, ga, gi = {}, {}, {}, {}
      local satisfied = false
      if e.p then
        local free = free_units[e.pi] or pool_free(e.pi)
        if free >= e.q then
          ga[1] = { pool = e.p, quantity = e.q }
          gi[1] = e.pi
          free = free - e.q
          satisfied = true
        end
        free_units[e.pi] = free
      else
        -- make_offer takes the picks out of the free-seat index before the next pick.
        local picks, ids = pick_best({ count = e.q, adjacent = e.a, section = e.sec }, {})
        if picks then
          sidx, seats = picks, ids
          satisfied = true
        end
      end
      if satisfied then
        make_offer(e, seats, sidx, ga, gi, now, ttl)
        offered = offered + 1
      else
        failed[kind] = e.q
      end
    end
  end
  return offered
end

-- What every operation on an event with a waitlist does first: finalize its lapsed
-- reservations and, if that freed anything, serve the waitlist.
local function settle(now)
  if finalize_lapsed(now) > 0 then
    serve(now)
  end
end
