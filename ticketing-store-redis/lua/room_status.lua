-- status. ARGV: now, ticket id (for errors), ticket key, joined_at (ms) as the id says.
-- Answers the ticket, its place and what the client needs to estimate the wait (it
-- computes the estimate with the core's function).
local now = clock(ARGV[1])
local id, t = ARGV[2], ARGV[3]
local ticket = load_ticket(t)
local room = load_room(nil)
if not ticket or not room or ticket.joined ~= tonumber(ARGV[4]) then
  return fail('not_found', { entity = 'queue_ticket', id = id })
end
open_if_due(room, now)
local answer = {
  event = room.id, visitor = ticket.visitor, joined_at = ticket.joined, now = now,
}
if ticket.mark == 'l' then
  answer.place = 'lapsed'
elseif ticket.mark == 'x' then
  answer.place = 'left'
else
  local place, at = live_place(t, now, true)
  if place == 'waiting' then
    if not room.opened then
      answer.place = 'pre_queue'
      answer.opens_at = room.opens
    elseif room.sold then
      answer.place = 'sold_out'
    else
      answer.place = 'waiting'
      answer.position = at + 1
      answer.rate = room.rate
      answer.opened_at = room.opened
      answer.admitted_total = room.admitted
    end
  elseif place == 'admitted' then
    answer.place = 'admitted'
    answer.expires_at = at
  elseif place == 'due' then
    answer.place = 'lapsed'
  else
    return fail('ticket_unplaced')
  end
end
return cjson.encode({ ok = answer })
