-- extend. ARGV: now, reservation id, token digest, ttl seconds.
local now = clock(ARGV[1])
local id, digest, ttl = ARGV[2], ARGV[3], tonumber(ARGV[4])
local r = load_rsv(id)
if not r then
  return cjson.encode(fail('not_found', { entity = 'reservation', id = id }))
end
if r.t ~= digest then
  return cjson.encode(fail('invalid_token'))
end
if waitlist_ttl() then
  settle(now)
  r = load_rsv(id)
end
if r.st == 'c' or r.st == 'x' then
  return cjson.encode(fail('reservation_not_active', { status = STATUS[r.st] }))
end
if r.st == 'e' or r.e <= now then
  return cjson.encode(fail('reservation_expired', { expired_at = r.e }))
end
local p = policy()
if now + ttl * 1000 > r.c + p.ttl_max * 1000 then
  return cjson.encode(fail('invalid_request', { field = 'ttl_seconds',
    reason = 'past the longest hold the event allows' }))
end
r.e = now + ttl * 1000
save_rsv(r)
redis.call('ZADD', DUE, r.e, r.id)
log(now, { type = 'extended', reservation = r.id, expires_at = r.e })
return cjson.encode({ ok = rsv_json(r, now, redis.call('HGET', EV, 'id')) })
