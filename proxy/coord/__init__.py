"""Several daemons on one key: what they share through Redis (SPEC §10).

client.py is the connection (one pool, a timeout on every call, whether Redis answers now); scripts.py
the Lua run inside Redis; keys.py the names and the refusal the rest of the daemon needs without
loading redis-py, which only a daemon with `redis:` imports. What uses them is in calls/: lease.py (a
key's lease and the shared nonce counter), shared_rate.py (the shared rate limit, EXMO's pauses),
records.py (Idempotency-Key records).
Without `redis` in the config none of this runs.
"""
