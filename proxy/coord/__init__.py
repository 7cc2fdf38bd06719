"""Several daemons on one key: what they share through Redis (SPEC §10).

client.py is the connection (one pool, a timeout on every call, whether Redis answers now); scripts.py
the Lua run inside Redis; lease.py the per-key lease and the shared nonce counter; ratelimit.py the
shared outbound rate limit and EXMO's pauses. Without `redis` in the config none of this runs.
"""
