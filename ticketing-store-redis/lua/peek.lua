-- The sweeper's look: up to `limit` lapsed reservations [expires_at, id] and whether any
-- idempotency record is past its retention. ARGV: now, limit, retention (ms).
local now, limit, retention = clock(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local due = {}
if limit > 0 then
  local found = redis.call('ZRANGEBYSCORE', DUE, '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit)
  for i = 1, #found, 2 do
    due[#due + 1] = { tonumber(found[i + 1]), found[i] }
  end
end
local stale = #redis.call('ZRANGEBYSCORE', RECT, '-inf', now - retention, 'LIMIT', 0, 1) > 0
return cjson.encode({ ok = { now = now, due = due, stale = stale } })
