-- refund. ARGV: now, order id, ticket ids JSON ('' for every valid ticket).
local now = clock(ARGV[1])
local order_id = ARGV[2]
local raw = redis.call('HGET', ORD, order_id)
if not raw then
  return cjson.encode(fail('not_found', { entity = 'order', id = order_id }))
end
local o = cjson.decode(raw)
local wl = waitlist_ttl()
if wl then
  settle(now)
end
local tickets = {}
for i, tid in ipairs(o.t) do
  tickets[i] = load_tkt(tid)
end
local named = nil
if ARGV[3] ~= '' then
  named = {}
  local mine = {}
  for _, t in ipairs(tickets) do
    mine[t.id] = t
  end
  local list = cjson.decode(ARGV[3])
  for _, tid in ipairs(list) do
    if not mine[tid] then
      return cjson.encode(fail('not_found', { entity = 'ticket', id = tid }))
    end
  end
  for _, tid in ipairs(list) do
    if mine[tid].st ~= 'v' then
      return cjson.encode(ticket_conflict(mine[tid]))
    end
    named[tid] = true
  end
else
  local any = false
  for _, t in ipairs(tickets) do
    if t.st == 'v' then
      any = true
    end
  end
  if not any then
    return cjson.encode(ticket_conflict(tickets[1]))
  end
end
local to = policy().refund_to
local chosen, seats, seat_order, ga, ga_at = {}, {}, {}, {}, {}
for _, t in ipairs(tickets) do
  if t.st == 'v' and (named == nil or named[t.id]) then
    chosen[#chosen + 1] = t.id
    t.st = 'r'
    redis.call('HSET', TKT, t.id, cjson.encode(t))
    hc_add('o:' .. t.h, -1)
    if t.k == 's' then
      seat_order[#seat_order + 1] = { t.x, t.i }
      if to == 'blocked' then
        take_seat(t.x, 'b')
      else
        free_seat(t.x)
      end
    else
      redis.call('HINCRBY', PC, 's' .. t.x, -1)
      if to == 'blocked' then
        redis.call('HINCRBY', PC, 'b' .. t.x, 1)
      end
      if ga_at[t.i] then
        ga[ga_at[t.i]].quantity = ga[ga_at[t.i]].quantity + 1
      else
        ga[#ga + 1] = { pool = t.i, quantity = 1 }
        ga_at[t.i] = #ga
      end
    end
  end
end
-- Seats in layout order.
table.sort(seat_order, function(a, b) return a[1] < b[1] end)
for i, s in ipairs(seat_order) do
  seats[i] = s[2]
end
log(now, { type = 'refunded', order = order_id, tickets = chosen, seats = seats, ga = ga, to = to })
if wl and to == 'sale' then
  serve(now)
end
return cjson.encode({ ok = { order = order_id, tickets = chosen, to = to, refunded_at = now } })
