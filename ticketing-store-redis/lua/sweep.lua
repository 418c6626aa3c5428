-- The sweeper's step on one event: finalizes up to `limit` lapsed reservations and forgets
-- idempotency records past the retention. ARGV: now, limit, retention (ms).
local now, limit, retention = clock(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local expired = 0
if limit > 0 then
  expired = finalize_lapsed(now, limit)
  -- An event with a waitlist offers what lapsed once none of its reservations is left lapsed.
  if expired > 0 and waitlist_ttl() and redis.call('ZCOUNT', DUE, '-inf', now) == 0 then
    serve(now)
  end
end
local old = redis.call('ZRANGEBYSCORE', RECT, '-inf', now - retention, 'LIMIT', 0, 1000)
for _, member in ipairs(old) do
  local kind, name = string.sub(member, 1, 1), string.sub(member, 3)
  if kind == 'r' then
    redis.call('HDEL', RREC, name)
  else
    redis.call('HDEL', CREC, name)
  end
  redis.call('ZREM', RECT, member)
end
return cjson.encode({ ok = { expired = expired } })
