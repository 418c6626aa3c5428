-- Shared by every script of an event: prepended to each operation's body at build time.
--
-- KEYS are always the event's twenty-three keys, in this order, all under the hash tag
-- {ev:<tag>} so that every script runs on one slot; no key name is built here.
local EV, SEATS, LAYOUT, ST, POOLS, PC, RSV, DUE, HC, ORD, TKT, CODE, RREC, CREC, RECT, LOG =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8],
  KEYS[9], KEYS[10], KEYS[11], KEYS[12], KEYS[13], KEYS[14], KEYS[15], KEYS[16]
local WQ, WE, WH, FREE, PLACE, NEXT, ADJ =
  KEYS[17], KEYS[18], KEYS[19], KEYS[20], KEYS[21], KEYS[22], KEYS[23]
-- EV      hash: id, seq, policy fields (`wl`: the waitlist's offer TTL in seconds, '' or
--         absent without a waitlist), wseq (waitlist join serial), spec (EventSpec as serde
--         writes it), created, fx (FREE_INDEX_VERSION once FREE, PLACE and NEXT exist)
-- SEATS   hash: seat id -> layout index (1-based)
-- LAYOUT  string: [[id, section, row, number, category], ...] in layout order (waitlist
--         joins check a request against it; FREE, PLACE and NEXT are built from it)
-- ST      hash: layout index -> "h<reservation id>" | "s" | "b" (absent: available); written
--         only by take_seat, take_free_seats, retake_seats and free_seat, which keep FREE
--         and ADJ in step
-- POOLS   hash: pool id -> pool index (1-based)
-- PC      hash: c<i> capacity, h<i> held, s<i> sold, b<i> blocked
-- RSV     hash: reservation id -> record;  DUE zset: active reservation id by expires_at
-- HC      hash: r:<holder> active reservations and waiting waitlist entries, i:<holder> their
--         items (an entry's quantity), o:<holder> owned tickets
-- ORD     hash: order id -> record;  TKT hash: ticket id -> record;  CODE hash: code -> ticket id
-- RREC    hash: client reservation id -> record;  CREC hash: idempotency key -> record
-- RECT    zset: "r:<id>" / "c:<key>" by the time the record was made (for forgetting)
-- LOG     stream: entry <seq>-0 with fields at, k (ChangeKind as JSON)
-- WQ      zset: waiting waitlist entry id by join serial (the queue, head first)
-- WE      hash: waitlist entry id -> record;  WH hash: holder -> its latest entry id
-- FREE    zset: the free-seat index (see "The free-seat index" below)
-- PLACE   hash: layout index -> JSON [seat id, section, category, [indices of the seats
--         numbered 1, 2, 3 more in the same section and row, while they exist], [... less]]
-- NEXT    hash: layout index -> layout index of the seat numbered one more in the same
--         section and row (absent: none)
-- ADJ     hash: FREE prefix -> where runs of adjacent candidates may start (see "Run
--         hints" below)

-- Now in milliseconds: the injected clock's value, or the server's clock.
local function clock(arg)
  if arg ~= nil and arg ~= '' then
    return tonumber(arg)
  end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function fail(code, data)
  data = data or {}
  data.code = code
  return { error = data }
end

local function event_is(id)
  return redis.call('HGET', EV, 'id') == id
end

local function policy()
  local v = redis.call('HMGET', EV, 'ttl', 'ttl_max', 'seats_max', 'rsv_max', 'late',
    'refund_to', 'opens', 'closes', 'wl')
  return {
    ttl = tonumber(v[1]),
    ttl_max = tonumber(v[2]),
    seats_max = tonumber(v[3] or ''),
    rsv_max = tonumber(v[4] or ''),
    late = v[5],
    refund_to = v[6],
    opens = tonumber(v[7] or ''),
    closes = tonumber(v[8] or ''),
    wl = tonumber(v[9] or ''),
  }
end

-- The last sequence number while a script keeps it here (log_hold to log_release), else
-- nil: EV's `seq` is then read once and written once for many changes.
local seq_held = nil

-- Appends a change (`kind` a table, or the JSON text of one): the next sequence number, in
-- the same script as the state change.
local function log(now, kind)
  local seq
  if seq_held then
    seq_held = seq_held + 1
    seq = seq_held
  else
    seq = redis.call('HINCRBY', EV, 'seq', 1)
  end
  if type(kind) == 'table' then
    kind = cjson.encode(kind)
  end
  redis.call('XADD', LOG, seq .. '-0', 'at', now, 'k', kind)
  return seq
end

local seq_read = nil

-- From here to log_release, log counts in the script and EV's `seq` waits.
local function log_hold()
  seq_read = tonumber(redis.call('HGET', EV, 'seq'))
  seq_held = seq_read
end

-- Writes the held sequence number back to EV, if a change was logged.
local function log_release()
  if seq_held and seq_held ~= seq_read then
    redis.call('HSET', EV, 'seq', seq_held)
  end
  seq_held = nil
end

local function hc_get(field)
  return tonumber(redis.call('HGET', HC, field) or '0') or 0
end

local function hc_add(field, n)
  if n ~= 0 then
    local v = redis.call('HINCRBY', HC, field, n)
    if v <= 0 then
      redis.call('HDEL', HC, field)
    end
  end
end

local function load_rsv(id)
  local raw = redis.call('HGET', RSV, id)
  if not raw then
    return nil
  end
  return cjson.decode(raw)
end

local function save_rsv(r)
  redis.call('HSET', RSV, r.id, cjson.encode(r))
end

local function items_of(r)
  local n = #r.s
  for _, g in ipairs(r.g) do
    n = n + g.quantity
  end
  return n
end

local function pool_free(i)
  local c = redis.call('HMGET', PC, 'c' .. i, 'h' .. i, 's' .. i, 'b' .. i)
  local free = (tonumber(c[1] or '0') or 0) - (tonumber(c[2] or '0') or 0)
    - (tonumber(c[3] or '0') or 0) - (tonumber(c[4] or '0') or 0)
  if free < 0 then
    free = 0
  end
  return free
end

-- ---- The free-seat index ----------------------------------------------------------------
--
-- Best available wants the first free seats in layout order, maybe of one section and/or
-- one category. Finding them by reading the layout and the taken seats costs O(seats) per
-- request: on a 50,000-seat event, a quarter of a second of Lua during which every other
-- script of the server waits. FREE answers from an index instead. Each free seat has four
-- members, all scored 0 so that the set orders them by their bytes:
--
--   'a\0' <i>                                 every free seat
--   's\0' <section> '\0' <i>                  by section
--   'c\0' <category> '\0' <i>                 by category
--   'x\0' <section> '\0' <category> '\0' <i>  by both
--
-- where <i> is the layout index zero-padded to INDEX_DIGITS, so that byte order within one
-- prefix is layout order. Names hold no control characters (the core refuses them), so a
-- '\0' ends a name and a prefix is exactly one filter. The first n candidates of any filter
-- are then one ZRANGEBYLEX, O(log N + n), and their number (sold_out's `remaining`) one
-- ZLEXCOUNT, O(log N). One key serves every filter, rather than a sorted set per section
-- and category, because a script may only touch the keys it is given (Redis Cluster) and
-- sections are the event's data. The price is memory: four members per free seat, about
-- 450 bytes in all (22 MB for a fresh 50,000-seat event), gone as seats sell.
--
-- Adjacency follows NEXT from a candidate: the seat numbered one more in its row, wherever
-- it is in the layout, found once at creation, so no request reads the layout. NEXT holds
-- bare numbers, apart from PLACE, because a walk reads it for every candidate it passes,
-- and a number needs no JSON decode. PLACE keeps, beside a seat's id, section and
-- category, its neighbours in number order (up to RUN_TRACKED_MAX - 1 each way), which the
-- run hints below need.
--
-- Run hints (ADJ) spare adjacent walks the sold-out stretches they crossed before: see
-- "Run hints" below.
--
-- ST, FREE and ADJ change together, in take_seat, take_free_seats, retake_seats and
-- free_seat only. An
-- event made before this version of the index (EV's `fx` is not FREE_INDEX_VERSION) gets it
-- on first use (ensure_free_index): one pass over its layout, once.

-- Digits of a padded layout index: enough for SEATS_PER_EVENT_MAX, 250,000 (src/keys.rs
-- asserts it).
local INDEX_DIGITS = 6
local INDEX_FORMAT = '%0' .. INDEX_DIGITS .. 'd'
-- EV's `fx` once FREE, PLACE and NEXT are built as this file reads them ('1': PLACE
-- without neighbours, and no ADJ).
local FREE_INDEX_VERSION = '2'
-- The longest run whose first start ADJ tracks; longer runs start from its hint.
local RUN_TRACKED_MAX = 4
-- Beyond every layout index: no run at all.
local NO_RUN = 1000000

-- The four FREE prefixes of a seat of `section` and `category`.
local function free_prefixes(section, category)
  return 'a\0', 's\0' .. section .. '\0', 'c\0' .. category .. '\0',
    'x\0' .. section .. '\0' .. category .. '\0'
end

-- The FREE members of seat `i`, of `section` and `category`.
local function free_members(i, section, category)
  local at = string.format(INDEX_FORMAT, i)
  return 'a\0' .. at, 's\0' .. section .. '\0' .. at, 'c\0' .. category .. '\0' .. at,
    'x\0' .. section .. '\0' .. category .. '\0' .. at
end

-- Writes PLACE, NEXT and FREE (every seat of `layout`, LAYOUT decoded, that ST does not
-- hold), drops ADJ and marks the event as indexed: at creation, or on first use for an
-- event made before this version of the index (adding members FREE has is harmless).
local function build_free_index(layout)
  local numbered = {}
  for i, seat in ipairs(layout) do
    numbered[seat[2] .. '\0' .. seat[3] .. '\0' .. seat[4]] = i
  end
  -- The seats numbered `number` + step, + 2 step, ... in the row of `seat`, while they
  -- exist, at most RUN_TRACKED_MAX - 1.
  local function neighbours(seat, step)
    local found = {}
    local row = seat[2] .. '\0' .. seat[3] .. '\0'
    for k = 1, RUN_TRACKED_MAX - 1 do
      local j = numbered[row .. (seat[4] + k * step)]
      if not j then
        break
      end
      found[k] = j
    end
    return found
  end
  local taken = {}
  for _, i in ipairs(redis.call('HKEYS', ST)) do
    taken[tonumber(i)] = true
  end
  -- Seats per command: 1,000 PLACE or NEXT arguments and 4,000 FREE ones, within unpack's
  -- limit.
  local CHUNK = 500
  local places, nexts, members = {}, {}, {}
  for i, seat in ipairs(layout) do
    local after, before = neighbours(seat, 1), neighbours(seat, -1)
    places[#places + 1] = i
    places[#places + 1] = cjson.encode({ seat[1], seat[2], seat[5], after, before })
    if after[1] then
      nexts[#nexts + 1] = i
      nexts[#nexts + 1] = after[1]
    end
    if not taken[i] then
      for _, member in ipairs({ free_members(i, seat[2], seat[5]) }) do
        members[#members + 1] = 0
        members[#members + 1] = member
      end
    end
    if i % CHUNK == 0 or i == #layout then
      redis.call('HSET', PLACE, unpack(places))
      places = {}
      if #nexts > 0 then
        redis.call('HSET', NEXT, unpack(nexts))
        nexts = {}
      end
      if #members > 0 then
        redis.call('ZADD', FREE, unpack(members))
        members = {}
      end
    end
  end
  redis.call('DEL', ADJ)
  redis.call('HSET', EV, 'fx', FREE_INDEX_VERSION)
end

local free_index_ready = false

-- Makes sure the event has this version of its free-seat index before a script reads or
-- writes it: one HGET per script call, and the build for an event made before.
local function ensure_free_index()
  if not free_index_ready then
    if redis.call('HGET', EV, 'fx') ~= FREE_INDEX_VERSION then
      build_free_index(cjson.decode(redis.call('GET', LAYOUT) or '[]'))
    end
    free_index_ready = true
  end
end

-- PLACE records read by this script call, decoded: layout index -> {seat id, section,
-- category, {indices of the seats numbered one, two, ... more}, {... less}}.
local places = {}

-- Reads the PLACE records of layout indices `indices` that this call has not read yet,
-- in one HMGET.
local function load_places(indices)
  local missing = {}
  for _, i in ipairs(indices) do
    i = tonumber(i)
    if not places[i] then
      missing[#missing + 1] = i
    end
  end
  if #missing > 0 then
    for k, raw in ipairs(redis.call('HMGET', PLACE, unpack(missing))) do
      places[missing[k]] = cjson.decode(raw)
    end
  end
end

-- Seat `i`'s PLACE record.
local function place(i)
  i = tonumber(i)
  local seat = places[i]
  if not seat then
    seat = cjson.decode(redis.call('HGET', PLACE, i))
    places[i] = seat
  end
  return seat
end

-- ---- Run hints ---------------------------------------------------------------------------
--
-- An adjacent request wants the first candidate in layout order that starts `count`
-- consecutive numbers of one row, all candidates. Late in a sale most candidates are
-- single seats between sold ones, and a walk from the start of the layout would pass
-- thousands of them for every request. ADJ remembers, per FREE prefix and per count k
-- from 2 to RUN_TRACKED_MAX, where such runs may start: field <prefix> -> JSON
-- [[F2, e...], [F3, e...], [F4, e...]], meaning
--
--   every candidate of the prefix that starts a run of k lies at layout index F_k or
--   later, or is one of the exceptions e listed with F_k.
--
-- A missing field means F_k = 1 for every k. Taking seats never makes a run, so takes
-- keep this true without touching ADJ. A freed seat j makes runs only through itself: the
-- runs of k through j start at j or at one of its k - 1 predecessors in number order, so
-- free_seat looks at j's neighbours (PLACE) and lists every new start before F_k as an
-- exception (note_freed). A walk for k then first checks the exceptions in layout order
-- (the first still a run is the answer; those no longer runs are dropped), else walks
-- from F_k (or a later bound learnt for a smaller count) and moves F_k to the run it
-- finds. So a walk crosses a sold-out stretch once, not once per request or per script
-- call. Walks for requests that name seats of their own (excluded from the picks) use the
-- hints but teach nothing. Longer runs start their walk from the hints of RUN_TRACKED_MAX.

-- Longest exception list kept for one count: beyond it the list folds into F.
local RUN_EXCEPTIONS_MAX = 64

-- ADJ fields read by this script call, decoded (false: none).
local hints = {}

local function hints_of(prefix)
  local h = hints[prefix]
  if h == nil then
    local raw = redis.call('HGET', ADJ, prefix)
    h = raw and cjson.decode(raw) or false
    hints[prefix] = h
  end
  return h
end

local function hints_save(prefix, h)
  hints[prefix] = h
  redis.call('HSET', ADJ, prefix, cjson.encode(h))
end

-- Reads the ADJ fields of `prefixes` this call has not read yet, in one HMGET.
local function load_hints(prefixes)
  local missing = {}
  for _, prefix in ipairs(prefixes) do
    if hints[prefix] == nil then
      missing[#missing + 1] = prefix
    end
  end
  if #missing > 0 then
    for k, raw in ipairs(redis.call('HMGET', ADJ, unpack(missing))) do
      hints[missing[k]] = raw and cjson.decode(raw) or false
    end
  end
end

-- The smallest entry of a hint list (F and its exceptions): a bound no run starts before.
local function hint_bound(list)
  local bound = list[1]
  for x = 2, #list do
    if list[x] < bound then
      bound = list[x]
    end
  end
  return bound
end

-- After seat `i` (PLACE record `seat`) joined FREE: lists the runs that now start before
-- their hint as exceptions.
local function note_freed(i, seat)
  local after, before = seat[4], seat[5]
  local lowest = i
  for _, j in ipairs(before) do
    lowest = math.min(lowest, j)
  end
  local prefixes = { free_prefixes(seat[2], seat[3]) }
  load_hints(prefixes)
  -- The prefixes whose hints a run through `i` can start before.
  local touched = {}
  for _, prefix in ipairs(prefixes) do
    local h = hints[prefix]
    if h and (h[1][1] > lowest or h[2][1] > lowest or h[3][1] > lowest) then
      touched[#touched + 1] = prefix
    end
  end
  if #touched == 0 then
    return
  end
  -- Which neighbours are candidates of each touched prefix: one ZMSCORE.
  local neighbours = {}
  for _, j in ipairs(before) do
    neighbours[#neighbours + 1] = string.format(INDEX_FORMAT, j)
  end
  for _, j in ipairs(after) do
    neighbours[#neighbours + 1] = string.format(INDEX_FORMAT, j)
  end
  if #neighbours == 0 then
    return
  end
  local members = {}
  for _, prefix in ipairs(touched) do
    for _, at in ipairs(neighbours) do
      members[#members + 1] = prefix .. at
    end
  end
  local scores = redis.call('ZMSCORE', FREE, unpack(members))
  for t, prefix in ipairs(touched) do
    local base = (t - 1) * #neighbours
    -- Candidates in a row on each side of `i`.
    local left, right = 0, 0
    while left < #before and scores[base + left + 1] do
      left = left + 1
    end
    while right < #after and scores[base + #before + right + 1] do
      right = right + 1
    end
    local h, changed = hints[prefix], false
    for k = 2, RUN_TRACKED_MAX do
      local list = h[k - 1]
      -- The run starting d seats before `i` needs d candidates on the left and k - 1 - d
      -- on the right.
      for d = math.max(0, k - 1 - right), math.min(left, k - 1) do
        local start = d == 0 and i or before[d]
        if start < list[1] then
          local listed = false
          for x = 2, #list do
            listed = listed or list[x] == start
          end
          if not listed then
            list[#list + 1] = start
            changed = true
          end
        end
      end
      if #list > RUN_EXCEPTIONS_MAX + 1 then
        h[k - 1] = { hint_bound(list) }
      end
    end
    if changed then
      hints_save(prefix, h)
    end
  end
end

-- Takes seat `i` (layout index): ST marks it `state` ('h<reservation id>', 's' or 'b') and,
-- if it was free, it leaves FREE. Answers whether it was free. Every write of a state goes
-- through here or take_free_seats, also from one taken state to another (held to sold,
-- sold to blocked).
local function take_seat(i, state)
  ensure_free_index()
  if redis.call('HSET', ST, i, state) == 0 then
    return false
  end
  local seat = place(i)
  redis.call('ZREM', FREE, free_members(tonumber(i), seat[2], seat[3]))
  return true
end

-- Takes seats `indices`, every one of them free (the caller checked), for `state`: one
-- HSET, one HMGET of the PLACE records this call has not read, one ZREM.
local function take_free_seats(indices, state)
  ensure_free_index()
  load_places(indices)
  local states, members = {}, {}
  for _, i in ipairs(indices) do
    i = tonumber(i)
    local seat = places[i]
    states[#states + 1] = i
    states[#states + 1] = state
    local a, s, c, x = free_members(i, seat[2], seat[3])
    members[#members + 1] = a
    members[#members + 1] = s
    members[#members + 1] = c
    members[#members + 1] = x
  end
  if redis.call('HSET', ST, unpack(states)) ~= #indices then
    error('take_free_seats: a seat was taken')
  end
  redis.call('ZREM', FREE, unpack(members))
end

-- Moves seats `indices`, every one of them taken (held by the caller's reservation), to
-- `state` ('s' or 'b'): one HSET. Should one have been free after all, FREE loses them all.
local function retake_seats(indices, state)
  local states = {}
  for _, i in ipairs(indices) do
    states[#states + 1] = i
    states[#states + 1] = state
  end
  if redis.call('HSET', ST, unpack(states)) ~= 0 then
    ensure_free_index()
    load_places(indices)
    local members = {}
    for _, i in ipairs(indices) do
      local seat = places[tonumber(i)]
      for _, member in ipairs({ free_members(tonumber(i), seat[2], seat[3]) }) do
        members[#members + 1] = member
      end
    end
    redis.call('ZREM', FREE, unpack(members))
  end
end

-- Frees seat `i`: it leaves ST and, if it was taken, joins FREE (and ADJ learns the runs
-- it makes). Answers whether it was taken.
local function free_seat(i)
  ensure_free_index()
  if redis.call('HDEL', ST, i) == 0 then
    return false
  end
  i = tonumber(i)
  local seat = place(i)
  local a, s, c, x = free_members(i, seat[2], seat[3])
  redis.call('ZADD', FREE, 0, a, 0, s, 0, c, 0, x)
  note_freed(i, seat)
  return true
end

-- The FREE prefix of `best`'s candidates (by its section and category) and the bounds of
-- their range: from the prefix to the prefix with its last '\0' raised to '\1', exclusive.
local function free_range(best)
  local prefix
  if best.section and best.category then
    prefix = 'x\0' .. best.section .. '\0' .. best.category .. '\0'
  elseif best.section then
    prefix = 's\0' .. best.section .. '\0'
  elseif best.category then
    prefix = 'c\0' .. best.category .. '\0'
  else
    prefix = 'a\0'
  end
  return prefix, '[' .. prefix, '(' .. string.sub(prefix, 1, -2) .. '\1'
end

-- The layout index a FREE member ends in.
local function member_index(member)
  return tonumber(string.sub(member, -INDEX_DIGITS))
end

-- The seat ids of layout indices `picks`.
local function seat_ids(picks)
  load_places(picks)
  local ids = {}
  for k, i in ipairs(picks) do
    ids[k] = places[i][1]
  end
  return ids
end

-- Candidates an adjacent walk reads at first, and at most, per page (it doubles). The run
-- hints mostly start a walk at its answer, so the first page is small.
local WALK_PAGE_MIN, WALK_PAGE_MAX = 8, 1024

-- The adjacent walk of pick_best: pages of candidates in layout order, each one ZRANGEBYLEX
-- and one HMGET of NEXT, until a candidate starts a run; answers the run, or nil. A seat
-- between a page's first and last candidate is a candidate exactly when the page holds it,
-- so passing a candidate that starts no run costs table lookups only; a run that leaves its
-- page costs an HGET and a ZSCORE per seat outside it.
local function adjacent_run(best, excluded, prefix, low, high)
  local size, from = math.max(WALK_PAGE_MIN, 2 * best.count), low
  while true do
    local members = redis.call('ZRANGEBYLEX', FREE, from, high, 'LIMIT', 0, size)
    if #members == 0 then
      return nil
    end
    local page, at = {}, {}
    for k, member in ipairs(members) do
      page[k] = member_index(member)
      at[page[k]] = k
    end
    local nexts = redis.call('HMGET', NEXT, unpack(page))
    local first, last = page[1], page[#page]
    -- The seat numbered one more than seat `i` in its row, if it is a candidate.
    local function following(i)
      local j
      if at[i] then
        j = tonumber(nexts[at[i]])
      else
        j = tonumber(redis.call('HGET', NEXT, i))
      end
      if not j or excluded[j] then
        return nil
      elseif j >= first and j <= last then
        return at[j] and j
      elseif redis.call('ZSCORE', FREE, prefix .. string.format(INDEX_FORMAT, j)) then
        return j
      end
      return nil
    end
    for _, start in ipairs(page) do
      if not excluded[start] then
        local run, i = { start }, start
        while #run < best.count do
          i = following(i)
          if not i then
            break
          end
          run[#run + 1] = i
        end
        if #run == best.count then
          return run
        end
      end
    end
    if #members < size then
      return nil
    end
    from = '(' .. members[#members]
    size = math.min(2 * size, WALK_PAGE_MAX)
  end
end

-- The run of `count` candidates of `prefix` starting at exception `start`, or nil and
-- whether it is one but for the request's own seats (`excluded`).
local function listed_run(start, count, prefix, excluded)
  local run = { start }
  for _, j in ipairs(place(start)[4]) do
    if #run == count then
      break
    end
    run[#run + 1] = j
  end
  if #run < count then
    return nil, false
  end
  local members = {}
  for k, j in ipairs(run) do
    members[k] = prefix .. string.format(INDEX_FORMAT, j)
  end
  local mine = false
  for k, score in ipairs(redis.call('ZMSCORE', FREE, unpack(members))) do
    if not score then
      return nil, false
    end
    mine = mine or excluded[run[k]] ~= nil
  end
  if mine then
    return nil, true
  end
  return run
end

-- The first listed exception for runs of `count` (2 to RUN_TRACKED_MAX) that still starts
-- one, or nil; drops those that no longer do.
local function listed_first(prefix, h, count, excluded)
  local list = h[count - 1]
  if #list == 1 then
    return nil
  end
  local starts = {}
  for x = 2, #list do
    starts[#starts + 1] = list[x]
  end
  table.sort(starts)
  local kept, found = { list[1] }, nil
  for _, start in ipairs(starts) do
    if found then
      kept[#kept + 1] = start
    else
      local run, mine = listed_run(start, count, prefix, excluded)
      if run or mine then
        kept[#kept + 1] = start
      end
      found = run
    end
  end
  if #kept ~= #list then
    h[count - 1] = kept
    hints_save(prefix, h)
  end
  return found
end

-- The adjacent picks of pick_best: ADJ's exceptions, else a walk from its bounds.
local function adjacent_picks(best, excluded, prefix, high)
  local count = best.count
  local h = count >= 2 and hints_of(prefix) or false
  local from = 1
  if h then
    if count <= RUN_TRACKED_MAX then
      local run = listed_first(prefix, h, count, excluded)
      if run then
        return run
      end
      from = h[count - 1][1]
    end
    -- A run of `count` holds shorter ones at its start.
    for k = 2, math.min(count - 1, RUN_TRACKED_MAX) do
      from = math.max(from, hint_bound(h[k - 1]))
    end
  end
  local run = nil
  if from < NO_RUN then
    run = adjacent_run(best, excluded, prefix, '[' .. prefix .. string.format(INDEX_FORMAT, from),
      high)
  end
  -- Excluded seats are no candidates only for this request: learn from the others alone.
  if count >= 2 and count <= RUN_TRACKED_MAX and next(excluded) == nil then
    local found = run and run[1] or NO_RUN
    h = h or { { 1 }, { 1 }, { 1 } }
    if h[count - 1][1] ~= found then
      h[count - 1][1] = found
      hints_save(prefix, h)
    end
  end
  return run
end

-- Best available, as ticketing_core's reference model has it (testkit/model.rs): the
-- candidates are the free seats of `best.section` and `best.category` (each when given) not
-- in `excluded` (layout index -> true: the request's own seats, all free); the picks are the
-- first `best.count` in layout order or, with `best.adjacent`, the first candidate in layout
-- order that starts `best.count` consecutive numbers of one row, all candidates. Answers
-- the picks (layout indices) and their seat ids, or nil, nil and the number of candidates.
local function pick_best(best, excluded)
  ensure_free_index()
  local prefix, low, high = free_range(best)
  local excluded_count = 0
  for _ in pairs(excluded) do
    excluded_count = excluded_count + 1
  end
  if not best.adjacent then
    -- Read past the excluded seats in case they come first.
    local members = redis.call('ZRANGEBYLEX', FREE, low, high, 'LIMIT', 0,
      best.count + excluded_count)
    local picks = {}
    for _, member in ipairs(members) do
      local i = member_index(member)
      if not excluded[i] and #picks < best.count then
        picks[#picks + 1] = i
      end
    end
    if #picks < best.count then
      -- The range held fewer members than read, so the picks are every candidate.
      return nil, nil, #picks
    end
    return picks, seat_ids(picks)
  end
  local candidates = redis.call('ZLEXCOUNT', FREE, low, high)
  for i in pairs(excluded) do
    if redis.call('ZSCORE', FREE, prefix .. string.format(INDEX_FORMAT, i)) then
      candidates = candidates - 1
    end
  end
  if candidates < best.count then
    return nil, nil, candidates
  end
  local run = adjacent_picks(best, excluded, prefix, high)
  if not run then
    return nil, nil, candidates
  end
  return run, seat_ids(run)
end

-- An active reservation leaves the active state: its holder's counters and the due index.
local function leave_active(r)
  hc_add('r:' .. r.h, -1)
  hc_add('i:' .. r.h, -items_of(r))
  redis.call('ZREM', DUE, r.id)
end

-- Frees what an active reservation holds.
local function release(r)
  local mark = 'h' .. r.id
  for _, idx in ipairs(r.si) do
    if redis.call('HGET', ST, idx) == mark then
      free_seat(idx)
    end
  end
  for i, g in ipairs(r.g) do
    redis.call('HINCRBY', PC, 'h' .. r.gi[i], -g.quantity)
  end
end

-- The time at which this script call finalized every lapsed reservation. Nothing lapses
-- again at that time (every hold made or extended here ends later), so a reserve batch
-- looks at DUE once, not once per request.
local finalized_at = nil

-- Finalizes lapsed active reservations (earliest expiry first, then id), up to `limit`
-- (all when nil); returns how many.
local function finalize_lapsed(now, limit)
  if finalized_at == now then
    return 0
  end
  local ids
  if limit then
    ids = redis.call('ZRANGEBYSCORE', DUE, '-inf', now, 'LIMIT', 0, limit)
  else
    ids = redis.call('ZRANGEBYSCORE', DUE, '-inf', now)
  end
  local count = 0
  for _, id in ipairs(ids) do
    local r = load_rsv(id)
    if r and r.st == 'a' then
      r.st = 'e'
      release(r)
      leave_active(r)
      save_rsv(r)
      log(now, { type = 'expired', reservation = id, seats = r.s, ga = r.g })
      count = count + 1
    else
      redis.call('ZREM', DUE, id)
    end
  end
  if not limit then
    finalized_at = now
  end
  return count
end

local STATUS = { a = 'active', c = 'committed', x = 'cancelled', e = 'expired' }

-- A reservation as ticketing_core::Reservation reads it at `now` (never its token).
local function rsv_json(r, now, event_id)
  local status = STATUS[r.st]
  if r.st == 'a' and r.e <= now then
    status = 'expired'
  end
  return {
    id = r.id, event = event_id, holder = r.h, status = status, seats = r.s, ga = r.g,
    created_at = r.c, expires_at = r.e, client_reservation_id = r.cr, order = r.o,
  }
end

local TICKET_STATUS = { v = 'valid', i = 'checked_in', r = 'refunded' }

local function ticket_json(t, event_id)
  local item
  if t.k == 's' then
    item = { seat = t.i }
  else
    item = { pool = t.i }
  end
  return {
    id = t.id, order = t.o, event = event_id, holder = t.h, item = item, code = t.c,
    status = TICKET_STATUS[t.st],
  }
end

local function load_tkt(id)
  local raw = redis.call('HGET', TKT, id)
  if not raw then
    return nil
  end
  return cjson.decode(raw)
end

-- An order as ticketing_core::Order reads it, from its record and its tickets' records.
local function order_view(o, tickets, event_id)
  local views = {}
  for i, t in ipairs(tickets) do
    views[i] = ticket_json(t, event_id)
  end
  return {
    id = o.id, event = event_id, reservation = o.r, holder = o.h, payment_id = o.p,
    tickets = views, created_at = o.c,
  }
end

local function order_json(id, event_id)
  local raw = redis.call('HGET', ORD, id)
  if not raw then
    return nil
  end
  local o = cjson.decode(raw)
  local tickets = {}
  for i, tid in ipairs(o.t) do
    tickets[i] = load_tkt(tid)
  end
  return order_view(o, tickets, event_id)
end

local function ticket_conflict(t)
  if t.st == 'i' then
    return fail('conflict', { reason = 'ticket_checked_in' })
  end
  return fail('conflict', { reason = 'ticket_refunded' })
end
