-- waitlist_entry. ARGV: now, event id, entry id. Answers the entry (see entry_json).
local now = clock(ARGV[1])
local event_id, entry_id = ARGV[2], ARGV[3]
if not event_is(event_id) then
  return cjson.encode(fail('not_found', { entity = 'event', id = event_id }))
end
if not waitlist_ttl() then
  return cjson.encode(fail('not_found', { entity = 'waitlist', id = event_id }))
end
settle(now)
local e = load_entry(entry_id)
if not e then
  return cjson.encode(fail('not_found', { entity = 'waitlist_entry', id = entry_id }))
end
return cjson.encode({ ok = entry_json(e) })
