-- Shared by every script of an event: prepended to each operation's body at build time.
--
-- KEYS are always the event's nineteen keys, in this order, all under the hash tag
-- {ev:<tag>} so that every script runs on one slot; no key name is built here.
local EV, SEATS, LAYOUT, ST, POOLS, PC, RSV, DUE, HC, ORD, TKT, CODE, RREC, CREC, RECT, LOG =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8],
  KEYS[9], KEYS[10], KEYS[11], KEYS[12], KEYS[13], KEYS[14], KEYS[15], KEYS[16]
local WQ, WE, WH = KEYS[17], KEYS[18], KEYS[19]
-- EV      hash: id, seq, policy fields (`wl`: the waitlist's offer TTL in seconds, '' or
--         absent without a waitlist), wseq (waitlist join serial), spec (EventSpec as serde
--         writes it), created
-- SEATS   hash: seat id -> layout index (1-based)
-- LAYOUT  string: [[id, section, row, number, category], ...] in layout order
-- ST      hash: layout index -> "h<reservation id>" | "s" | "b" (absent: available)
-- POOLS   hash: pool id -> pool index (1-based)
-- PC      hash: c<i> capacity, h<i> held, s<i> sold, b<i> blocked
-- RSV     hash: reservation id -> record;  DUE zset: active reservation id by expires_at
-- HC      hash: r:<holder> active reservations and waiting waitlist entries, i:<holder> their
--         items (an entry's quantity), o:<holder> owned tickets
-- ORD     hash: order id -> record;  TKT hash: ticket id -> record;  CODE hash: code -> ticket id
-- RREC    hash: client reservation id -> record;  CREC hash: idempotency key -> record
-- RECT    zset: "r:<id>" / "c:<key>" by the time the record was made (for forgetting)
-- LOG     stream: entry <seq>-0 with fields at, k (ChangeKind as JSON)
-- WQ      zset: waiting waitlist entry id by join serial (the queue, head first)
-- WE      hash: waitlist entry id -> record;  WH hash: holder -> its latest entry id

-- Now in milliseconds: the injected clock's value, or the server's clock.
local function clock(arg)
  if arg ~= nil and arg ~= '' then
    return tonumber(arg)
  end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function fail(code, data)
  data = data or {}
  data.code = code
  return { error = data }
end

local function event_is(id)
  return redis.call('HGET', EV, 'id') == id
end

local function policy()
  local v = redis.call('HMGET', EV, 'ttl', 'ttl_max', 'seats_max', 'rsv_max', 'late',
    'refund_to', 'opens', 'closes', 'wl')
  return {
    ttl = tonumber(v[1]),
    ttl_max = tonumber(v[2]),
    seats_max = tonumber(v[3] or ''),
    rsv_max = tonumber(v[4] or ''),
    late = v[5],
    refund_to = v[6],
    opens = tonumber(v[7] or ''),
    closes = tonumber(v[8] or ''),
    wl = tonumber(v[9] or ''),
  }
end

-- Appends a change: the next sequence number, in the same script as the state change.
local function log(now, kind)
  local seq = redis.call('HINCRBY', EV, 'seq', 1)
  redis.call('XADD', LOG, seq .. '-0', 'at', now, 'k', cjson.encode(kind))
  return seq
end

local function hc_get(field)
  return tonumber(redis.call('HGET', HC, field) or '0') or 0
end

local function hc_add(field, n)
  if n ~= 0 then
    local v = redis.call('HINCRBY', HC, field, n)
    if v <= 0 then
      redis.call('HDEL', HC, field)
    end
  end
end

local function load_rsv(id)
  local raw = redis.call('HGET', RSV, id)
  if not raw then
    return nil
  end
  return cjson.decode(raw)
end

local function save_rsv(r)
  redis.call('HSET', RSV, r.id, cjson.encode(r))
end

local function items_of(r)
  local n = #r.s
  for _, g in ipairs(r.g) do
    n = n + g.quantity
  end
  return n
end

local function pool_free(i)
  local c = redis.call('HMGET', PC, 'c' .. i, 'h' .. i, 's' .. i, 'b' .. i)
  local free = (tonumber(c[1] or '0') or 0) - (tonumber(c[2] or '0') or 0)
    - (tonumber(c[3] or '0') or 0) - (tonumber(c[4] or '0') or 0)
  if free < 0 then
    free = 0
  end
  return free
end

-- An active reservation leaves the active state: its holder's counters and the due index.
local function leave_active(r)
  hc_add('r:' .. r.h, -1)
  hc_add('i:' .. r.h, -items_of(r))
  redis.call('ZREM', DUE, r.id)
end

-- Frees what an active reservation holds.
local function release(r)
  local mark = 'h' .. r.id
  for _, idx in ipairs(r.si) do
    if redis.call('HGET', ST, idx) == mark then
      redis.call('HDEL', ST, idx)
    end
  end
  for i, g in ipairs(r.g) do
    redis.call('HINCRBY', PC, 'h' .. r.gi[i], -g.quantity)
  end
end

-- Finalizes lapsed active reservations (earliest expiry first, then id), up to `limit`
-- (all when nil); returns how many.
local function finalize_lapsed(now, limit)
  local ids
  if limit then
    ids = redis.call('ZRANGEBYSCORE', DUE, '-inf', now, 'LIMIT', 0, limit)
  else
    ids = redis.call('ZRANGEBYSCORE', DUE, '-inf', now)
  end
  local count = 0
  for _, id in ipairs(ids) do
    local r = load_rsv(id)
    if r and r.st == 'a' then
      r.st = 'e'
      release(r)
      leave_active(r)
      save_rsv(r)
      log(now, { type = 'expired', reservation = id, seats = r.s, ga = r.g })
      count = count + 1
    else
      redis.call('ZREM', DUE, id)
    end
  end
  return count
end

local STATUS = { a = 'active', c = 'committed', x = 'cancelled', e = 'expired' }

-- A reservation as ticketing_core::Reservation reads it at `now` (never its token).
local function rsv_json(r, now, event_id)
  local status = STATUS[r.st]
  if r.st == 'a' and r.e <= now then
    status = 'expired'
  end
  return {
    id = r.id, event = event_id, holder = r.h, status = status, seats = r.s, ga = r.g,
    created_at = r.c, expires_at = r.e, client_reservation_id = r.cr, order = r.o,
  }
end

local TICKET_STATUS = { v = 'valid', i = 'checked_in', r = 'refunded' }

local function ticket_json(t, event_id)
  local item
  if t.k == 's' then
    item = { seat = t.i }
  else
    item = { pool = t.i }
  end
  return {
    id = t.id, order = t.o, event = event_id, holder = t.h, item = item, code = t.c,
    status = TICKET_STATUS[t.st],
  }
end

local function load_tkt(id)
  local raw = redis.call('HGET', TKT, id)
  if not raw then
    return nil
  end
  return cjson.decode(raw)
end

local function order_json(id, event_id)
  local raw = redis.call('HGET', ORD, id)
  if not raw then
    return nil
  end
  local o = cjson.decode(raw)
  local tickets = {}
  for i, tid in ipairs(o.t) do
    tickets[i] = ticket_json(load_tkt(tid), event_id)
  end
  return {
    id = o.id, event = event_id, reservation = o.r, holder = o.h, payment_id = o.p,
    tickets = tickets, created_at = o.c,
  }
end

local function ticket_conflict(t)
  if t.st == 'i' then
    return fail('conflict', { reason = 'ticket_checked_in' })
  end
  return fail('conflict', { reason = 'ticket_refunded' })
end
