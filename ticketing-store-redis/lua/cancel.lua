-- cancel. ARGV: now, reservation id, token digest.
local now = clock(ARGV[1])
local id, digest = ARGV[2], ARGV[3]
local r = load_rsv(id)
if not r then
  return cjson.encode(fail('not_found', { entity = 'reservation', id = id }))
end
if r.t ~= digest then
  return cjson.encode(fail('invalid_token'))
end
local wl = waitlist_ttl()
if wl then
  settle(now)
  r = load_rsv(id)
end
if r.st == 'x' then
  return cjson.encode({ ok = cjson.null })
end
if r.st == 'c' then
  return cjson.encode(fail('reservation_not_active', { status = 'committed' }))
end
if r.st == 'e' or r.e <= now then
  return cjson.encode(fail('reservation_expired', { expired_at = r.e }))
end
r.st = 'x'
release(r)
leave_active(r)
save_rsv(r)
log(now, { type = 'cancelled', reservation = r.id, seats = r.s, ga = r.g })
if wl then
  serve(now)
end
return cjson.encode({ ok = cjson.null })
