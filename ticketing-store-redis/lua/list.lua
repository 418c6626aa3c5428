-- A page of events by id. KEYS: the ids sorted set, the summaries hash. ARGV: after ('' for
-- the first page), limit. Answers a JSON array of summaries.
local from = '-'
if ARGV[1] ~= '' then
  from = '(' .. ARGV[1]
end
local ids = redis.call('ZRANGEBYLEX', KEYS[1], from, '+', 'LIMIT', 0, tonumber(ARGV[2]))
if #ids == 0 then
  return '[]'
end
local summaries = redis.call('HMGET', KEYS[2], unpack(ids))
local out = {}
for i, summary in ipairs(summaries) do
  if summary then
    out[#out + 1] = summary
  end
end
return '[' .. table.concat(out, ',') .. ']'
