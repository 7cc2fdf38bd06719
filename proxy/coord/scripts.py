"""The Lua that runs inside Redis, each script one atomic step.

Lua numbers are doubles, exact only up to 2^53, and EXMO accepts 19-digit nonces (exmo-api.md §3):
nonces are therefore kept and compared as decimal strings (`longer`: more digits, or as many and
greater; `succ`: plus one), never turned into Lua numbers. Times are microseconds from Redis' own
`TIME` (one clock for every daemon), about 1.8e15 today, exact as doubles; they are written back with
`%.0f`, since Lua's `tostring` would round them to 14 digits.

A script may run twice: redis-py sends a command again when its connection broke before the reply
came (coord/client.py). That is harmless for each: TAKE again with the same lease value finds the
lease its own and takes it over (one nonce left unused, one rate slot spent twice); RELEASE and PAUSE
are the same twice; RATE spends a second slot.
"""

from __future__ import annotations

DECIMALS = """
local function longer(a, b) return #a > #b or (#a == #b and a > b) end
local function succ(s)
  local i = #s
  while i > 0 and s:sub(i, i) == '9' do i = i - 1 end
  if i == 0 then return '1' .. string.rep('0', #s) end
  return s:sub(1, i - 1) .. string.char(s:byte(i) + 1) .. string.rep('0', #s - i)
end
"""

# KEYS: lease. ARGV: the value it was taken with. Only that call's release frees it: a late release
# of an earlier call never frees a later one's lease.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _slot(tat: int, pause: int, interval: int, most: int, refusing: str = "") -> str:
    """GCRA with no burst, on Redis' clock, with the KEYS/ARGV positions given: returns {-2, µs left}
    while EXMO's pause lasts, {-1, wait µs} when the slot is further away than `most` (nothing taken;
    `refusing` runs first); else claims the slot and leaves its wait in `wait`."""
    return f"""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local pause = redis.call('GET', KEYS[{pause}])
if pause and tonumber(pause) > now then {refusing} return {{-2, tonumber(pause) - now}} end
local tat = tonumber(redis.call('GET', KEYS[{tat}]) or '0')
if tat < now then tat = now end
local wait = tat - now
if wait > tonumber(ARGV[{most}]) then {refusing} return {{-1, wait}} end
local after = tat + tonumber(ARGV[{interval}])
redis.call('SET', KEYS[{tat}], string.format('%.0f', after), 'PX', math.floor((after - now) / 1000) + 1000)
"""


# KEYS: theoretical arrival time (µs), pause-until (µs). ARGV: interval (µs), most wait (µs).
# A public read's slot of the shared rate limit: {1, wait µs}, or {-1, ...} / {-2, ...} as in _slot.
RATE = _slot(tat=1, pause=2, interval=1, most=2) + "return {1, wait}\n"

# KEYS: pause-until (µs). ARGV: seconds. EXMO asked every daemon to stop for that long; never shortened.
PAUSE = """
local t = redis.call('TIME')
local until_us = tonumber(t[1]) * 1000000 + tonumber(t[2]) + tonumber(ARGV[1]) * 1000000
local now_set = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_us > now_set then
  local ttl_ms = math.floor(tonumber(ARGV[1]) * 1000) + 1000
  redis.call('SET', KEYS[1], string.format('%.0f', until_us), 'PX', ttl_ms)
end
return 1
"""

# KEYS: lease, counter, rate tat, rate pause, want. ARGV: owner (this daemon's token and ':'), lease
# value (owner and a number of its own), candidate nonce, lease ttl ms, rate interval µs, most wait µs,
# want ttl ms. A signed call's one round trip: the key's lease, then a slot of the shared rate limit (too
# far: {-1, wait µs}; EXMO's pause: {-2, µs left}; nothing is taken then), then the nonce: {1, nonce,
# wait µs before sending}. The lease lives its ttl after that wait.
# The lease is free, or held by this daemon: its value is then one of this daemon's calls before this
# one on the key, done (a daemon takes its key's lease for one call at a time), whose release is still
# on its way; it is taken over. Held by another daemon: {0, ms left}, and this daemon asks for the next
# turn (`want`, kept while it keeps asking), so that a daemon with a queue of calls on the key cannot
# keep it from the others: while another daemon wants it, the key is not taken again (a lease of this
# daemon's own is given up) but left for that one: {0, ms left of the want}. Whatever the outcome, a
# lease of this daemon's own is taken over or freed, so its release need not be sent (client.py) —
# unless it is a later call's (its number is higher): this TAKE then arrived late (its call gave up,
# the next one went ahead) and changes nothing: {0, ms left}.
TAKE = DECIMALS + """
local holder = redis.call('GET', KEYS[1])
local mine = holder and string.sub(holder, 1, #ARGV[1]) == ARGV[1]
if mine and longer(string.sub(holder, #ARGV[1] + 1), string.sub(ARGV[2], #ARGV[1] + 1)) then
  return {0, redis.call('PTTL', KEYS[1])}
end
local want = redis.call('GET', KEYS[5])
if holder and not mine then
  if not want or want == ARGV[1] then redis.call('SET', KEYS[5], ARGV[1], 'PX', ARGV[7]) end
  return {0, redis.call('PTTL', KEYS[1])}
end
if want and want ~= ARGV[1] then
  if mine then redis.call('DEL', KEYS[1]) end
  return {0, redis.call('PTTL', KEYS[5])}
end
""" + _slot(tat=3, pause=4, interval=5, most=6, refusing="if mine then redis.call('DEL', KEYS[1]) end") + """
if want then redis.call('DEL', KEYS[5]) end
redis.call('SET', KEYS[1], ARGV[2], 'PX', tonumber(ARGV[4]) + math.ceil(wait / 1000))
local nonce = ARGV[3]
local last = redis.call('GET', KEYS[2])
if last then
  local following = succ(last)
  if longer(following, nonce) then nonce = following end
end
redis.call('SET', KEYS[2], nonce)
return {1, nonce, wait}
"""

BY_NAME = {"take": TAKE, "release": RELEASE, "rate": RATE, "pause": PAUSE}
