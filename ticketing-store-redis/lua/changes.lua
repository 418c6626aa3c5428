-- changes. ARGV: event id, after, limit. Answers {first, entries: [[seq, at, kind JSON]...]}
-- where first is the oldest retained sequence number (the next one when none is).
local event_id, after, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
if not event_is(event_id) then
  return cjson.encode(fail('not_found', { entity = 'event', id = event_id }))
end
local first = tonumber(redis.call('HGET', EV, 'seq')) + 1
local oldest = redis.call('XRANGE', LOG, '-', '+', 'COUNT', 1)
if #oldest > 0 then
  first = tonumber(string.match(oldest[1][1], '^(%d+)'))
end
if after + 1 < first then
  return cjson.encode(fail('changes_pruned', { first_retained = first }))
end
local entries = redis.call('XRANGE', LOG, (after + 1) .. '-0', '+', 'COUNT', limit)
local out = {}
for i, entry in ipairs(entries) do
  local fields = entry[2]
  local at, kind
  for j = 1, #fields, 2 do
    if fields[j] == 'at' then
      at = fields[j + 1]
    elseif fields[j] == 'k' then
      kind = fields[j + 1]
    end
  end
  out[i] = '{"seq":' .. string.match(entry[1], '^(%d+)') .. ',"at":' .. at .. ',"kind":' .. kind .. '}'
end
return '{"ok":{"first":' .. first .. ',"entries":[' .. table.concat(out, ',') .. ']}}'
