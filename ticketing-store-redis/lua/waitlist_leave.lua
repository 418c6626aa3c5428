-- waitlist_leave. ARGV: now, event id, entry id, holder.
local now = clock(ARGV[1])
local event_id, entry_id, holder = ARGV[2], ARGV[3], ARGV[4]
if not event_is(event_id) then
  return cjson.encode(fail('not_found', { entity = 'event', id = event_id }))
end
if not waitlist_ttl() then
  return cjson.encode(fail('not_found', { entity = 'waitlist', id = event_id }))
end
settle(now)
local e = load_entry(entry_id)
if not e or e.h ~= holder then
  return cjson.encode(fail('not_found', { entity = 'waitlist_entry', id = entry_id }))
end
if e.st == 'l' then
  return cjson.encode({ ok = cjson.null })
end
if e.st == 'o' then
  return cjson.encode(fail('conflict', { reason = 'waitlist_entry_offered' }))
end
-- Leaving frees nothing, so nothing waiting becomes satisfiable.
e.st = 'l'
save_entry(e)
redis.call('ZREM', WQ, entry_id)
hc_add('r:' .. holder, -1)
hc_add('i:' .. holder, -e.q)
log(now, { type = 'waitlist_left', entry = entry_id })
return cjson.encode({ ok = cjson.null })
