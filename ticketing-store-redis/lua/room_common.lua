-- Shared by every waiting-room script: prepended to each operation's body at build time.
--
-- KEYS are always the room's five keys, in this order, all under the event's hash tag
-- {ev:<tag>} so that every script runs on one slot; no key name is built here.
local ROOM, QUEUE, PASSES, VISITORS, TICKETS = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
-- ROOM      hash: id (the event), settings (rate, cap, ttl, spb, opens, seed: '' for none),
--           opened, last (the last step), credit, sold ('1' when sold out), admitted, seq
-- QUEUE     sorted set: waiting tickets by order; ZRANK is the position minus one
-- PASSES    sorted set: admitted tickets by pass expiry (ms)
-- VISITORS  hash: visitor -> its current ticket (waiting or admitted)
-- TICKETS   hash: ticket -> <mark><joined_at>|<visitor>, mark 'q' live (in QUEUE or
--           PASSES), 'l' lapsed, 'x' left
--
-- A ticket's key is the 16-character random part of its id; the client adds the rest.

-- Orders below this are the pre-queue's (52 bits of a keyed hash); later arrivals get
-- PREQUEUE_END + their arrival number. Every order is an integer below 2^53: exact in a
-- sorted set's double score.
local PREQUEUE_END = 4503599627370496 -- 2^52

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
  return cjson.encode({ error = data })
end

-- An integer as text, exactly (Lua's own conversion keeps 14 digits).
local function int(n)
  return string.format('%.0f', n)
end

-- The room's hash, numbers as numbers and '' as nil; nil when `event_id` has no room here.
local function load_room(event_id)
  local v = redis.call('HMGET', ROOM, 'id', 'rate', 'cap', 'ttl', 'spb', 'opens', 'seed',
    'opened', 'last', 'credit', 'sold', 'admitted')
  if v[1] == false or (event_id and v[1] ~= event_id) then
    return nil
  end
  return {
    id = v[1],
    rate = tonumber(v[2] or ''),
    cap = tonumber(v[3] or ''),
    ttl = tonumber(v[4]),
    spb = tonumber(v[5]),
    opens = tonumber(v[6] or ''),
    seed = v[7],
    opened = tonumber(v[8] or ''),
    last = tonumber(v[9] or '') or 0,
    credit = tonumber(v[10] or '') or 0,
    sold = v[11] == '1',
    admitted = tonumber(v[12] or '') or 0,
  }
end

-- Opens the room once its time has come: admission begins with one second's credit. The
-- pre-queue needs no work: its orders already sort before every later arrival's.
local function open_if_due(room, now)
  if room.opened or (room.opens and now < room.opens) then
    return
  end
  room.opened = now
  room.last = now
  room.credit = (room.rate or 0) * 1000
  redis.call('HSET', ROOM, 'opened', int(now), 'last', int(now), 'credit', int(room.credit))
end

-- A ticket's record: mark, joined_at, visitor; nil when there is no such ticket.
local function load_ticket(t)
  local raw = redis.call('HGET', TICKETS, t)
  if not raw then
    return nil
  end
  local mark, joined, visitor = string.match(raw, '^(%a)(%d+)|(.*)$')
  return { mark = mark, joined = tonumber(joined), visitor = visitor }
end

-- Where a live ticket stands at `now`: 'waiting' (with its 0-based rank when `rank`),
-- 'admitted' or 'due' (a pass past its expiry, not swept yet) with the expiry.
local function live_place(t, now, rank)
  if rank then
    local r = redis.call('ZRANK', QUEUE, t)
    if r then
      return 'waiting', r
    end
  elseif redis.call('ZSCORE', QUEUE, t) then
    return 'waiting', nil
  end
  local expires = tonumber(redis.call('ZSCORE', PASSES, t) or '')
  if not expires then
    return 'missing', nil
  end
  if expires <= now then
    return 'due', expires
  end
  return 'admitted', expires
end

-- Ends a ticket's place: marked `mark` ('l' lapsed, 'x' left), off its visitor.
local function finish(t, ticket, mark)
  redis.call('HSET', TICKETS, t, mark .. int(ticket.joined) .. '|' .. ticket.visitor)
  if redis.call('HGET', VISITORS, ticket.visitor) == t then
    redis.call('HDEL', VISITORS, ticket.visitor)
  end
end

-- The room's counts at `now`, as ticketing_core::RoomStats reads them.
local function room_stats(room, now)
  return {
    waiting = redis.call('ZCARD', QUEUE),
    active = redis.call('ZCOUNT', PASSES, '(' .. int(now), '+inf'),
    admitted_total = room.admitted,
    sold_out = room.sold,
    opened_at = room.opened,
  }
end
